// SPDX-License-Identifier: GPL-2.0

//! The importer's side of a KVM TDP FD, in safe Rust.
//!
//! An importer looks a TDP FD up with [`TdpFdRef::get`], reads the table's
//! format with [`TdpFdRef::metadata`], asks for mappings with
//! [`TdpFdRef::fault`] and attaches an [`Importer`] with
//! [`TdpFdRef::attach`]; dropping the returned [`Attachment`] unregisters it
//! and drops the reference.  It goes through the C interface of
//! `include/linux/kvm_tdp_fd.h`, the same one C importers use.
//!
//! The attachment reads the table itself with [`Attachment::reader`]: see
//! [`super::reader`] for how that stays sound while KVM changes the table.

use super::{
    history::History,
    reader::{Format, TableReader},
    Mm, MmGrab, VendorMeta, ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE,
};
use crate::{
    alloc::{flags::GFP_KERNEL, KBox},
    bindings,
    error::{
        code::{EBUSY, EINTR, EINVAL},
        from_err_ptr, to_result, Result,
    },
    ffi::{c_int, c_ulong, c_void},
    fs::file::File,
    new_condvar, new_mutex, new_spinlock, new_work,
    prelude::*,
    sync::{Arc, CondVar, Mutex, SpinLock},
    types::{ARef, Opaque},
    workqueue::{self, Work, WorkItem},
};
use core::{marker::PhantomData, ops::Deref, pin::Pin, ptr::NonNull};

fn fault_type(access: u32) -> bindings::kvm_tdp_fault_type {
    let mut ty = bindings::kvm_tdp_fault_type::default();
    ty.set_read(u32::from(access & ACCESS_READ != 0));
    ty.set_write(u32::from(access & ACCESS_WRITE != 0));
    ty.set_exec(u32::from(access & ACCESS_EXEC != 0));
    ty
}

/// A TDP FD object kept alive by a reference on its file, taken and dropped
/// as any file's, not with the provider's `kvm_tdp_fd_put()`, which code
/// built into the kernel (such as [`WqFault`]'s drop) cannot link against.
///
/// # Invariants
///
/// `ptr` is the object whose file `_file` is: the reference keeps it live.
struct FileRef {
    ptr: NonNull<bindings::kvm_tdp_fd>,
    _file: ARef<File>,
}

// SAFETY: the file reference may be dropped from any task; the pointer is
// only passed to the object's fault op, which any task may call.
unsafe impl Send for FileRef {}

// SAFETY: as above; nothing is mutated through `&self`.
unsafe impl Sync for FileRef {}

impl FileRef {
    fn new(fd: &TdpFdRef) -> Self {
        // SAFETY: `fd` is referenced by its type invariant: `kvm_tdp_fd_get()`
        // set the object's `file` before returning it, never changes it, and
        // holds a reference on it while `fd` lives.
        let file = unsafe { File::from_raw_file((*fd.ptr.as_ptr()).file) };
        // INVARIANT: another reference on that file keeps the object alive
        // just as the one `kvm_tdp_fd_get()` returns does.
        Self {
            ptr: fd.ptr,
            _file: file.into(),
        }
    }
}

/// A fault made from the system workqueue for [`TdpFdRef::fault_from_workqueue`].
///
/// # Invariants
///
/// Until `result` is set, the task that queued the item holds a reference
/// on `tdp` and an `mm_count` reference on `mm`, and waits.
#[pin_data]
struct WqFault {
    #[pin]
    work: Work<WqFault>,
    fault: unsafe extern "C" fn(
        *mut bindings::kvm_tdp_fd,
        *mut bindings::mm_struct,
        c_ulong,
        bindings::kvm_tdp_fault_type,
    ) -> c_int,
    tdp: FileRef,
    mm: MmGrab,
    gfn: c_ulong,
    ty: bindings::kvm_tdp_fault_type,
    #[pin]
    result: Mutex<Option<c_int>>,
    #[pin]
    done: CondVar,
}

