// SPDX-License-Identifier: GPL-2.0

//! debugfs directories and read-only files shown by Rust code.
//!
//! Follows the shape of upstream `kernel::debugfs` (Linux v6.18:
//! `rust/kernel/debugfs.rs`, `debugfs/entry.rs`, `debugfs/file_ops.rs`,
//! `debugfs/traits.rs`), reduced to what 6.12 users here need and written
//! for 6.12:
//!
//! - [`Dir::new`] and [`Dir::subdir`] as upstream: a directory keeps its
//!   parent alive (an [`Arc`] on the parent's entry), so no directory can be
//!   removed while a child still refers to it, and every operation is a
//!   no-op without `CONFIG_DEBUG_FS` so that callers need no `#[cfg]`.
//! - [`Writer`] as upstream (implemented for every `Debug` type).
//! - [`Dir::read_only_file`] returns a [`File`] that shares its data through
//!   an `Arc<T>` instead of upstream's pin-initialized, owned data.
//! - Unlike upstream, whose file operations have no `owner`, the file
//!   operations here name the module that shows the file
//!   ([`ModuleOwner`]): debugfs's proxy then holds a reference on that
//!   module while the file is open, so the module cannot be unloaded while
//!   a `read` or the final `release` could still reach its code.
//!
//! C header: [`include/linux/debugfs.h`](srctree/include/linux/debugfs.h)

use crate::{str::CStr, sync::Arc, ModuleOwner};
use core::fmt;

/// A value that can be written out as the content of a debugfs file.
///
/// As upstream's `kernel::debugfs::Writer`: implemented for every type
/// that implements `Debug` (as `{:?}` and a newline); implement it by hand
/// where the format matters to whoever reads the file.
pub trait Writer {
    /// Formats the value into `f`.
    ///
    /// # Errors
    ///
    /// Only those of `f`'s `write_*` methods, which cannot fail when `f`
    /// writes into a debugfs file (an overflow makes the file retry with a
    /// larger buffer).
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: fmt::Debug> Writer for T {
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{self:?}")
    }
}

#[cfg(CONFIG_DEBUG_FS)]
mod entry {
    use crate::{bindings, str::CStr, sync::Arc};

    /// An owned debugfs dentry, removed on drop.
    ///
    /// # Invariants
    ///
    /// `dentry` is a live dentry created by `debugfs_create_*`, owned by
    /// this object; `_parent`, if any, is the entry of its directory, kept
    /// alive (so not removed) while this one exists.
    pub(super) struct Entry {
        dentry: *mut bindings::dentry,
        _parent: Option<Arc<Entry>>,
    }

    // SAFETY: a debugfs dentry may be removed from any task, and `Entry`
    // exposes nothing else.
    unsafe impl Send for Entry {}

    // SAFETY: `&Entry` only allows creating children, which debugfs
    // serializes itself.
    unsafe impl Sync for Entry {}

    impl Entry {
        /// Creates directory `name` in `parent` (the debugfs root if
        /// `None`); `None` if debugfs refuses (not mounted or disabled at
        /// boot, `name` taken, no memory).
        pub(super) fn dir(name: &CStr, parent: Option<Arc<Entry>>) -> Option<Self> {
            let parent_ptr = parent.as_ref().map_or(core::ptr::null_mut(), |p| p.dentry);
            // SAFETY: `name` is a NUL-terminated string; `parent_ptr` is
            // null or a live directory, which `parent` keeps alive.
            let dentry = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), parent_ptr) };
            if dentry.is_null() || crate::error::from_err_ptr(dentry).is_err() {
                return None;
            }
            // INVARIANT: created just now, owned here; `parent` kept.
            Some(Self {
                dentry,
                _parent: parent,
            })
        }

        /// Creates file `name` in `parent` with `data` as its private data
        /// and `fops` as its operations; `None` if debugfs refuses.
        ///
        /// # Safety
        ///
        /// `fops` must be operations that are sound for an inode whose
        /// private data is `data`, and `data` must stay valid until the
        /// returned entry is dropped.
        pub(super) unsafe fn file(
            name: &CStr,
            parent: Arc<Entry>,
            data: *mut core::ffi::c_void,
            mode: u16,
            fops: &'static bindings::file_operations,
        ) -> Option<Self> {
            // SAFETY: `name` is a NUL-terminated string, `parent.dentry` a
            // live directory (the `Arc` keeps it); the caller vouches for
            // `data` and `fops`.
            let dentry = unsafe {
                bindings::debugfs_create_file(name.as_char_ptr(), mode, parent.dentry, data, fops)
            };
            if dentry.is_null() || crate::error::from_err_ptr(dentry).is_err() {
                return None;
            }
            // INVARIANT: created just now, owned here; `parent` kept.
            Some(Self {
                dentry,
                _parent: Some(parent),
            })
        }
    }

    impl Drop for Entry {
        fn drop(&mut self) {
            // SAFETY: the dentry is live and owned by the type invariant;
            // its parent is still there (`_parent` is dropped after this).
            // `debugfs_remove()` waits for the file operations in flight and
            // makes later ones fail, so what the entry's private data points
            // to may be freed once this returns.
            unsafe { bindings::debugfs_remove(self.dentry) };
        }
    }
}

