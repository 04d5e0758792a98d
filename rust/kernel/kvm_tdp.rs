// SPDX-License-Identifier: GPL-2.0

//! Exported KVM TDP page tables: the provider's and the importers' side.
//!
//! `KVM_CREATE_TDP_FD` exports the TDP (NPT/EPT) page table of a VM through a
//! file.  KVM owns the table and creates the file; what the file does (its
//! importers and the fan-out of KVM's reports to them) is up to the one
//! registered *provider*, which implements [`Provider`] and keeps a
//! [`Registration`] alive while it is loaded.  The provider also serves the C
//! interface of `include/linux/kvm_tdp_fd.h` to importers: its
//! `kvm_tdp_fd_get()` and `kvm_tdp_fd_put()` come from [`kvm_tdp_fd_c_abi!`],
//! and the `struct kvm_exported_tdp_ops` of each object dispatch to the
//! [`Provider`] methods.
//!
//! Importers written in Rust use [`importer`], which wraps that same C
//! interface in safe types.
//!
//! Every function here that calls into KVM or into the provider module is
//! generic or `#[inline]`: those symbols live in modules, so such calls must
//! be compiled into the calling module, not into `vmlinux`.
//!
//! C headers: [`include/linux/kvm_tdp_export.h`](srctree/include/linux/kvm_tdp_export.h),
//! [`include/linux/kvm_tdp_fd.h`](srctree/include/linux/kvm_tdp_fd.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{
        code::{EINVAL, EIO},
        to_result, Error, Result,
    },
    ffi::{c_int, c_uint, c_ulong, c_void},
    file::FileRef,
    sync::{Arc, ArcBorrow},
    types::Opaque,
    ThisModule,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    pin::Pin,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};

pub mod importer;

/// Report filter bit: the change concerns shared memory.
pub const FILTER_SHARED: u32 = bindings::KVM_TDP_EXPORT_SHARED;
/// Report filter bit: the change concerns private memory.
pub const FILTER_PRIVATE: u32 = bindings::KVM_TDP_EXPORT_PRIVATE;

/// Fault access bit: read.
pub const ACCESS_READ: u32 = bindings::KVM_TDP_ACCESS_READ;
/// Fault access bit: write.
pub const ACCESS_WRITE: u32 = bindings::KVM_TDP_ACCESS_WRITE;
/// Fault access bit: instruction fetch.
pub const ACCESS_EXEC: u32 = bindings::KVM_TDP_ACCESS_EXEC;

/// Number of levels the `rsvd_bits` tables of [`VendorMeta`] describe.
pub const MAX_LEVELS: usize = bindings::KVM_TDP_FD_MAX_LEVELS as usize;

/// The file operations of the registered provider's files, null if none.
///
/// KVM accepts one provider at a time, so one pointer tells a TDP FD from
/// any other file.
static PROVIDER_FOPS: AtomicPtr<bindings::file_operations> = AtomicPtr::new(ptr::null_mut());

/// The registered provider's [`Provider::Shared`] state, null if none.
static PROVIDER_SHARED: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

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

    /// Maps `gfn` into the exported table with at least the access `access`
    /// (a mask of `ACCESS_*`), with no vCPU; may sleep.
    ///
    /// `mm` must be the VM's and the current task's.  The errors are
    /// `kvm_tdp_export_fault()`'s.
    #[inline]
    pub fn fault(&self, mm: &Mm, gfn: u64, access: u32) -> Result {
        // SAFETY: the export is live by the type invariant; KVM only
        // compares `mm` with the VM's and the current task's.
        to_result(unsafe { bindings::kvm_tdp_export_fault(self.as_ptr(), mm.ptr, gfn, access) })
    }

    /// The format of the exported table and its root, in the layout of the
    /// platform's vendor.
    #[inline]
    pub fn metadata(&self) -> Result<VendorMeta> {
        let mut meta = bindings::kvm_tdp_export_meta::default();
        // SAFETY: the export is live by the type invariant and `meta` is a
        // valid place to fill in.
        unsafe { bindings::kvm_tdp_export_get_meta(self.as_ptr(), &mut meta) };
        VendorMeta::from_export(&meta)
    }
}

