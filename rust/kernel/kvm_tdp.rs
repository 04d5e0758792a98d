// SPDX-License-Identifier: GPL-2.0

//! Providers of exported KVM TDP page tables.
//!
//! `KVM_CREATE_TDP_FD` exports the TDP (NPT/EPT) page table of a VM through a
//! file.  KVM owns the table and creates the file; what the file does (its
//! importers and the fan-out of KVM's reports to them) is up to the one
//! registered *provider*.  A provider implements [`Provider`] and keeps a
//! [`Registration`] alive while it is loaded.
//!
//! Every function here that calls into KVM is generic or `#[inline]`: KVM's
//! symbols live in `kvm.ko`, so such calls must be compiled into the
//! provider's module, not into `vmlinux`.
//!
//! C header: [`include/linux/kvm_tdp_export.h`](srctree/include/linux/kvm_tdp_export.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{code::EINVAL, to_result, Result},
    ffi::{c_int, c_uint, c_void},
    sync::{Arc, ArcBorrow},
    types::{ForeignOwnable, Opaque},
    ThisModule,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    pin::Pin,
    ptr::NonNull,
};

/// Report filter bit: the change concerns shared memory.
pub const FILTER_SHARED: u32 = bindings::KVM_TDP_EXPORT_SHARED;
/// Report filter bit: the change concerns private memory.
pub const FILTER_PRIVATE: u32 = bindings::KVM_TDP_EXPORT_PRIVATE;

/// One export of a VM's TDP page table (`struct kvm_tdp_export`).
///
/// Handed to [`Provider::create`]; valid until the export's file is
/// released, which outlives the provider object's use of it.
///
/// # Invariants
///
/// `ptr` points to a live `struct kvm_tdp_export`.
pub struct Export {
    ptr: NonNull<bindings::kvm_tdp_export>,
}

// SAFETY: KVM's export functions may be called from any thread; the export
// serializes what needs serializing (faults, reports) internally.
unsafe impl Send for Export {}

// SAFETY: As above, shared references may be used from any thread.
unsafe impl Sync for Export {}

impl Export {
    /// The raw `struct kvm_tdp_export` pointer, for comparisons and logging.
    pub fn as_ptr(&self) -> *mut bindings::kvm_tdp_export {
        self.ptr.as_ptr()
    }
}

/// A provider of TDP FD objects.
///
/// The provider's object is reference counted: KVM holds one reference from
/// [`Provider::create`] until the export's file is released.
pub trait Provider: Send + Sync + Sized + 'static {
    /// Creates the provider's object for a new export.  May sleep.
    fn create(export: Export) -> Result<Arc<Self>>;

    /// Mappings of GFNs `[start, end)` of the exported table were removed or
    /// weakened; `(0, u64::MAX)` means the whole table.  `filter` is a mask
    /// of [`FILTER_SHARED`] and [`FILTER_PRIVATE`].
    ///
    /// Called with KVM's `mmu_lock` held: must not sleep or allocate with
    /// `GFP_KERNEL`.
    fn invalidate(this: ArcBorrow<'_, Self>, start: u64, end: u64, filter: u32);
}

/// The C structures KVM keeps pointers to while the provider is registered.
struct RegistrationData {
    ops: Opaque<bindings::kvm_tdp_provider_ops>,
    fops: Opaque<bindings::file_operations>,
    _pin: PhantomPinned,
}

/// The registration of `T` as KVM's TDP FD provider.
///
/// Registers on creation and unregisters when dropped.
///
/// # Invariants
///
/// `data.ops` and `data.fops` are initialized, and `data.ops` is registered
/// with KVM for the whole life of the object.
pub struct Registration<T: Provider> {
    data: Pin<KBox<RegistrationData>>,
    _provider: PhantomData<T>,
}

// SAFETY: The registration only holds pointers to structures KVM reads; it
// can be dropped (unregistered) from any thread.
unsafe impl<T: Provider> Send for Registration<T> {}