#[cfg(CONFIG_DEBUG_FS)]
mod file_ops {
    use super::{Writer, WriterAdapter};
    use crate::{
        bindings,
        ffi::{c_int, c_void},
        ModuleOwner,
    };
    use core::marker::PhantomData;

    /// The file operations of a read-only file shown by `T`, owned by
    /// module `M`.
    pub(super) struct ReadOnly<T, M>(PhantomData<(T, M)>);

    impl<T: Writer + Sync, M: ModuleOwner> ReadOnly<T, M> {
        pub(super) const FOPS: bindings::file_operations = bindings::file_operations {
            owner: M::THIS_MODULE.as_ptr(),
            open: Some(Self::open),
            read: Some(bindings::seq_read),
            llseek: Some(bindings::seq_lseek),
            release: Some(bindings::single_release),
            // SAFETY: all-zero is a valid `file_operations`: every other
            // member is a nullable function pointer or an integer.
            ..unsafe { core::mem::zeroed() }
        };

        /// # Safety
        ///
        /// `inode` must be a debugfs file created by
        /// [`super::Dir::read_only_file`] with a `T` as private data, and
        /// `file` a file being opened on it.
        unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
            // SAFETY: the caller's contract: `i_private` is the `T`, which
            // outlives the dentry; `show` is called with it as private data.
            unsafe { bindings::single_open(file, Some(Self::show), (*inode).i_private) }
        }

        /// # Safety
        ///
        /// `m` must be a seq_file opened by `open`.
        unsafe extern "C" fn show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
            // SAFETY: `open` stored the `T` as the seq_file's private data;
            // debugfs keeps the dentry, hence the `T`, alive while the read
            // that calls this is in flight.
            let data = unsafe { &*(*m).private.cast::<T>() };
            let mut out = SeqWriter(m);
            // Formatting into a seq_file cannot fail: an overflow is
            // recorded in the seq_file, which retries with a larger buffer.
            let _ = core::fmt::write(&mut out, format_args!("{}", WriterAdapter(data)));
            0
        }
    }

    /// `core::fmt::Write` into the seq_file of a `show` call.
    struct SeqWriter(*mut bindings::seq_file);

    impl core::fmt::Write for SeqWriter {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            // SAFETY: the seq_file is the one of the `show` call in
            // progress; `s` is valid for `s.len()` bytes.
            unsafe { bindings::seq_write(self.0, s.as_ptr().cast(), s.len()) };
            Ok(())
        }
    }
}

/// Shows a [`Writer`] through `Display`.
#[cfg(CONFIG_DEBUG_FS)]
struct WriterAdapter<'a, T>(&'a T);

#[cfg(CONFIG_DEBUG_FS)]
impl<T: Writer> fmt::Display for WriterAdapter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f)
    }
}

