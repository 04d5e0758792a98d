// SPDX-License-Identifier: GPL-2.0

//! RCU support.
//!
//! Follows upstream Rust-for-Linux `kernel::sync::rcu` (v6.13): the same
//! [`Guard`] and [`read_lock`], written for 6.12.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use crate::bindings;
use core::marker::PhantomData;

/// Evidence that the RCU read side lock is held on the current thread/CPU.
///
/// Not `Send`: the lock is held by this thread/CPU, and must be released by
/// it.
///
/// # Invariants
///
/// The RCU read side lock is held while instances of this guard exist.
pub struct Guard(PhantomData<*mut ()>);

impl Guard {
    /// Acquires the RCU read side lock and returns a guard.
    pub fn new() -> Self {
        // SAFETY: an FFI call with no requirements; the guard releases the
        // lock on this thread, as it is not `Send`.
        unsafe { bindings::rcu_read_lock() };
        // INVARIANT: the lock was just acquired.
        Self(PhantomData)
    }

    /// Explicitly releases the RCU read side lock.
    pub fn unlock(self) {}
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the lock is held, by this thread.
        unsafe { bindings::rcu_read_unlock() };
    }
}

/// Acquires the RCU read side lock.
///
/// # Examples
///
/// ```
/// use kernel::sync::rcu;
///
/// let guard = rcu::read_lock();
/// // RCU-protected data may be read here.
/// guard.unlock();
/// ```
pub fn read_lock() -> Guard {
    Guard::new()
}