/// An address space (`struct mm_struct`), as an opaque token.
///
/// Only compared by KVM with the VM's address space; never dereferenced.
pub struct Mm {
    ptr: *mut bindings::mm_struct,
}

impl Mm {
    /// The current task's address space (none for a kernel thread).
    pub fn current() -> Self {
        // SAFETY: `current` is always a valid task, and reading its `mm`
        // pointer is how C code learns it too.
        let ptr = unsafe { (*bindings::get_current()).mm };
        Self { ptr }
    }

    fn from_raw(ptr: *mut bindings::mm_struct) -> Self {
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

/// The kind of an exported table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// AMD nested page table (x86-64 page table entries).
    Npt,
    /// Intel extended page table.
    Ept,
}

/// The format of an exported table, in the C layout importers receive
/// from `get_metadata` (`struct kvm_exported_tdp_meta_npt` or `_ept`).
#[derive(Clone, Copy)]
pub enum VendorMeta {
    /// An AMD nested page table.
    Npt(bindings::kvm_exported_tdp_meta_npt),
    /// An Intel extended page table.
    Ept(bindings::kvm_exported_tdp_meta_ept),
}

impl VendorMeta {
    /// Composes the vendor layout from what KVM reports.
    fn from_export(m: &bindings::kvm_tdp_export_meta) -> Result<Self> {
        let hdr = bindings::kvm_exported_tdp_meta {
            type_: m.type_,
            levels: m.levels,
            max_huge_page_level: m.max_huge_level,
            flags: 0,
            root_hpa: m.root_hpa,
            present_mask: m.present_mask,
            present_value: m.present_value,
            mmio_mask: m.mmio_mask,
            mmio_value: m.mmio_value,
        };
        // Same shape on both sides (a type error if the level counts of the
        // two headers ever differ).
        let rsvd = m.rsvd_bits;
        match m.type_ {
            bindings::KVM_TDP_TYPE_NPT => Ok(Self::Npt(bindings::kvm_exported_tdp_meta_npt {
                hdr,
                pfn_mask: m.pfn_mask,
                nx_mask: m.nx_mask,
                accessed_mask: m.accessed_mask,
                dirty_mask: m.dirty_mask,
                kvm_sw_mask: m.kvm_sw_mask,
                rsvd_bits_mask: rsvd,
            })),
            bindings::KVM_TDP_TYPE_EPT => Ok(Self::Ept(bindings::kvm_exported_tdp_meta_ept {
                hdr,
                pfn_mask: m.pfn_mask,
                exec_mask: m.exec_mask,
                accessed_mask: m.accessed_mask,
                dirty_mask: m.dirty_mask,
                kvm_sw_mask: m.kvm_sw_mask,
                rsvd_bits_mask: rsvd,
            })),
            _ => Err(EIO),
        }
    }

    /// Reads the layout behind a pointer `get_metadata` returned.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct kvm_exported_tdp_meta` that begins a
    /// complete vendor layout of its `type`.
    unsafe fn from_c(ptr: *const c_void) -> Result<Self> {
        // SAFETY: the caller guarantees a header is there.
        let hdr = unsafe { ptr.cast::<bindings::kvm_exported_tdp_meta>().read() };
        match hdr.type_ {
            // SAFETY: the header says which complete layout it begins.
            bindings::kvm_exported_tdp_type_KVM_TDP_FD_TYPE_NPT => Ok(Self::Npt(unsafe {
                ptr.cast::<bindings::kvm_exported_tdp_meta_npt>().read()
            })),
            // SAFETY: as above.
            bindings::kvm_exported_tdp_type_KVM_TDP_FD_TYPE_EPT => Ok(Self::Ept(unsafe {
                ptr.cast::<bindings::kvm_exported_tdp_meta_ept>().read()
            })),
            _ => Err(EIO),
        }
    }