crate::impl_has_work! {
    impl HasWork<Self> for WqFault { self.work }
}

impl WorkItem for WqFault {
    type Pointer = Arc<WqFault>;

    fn run(this: Arc<WqFault>) {
        // SAFETY: the item owns references on the TDP FD and on the mm, so
        // both are live until it is dropped, whether or not the queuing
        // task still waits.
        let r = unsafe { (this.fault)(this.tdp.ptr.as_ptr(), this.mm.mm().ptr, this.gfn, this.ty) };
        *this.result.lock() = Some(r);
        this.done.notify_all();
    }
}

/// An importer of a TDP FD: told of every change that removes or weakens a
/// mapping of the exported table.
pub trait Importer: Send + Sync + 'static {
    /// GPAs `[start, start + size)` were invalidated; `(0, u64::MAX)` means
    /// the whole table.  The importer must stop using every translation of
    /// the range it cached before returning.
    ///
    /// Called with KVM's `mmu_lock` held: must not sleep, allocate with
    /// `GFP_KERNEL`, or call back into the TDP FD.
    fn invalidate(&self, start: u64, size: u64);
}

/// A counted reference to a KVM TDP FD object (`struct kvm_tdp_fd`), as
/// `kvm_tdp_fd_get()` returns it.
///
/// # Invariants
///
/// `ptr` came from `kvm_tdp_fd_get()` and this object owns its reference.
pub struct TdpFdRef {
    ptr: NonNull<bindings::kvm_tdp_fd>,
}

// SAFETY: the object's operations may be called from any task, and its
// reference may be dropped from any task.
unsafe impl Send for TdpFdRef {}

// SAFETY: all operations take `&self` and the C object synchronizes them.
unsafe impl Sync for TdpFdRef {}

impl TdpFdRef {
    /// Looks up the TDP FD behind `fd` (`kvm_tdp_fd_get()`).
    ///
    /// # Errors
    ///
    /// `EBADF` if `fd` is not an open file descriptor, `EINVAL` if it is not
    /// a TDP FD.
    #[inline]
    pub fn get(fd: i32) -> Result<Self> {
        // SAFETY: `kvm_tdp_fd_get` accepts any value.
        let ptr = from_err_ptr(unsafe { bindings::kvm_tdp_fd_get(fd) })?;
        // INVARIANT: a successful get returns a referenced object.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(EINVAL)
    }

    fn ops(&self) -> &bindings::kvm_exported_tdp_ops {
        // SAFETY: the object is referenced by the type invariant, and its
        // `ops` point to a table that lives as long as it.
        unsafe { &*(*self.ptr.as_ptr()).ops }
    }

    /// The format and root of the exported table (`get_metadata`).
    ///
    /// # Errors
    ///
    /// `EINVAL` if the object has no `get_metadata`, the provider's error,
    /// or `EIO` for a table type this code does not know.
    #[inline]
    pub fn metadata(&self) -> Result<VendorMeta> {
        let get = self.ops().get_metadata.ok_or(EINVAL)?;
        // SAFETY: the object is referenced by the type invariant.
        let meta = from_err_ptr(unsafe { get(self.ptr.as_ptr()) })?;
        // SAFETY: `get_metadata` returns a complete vendor layout that
        // lives as long as the object.
        unsafe { VendorMeta::from_c(meta) }
    }

    /// Maps `gfn` into the exported table with at least the access
    /// `access` (a non-empty mask of `ACCESS_*`), on behalf of the current
    /// task, which must be the VM's.  May sleep.
    ///
    /// # Errors
    ///
    /// `EINVAL` if the object has no `fault` or `access` is empty, else the
    /// provider's, which for `kvm_tdp_fd` are KVM's (see
    /// [`super::Export::fault`]).
    #[inline]
    pub fn fault(&self, gfn: u64, access: u32) -> Result {
        self.fault_mm(&Mm::current(), gfn, access)
    }

