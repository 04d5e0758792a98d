// SPDX-License-Identifier: GPL-2.0

//! References to open files, looked up by file descriptor.
//!
//! A narrow abstraction for code that receives a file descriptor from
//! userspace (for instance in an ioctl argument) and must hold on to the
//! file behind it: [`FileRef::fget`] takes a reference, dropping the
//! [`FileRef`] gives it back.
//!
//! C header: [`include/linux/file.h`](srctree/include/linux/file.h)

use crate::{
    bindings,
    error::{code::EBADF, Result},
    ffi::{c_int, c_void},
};
use core::ptr::NonNull;

/// A counted reference to a `struct file`.
///
/// # Invariants
///
/// `ptr` points to a file on which this object owns one reference
/// (`f_count`).
pub struct FileRef {
    ptr: NonNull<bindings::file>,
}

// SAFETY: A file reference may be dropped (`fput`) from any task; `fput`
// defers the final release to a safe context.
unsafe impl Send for FileRef {}

// SAFETY: `&FileRef` only allows reading fields that do not change while
// the file is open.
unsafe impl Sync for FileRef {}

impl FileRef {
    /// Takes a reference on the file behind `fd` in the current task's
    /// file descriptor table.
    ///
    /// Fails with `EBADF` if `fd` is not an open file descriptor.
    pub fn fget(fd: c_int) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: `fget` may be called with any value; it returns null or a
        // file with a new reference.
        let ptr = unsafe { bindings::fget(fd) };
        // INVARIANT: `fget` took the reference this object owns.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(EBADF)
    }

    /// Whether the file's operations are `fops`: the usual test of what
    /// kind of file this is.
    pub fn has_fops(&self, fops: *const bindings::file_operations) -> bool {
        // SAFETY: the file is alive by the type invariant, and `f_op` is
        // set when the file is opened and never changes afterwards.
        let f_op = unsafe { (*self.ptr.as_ptr()).f_op };
        !fops.is_null() && core::ptr::eq(f_op, fops)
    }

    /// The file's `private_data`, as set by whoever created the file.
    pub fn private_data(&self) -> *mut c_void {
        // SAFETY: the file is alive by the type invariant.  Files whose
        // private data this abstraction's users read set it once, before
        // the file is installed in a file descriptor table.
        unsafe { (*self.ptr.as_ptr()).private_data }
    }

    /// The raw `struct file` pointer.
    pub fn as_ptr(&self) -> *mut bindings::file {
        self.ptr.as_ptr()
    }

    /// Gives the reference up to the caller, as a raw pointer that must
    /// eventually go back to [`FileRef::from_raw`] (or `fput`).
    pub fn into_raw(self) -> *mut bindings::file {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// Takes back a reference given up by [`FileRef::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`FileRef::into_raw`], and its reference must
    /// not have been taken back before.
    pub unsafe fn from_raw(ptr: *mut bindings::file) -> Self {
        // INVARIANT: the caller passes on the reference `into_raw` kept.
        Self {
            // SAFETY: `into_raw` returned a non-null pointer.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
        }
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this object owns a reference.
        unsafe { bindings::fput(self.ptr.as_ptr()) };
    }
}
