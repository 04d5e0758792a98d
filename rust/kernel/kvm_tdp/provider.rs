// SPDX-License-Identifier: GPL-2.0

//! The provider's side: the objects behind `KVM_CREATE_TDP_FD` files.
//!
//! KVM creates the export and its file; the one registered provider makes
//! the object behind it, a `struct kvm_tdp_fd` that importers reach with
//! `kvm_tdp_fd_get()` and whose ops register importers, fault GFNs in and
//! describe the table.  This file owns everything memory safety depends
//! on: the object and KVM's export in it, the importers registered on it,
//! the lock that orders their registration against KVM's reports, and the
//! fan-out of the reports: every report reaches every importer, unless it
//! concerns private memory only, which the exported table never maps.  A
//! provider only hears of what happens through [`Provider`] (to count it,
//! say) and nothing it does there can break that: the trait is safe to
//! implement.
//!
//! # Locking
//!
//! The importers of an object live in a fixed-capacity registry behind a
//! spinlock.  KVM's reports arrive with `kvm->mmu_lock` and the export's
//! report lock held; the fan-out takes the registry lock and calls each
//! importer's `invalidate` with it held.  `register_importer` and
//! `unregister_importer` take the same lock, so a report reaches exactly
//! the importers registered when it is passed on, and once
//! `unregister_importer` returns, no callback of that importer runs or can
//! start.  Lock order: `kvm->mmu_lock` -> export report lock -> registry ->
//! the importers' own locks.  Nothing under the registry lock sleeps or
//! allocates; faults do not take it.
//!
//! C header: [`include/linux/kvm_tdp_export.h`](srctree/include/linux/kvm_tdp_export.h)

use super::{
    export::{Export, Mm},
    meta::{CMeta, VendorMeta},
    range::GpaRange,
    registry::{Registry, RegistryError},
    ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE, FILTER_ALL, FILTER_PRIVATE,
};
use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{
        code::{EBADF, EBUSY, EINVAL, ENOENT, ENOSPC},
        to_result, Error, Result,
    },
    ffi::{c_int, c_uint, c_ulong, c_void},
    fs::file::File,
    init::{InPlaceInit, PinInit},
    new_spinlock, pin_init,
    prelude::pin_data,
    sync::SpinLock,
    types::{ARef, Opaque},
    ModuleOwner,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    pin::Pin,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};

/// One of KVM's reports, as [`Provider::reported`] hears of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// First GFN of the change.
    pub start: u64,
    /// GFN after its last; `(0, u64::MAX)` is the whole table.
    pub end: u64,
    /// The kinds of memory it concerns: a mask of
    /// [`super::FILTER_SHARED`] and [`super::FILTER_PRIVATE`].
    pub filter: u32,
    /// The GPA range the importers were told; `None` if they were not:
    /// an empty range, or one of private memory only, which the exported
    /// table (a view of shared memory, `KVM_TDP_FD_MODE_SHARED`) never
    /// maps.
    pub range: Option<GpaRange>,
}

impl Report {
    /// The report of GFNs `[start, end)` with `filter`, and what importers
    /// must be told of it.
    ///
    /// Inline: it runs for every report, and called out of line it
    /// returns the report through memory (see `make bench-trace`).
    #[inline]
    fn new(start: u64, end: u64, filter: u32) -> Self {
        let private_only = filter & FILTER_ALL == FILTER_PRIVATE;
        let range = if private_only {
            None
        } else {
            GpaRange::from_gfns(start, end)
        };
        Self {
            start,
            end,
            filter,
            range,
        }
    }
}

/// An importer operation, as [`Provider::importer_op`] hears of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImporterOp {
    /// `register_importer`.
    Register,
    /// `unregister_importer`.
    Unregister,
}