    fn fault_mm(&self, mm: &Mm, gfn: u64, access: u32) -> Result {
        let fault = self.ops().fault.ok_or(EINVAL)?;
        let (tdp, ty) = (self.ptr.as_ptr(), fault_type(access));
        // SAFETY: the object is referenced by the type invariant.
        to_result(unsafe { fault(tdp, mm.ptr, gfn as c_ulong, ty) })
    }

    /// Like [`TdpFdRef::fault`], but the fault is made by a worker of the
    /// system workqueue, a kernel thread with no mm of its own, on behalf
    /// of `mm`, and waited for: what an IOMMU's I/O page fault handler
    /// does.  `mm` must be the VM's (else `EPERM`).
    ///
    /// # Errors
    ///
    /// The fault's errors (see [`TdpFdRef::fault`]), `ENOMEM`, or `EINTR` if
    /// a signal arrives while waiting: the worker then finishes the fault
    /// on its own, with its own references on the TDP FD and on `mm`.
    pub fn fault_from_workqueue(&self, mm: &MmGrab, gfn: u64, access: u32) -> Result {
        let fault = self.ops().fault.ok_or(EINVAL)?;
        let item = Arc::pin_init(
            pin_init!(WqFault {
                work <- new_work!("kvm_tdp::WqFault::work"),
                fault,
                tdp: FileRef::new(self),
                mm: mm.clone(),
                gfn: gfn as c_ulong,
                ty: fault_type(access),
                result <- new_mutex!(None, "kvm_tdp::WqFault::result"),
                done <- new_condvar!("kvm_tdp::WqFault::done"),
            }),
            GFP_KERNEL,
        )?;
        // A new item cannot be queued already.
        workqueue::system()
            .enqueue(item.clone())
            .map_err(|_| EBUSY)?;
        let mut result = item.result.lock();
        // Interruptible: the item owns what the worker uses, so the caller
        // may stop waiting (a fault can block for long, e.g. on a
        // userfaultfd that the signalled process itself would resolve).
        loop {
            if let Some(r) = *result {
                return to_result(r);
            }
            if item.done.wait_interruptible(&mut result) {
                return Err(EINTR);
            }
        }
    }

    /// Registers `importer` with the TDP FD.
    ///
    /// Each attachment registers importer ops of its own (a heap object
    /// that lives as long as the [`Attachment`]), so any number of
    /// importers, of one type or several, may attach to one TDP FD, up to
    /// the provider's limit.  On failure the reference is given back with
    /// the error.
    ///
    /// # Errors
    ///
    /// `ENOMEM`, `EINVAL` if the object has no `register_importer`, the
    /// errors of [`TdpFdRef::metadata`], `EIO` for a table format the
    /// reader cannot follow (see [`super::reader`]), or the provider's error (`ENOSPC`
    /// when it holds as many importers as it can).
    #[inline]
    pub fn attach<I: Importer>(
        self,
        importer: Arc<I>,
    ) -> core::result::Result<Attachment<I>, (crate::error::Error, Self)> {
        let Some(register) = self.ops().register_importer else {
            return Err((EINVAL, self));
        };
        let format = match self.metadata().and_then(|meta| Format::new(&meta)) {
            Ok(format) => format,
            Err(e) => return Err((e, self)),
        };
        let link = match KBox::pin_init(Link::new(importer), GFP_KERNEL) {
            Ok(link) => link,
            Err(e) => return Err((e, self)),
        };
        let ops = match KBox::new(
            Opaque::new(bindings::kvm_tdp_importer_ops {
                invalidate: Some(ImporterOps::<I>::invalidate),
            }),
            GFP_KERNEL,
        ) {
            Ok(ops) => ops,
            Err(e) => return Err((e.into(), self)),
        };
        let data = core::ptr::from_ref::<Link<I>>(&link)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: the object is referenced; `ops` is a heap object of this
        // attachment's alone, which stays at its address (a `KBox` does not
        // move its contents) and alive until the `Attachment` has
        // unregistered it, as does `link`, which `data` points to.
        let ret = unsafe { register(self.ptr.as_ptr(), ops.get(), data) };
        match to_result(ret) {
            // INVARIANT: registered just now, with `ops` and `link`.
            Ok(()) => Ok(Attachment {
                fd: self,
                ops,
                link,
                format,
            }),
            Err(e) => Err((e, self)),
        }
    }
}

