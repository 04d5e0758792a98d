// SPDX-License-Identifier: GPL-2.0

//! The TDP FD object: one per `KVM_CREATE_TDP_FD`.
//!
//! # Concurrency
//!
//! The importers of an object live in a [`Registry`] behind a spinlock,
//! `importers`.  KVM's reports arrive in [`TdpFd::invalidate`] with
//! `kvm->mmu_lock` and the export's report lock held; the fan-out takes
//! `importers` and calls each importer's `invalidate` with it held.
//! `register_importer` and `unregister_importer` take the same lock, so:
//!
//! - a report reaches exactly the importers registered when it is passed on;
//! - once `unregister_importer` has taken the importer out of the registry
//!   and dropped the lock, no callback of that importer runs (it would hold
//!   the lock) or can start (the importer is no longer in the registry).
//!
//! The lock order is `kvm->mmu_lock` -> export report lock -> `importers`
//! -> the importer's own locks.  Nothing under `importers` sleeps or
//! allocates: the registry has a fixed capacity, and importers' callbacks
//! must not sleep.  Faults do not take `importers`.

use crate::{
    filter::View,
    range::GpaRange,
    registry::{Registry, RegistryError},
    stats::Stats,
    KvmTdpFdModule, Shared,
};
use kernel::{
    c_str,
    debugfs::{self, Dir},
    fmt,
    kvm_tdp::{Export, ImporterKey, ImporterRef, Mm, Provider, VendorMeta},
    new_spinlock,
    prelude::*,
    str::CString,
    sync::{Arc, ArcBorrow, SpinLock},
};

/// The provider's object for one export of a VM's TDP.
#[pin_data]
pub struct TdpFd {
    export: Export,
    /// The table's format; the root never changes while exported.
    meta: VendorMeta,
    /// The kinds of memory the exported table maps.
    view: View,
    /// The registered importers.
    #[pin]
    importers: SpinLock<Registry<ImporterKey, ImporterRef>>,
    stats: Arc<Stats>,
    /// `stats` in this object's debugfs directory, which it keeps; empty
    /// without debugfs.
    _debugfs: debugfs::File<Stats>,
}

impl TdpFd {
    /// The object's directory, `<tgid>-<n>` in the module's.
    fn debugfs_dir(shared: &Shared) -> Dir {
        let seq = shared.next_id();
        let tgid = kernel::current!().group_leader().pid();
        match CString::try_from_fmt(fmt!("{}-{}", tgid, seq)) {
            Ok(name) => shared.debugfs.subdir(&name),
            // Only debugfs is lost without the name.
            Err(_) => shared.debugfs.subdir(c_str!("unnamed")),
        }
    }
}

impl Provider for TdpFd {
    type Shared = Shared;

    fn create(shared: &Shared, export: Export) -> Result<Arc<Self>> {
        let meta = export.metadata()?;
        let stats = Arc::new(Stats::default(), GFP_KERNEL)?;
        let debugfs = Self::debugfs_dir(shared)
            .read_only_file::<KvmTdpFdModule, _>(c_str!("stats"), stats.clone());
        Arc::pin_init(
            pin_init!(TdpFd {
                export,
                meta,
                // KVM exports only the shared view (KVM_TDP_FD_MODE_SHARED).
                view: View::Shared,
                importers <- new_spinlock!(Registry::new(), "kvm_tdp_fd:importers"),
                stats,
                _debugfs: debugfs,
            }),
            GFP_KERNEL,
        )
    }

    fn invalidate(this: ArcBorrow<'_, Self>, start: u64, end: u64, filter: u32) {
        let Some(range) = GpaRange::from_gfns(start, end) else {
            return;
        };
        this.stats.count_report(filter, range.is_whole());
        if !this.view.wants(filter) {
            Stats::inc(&this.stats.reports_filtered);
            return;
        }
        let importers = this.importers.lock();
        for (_, importer) in importers.iter() {
            importer.invalidate(range.start, range.size);
        }
        this.stats
            .note_delivery(range.start, range.size, filter, importers.len() as u64);
    }

    fn register_importer(this: ArcBorrow<'_, Self>, importer: ImporterRef) -> Result {
        let mut importers = this.importers.lock();
        match importers.register(importer.key(), importer) {
            Ok(()) => {
                Stats::inc(&this.stats.registrations);
                this.stats.set_importers(importers.len());
                Ok(())
            }
            Err(e) => {
                Stats::inc(&this.stats.op_errors);
                Err(match e {
                    RegistryError::Busy => EBUSY,
                    RegistryError::Full => ENOSPC,
                    RegistryError::NotFound => ENOENT,
                })
            }
        }
    }

    fn unregister_importer(this: ArcBorrow<'_, Self>, key: ImporterKey) -> Option<ImporterRef> {
        let mut importers = this.importers.lock();
        let removed = importers.unregister(key).ok();
        if removed.is_some() {
            this.stats.set_importers(importers.len());
        } else {
            Stats::inc(&this.stats.op_errors);
        }
        removed
    }

    fn fault(this: ArcBorrow<'_, Self>, mm: Mm, gfn: u64, access: u32) -> Result {
        Stats::inc(&this.stats.faults);
        let ret = this.export.fault(&mm, gfn, access);
        if ret.is_err() {
            Stats::inc(&this.stats.fault_errors);
        }
        ret
    }

    fn metadata(&self) -> Result<&VendorMeta> {
        Ok(&self.meta)
    }
}
