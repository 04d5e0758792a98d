// SPDX-License-Identifier: GPL-2.0

//! Miscellaneous character devices with open, release and ioctl.
//!
//! A driver implements [`MiscDevice`] and keeps a [`Registration`] alive
//! while the device node should exist.  Each open file gets its own object,
//! created by [`MiscDevice::open`] and handed back to
//! [`MiscDevice::release`].
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{to_result, Result},
    ffi::{c_int, c_long, c_uint, c_ulong},
    str::CStr,
    types::{ForeignOwnable, Opaque},
    ModuleOwner,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    pin::Pin,
};

/// A miscellaneous device's behaviour.
pub trait MiscDevice: Sized + 'static {
    /// The module whose code serves the device's files: the VFS holds a
    /// reference on it while a file is open.
    type Owner: ModuleOwner;

    /// The per-open-file object.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Opens the device: creates the object of a new open file.
    fn open() -> Result<Self::Ptr>;

    /// Releases an open file's object.
    fn release(device: Self::Ptr) {
        drop(device);
    }

    /// Handles `ioctl(cmd, arg)` on an open file; returns the value the
    /// system call returns.
    fn ioctl(
        device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        cmd: u32,
        arg: usize,
    ) -> Result<isize>;
}

struct RegistrationData {
    misc: Opaque<bindings::miscdevice>,
    _pin: PhantomPinned,
}

/// A registered miscellaneous device; deregistered on drop.
///
/// # Invariants
///
/// `data.misc` is registered, with `data.fops`, while the object lives.
pub struct Registration<T: MiscDevice> {
    data: Pin<KBox<RegistrationData>>,
    _device: PhantomData<T>,
}

// SAFETY: a misc device may be deregistered from any task.
unsafe impl<T: MiscDevice> Send for Registration<T> {}

// SAFETY: `&Registration` gives access to nothing.
unsafe impl<T: MiscDevice> Sync for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// The device's file operations: `'static`, so that a file opened
    /// before the registration is dropped still finds them, and owned by
    /// `T::Owner`, so that the module stays while such a file is open.
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: T::Owner::THIS_MODULE.as_ptr(),
        open: Some(Self::open_callback),
        release: Some(Self::release_callback),
        unlocked_ioctl: Some(Self::ioctl_callback),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(bindings::compat_ptr_ioctl),
        // SAFETY: all-zero is a valid `file_operations`: every other member
        // is a nullable function pointer or an integer.
        ..unsafe { core::mem::zeroed() }
    };

    /// Registers device `/dev/<name>` with a dynamic minor.
    ///
    /// # Errors
    ///
    /// `ENOMEM`, or `misc_register()`'s: `EBUSY` if `name` is taken.
    pub fn new(name: &'static CStr) -> Result<Self> {
        let data = KBox::pin(
            RegistrationData {
                misc: Opaque::uninit(),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        let misc = data.misc.get();
        // SAFETY: `misc` points into the pinned, owned `data`; all-zero is
        // valid for the other members (nullable pointers and integers).
        unsafe {
            misc.write(bindings::miscdevice {
                minor: bindings::MISC_DYNAMIC_MINOR as c_int,
                name: name.as_char_ptr(),
                fops: &Self::FOPS,
                ..core::mem::zeroed()
            });
        }
        // SAFETY: `misc` is initialized and stays valid, pinned, until
        // `drop` deregisters it.
        to_result(unsafe { bindings::misc_register(misc) })?;
        // INVARIANT: registered just above.
        Ok(Self {
            data,
            _device: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the VFS when the device is opened.
    unsafe extern "C" fn open_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        match T::open() {
            Ok(ptr) => {
                // SAFETY: the file is being opened and is not shared yet.
                unsafe { (*file).private_data = ptr.into_foreign().cast_mut() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called by the VFS once per file opened by `open_callback`.
    unsafe extern "C" fn release_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `open_callback` stored the object, and release runs once.
        let ptr = unsafe { T::Ptr::from_foreign((*file).private_data) };
        T::release(ptr);
        0
    }

    /// # Safety
    ///
    /// Called by the VFS on a file opened by `open_callback`.
    unsafe extern "C" fn ioctl_callback(
        file: *mut bindings::file,
        cmd: c_uint,
        arg: c_ulong,
    ) -> c_long {
        // SAFETY: the object lives until release, which cannot run while
        // the ioctl holds the file.
        let device = unsafe { T::Ptr::borrow((*file).private_data) };
        match T::ioctl(device, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }
}

impl<T: MiscDevice> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered by the type invariant.
        unsafe { bindings::misc_deregister(self.data.misc.get()) };
    }
}