/// A provider of TDP FD objects: what the objects this file makes add.
///
/// Safe to implement: the object, its importers, their locking and which
/// reports reach them belong to this file (see the [module
/// documentation](self)), so no method here can make them unsound; the
/// provider hears of what happens and may fail creation and faults.  Methods marked "atomic" run under a spinlock or
/// `kvm->mmu_lock`: they must not sleep or allocate with `GFP_KERNEL`.
pub trait Provider: Send + Sync + Sized + 'static {
    /// The module the provider is part of: KVM holds a reference on it while
    /// one of its exports lives, and `kvm_tdp_fd_get()` (from
    /// [`kvm_tdp_fd_c_abi!`]) finds only this module's exports.
    type Owner: ModuleOwner;

    /// State shared by all objects, given to [`Registration::new`].
    type Shared: Send + Sync + 'static;

    /// Creates the provider's part of the object for a new export.  May
    /// sleep; called with KVM's provider rwsem (read), `kvm->slots_lock`
    /// and the VM's export lock held, so it must not register or drop a
    /// [`Registration`] (which deadlocks).
    ///
    /// # Errors
    ///
    /// Any error, which `KVM_CREATE_TDP_FD` returns.
    fn create(shared: &Self::Shared, export: &Export) -> Result<Self>;

    /// A report of KVM's was handled: passed on to `importers` importers as
    /// `report.range`, or to none.  Atomic.
    fn reported(&self, _report: &Report, _importers: usize) {}

    /// An importer operation ended with `result`; `importers` are
    /// registered now.  Atomic.
    fn importer_op(&self, _op: ImporterOp, _result: Result, _importers: usize) {}

    /// An importer asks for `gfn` to be mapped with `access` on behalf of
    /// `mm`; the default passes the fault on to KVM.  May sleep.
    ///
    /// # Errors
    ///
    /// Those of [`Export::fault`].
    fn fault(&self, export: &Export, mm: &Mm, gfn: u64, access: u32) -> Result {
        export.fault(mm, gfn, access)
    }
}

/// An importer's registration: its callback and its data.
///
/// # Invariants
///
/// Until its registration ends (`unregister_importer` for its ops returns),
/// `invalidate` may be called with `data` from any context that may not
/// sleep, as `include/linux/kvm_tdp_fd.h` requires of importers.
struct ImporterEntry {
    invalidate: unsafe extern "C" fn(*mut c_void, c_ulong, c_ulong),
    data: *mut c_void,
}

// SAFETY: importers' callbacks may be called from any task, as the C
// interface documents.
unsafe impl Send for ImporterEntry {}

impl ImporterEntry {
    /// Tells the importer that GPAs `[start, start + size)` were
    /// invalidated, `(0, u64::MAX)` meaning everything.
    fn invalidate(&self, start: u64, size: u64) {
        // SAFETY: by the type invariant the callback may be called with
        // `data`, which the registry holds only while registered;
        // `unsigned long` is 64 bits on the 64-bit architectures KVM's TDP
        // MMU runs on.
        unsafe { (self.invalidate)(self.data, start as c_ulong, size as c_ulong) }
    }
}

/// The identity of an importer's registration: the address of its ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ImporterKey(usize);

/// The object of one export: what KVM's `data` pointer and importers'
/// `struct kvm_tdp_fd *` point to.
///
/// # Invariants
///
/// `c.ops` points to [`ExportedOps::<T>::OPS`]; `c.file` is null or the
/// export's file, and once set never changes.  `export` is live as long as
/// the node, which KVM destroys before it frees the export.
#[repr(C)]
#[pin_data]
struct Node<T: Provider> {
    /// First: a `struct kvm_tdp_fd *` is a pointer to the node.
    c: Opaque<bindings::kvm_tdp_fd>,
    export: Export,
    /// What `get_metadata` points importers to; never written after
    /// creation.
    meta: Opaque<CMeta>,
    #[pin]
    importers: SpinLock<Registry<ImporterKey, ImporterEntry>>,
    provider: T,
}

impl<T: Provider> Node<T> {
    /// The node of a `struct kvm_tdp_fd` this provider handed out.
    ///
    /// # Safety
    ///
    /// `tdp` must be an object of provider `T` on which the caller holds a
    /// reference, as the C interface requires of its callers.
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

