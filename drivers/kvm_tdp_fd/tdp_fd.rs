// SPDX-License-Identifier: GPL-2.0

//! The provider's part of a TDP FD object: one per `KVM_CREATE_TDP_FD`.
//!
//! `kernel::kvm_tdp::provider` owns the object, KVM's export, the importers,
//! their locking and the fan-out of KVM's reports (see its documentation
//! for the lock order); this part counts what happens, for debugfs.  Its
//! methods that run on a report or an importer operation do so under
//! `kvm->mmu_lock` or the importer registry's spinlock: they only count.

use crate::{stats::Stats, KvmTdpFdModule, Shared};
use kernel::{
    c_str,
    debugfs::{self, Dir},
    fmt,
    kvm_tdp::{Export, ImporterOp, Mm, Provider, Report},
    prelude::*,
    str::CString,
    sync::Arc,
};

/// The provider's part of the object for one export of a VM's TDP.
pub struct TdpFd {
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
    type Owner = KvmTdpFdModule;
    type Shared = Shared;

    fn create(shared: &Shared, _export: &Export) -> Result<Self> {
        let stats = Arc::new(Stats::default(), GFP_KERNEL)?;
        let debugfs = Self::debugfs_dir(shared)
            .read_only_file::<KvmTdpFdModule, _>(c_str!("stats"), stats.clone());
        Ok(TdpFd {
            stats,
            _debugfs: debugfs,
        })
    }

    fn reported(&self, report: &Report, importers: usize) {
        let stats = &self.stats;
        stats.count_report(report.filter, report.start == 0 && report.end == u64::MAX);
        match report.range {
            Some(range) => {
                stats.note_delivery(range.start, range.size, report.filter, importers as u64)
            }
            None => Stats::inc(&stats.reports_filtered),
        }
    }

    fn importer_op(&self, op: ImporterOp, result: Result, importers: usize) {
        match result {
            Ok(()) => {
                if op == ImporterOp::Register {
                    Stats::inc(&self.stats.registrations);
                }
                self.stats.set_importers(importers);
            }
            Err(_) => Stats::inc(&self.stats.op_errors),
        }
    }

    fn fault(&self, export: &Export, mm: &Mm, gfn: u64, access: u32) -> Result {
        Stats::inc(&self.stats.faults);
        let ret = export.fault(mm, gfn, access);
        if ret.is_err() {
            Stats::inc(&self.stats.fault_errors);
        }
        ret
    }
}