// SAFETY: No method takes `&self` and mutates anything.
unsafe impl<T: Provider> Sync for Registration<T> {}

impl<T: Provider> Registration<T> {
    /// Registers `T` as the provider; `module` owns the export files.
    ///
    /// Fails with `EBUSY` if another provider is registered.
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        let data = KBox::pin(
            RegistrationData {
                ops: Opaque::uninit(),
                fops: Opaque::uninit(),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        let fops = data.fops.get();
        let ops = data.ops.get();

        // SAFETY: `fops` and `ops` point into `data`, which is pinned and
        // owned here; writing whole values initializes them.  An all-zero
        // `file_operations` is valid: every member is a nullable pointer or
        // an integer.
        unsafe {
            fops.write(bindings::file_operations {
                owner: module.as_ptr(),
                release: Some(Self::release_callback),
                ..core::mem::zeroed()
            });
            ops.write(bindings::kvm_tdp_provider_ops {
                owner: module.as_ptr(),
                fops,
                create: Some(Self::create_callback),
                destroy: Some(Self::destroy_callback),
                invalidate: Some(Self::invalidate_callback),
            });
        }

        // SAFETY: `ops` is initialized and stays valid and registered until
        // `drop` unregisters it.
        to_result(unsafe { bindings::kvm_tdp_register_provider(ops) })?;

        // INVARIANT: initialized and registered just above.
        Ok(Self {
            data,
            _provider: PhantomData,
        })
    }

    /// Called by KVM for a new export.
    ///
    /// # Safety
    ///
    /// `exp` must be a live export, which stays valid until the release of
    /// its file.
    unsafe extern "C" fn create_callback(exp: *mut bindings::kvm_tdp_export) -> *mut c_void {
        let Some(ptr) = NonNull::new(exp) else {
            return EINVAL.to_ptr();
        };
        // INVARIANT: the caller guarantees the export is live.
        match T::create(Export { ptr }) {
            Ok(this) => this.into_foreign().cast_mut(),
            Err(e) => e.to_ptr(),
        }
    }

    /// Called by KVM to drop its reference, after the last invalidation.
    ///
    /// # Safety
    ///
    /// `data` must come from a successful `create_callback` and be destroyed
    /// only once.
    unsafe extern "C" fn destroy_callback(data: *mut c_void) {
        // SAFETY: `data` came from `into_foreign` in `create_callback`, and
        // KVM gives its reference back exactly once.
        drop(unsafe { Arc::<T>::from_foreign(data) });
    }

    /// Called by KVM, under its `mmu_lock`, with a report.
    ///
    /// # Safety
    ///
    /// `data` must come from `create_callback` and not be destroyed yet.
    unsafe extern "C" fn invalidate_callback(
        data: *mut c_void,
        start: u64,
        end: u64,
        filter: c_uint,
    ) {
        // SAFETY: KVM calls `destroy_callback` only after the last
        // invalidation has returned, so KVM's reference is still held.
        let this = unsafe { Arc::<T>::borrow(data) };
        T::invalidate(this, start, end, filter);
    }

    /// The release of an export's file: ends the export.
    ///
    /// # Safety
    ///
    /// `file` must be an export file created by KVM with these operations.
    unsafe extern "C" fn release_callback(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `file` is valid during its release, and KVM set its
        // private data to the export when it created the file.
        let exp = unsafe { (*file).private_data }.cast::<bindings::kvm_tdp_export>();
        // SAFETY: the file's release is the one place that ends the export,
        // and it runs exactly once.  `fops.owner` keeps this module loaded
        // until this function has returned.
        unsafe { bindings::kvm_tdp_export_release(exp) };
        0
    }
}

impl<T: Provider> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant `ops` is registered.  No export can
        // be alive: each holds a reference on the provider's module.
        unsafe { bindings::kvm_tdp_unregister_provider(self.data.ops.get()) };
    }
}