    fn errno(e: RegistryError) -> Error {
        match e {
            RegistryError::Busy => EBUSY,
            RegistryError::Full => ENOSPC,
            RegistryError::NotFound => ENOENT,
        }
    }

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
        // unregisters, which takes the entry out of the registry.
        let entry = ImporterEntry { invalidate, data };
        let mut importers = node.importers.lock();
        let result = importers
            .register(ImporterKey(ops as usize), entry)
            .map_err(Self::errno);
        node.provider
            .importer_op(ImporterOp::Register, result, importers.len());
        match result {
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
        let mut importers = node.importers.lock();
        // Once the entry is out and the lock dropped, no report can reach
        // the importer: see "Locking".
        let result = importers.unregister(ImporterKey(ops as usize));
        node.provider.importer_op(
            ImporterOp::Unregister,
            result.as_ref().map(|_| ()).map_err(|e| Self::errno(*e)),
            importers.len(),
        );
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
        let mm = Mm::from_raw(mm);
        match node.provider.fault(&node.export, &mm, gfn as u64, access) {
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
        // The layout lives in the node, which the caller's reference keeps
        // alive; it is `Opaque`, so C may hold a mutable pointer to it.
        node.meta.get().cast()
    }
}

/// `kvm_tdp_fd_get()` for the exports of provider `T`'s module; use
/// [`kvm_tdp_fd_c_abi!`].
#[doc(hidden)]
#[inline]
pub fn fd_get<T: Provider>(fd: c_int) -> *mut bindings::kvm_tdp_fd {
    match fd_get_inner::<T>(fd) {
        Ok(tdp) => tdp,
        Err(e) => e.to_ptr(),
    }
}

#[inline]
fn fd_get_inner<T: Provider>(fd: c_int) -> Result<*mut bindings::kvm_tdp_fd> {
    let file = File::fget(u32::try_from(fd).map_err(|_| EBADF)?)?;
    let owner = <T::Owner as ModuleOwner>::THIS_MODULE.as_ptr();
    // SAFETY: the caller holds a reference on `file`; KVM reads its
    // operations and, for a TDP FD, its private data.
    let exp = unsafe { bindings::kvm_tdp_export_from_file(file.as_ptr(), owner) };
    if exp.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: the export lives until its file is released, which the
    // reference held here prevents.
    let data = unsafe { bindings::kvm_tdp_export_data(exp) };
    // `data` is the node some `Registration` of this module made: nothing
    // else creates exports with this module as their owner.  Every node
    // begins with its `struct kvm_tdp_fd`, whatever its provider type.
    let tdp = data.cast::<bindings::kvm_tdp_fd>();
    // SAFETY: `tdp` points to the live node's `c`; `file` is only ever
    // written through atomics by this function, and importers read it only
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
    let _ = ARef::into_raw(file);
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
    let file = unsafe { (*tdp).file };
    if let Some(file) = NonNull::new(file) {
        // SAFETY: as above; `File` wraps `struct file` transparently.
        drop(unsafe { ARef::<File>::from_raw(file.cast()) });
    }
}

/// Defines `kvm_tdp_fd_get()` and `kvm_tdp_fd_put()` of
/// `include/linux/kvm_tdp_fd.h` in the module of provider `$provider`.
///
/// The provider's module exports them with `EXPORT_SYMBOL_GPL()` in a C
/// file of its own.
#[macro_export]
macro_rules! kvm_tdp_fd_c_abi {
    ($provider:ty) => {
        /// Looks up the KVM TDP FD object of `fd` (see
        /// `include/linux/kvm_tdp_fd.h`).
        #[no_mangle]
        pub extern "C" fn kvm_tdp_fd_get(
            fd: $crate::ffi::c_int,
        ) -> *mut $crate::bindings::kvm_tdp_fd {
            $crate::kvm_tdp::provider::fd_get::<$provider>(fd)
        }

        /// Drops a reference taken by `kvm_tdp_fd_get()`.
        ///
        /// # Safety
        ///
        /// `tdp` must come from `kvm_tdp_fd_get()` and be put once.
        #[no_mangle]
        pub unsafe extern "C" fn kvm_tdp_fd_put(tdp: *mut $crate::bindings::kvm_tdp_fd) {
            // SAFETY: the caller's contract is `fd_put`'s.
            unsafe { $crate::kvm_tdp::provider::fd_put(tdp) }
        }
    };
}

/// The `struct kvm_tdp_provider_ops` of provider `T`: a `'static` table
/// that exports keep using after the registration is gone.
struct ProviderOps<T: Provider>(PhantomData<T>);

impl<T: Provider> ProviderOps<T> {
    const OPS: bindings::kvm_tdp_provider_ops = bindings::kvm_tdp_provider_ops {
        owner: <T::Owner as ModuleOwner>::THIS_MODULE.as_ptr(),
        create: Some(Self::create),
        destroy: Some(Self::destroy),
        invalidate: Some(Self::invalidate),
    };

    /// Called by KVM for a new export.
    ///
    /// # Safety
    ///
    /// `provider` must be the `c` of a registered [`RegistrationData<T>`],
    /// which KVM guarantees until the registration's unregister returns;
    /// `exp` must be a live export, which stays valid until `destroy`.
    unsafe extern "C" fn create(
        provider: *mut bindings::kvm_tdp_provider,
        exp: *mut bindings::kvm_tdp_export,
    ) -> *mut c_void {
        let Some(exp) = NonNull::new(exp) else {
            return EINVAL.to_ptr();
        };
        // SAFETY: `provider` is the `c` of a live `RegistrationData<T>`
        // (KVM holds off its unregistration while this runs), so the
        // containing object is live and initialized.
        let data = unsafe { &*crate::container_of!(provider, RegistrationData<T>, c) };
        // SAFETY: the export lives until `destroy`, which drops the node
        // that owns this object.
        let export = unsafe { Export::from_raw(exp) };
        match Self::new_node(&data.shared, export) {
            // The node is never moved again: `destroy` takes it back into
            // a `Pin<KBox>`.
            Ok(node) => {
                // SAFETY: the pointer goes back to `Pin<KBox>` in
                // `destroy`, and nothing moves the node meanwhile.
                KBox::into_raw(unsafe { Pin::into_inner_unchecked(node) }).cast()
            }
            Err(e) => e.to_ptr(),
        }
    }

