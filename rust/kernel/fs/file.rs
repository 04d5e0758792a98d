// SPDX-License-Identifier: GPL-2.0

//! Files and file descriptors.
//!
//! Follows upstream Rust-for-Linux `kernel::fs::file` (v6.13): [`File`] is
//! a `struct file`, always reference counted, so an owned reference is an
//! `ARef<File>`; [`File::fget`] takes one from a file descriptor of the
//! current task, and [`BadFdError`] is `fget`'s error.  Written for 6.12
//! with only what this tree uses: upstream's `LocalFile` (a file that may
//! not be shared with other threads), credentials and flags are left out.
//! One addition: `fget` from a task with no file descriptor table (an
//! exiting task's last `fput()`s) is `EBADF`, not a null dereference.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h) and
//! [`include/linux/file.h`](srctree/include/linux/file.h)

use crate::{
    bindings,
    error::{code::EBADF, Error},
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::ptr::NonNull;

/// A `struct file`, wrapped for Rust.
///
/// Only ever handled by reference: `&File` borrows a file someone holds a
/// reference on, `ARef<File>` owns a reference (`f_count`).
///
/// # Invariants
///
/// Instances are valid `struct file`s with a non-zero reference count.
#[repr(transparent)]
pub struct File {
    inner: Opaque<bindings::file>,
}

// SAFETY: a reference on a file may be dropped (`fput`) from any task; `fput`
// defers the final release to a safe context.
unsafe impl Send for File {}

// SAFETY: `&File` gives access to nothing but the file's pointer, and to
// taking references, which is thread-safe.
unsafe impl Sync for File {}

// SAFETY: `get_file` and `fput` keep the file alive while the count is
// non-zero, and the count is changed only through them.
unsafe impl AlwaysRefCounted for File {
    fn inc_ref(&self) {
        // SAFETY: the file is valid and referenced (type invariant), so its
        // count may be incremented.
        unsafe { bindings::get_file(self.as_ptr()) };
    }

    unsafe fn dec_ref(obj: NonNull<File>) {
        // SAFETY: the caller owns a reference on the file, given back here.
        unsafe { bindings::fput(obj.cast().as_ptr()) }
    }
}

/// The error of [`File::fget`]: the file descriptor is not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadFdError;

impl From<BadFdError> for Error {
    fn from(_: BadFdError) -> Error {
        EBADF
    }
}

impl File {
    /// Takes a reference on the file behind `fd` in the current task's file
    /// descriptor table.
    ///
    /// # Errors
    ///
    /// [`BadFdError`] (`EBADF`) if `fd` is not an open file descriptor, or
    /// if the current task has no file descriptor table (a task past
    /// `exit_files()`, whose last `fput()`s run afterwards).
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::fs::file::{BadFdError, File};
    ///
    /// assert_eq!(File::fget(u32::MAX).err(), Some(BadFdError));
    /// ```
    #[inline]
    pub fn fget(fd: u32) -> Result<ARef<File>, BadFdError> {
        // SAFETY: `current` is always a valid task, and only the task itself
        // changes its `files` (`exit_files()` sets it to null).
        if unsafe { (*bindings::get_current()).files }.is_null() {
            // `fget` would look the descriptor up in a null table.
            return Err(BadFdError);
        }
        // SAFETY: `fget` may be called with any value; it returns null or a
        // file with a new reference.
        let ptr = NonNull::new(unsafe { bindings::fget(fd) }).ok_or(BadFdError)?;
        // SAFETY: `fget` took the reference the `ARef` owns, and `File` is a
        // transparent wrapper of `struct file`.
        Ok(unsafe { ARef::from_raw(ptr.cast()) })
    }

    /// Creates a reference to a [`File`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` points at a valid file and that the
    /// file's refcount is positive for the duration of `'a`.
    #[inline]
    pub unsafe fn from_raw_file<'a>(ptr: *const bindings::file) -> &'a File {
        // SAFETY: the caller guarantees that the pointer is not dangling and
        // stays valid for `'a`; `File` is a transparent wrapper of `struct
        // file`.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct file` pointer.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::file {
        self.inner.get()
    }
}