    fn hdr(&self) -> &bindings::kvm_exported_tdp_meta {
        match self {
            Self::Npt(m) => &m.hdr,
            Self::Ept(m) => &m.hdr,
        }
    }

    /// A pointer to the C layout, as `get_metadata` returns it.
    fn as_c_ptr(&self) -> *mut c_void {
        match self {
            Self::Npt(m) => ptr::from_ref(m).cast_mut().cast(),
            Self::Ept(m) => ptr::from_ref(m).cast_mut().cast(),
        }
    }

    /// The table's format.
    pub fn kind(&self) -> TableKind {
        match self {
            Self::Npt(_) => TableKind::Npt,
            Self::Ept(_) => TableKind::Ept,
        }
    }

    /// The number of levels of the table.
    pub fn levels(&self) -> u32 {
        self.hdr().levels
    }

    /// The largest level with leaf entries (1: 4K, 2: 2M, 3: 1G).
    pub fn max_huge_level(&self) -> u32 {
        self.hdr().max_huge_page_level
    }

    /// The host physical address of the root table.
    pub fn root_hpa(&self) -> u64 {
        self.hdr().root_hpa
    }

    /// An entry is present for KVM iff `entry & present_mask() ==
    /// present_value()` (KVM's MMU-present bit, not the hardware's).
    pub fn present_mask(&self) -> u64 {
        self.hdr().present_mask
    }

    /// See [`VendorMeta::present_mask`].
    pub fn present_value(&self) -> u64 {
        self.hdr().present_value
    }

    /// KVM's MMIO entries are those with `entry & mmio_mask() ==
    /// mmio_value()`, if `mmio_value()` is not 0.
    pub fn mmio_mask(&self) -> u64 {
        self.hdr().mmio_mask
    }

    /// See [`VendorMeta::mmio_mask`].
    pub fn mmio_value(&self) -> u64 {
        self.hdr().mmio_value
    }

    /// The bits of an entry holding a physical address.
    pub fn pfn_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.pfn_mask,
            Self::Ept(m) => m.pfn_mask,
        }
    }

    /// The bits KVM keeps for itself in entries.
    pub fn kvm_sw_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.kvm_sw_mask,
            Self::Ept(m) => m.kvm_sw_mask,
        }
    }

    /// The Accessed bit (0 if not used).
    pub fn accessed_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.accessed_mask,
            Self::Ept(m) => m.accessed_mask,
        }
    }

    /// The Dirty bit (0 if not used).
    pub fn dirty_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.dirty_mask,
            Self::Ept(m) => m.dirty_mask,
        }
    }

    /// The no-execute bit (NPT) or 0 (EPT).
    pub fn nx_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.nx_mask,
            Self::Ept(_) => 0,
        }
    }

    /// The execute bits (EPT) or 0 (NPT).
    pub fn exec_mask(&self) -> u64 {
        match self {
            Self::Npt(_) => 0,
            Self::Ept(m) => m.exec_mask,
        }
    }

    /// The must-be-zero bits of a present entry: `[ps][level - 1]`, where
    /// `ps` is 1 for a leaf with the page-size bit set.
    pub fn rsvd_bits_table(&self) -> [[u64; MAX_LEVELS]; 2] {
        match self {
            Self::Npt(m) => m.rsvd_bits_mask,
            Self::Ept(m) => m.rsvd_bits_mask,
        }
    }
}

