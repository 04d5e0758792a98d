// SPDX-License-Identifier: GPL-2.0

//! The importer registry of one TDP FD.
//!
//! The state machine behind `register_importer` and `unregister_importer`:
//! an importer is known by a key (in the kernel, the address of its ops
//! table), can be registered once (`Busy` on a repeat), and can only be
//! unregistered if registered (`NotFound` otherwise).  Reports go to every
//! registered importer, once each, in registration order.
//!
//! The registry has a fixed capacity, so it never allocates: a report walks
//! it with KVM's `mmu_lock` held.  This file depends on `core` only, so it is
//! compiled both into the kernel crate and into the host-side unit tests
//! (`logic/`).

/// How many importers one TDP FD accepts.
pub const MAX_IMPORTERS: usize = 64;

/// Why a registry operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryError {
    /// The importer is registered already (`-EBUSY`).
    Busy,
    /// The importer is not registered (`-ENOENT`).
    NotFound,
    /// [`MAX_IMPORTERS`] importers are registered (`-ENOSPC`).
    Full,
}

/// Registered importers, keyed by `K`, each with its value `V`.
///
/// # Examples
///
/// ```
/// use kernel::kvm_tdp::registry::{Registry, RegistryError};
///
/// let mut r = Registry::new();
/// assert_eq!(r.register(1u32, "a"), Ok(()));
/// assert_eq!(r.register(1, "b"), Err(RegistryError::Busy));
/// assert_eq!(r.unregister(1), Ok("a"));
/// assert_eq!(r.unregister(1), Err(RegistryError::NotFound));
/// ```
pub struct Registry<K, V> {
    /// Registered entries, in registration order, packed at the front.
    slots: [Option<(K, V)>; MAX_IMPORTERS],
    len: usize,
}

impl<K: Copy + Eq, V> Default for Registry<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy + Eq, V> Registry<K, V> {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            slots: [const { None }; MAX_IMPORTERS],
            len: 0,
        }
    }

    /// Registers `key` with `value`.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Busy`] if `key` is registered,
    /// [`RegistryError::Full`] if [`MAX_IMPORTERS`] are.
    pub fn register(&mut self, key: K, value: V) -> Result<(), RegistryError> {
        if self.position(key).is_some() {
            return Err(RegistryError::Busy);
        }
        if self.len == MAX_IMPORTERS {
            return Err(RegistryError::Full);
        }
        self.slots[self.len] = Some((key, value));
        self.len += 1;
        Ok(())
    }

    /// Unregisters `key`, giving its value back.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotFound`] if `key` is not registered.
    pub fn unregister(&mut self, key: K) -> Result<V, RegistryError> {
        let i = self.position(key).ok_or(RegistryError::NotFound)?;
        let entry = self.slots[i].take();
        // Keep the registered entries packed and in order.
        self.slots[i..self.len].rotate_left(1);
        self.len -= 1;
        match entry {
            Some((_, value)) => Ok(value),
            None => Err(RegistryError::NotFound),
        }
    }

    /// Whether `key` is registered.
    pub fn contains(&self, key: K) -> bool {
        self.position(key).is_some()
    }

    /// The number of registered importers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no importer is registered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The registered importers, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.slots[..self.len]
            .iter()
            .filter_map(|slot| slot.as_ref().map(|(k, v)| (*k, v)))
    }

    fn position(&self, key: K) -> Option<usize> {
        self.slots[..self.len]
            .iter()
            .position(|slot| matches!(slot, Some((k, _)) if *k == key))
    }
}
