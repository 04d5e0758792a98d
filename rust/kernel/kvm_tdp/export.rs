// SPDX-License-Identifier: GPL-2.0

//! KVM's side of one export, and the address spaces its faults take.
//!
//! C header: [`include/linux/kvm_tdp_export.h`](srctree/include/linux/kvm_tdp_export.h)

use super::{meta::VendorMeta, ACCESS_ALL};
use crate::{
    bindings,
    error::{code::EINVAL, to_result, Result},
};
use core::ptr::NonNull;

/// One export of a VM's TDP page table (`struct kvm_tdp_export`).
///
/// Providers only ever borrow it, from the object that owns it (see
/// [`super::provider`]), so no reference to it outlives the export.
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
    /// Wraps the export KVM hands to a provider's `create`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to an export that stays live as long as the
    /// returned object.
    pub(crate) unsafe fn from_raw(ptr: NonNull<bindings::kvm_tdp_export>) -> Self {
        // INVARIANT: the caller guarantees the export is live.
        Self { ptr }
    }

    /// Maps `gfn` into the exported table with at least the access `access`
    /// (a non-empty mask of [`super::ACCESS_READ`], [`super::ACCESS_WRITE`]
    /// and [`super::ACCESS_EXEC`]), with no vCPU; may sleep.
    ///
    /// `mm` must be the VM's, and the current task's unless the current
    /// task is a kernel thread with no mm of its own (a workqueue worker
    /// faulting on the VM's behalf).
    ///
    /// # Errors
    ///
    /// `EINVAL` for an empty or unknown `access`, and otherwise those of
    /// `kvm_tdp_export_fault()` (see its kernel-doc): `EINVAL` (a GFN beyond
    /// the table's reach, `mm` not the current task's), `EPERM` (`mm` not
    /// the VM's, or a write-tracked GFN), `ESRCH`, `ENOENT` (no memslot),
    /// `EACCES` (a private GFN), `EROFS`, `ENXIO` (not ordinary RAM),
    /// `EOPNOTSUPP`, `EINTR`, `EHWPOISON`, `EFAULT`, `ENOMEM`.
    #[inline]
    pub fn fault(&self, mm: &Mm, gfn: u64, access: u32) -> Result {
        if access == 0 || access & !ACCESS_ALL != 0 {
            return Err(EINVAL);
        }
        // SAFETY: the export is live by the type invariant; KVM only
        // compares `mm` with the VM's and the current task's.
        to_result(unsafe { bindings::kvm_tdp_export_fault(self.ptr.as_ptr(), mm.ptr, gfn, access) })
    }

    /// The format of the exported table and its root, in the layout of the
    /// platform's vendor.
    ///
    /// # Errors
    ///
    /// `EIO` if KVM describes a table type this code does not know.
    #[inline]
    pub fn metadata(&self) -> Result<VendorMeta> {
        let mut meta = bindings::kvm_tdp_export_meta::default();
        // SAFETY: the export is live by the type invariant and `meta` is a
        // valid place to fill in.
        unsafe { bindings::kvm_tdp_export_get_meta(self.ptr.as_ptr(), &mut meta) };
        VendorMeta::from_export(&meta)
    }
}

/// An address space (`struct mm_struct`), as an opaque token.
///
/// Only compared by KVM with the VM's address space; never dereferenced.
pub struct Mm {
    pub(crate) ptr: *mut bindings::mm_struct,
}

impl Mm {
    /// The current task's address space (none for a kernel thread).
    pub fn current() -> Self {
        // SAFETY: `current` is always a valid task, and reading its `mm`
        // pointer is how C code learns it too.
        let ptr = unsafe { (*bindings::get_current()).mm };
        Self { ptr }
    }

    /// A token for `ptr`, which is never dereferenced.
    pub(crate) fn from_raw(ptr: *mut bindings::mm_struct) -> Self {
        Self { ptr }
    }
}

/// A reference on an address space's `struct mm_struct` (`mmgrab()`): it
/// keeps the structure, not the mappings, alive.  What an importer keeps to
/// fault on behalf of the VM's process from a kernel thread with no mm,
/// e.g. a workqueue worker.
///
/// # Invariants
///
/// `ptr` is a valid `mm_struct` on which this object holds an `mm_count`
/// reference.
pub struct MmGrab {
    ptr: NonNull<bindings::mm_struct>,
}

// SAFETY: `mm_count` is an atomic reference count: the reference may be
// dropped from any task.
unsafe impl Send for MmGrab {}

// SAFETY: the object offers no mutation through `&self`.
unsafe impl Sync for MmGrab {}

impl MmGrab {
    /// A reference on the current task's address space; `None` for a
    /// kernel thread, which has none.
    pub fn current() -> Option<Self> {
        let ptr = NonNull::new(Mm::current().ptr)?;
        // SAFETY: the current task's `mm` is live while the task runs.
        unsafe { bindings::mmgrab(ptr.as_ptr()) };
        // INVARIANT: the reference was just taken.
        Some(Self { ptr })
    }

    /// The address space, as KVM's faults take it.
    pub fn mm(&self) -> Mm {
        Mm::from_raw(self.ptr.as_ptr())
    }
}

impl Clone for MmGrab {
    /// Another reference on the same address space.
    fn clone(&self) -> Self {
        // SAFETY: this object holds a reference by the type invariant, so
        // the `mm_struct` is live.
        unsafe { bindings::mmgrab(self.ptr.as_ptr()) };
        // INVARIANT: the reference was just taken.
        Self { ptr: self.ptr }
    }
}

impl Drop for MmGrab {
    fn drop(&mut self) {
        // SAFETY: this object holds a reference by the type invariant.
        unsafe { bindings::mmdrop(self.ptr.as_ptr()) };
    }
}
