// SPDX-License-Identifier: GPL-2.0

//! An attachment's translation domain: the importer KVM's reports reach.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::kvm_tdp::importer::Importer;

/// What one attachment has seen; the numbers `KTI_STATS` returns.
#[derive(Default)]
pub struct Counters {
    /// `invalidate` calls.
    pub invalidations: AtomicU64,
    /// ... of the whole table.
    pub whole: AtomicU64,
    /// Range of the last one.
    pub last_start: AtomicU64,
    /// See `last_start`.
    pub last_size: AtomicU64,
    /// `fault` calls made.
    pub faults: AtomicU64,
    /// Translations served by the IOTLB.
    pub iotlb_hits: AtomicU64,
    /// Translations that walked the table.
    pub iotlb_misses: AtomicU64,
    /// IOTLB entries dropped by `invalidate`.
    pub iotlb_flushes: AtomicU64,
    /// Misses that found no mapping and faulted.
    pub walk_faults: AtomicU64,
}

/// The importer of one attachment.
pub struct Domain {
    /// Whether DMA misses fault the GFN in (`KTI_ATTACH_NO_FAULT` clear).
    pub fault_on_miss: bool,
    /// What it has seen.
    pub counters: Counters,
}

impl Domain {
    /// A domain with nothing cached.
    pub fn new(fault_on_miss: bool) -> Self {
        Self {
            fault_on_miss,
            counters: Counters::default(),
        }
    }
}

impl Importer for Domain {
    fn invalidate(&self, start: u64, size: u64) {
        let c = &self.counters;
        c.invalidations.fetch_add(1, Relaxed);
        if start == 0 && size == u64::MAX {
            c.whole.fetch_add(1, Relaxed);
        }
        c.last_start.store(start, Relaxed);
        c.last_size.store(size, Relaxed);
    }
}