impl Drop for TdpFdRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this object owns the reference by the type invariant.
        unsafe { bindings::kvm_tdp_fd_put(self.ptr.as_ptr()) };
    }
}

/// The `invalidate` callback of importer type `I`.
struct ImporterOps<I: Importer>(PhantomData<I>);

impl<I: Importer> ImporterOps<I> {
    /// # Safety
    ///
    /// `data` must be the [`Link`] an [`Attachment`] keeps alive while
    /// registered.
    unsafe extern "C" fn invalidate(data: *mut c_void, start: c_ulong, size: c_ulong) {
        // SAFETY: the attachment keeps its link alive until it has
        // unregistered, after which no callback runs.
        let link = unsafe { &*data.cast::<Link<I>>() };
        let (start, size) = (start as u64, size as u64);
        // First the tokens, then the importer's caches: a reader that
        // holds the history lock finishes its copy first, and no token of
        // the range is current afterwards.
        link.history.lock().record(start, size);
        link.importer.invalidate(start, size);
    }
}

/// What an attachment's `invalidate` callback reaches: the importer, and
/// the history of invalidations that tells current tokens from stale ones.
#[pin_data]
pub(super) struct Link<I> {
    #[pin]
    pub(super) history: SpinLock<History>,
    importer: Arc<I>,
}

impl<I: Importer> Link<I> {
    fn new(importer: Arc<I>) -> impl PinInit<Self> {
        pin_init!(Link {
            history <- new_spinlock!(History::new(), "kvm_tdp::Link::history"),
            importer,
        })
    }
}

/// An importer registered on a TDP FD; unregisters when dropped.
///
/// # Invariants
///
/// `link` is registered on `fd` with `ops`, which identifies this
/// registration and no other.
pub struct Attachment<I: Importer> {
    fd: TdpFdRef,
    ops: KBox<Opaque<bindings::kvm_tdp_importer_ops>>,
    link: Pin<KBox<Link<I>>>,
    format: Format,
}

impl<I: Importer> Attachment<I> {
    /// The importer.
    pub fn importer(&self) -> &Arc<I> {
        &self.link.importer
    }

    /// Starts reading the exported table: see [`TableReader`].
    ///
    /// Takes the RCU read lock and this attachment's history lock, which
    /// `invalidate` takes before calling the importer: no invalidation of
    /// this attachment completes while the reader lives, so it must not be
    /// held across anything that sleeps.  Lock order: the provider's
    /// importer registry -> the importer's own locks -> the history lock.
    /// So while a reader lives, its task must not attach, detach (drop) or
    /// fault through any attachment of the same TDP FD (the registry lock,
    /// `mmu_lock`), nor take a second reader of this attachment: each
    /// deadlocks, as lockdep reports.
    pub fn reader(&self) -> TableReader<'_> {
        TableReader::new(&self.link.history, &self.format)
    }
}

impl<I: Importer> Deref for Attachment<I> {
    type Target = TdpFdRef;

    fn deref(&self) -> &TdpFdRef {
        &self.fd
    }
}

impl<I: Importer> Drop for Attachment<I> {
    fn drop(&mut self) {
        if let Some(unregister) = self.fd.ops().unregister_importer {
            // SAFETY: registered by the type invariant; once this returns
            // no callback runs, so `link` may be dropped after it.
            unsafe { unregister(self.fd.ptr.as_ptr(), self.ops.get()) };
        }
    }
}