    fn new_node(shared: &T::Shared, export: Export) -> Result<Pin<KBox<Node<T>>>> {
        let meta = export.metadata()?;
        let provider = T::create(shared, &export)?;
        KBox::pin_init(Self::node_init(export, meta, provider), GFP_KERNEL)
    }

    fn node_init(export: Export, meta: VendorMeta, provider: T) -> impl PinInit<Node<T>> {
        // INVARIANT: `ops` is `ExportedOps::<T>::OPS`, `file` is set later.
        pin_init!(Node::<T> {
            c: Opaque::new(bindings::kvm_tdp_fd {
                file: ptr::null_mut(),
                ops: &ExportedOps::<T>::OPS,
                priv_: ptr::null_mut(),
            }),
            export,
            meta: Opaque::new(meta.to_c()),
            importers <- new_spinlock!(Registry::new(), "kvm_tdp::Node::importers"),
            provider,
        })
    }

    /// Called by KVM to drop its reference, after the last invalidation.
    ///
    /// # Safety
    ///
    /// `data` must come from a successful `create` and be destroyed only
    /// once.
    unsafe extern "C" fn destroy(data: *mut c_void) {
        // SAFETY: `data` came from `KBox::into_raw` of a pinned box in
        // `create`, and KVM gives it back exactly once, after its last use
        // and after the export's file, hence every importer's reference,
        // is gone.
        drop(unsafe { Pin::new_unchecked(KBox::from_raw(data.cast::<Node<T>>())) });
    }

    /// Called by KVM, under its `mmu_lock`, with a report.
    ///
    /// # Safety
    ///
    /// `data` must come from `create` and not be destroyed yet.
    unsafe extern "C" fn invalidate(data: *mut c_void, start: u64, end: u64, filter: c_uint) {
        // SAFETY: KVM calls `destroy` only after the last invalidation has
        // returned, so the node is alive.
        let node = unsafe { &*data.cast::<Node<T>>() };
        let report = Report::new(start, end, filter);
        let Some(range) = report.range else {
            node.provider.reported(&report, 0);
            return;
        };
        let importers = node.importers.lock();
        for (_, importer) in importers.iter() {
            importer.invalidate(range.start, range.size);
        }
        node.provider.reported(&report, importers.len());
    }
}

/// What KVM keeps a pointer to while the provider is registered.
///
/// # Invariants
///
/// `c.ops` points to [`ProviderOps::<T>::OPS`].
struct RegistrationData<T: Provider> {
    c: Opaque<bindings::kvm_tdp_provider>,
    shared: T::Shared,
    _pin: PhantomPinned,
}

/// The registration of `T` as KVM's TDP FD provider: registers on
/// creation, unregisters when dropped.
///
/// The exports made meanwhile outlive it: they hold a reference on
/// `T::Owner` and use only the provider's `'static` ops.
///
/// # Invariants
///
/// `data.c` is registered with KVM for the whole life of the object.
pub struct Registration<T: Provider> {
    data: Pin<KBox<RegistrationData<T>>>,
}

// SAFETY: the registration only holds what KVM reads and the shared state,
// which is `Send`; it can be dropped (unregistered) from any task.
unsafe impl<T: Provider> Send for Registration<T> {}

// SAFETY: no method takes `&self`; the shared state is `Sync`.
unsafe impl<T: Provider> Sync for Registration<T> {}

impl<T: Provider> Registration<T> {
    /// Registers `T` as the provider; `shared` is handed to every
    /// [`Provider::create`].
    ///
    /// # Errors
    ///
    /// `ENOMEM`, or `EBUSY` if another provider is registered.
    pub fn new(shared: T::Shared) -> Result<Self> {
        let data = KBox::pin(
            RegistrationData {
                c: Opaque::new(bindings::kvm_tdp_provider {
                    ops: &ProviderOps::<T>::OPS,
                }),
                shared,
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `c` is initialized and pinned, and stays registered until
        // `drop` unregisters it, before `data` is freed.
        to_result(unsafe { bindings::kvm_tdp_register_provider(data.c.get()) })?;
        // INVARIANT: registered just above.
        Ok(Self { data })
    }
}

impl<T: Provider> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered by the type invariant.  When this returns no
        // `create` of this registration runs or will start, so `data` may
        // be freed.
        unsafe { bindings::kvm_tdp_unregister_provider(self.data.c.get()) };
    }
}