/// An importer registered on a TDP FD: its callback and its data.
///
/// Only one `ImporterRef` exists per registration: it is neither `Clone`
/// nor `Copy`, and [`Provider::unregister_importer`] hands it back.
///
/// # Invariants
///
/// Until the registration ends (`unregister_importer` for its key
/// returns), `invalidate` may be called with `data` from any context that
/// may not sleep, as `include/linux/kvm_tdp_fd.h` requires of importers.
pub struct ImporterRef {
    key: ImporterKey,
    invalidate: unsafe extern "C" fn(*mut c_void, c_ulong, c_ulong),
    data: *mut c_void,
}

// SAFETY: importers' callbacks may be called from any task, as the C
// interface documents.
unsafe impl Send for ImporterRef {}

// SAFETY: as above, also concurrently.
unsafe impl Sync for ImporterRef {}

impl ImporterRef {
    /// The key that identifies the registration: the importer's ops.
    pub fn key(&self) -> ImporterKey {
        self.key
    }

    /// Tells the importer that GPAs `[start, start + size)` were
    /// invalidated, `(0, u64::MAX)` meaning everything.
    pub fn invalidate(&self, start: u64, size: u64) {
        // SAFETY: by the type invariant the callback may be called with
        // `data`; `unsigned long` is 64 bits on the 64-bit architectures
        // KVM's TDP MMU runs on.
        unsafe { (self.invalidate)(self.data, start as c_ulong, size as c_ulong) }
    }
}

/// The identity of an importer: the address of its ops table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImporterKey(usize);