/// A debugfs directory; removed, with everything in it, once it and every
/// [`Dir`] and [`File`] made in it are dropped.
///
/// Without `CONFIG_DEBUG_FS`, or when debugfs refuses the directory, it is
/// empty and everything made in it is too.
///
/// # Examples
///
/// ```
/// use kernel::{c_str, debugfs::Dir};
///
/// let root = Dir::new(c_str!("rust_doctest_debugfs"));
/// let sub = root.subdir(c_str!("sub"));
/// // The parent stays as long as a child needs it.
/// drop(root);
/// drop(sub);
/// ```
pub struct Dir {
    #[cfg(CONFIG_DEBUG_FS)]
    entry: Option<Arc<entry::Entry>>,
}

impl Dir {
    /// Creates directory `name` at the debugfs root.
    ///
    /// Never fails: without debugfs, or when debugfs refuses (for instance
    /// because `name` exists), the directory is empty, as upstream's.
    pub fn new(name: &CStr) -> Self {
        Self::make(name, None)
    }
}

#[cfg(CONFIG_DEBUG_FS)]
impl Dir {
    fn make(name: &CStr, parent: Option<Arc<entry::Entry>>) -> Self {
        let entry = entry::Entry::dir(name, parent)
            .and_then(|e| Arc::new(e, crate::alloc::flags::GFP_KERNEL).ok());
        Self { entry }
    }

    /// Creates directory `name` in this one, which it keeps alive.
    pub fn subdir(&self, name: &CStr) -> Self {
        match &self.entry {
            Some(parent) => Self::make(name, Some(parent.clone())),
            None => Self { entry: None },
        }
    }

    /// Whether the directory exists in debugfs.
    pub fn is_present(&self) -> bool {
        self.entry.is_some()
    }

    /// Creates the read-only (0400) file `name` in this directory, whose
    /// content is `data` written by [`Writer`]; module `M` owns the file's
    /// operations (see the module documentation).
    ///
    /// The file is removed when the returned [`File`] is dropped; reads in
    /// flight finish first, later reads of a file still open fail.  If the
    /// directory is empty or debugfs refuses the file, the [`File`] is
    /// empty but still holds `data`.
    pub fn read_only_file<M, T>(&self, name: &CStr, data: Arc<T>) -> File<T>
    where
        M: ModuleOwner,
        T: Writer + Send + Sync + 'static,
    {
        let entry = self.entry.as_ref().and_then(|parent| {
            let private = core::ptr::from_ref::<T>(&data).cast_mut().cast();
            // SAFETY: the operations show a `T` through `i_private`, and
            // `private` is the `T` that `data` keeps alive; the `File` drops
            // the entry before `data` (field order).
            unsafe {
                entry::Entry::file(
                    name,
                    parent.clone(),
                    private,
                    0o400,
                    &file_ops::ReadOnly::<T, M>::FOPS,
                )
            }
        });
        File { entry, data }
    }
}

#[cfg(not(CONFIG_DEBUG_FS))]
impl Dir {
    fn make(_name: &CStr, _parent: Option<()>) -> Self {
        Self {}
    }

    /// Creates directory `name` in this one, which it keeps alive.
    pub fn subdir(&self, name: &CStr) -> Self {
        Self::make(name, None)
    }

    /// Whether the directory exists in debugfs.
    pub fn is_present(&self) -> bool {
        false
    }

    /// Creates the read-only (0400) file `name` in this directory, whose
    /// content is `data` written by [`Writer`]; module `M` owns the file's
    /// operations (see the module documentation).
    pub fn read_only_file<M, T>(&self, _name: &CStr, data: Arc<T>) -> File<T>
    where
        M: ModuleOwner,
        T: Writer + Send + Sync + 'static,
    {
        File { data }
    }
}

/// A read-only debugfs file showing a `T`; removed on drop.
pub struct File<T> {
    // Declared before `data`: the entry is removed, with the reads in
    // flight finished, before the data it shows can go.
    #[cfg(CONFIG_DEBUG_FS)]
    entry: Option<entry::Entry>,
    data: Arc<T>,
}

impl<T> File<T> {
    /// The data the file shows.
    pub fn data(&self) -> &Arc<T> {
        &self.data
    }

    /// Whether the file exists in debugfs.
    pub fn is_present(&self) -> bool {
        #[cfg(CONFIG_DEBUG_FS)]
        let present = self.entry.is_some();
        #[cfg(not(CONFIG_DEBUG_FS))]
        let present = false;
        present
    }
}
