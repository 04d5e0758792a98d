// SPDX-License-Identifier: GPL-2.0

//! Miscellaneous devices.
//!
//! Follows upstream Rust-for-Linux `kernel::miscdevice` (v6.13):
//! [`MiscDeviceOptions`], [`MiscDeviceRegistration::register`] returning an
//! `impl PinInit`, and the `#[vtable]` trait [`MiscDevice`], written for
//! 6.12.  One deviation: [`MiscDevice::Owner`] names the module whose code
//! serves the device's files, so that the `'static` file operations hold a
//! reference on it while a file is open (v6.13 leaves `owner` null; see
//! [`crate::ModuleOwner`]).  `compat_ioctl` exists only with
//! `CONFIG_COMPAT`.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)

use crate::{
    bindings,
    error::{to_result, Error, Result, VTABLE_DEFAULT_ERROR},
    ffi::{c_int, c_long, c_uint, c_ulong},
    init::{pin_init_from_closure, PinInit},
    prelude::*,
    str::CStr,
    types::{ForeignOwnable, Opaque},
    ModuleOwner,
};
use core::{marker::PhantomData, pin::Pin};

/// Options for creating a misc device.
#[derive(Copy, Clone)]
pub struct MiscDeviceOptions {
    /// The name of the device: `/dev/<name>`.
    pub name: &'static CStr,
}

impl MiscDeviceOptions {
    /// Creates a raw `struct miscdevice` ready for registration, with a
    /// dynamic minor and `T`'s file operations.
    pub const fn into_raw<T: MiscDevice>(self) -> bindings::miscdevice {
        // SAFETY: all zeros is valid for this C type: every member is an
        // integer, a nullable pointer or a list head that `misc_register()`
        // initializes.
        let mut result: bindings::miscdevice = unsafe { core::mem::zeroed() };
        result.minor = bindings::MISC_DYNAMIC_MINOR as c_int;
        result.name = self.name.as_char_ptr();
        result.fops = &VtableHelper::<T>::FOPS;
        result
    }
}

/// A registration of a miscdevice; deregistered on drop.
///
/// # Invariants
///
/// `inner` is a registered misc device.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub struct MiscDeviceRegistration<T> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    _t: PhantomData<T>,
}

// SAFETY: it is allowed to call `misc_deregister` on a different thread from
// where `misc_register` was called.
unsafe impl<T> Send for MiscDeviceRegistration<T> {}

// SAFETY: all `&self` methods on this type are written to ensure that it is
// safe to call them in parallel.
unsafe impl<T> Sync for MiscDeviceRegistration<T> {}

impl<T: MiscDevice> MiscDeviceRegistration<T> {
    /// Registers a misc device.
    ///
    /// # Errors
    ///
    /// `misc_register()`'s: `EBUSY` if the name is taken, `ENOMEM`.
    pub fn register(opts: MiscDeviceOptions) -> impl PinInit<Self, Error> {
        let init = move |slot: *mut Self| {
            // `Self` is `repr(transparent)` over `inner`.
            let misc = slot.cast::<bindings::miscdevice>();
            // SAFETY: `slot` is valid for writes and pinned: it stays at
            // this address until dropped, which deregisters it.
            unsafe { misc.write(opts.into_raw::<T>()) };
            // SAFETY: `misc` is initialized and pinned; on failure the
            // caller frees the slot, which `misc_register()` then no longer
            // refers to.
            // INVARIANT: registered when this returns `Ok`.
            to_result(unsafe { bindings::misc_register(misc) })
        };
        // SAFETY: `init` initializes every field of `Self` on success (the
        // other is a ZST) and leaves nothing to drop on failure.
        unsafe { pin_init_from_closure(init) }
    }

    /// Returns a raw pointer to the misc device.
    pub fn as_raw(&self) -> *mut bindings::miscdevice {
        self.inner.get()
    }
}

#[pinned_drop]
impl<T> PinnedDrop for MiscDeviceRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: registered by the type invariant.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// Trait implemented by the private data of an open misc device.
#[vtable]
pub trait MiscDevice: Sized + 'static {
    /// The module whose code serves the device's files: the VFS holds a
    /// reference on it while a file is open (this tree's deviation).
    type Owner: ModuleOwner;

    /// What kind of pointer should `Self` be wrapped in.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Called when the misc device is opened: creates the object of the
    /// new open file.
    ///
    /// # Errors
    ///
    /// Any error, which `open(2)` returns.
    fn open() -> Result<Self::Ptr>;

    /// Called when the misc device is released.
    fn release(device: Self::Ptr) {
        drop(device);
    }

    /// Handler for ioctls; returns the value the system call returns.
    ///
    /// The `cmd` argument is usually manipulated using the utilities in
    /// [`kernel::ioctl`].
    ///
    /// # Errors
    ///
    /// Any error, which `ioctl(2)` returns.
    ///
    /// [`kernel::ioctl`]: mod@crate::ioctl
    fn ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        crate::build_error(VTABLE_DEFAULT_ERROR)
    }
}

/// The file operations of misc device `T`.
struct VtableHelper<T: MiscDevice> {
    _t: PhantomData<T>,
}

impl<T: MiscDevice> VtableHelper<T> {
    /// `'static`, so that a file opened before the registration is dropped
    /// still finds them, and owned by `T::Owner`, so that the module stays
    /// while such a file is open.
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: T::Owner::THIS_MODULE.as_ptr(),
        open: Some(fops_open::<T>),
        release: Some(fops_release::<T>),
        unlocked_ioctl: if T::HAS_IOCTL {
            Some(fops_ioctl::<T>)
        } else {
            None
        },
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: if T::HAS_IOCTL {
            Some(bindings::compat_ptr_ioctl)
        } else {
            None
        },
        // SAFETY: all zeros is a valid `file_operations`: every other member
        // is a nullable function pointer or an integer.
        ..unsafe { core::mem::zeroed() }
    };
}

/// # Safety
///
/// `file` and `inode` must be the file and inode for a file that is
/// undergoing initialization; the file must be associated with a
/// `MiscDeviceRegistration<T>`.
unsafe extern "C" fn fops_open<T: MiscDevice>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    let ptr = match T::open() {
        Ok(ptr) => ptr,
        Err(err) => return err.to_errno(),
    };
    // SAFETY: the open call of a file owns the private data, and the file
    // is not shared yet.
    unsafe { (*file).private_data = ptr.into_foreign().cast_mut() };
    0
}

/// # Safety
///
/// `file` and `inode` must be the file and inode for a file that is being
/// released; the file must be associated with a `MiscDeviceRegistration<T>`.
unsafe extern "C" fn fops_release<T: MiscDevice>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: the release call of a file owns the private data, which
    // `fops_open` set; release runs once.
    let ptr = unsafe { T::Ptr::from_foreign((*file).private_data) };
    T::release(ptr);
    0
}

/// # Safety
///
/// `file` must be a valid file that is associated with a
/// `MiscDeviceRegistration<T>`.
unsafe extern "C" fn fops_ioctl<T: MiscDevice>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: the ioctl call of a file can access the private data, which
    // lives until release, which cannot run while the ioctl holds the file.
    let device = unsafe { T::Ptr::borrow((*file).private_data) };
    match T::ioctl(device, cmd, arg) {
        Ok(ret) => ret as c_long,
        Err(err) => err.to_errno() as c_long,
    }
}