/// A provider of TDP FD objects.
///
/// The provider's object is reference counted: KVM holds one reference from
/// [`Provider::create`] until the export's file is released.
pub trait Provider: Send + Sync + Sized + 'static {
    /// State shared by all objects, given to [`Registration::new`].
    type Shared: Send + Sync + 'static;

    /// Creates the provider's object for a new export.  May sleep.
    fn create(shared: &Self::Shared, export: Export) -> Result<Arc<Self>>;

    /// Mappings of GFNs `[start, end)` of the exported table were removed or
    /// weakened; `(0, u64::MAX)` means the whole table.  `filter` is a mask
    /// of [`FILTER_SHARED`] and [`FILTER_PRIVATE`].
    ///
    /// Called with KVM's `mmu_lock` held: must not sleep or allocate with
    /// `GFP_KERNEL`.
    fn invalidate(this: ArcBorrow<'_, Self>, start: u64, end: u64, filter: u32);

    /// An importer registers (`register_importer`).  May sleep.
    fn register_importer(this: ArcBorrow<'_, Self>, importer: ImporterRef) -> Result;

    /// The importer with `key` unregisters (`unregister_importer`).
    ///
    /// Returns the importer's [`ImporterRef`], or `None` if it was not
    /// registered.  When this returns, no call of the importer's
    /// [`ImporterRef::invalidate`] may be running or start.
    fn unregister_importer(this: ArcBorrow<'_, Self>, key: ImporterKey) -> Option<ImporterRef>;

    /// An importer asks for `gfn` to be mapped with `access` (a non-empty
    /// mask of `ACCESS_*`) on behalf of `mm` (`fault`).  May sleep.
    fn fault(this: ArcBorrow<'_, Self>, mm: Mm, gfn: u64, access: u32) -> Result;

    /// The format of the exported table (`get_metadata`); it must live as
    /// long as the object.
    fn metadata(&self) -> Result<&VendorMeta>;
}

/// What KVM's `data` pointer of an export points to: the object importers
/// see, followed by the provider's object.
///
/// # Invariants
///
/// `c.ops` points to [`ExportedOps::<T>::OPS`]; `c.file` is null or the
/// export's file, and once set never changes.
#[repr(C)]
struct Node<T: Provider> {
    c: Opaque<bindings::kvm_tdp_fd>,
    provider: Arc<T>,
}

impl<T: Provider> Node<T> {
    /// The node of a `struct kvm_tdp_fd` the provider handed out.
    ///
    /// # Safety
    ///
    /// `tdp` must come from [`fd_get`] and its reference must be held.
    unsafe fn from_c<'a>(tdp: *mut bindings::kvm_tdp_fd) -> &'a Self {
        // SAFETY: `c` is the first member of the `repr(C)` node, and the
        // caller's file reference keeps the export, hence the node, alive.
        unsafe { &*tdp.cast::<Self>() }
    }
}

/// The `struct kvm_exported_tdp_ops` of provider `T`'s objects.
struct ExportedOps<T: Provider>(PhantomData<T>);

impl<T: Provider> ExportedOps<T> {
    const OPS: bindings::kvm_exported_tdp_ops = bindings::kvm_exported_tdp_ops {
        register_importer: Some(Self::register_importer),
        unregister_importer: Some(Self::unregister_importer),
        fault: Some(Self::fault),
        get_metadata: Some(Self::get_metadata),
    };

    /// # Safety
    ///
    /// `tdp` must be a referenced object of this provider; `ops` must stay
    /// valid, and callable with `data`, until it is unregistered.
    unsafe extern "C" fn register_importer(
        tdp: *mut bindings::kvm_tdp_fd,
        ops: *mut bindings::kvm_tdp_importer_ops,
        data: *mut c_void,
    ) -> c_int {
        if ops.is_null() {
            return EINVAL.to_errno();
        }
        // SAFETY: the caller guarantees `ops` is valid.
        let Some(invalidate) = (unsafe { (*ops).invalidate }) else {
            return EINVAL.to_errno();
        };
        // SAFETY: the caller holds a reference on `tdp`.
        let node = unsafe { Node::<T>::from_c(tdp) };
        // INVARIANT: the caller keeps `ops` and `data` usable until it
        // unregisters, which ends the registration.
        let importer = ImporterRef {
            key: ImporterKey(ops as usize),
            invalidate,
            data,
        };
        match T::register_importer(node.provider.as_arc_borrow(), importer) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `tdp` must be a referenced object of this provider.
    unsafe extern "C" fn unregister_importer(
        tdp: *mut bindings::kvm_tdp_fd,
        ops: *mut bindings::kvm_tdp_importer_ops,
    ) {
        // SAFETY: the caller holds a reference on `tdp`.
        let node = unsafe { Node::<T>::from_c(tdp) };
        // Dropping the importer's `ImporterRef` ends the registration.
        let _ = T::unregister_importer(node.provider.as_arc_borrow(), ImporterKey(ops as usize));
    }

    /// # Safety
    ///
    /// `tdp` must be a referenced object of this provider.
    unsafe extern "C" fn fault(
        tdp: *mut bindings::kvm_tdp_fd,
        mm: *mut bindings::mm_struct,
        gfn: c_ulong,
        ty: bindings::kvm_tdp_fault_type,
    ) -> c_int {
        // SAFETY: the caller holds a reference on `tdp`.
        let node = unsafe { Node::<T>::from_c(tdp) };
        let mut access = 0;
        if ty.read() != 0 {
            access |= ACCESS_READ;
        }
        if ty.write() != 0 {
            access |= ACCESS_WRITE;
        }
        if ty.exec() != 0 {
            access |= ACCESS_EXEC;
        }
        if access == 0 {
            return EINVAL.to_errno();
        }
        match T::fault(
            node.provider.as_arc_borrow(),
            Mm::from_raw(mm),
            gfn as u64,
            access,
        ) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `tdp` must be a referenced object of this provider.
    unsafe extern "C" fn get_metadata(tdp: *mut bindings::kvm_tdp_fd) -> *mut c_void {
        // SAFETY: the caller holds a reference on `tdp`.
        let node = unsafe { Node::<T>::from_c(tdp) };
        match node.provider.metadata() {
            // The layout lives in the provider's object, which the caller's
            // reference keeps alive.
            Ok(meta) => meta.as_c_ptr(),
            Err(e) => e.to_ptr(),
        }
    }
}

/// `kvm_tdp_fd_get()`; use [`kvm_tdp_fd_c_abi!`].
#[doc(hidden)]
#[inline]
pub fn fd_get(fd: c_int) -> *mut bindings::kvm_tdp_fd {
    match fd_get_inner(fd) {
        Ok(tdp) => tdp,
        Err(e) => e.to_ptr(),
    }
}

#[inline]
fn fd_get_inner(fd: c_int) -> Result<*mut bindings::kvm_tdp_fd> {
    let file = FileRef::fget(fd)?;
    if !file.has_fops(PROVIDER_FOPS.load(Ordering::Acquire)) {
        return Err(EINVAL);
    }
    let exp = file.private_data().cast::<bindings::kvm_tdp_export>();
    // SAFETY: a file with the provider's operations was created by KVM for
    // an export, with the export as private data; the export lives until
    // the file is released, which the reference held here prevents.
    let data = unsafe { bindings::kvm_tdp_export_data(exp) };
    // `data` is the node `Registration::create_callback` made, which
    // begins with the `struct kvm_tdp_fd`.
    let tdp = data.cast::<bindings::kvm_tdp_fd>();
    // SAFETY: `tdp` points to the live node's `c`; `file` is only ever
    // accessed through atomics by this module, and importers read it only
    // after this function returned the object to them.
    let file_slot = unsafe { AtomicPtr::from_ptr(ptr::addr_of_mut!((*tdp).file)) };
    // INVARIANT: set once, to the export's only file.
    let _ = file_slot.compare_exchange(
        ptr::null_mut(),
        file.as_ptr(),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    // The returned object owns the file reference until `fd_put`.
    let _ = file.into_raw();
    Ok(tdp)
}

/// `kvm_tdp_fd_put()`; use [`kvm_tdp_fd_c_abi!`].
///
/// # Safety
///
/// `tdp` must come from [`fd_get`], and be put once.
#[doc(hidden)]
#[inline]
pub unsafe fn fd_put(tdp: *mut bindings::kvm_tdp_fd) {
    if tdp.is_null() {
        return;
    }
    // SAFETY: `fd_get` set `file` before returning `tdp`, and the reference
    // it took is given back here, once.
    drop(unsafe { FileRef::from_raw((*tdp).file) });
}

/// Defines `kvm_tdp_fd_get()` and `kvm_tdp_fd_put()` of
/// `include/linux/kvm_tdp_fd.h` in the provider's module.
///
/// The provider's module exports them with `EXPORT_SYMBOL_GPL()` in a C
/// file of its own.
#[macro_export]
macro_rules! kvm_tdp_fd_c_abi {
    () => {
        /// Looks up the KVM TDP FD object of `fd` (see
        /// `include/linux/kvm_tdp_fd.h`).
        #[no_mangle]
        pub extern "C" fn kvm_tdp_fd_get(
            fd: $crate::ffi::c_int,
        ) -> *mut $crate::bindings::kvm_tdp_fd {
            $crate::kvm_tdp::fd_get(fd)
        }

        /// Drops a reference taken by `kvm_tdp_fd_get()`.
        ///
        /// # Safety
        ///
        /// `tdp` must come from `kvm_tdp_fd_get()` and be put once.
        #[no_mangle]
        pub unsafe extern "C" fn kvm_tdp_fd_put(tdp: *mut $crate::bindings::kvm_tdp_fd) {
            // SAFETY: the caller's contract is `fd_put`'s.
            unsafe { $crate::kvm_tdp::fd_put(tdp) }
        }
    };
}

/// The C structures KVM keeps pointers to while the provider is registered,
/// and the provider's shared state.
struct RegistrationData<S> {
    ops: Opaque<bindings::kvm_tdp_provider_ops>,
    fops: Opaque<bindings::file_operations>,
    shared: S,
    _pin: PhantomPinned,
}

/// The registration of `T` as KVM's TDP FD provider.
///
/// Registers on creation and unregisters when dropped.
///
/// # Invariants
///
/// `data.ops` and `data.fops` are initialized, and `data.ops` is registered
/// with KVM for the whole life of the object; [`PROVIDER_FOPS`] points to
/// `data.fops` and [`PROVIDER_SHARED`] to `data.shared` meanwhile.
pub struct Registration<T: Provider> {
    data: Pin<KBox<RegistrationData<T::Shared>>>,
    _provider: PhantomData<T>,
}

// SAFETY: The registration only holds pointers to structures KVM reads; it
// can be dropped (unregistered) from any thread.
unsafe impl<T: Provider> Send for Registration<T> {}

// SAFETY: No method takes `&self` and mutates anything.
unsafe impl<T: Provider> Sync for Registration<T> {}

impl<T: Provider> Registration<T> {
    /// Registers `T` as the provider; `module` owns the export files, and
    /// `shared` is handed to every [`Provider::create`].
    ///
    /// Fails with `EBUSY` if another provider is registered.
    pub fn new(module: &'static ThisModule, shared: T::Shared) -> Result<Self> {
        let data = KBox::pin(
            RegistrationData {
                ops: Opaque::uninit(),
                fops: Opaque::uninit(),
                shared,
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

        // Published before KVM can call `create_callback`.
        let shared = ptr::from_ref(&data.shared).cast_mut().cast::<c_void>();
        PROVIDER_SHARED.store(shared, Ordering::Release);
        // SAFETY: `ops` is initialized and stays valid and registered until
        // `drop` unregisters it.
        if let Err(e) = to_result(unsafe { bindings::kvm_tdp_register_provider(ops) }) {
            PROVIDER_SHARED.store(ptr::null_mut(), Ordering::Release);
            return Err(e);
        }
        PROVIDER_FOPS.store(fops, Ordering::Release);

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
        let shared = PROVIDER_SHARED.load(Ordering::Acquire).cast::<T::Shared>();
        if shared.is_null() {
            return EINVAL.to_ptr();
        }
        // SAFETY: KVM creates exports only with a reference on the
        // provider's module, whose `Registration` (which owns the shared
        // state) therefore lives; `T` is the one registered provider type.
        let shared = unsafe { &*shared };
        // INVARIANT: the caller guarantees the export is live.
        let provider = match T::create(shared, Export { ptr }) {
            Ok(provider) => provider,
            Err(e) => return e.to_ptr(),
        };
        // INVARIANT: `ops` is `ExportedOps::<T>::OPS`, `file` is set later.
        let node = Node {
            c: Opaque::new(bindings::kvm_tdp_fd {
                file: ptr::null_mut(),
                ops: &ExportedOps::<T>::OPS,
                priv_: ptr::null_mut(),
            }),
            provider,
        };
        match KBox::new(node, GFP_KERNEL) {
            Ok(node) => KBox::into_raw(node).cast(),
            Err(e) => Error::from(e).to_ptr(),
        }
    }

    /// Called by KVM to drop its reference, after the last invalidation.
    ///
    /// # Safety
    ///
    /// `data` must come from a successful `create_callback` and be destroyed
    /// only once.
    unsafe extern "C" fn destroy_callback(data: *mut c_void) {
        // SAFETY: `data` came from `KBox::into_raw` in `create_callback`,
        // and KVM gives it back exactly once, after its last use.
        drop(unsafe { KBox::from_raw(data.cast::<Node<T>>()) });
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
        // invalidation has returned, so the node is alive.
        let node = unsafe { &*data.cast::<Node<T>>() };
        T::invalidate(node.provider.as_arc_borrow(), start, end, filter);
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
        PROVIDER_FOPS.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: by the type invariant `ops` is registered.  No export can
        // be alive: each holds a reference on the provider's module.
        unsafe { bindings::kvm_tdp_unregister_provider(self.data.ops.get()) };
        PROVIDER_SHARED.store(ptr::null_mut(), Ordering::Release);
    }
}
