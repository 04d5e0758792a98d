// SPDX-License-Identifier: GPL-2.0

//! debugfs directories with read-only files shown by Rust code.
//!
//! A [`Dir`] owns a debugfs directory and keeps alive the data of the files
//! created in it: the directory is removed (waiting for readers in flight)
//! before the data is dropped.  A file's content is produced by [`Show`].
//!
//! C header: [`include/linux/debugfs.h`](srctree/include/linux/debugfs.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    error::{from_err_ptr, Result},
    ffi::{c_int, c_void},
    str::CStr,
    sync::Arc,
};
use core::{fmt, marker::PhantomData};

/// The content of a debugfs file.
pub trait Show: Send + Sync + 'static {
    /// Writes the file's content to `m`.
    fn show(&self, m: &mut SeqFile<'_>) -> fmt::Result;
}

/// The buffer a [`Show`] implementation writes to (`struct seq_file`).
pub struct SeqFile<'a> {
    ptr: *mut bindings::seq_file,
    _life: PhantomData<&'a mut bindings::seq_file>,
}

impl fmt::Write for SeqFile<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `ptr` is the seq_file of the `show` call this object was
        // made for; `s` is valid for `s.len()` bytes.  An overflow is
        // recorded in the seq_file, which then retries with a larger buffer.
        unsafe { bindings::seq_write(self.ptr, s.as_ptr().cast(), s.len()) };
        Ok(())
    }
}

/// A debugfs directory; removed, with everything in it, on drop.
///
/// # Invariants
///
/// `dentry` is a directory created by `debugfs_create_dir`; every file in it
/// has as private data a pointer to a value kept alive by `keep`.
pub struct Dir {
    dentry: *mut bindings::dentry,
    keep: KVec<Arc<dyn Send + Sync>>,
}

// SAFETY: debugfs entries may be created and removed from any task.
unsafe impl Send for Dir {}

// SAFETY: `&Dir` gives access to nothing mutable.
unsafe impl Sync for Dir {}

impl Dir {
    /// Creates directory `name` in `parent`, or at the debugfs root.
    ///
    /// Fails if debugfs is not available or `name` exists.
    pub fn new(name: &CStr, parent: Option<&Dir>) -> Result<Self> {
        let parent = parent.map_or(core::ptr::null_mut(), |p| p.dentry);
        // SAFETY: `name` is a valid string; `parent` is null or a live
        // directory (its `Dir` outlives this call).
        let dentry = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), parent) };
        let dentry = from_err_ptr(dentry)?;
        Ok(Self {
            dentry,
            keep: KVec::new(),
        })
    }

    /// Creates a read-only file `name` whose content `data` shows.
    pub fn show_file<T: Show>(&mut self, name: &CStr, data: Arc<T>) -> Result {
        self.keep.push(data.clone(), GFP_KERNEL)?;
        let private = core::ptr::from_ref::<T>(&data).cast_mut().cast::<c_void>();
        // SAFETY: `self.dentry` is a live directory; the file operations
        // are a static table; `private` stays valid until the directory is
        // removed, since `keep` holds a reference until after that.
        let dentry = unsafe {
            bindings::debugfs_create_file(
                name.as_char_ptr(),
                0o444,
                self.dentry,
                private,
                ShowFops::<T>::fops(),
            )
        };
        from_err_ptr(dentry)?;
        Ok(())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: by the type invariant; `debugfs_remove` waits for the
        // operations in flight on the files, so `keep` may be dropped after.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

/// The file operations of a file shown by `T`.
struct ShowFops<T: Show>(PhantomData<T>);

impl<T: Show> ShowFops<T> {
    const FOPS: bindings::file_operations = bindings::file_operations {
        open: Some(Self::open),
        read: Some(bindings::seq_read),
        llseek: Some(bindings::seq_lseek),
        release: Some(bindings::single_release),
        // SAFETY: an all-zero `file_operations` is valid: every member is a
        // nullable pointer or an integer.
        ..unsafe { core::mem::zeroed() }
    };

    fn fops() -> *const bindings::file_operations {
        let fops: &'static bindings::file_operations = &Self::FOPS;
        fops
    }

    /// # Safety
    ///
    /// Called by the VFS for a file created by [`Dir::show_file`].
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: the inode of a debugfs file carries the private data it
        // was created with, a `T`.
        unsafe { bindings::single_open(file, Some(Self::show), (*inode).i_private) }
    }

    /// # Safety
    ///
    /// Called by `seq_read` for a file opened by `open`.
    unsafe extern "C" fn show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
        // SAFETY: `single_open` stored the `T` as the seq_file's private
        // data; the directory, removed before `T` is dropped, is still
        // there while a read is in flight.
        let data = unsafe { &*(*m).private.cast::<T>() };
        let mut seq = SeqFile {
            ptr: m,
            _life: PhantomData,
        };
        // Formatting into a seq_file cannot fail; overflow is retried.
        let _ = data.show(&mut seq);
        0
    }
}
