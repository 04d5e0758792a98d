// SPDX-License-Identifier: GPL-2.0

//! What a TDP FD has seen, for debugfs.
//!
//! Each TDP FD has a directory `/sys/kernel/debug/kvm_tdp_fd/<tgid>-<n>/`
//! (the creating process and a sequence number) with one file, `stats`:
//! one `name: value` line per counter below.  Counters only grow, except
//! `importers`, the number registered now.

use core::{
    fmt,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};
use kernel::{
    debugfs::Writer,
    kvm_tdp::{FILTER_ALL, FILTER_PRIVATE, FILTER_SHARED},
};

/// The counters of one TDP FD.
#[derive(Default)]
pub struct Stats {
    /// Importers registered now.
    pub importers: AtomicU64,
    /// Successful registrations.
    pub registrations: AtomicU64,
    /// Reports from KVM that concern shared memory only.
    pub reports_shared: AtomicU64,
    /// Reports from KVM that concern private memory only.
    pub reports_private: AtomicU64,
    /// Reports from KVM that concern both kinds (or name none).
    pub reports_both: AtomicU64,
    /// Reports of the whole table.
    pub reports_whole: AtomicU64,
    /// Reports not passed on: empty, or of private memory only, which the
    /// exported table never maps.
    pub reports_filtered: AtomicU64,
    /// Calls of importers' `invalidate`.
    pub deliveries: AtomicU64,
    /// The range of the last report passed on: start GPA, size, filter.
    pub last_start: AtomicU64,
    /// See `last_start`.
    pub last_size: AtomicU64,
    /// See `last_start`.
    pub last_filter: AtomicU64,
    /// Faults requested by importers.
    pub faults: AtomicU64,
    /// Faults that failed.
    pub fault_errors: AtomicU64,
    /// Importer operations refused: repeated registration, registry full,
    /// unregistering an importer that is not registered.
    pub op_errors: AtomicU64,
}

impl Stats {
    /// Counts a report from KVM by the kinds of memory it concerns.
    pub fn count_report(&self, kinds: u32, whole: bool) {
        let counter = match kinds & FILTER_ALL {
            FILTER_SHARED => &self.reports_shared,
            FILTER_PRIVATE => &self.reports_private,
            _ => &self.reports_both,
        };
        counter.fetch_add(1, Relaxed);
        if whole {
            self.reports_whole.fetch_add(1, Relaxed);
        }
    }

    /// Notes the last report passed on to importers.
    pub fn note_delivery(&self, start: u64, size: u64, kinds: u32, importers: u64) {
        self.last_start.store(start, Relaxed);
        self.last_size.store(size, Relaxed);
        self.last_filter.store(u64::from(kinds), Relaxed);
        self.deliveries.fetch_add(importers, Relaxed);
    }

    /// Records how many importers are registered now.
    pub fn set_importers(&self, n: usize) {
        self.importers.store(n as u64, Relaxed);
    }

    /// Counts one more of `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

impl Writer for Stats {
    fn write(&self, m: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: [(&str, &AtomicU64); 14] = [
            ("importers", &self.importers),
            ("registrations", &self.registrations),
            ("reports_shared", &self.reports_shared),
            ("reports_private", &self.reports_private),
            ("reports_both", &self.reports_both),
            ("reports_whole", &self.reports_whole),
            ("reports_filtered", &self.reports_filtered),
            ("deliveries", &self.deliveries),
            ("last_start", &self.last_start),
            ("last_size", &self.last_size),
            ("last_filter", &self.last_filter),
            ("faults", &self.faults),
            ("fault_errors", &self.fault_errors),
            ("op_errors", &self.op_errors),
        ];
        for (name, value) in lines {
            writeln!(m, "{}: {}", name, value.load(Relaxed))?;
        }
        Ok(())
    }
}
