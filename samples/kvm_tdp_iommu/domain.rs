// SPDX-License-Identifier: GPL-2.0

//! An attachment's translation domain: the importer KVM's reports reach,
//! its IOTLB and its DMA.
//!
//! # Locking
//!
//! `iotlb` (a spinlock) is taken by [`Domain::invalidate`], under KVM's
//! `mmu_lock` and the TDP FD's importer lock, and by DMA, which translates,
//! caches and copies each page with it held.  So once `invalidate` for a
//! range has returned, no DMA uses a translation of that range it cached
//! before, and no copy to or from a page of the range is in flight: KVM may
//! then free the page.  Faults are requested with `iotlb` released (a fault
//! takes `mmu_lock`, which ranks above it).

use crate::{
    iotlb::{Entry, Iotlb},
    pte::{Layout, WalkError},
};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    kvm_tdp::{
        importer::{Importer, TableReader, TdpFd},
        ACCESS_READ, ACCESS_WRITE,
    },
    new_spinlock,
    prelude::*,
    sync::SpinLock,
};

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

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// The importer of one attachment.
#[pin_data]
pub struct Domain {
    /// The table's layout.
    layout: Layout,
    /// Host physical address of the table's root.
    root: u64,
    /// Whether DMA misses fault the GFN in (`KTI_ATTACH_NO_FAULT` clear).
    fault_on_miss: bool,
    /// Cached translations.
    #[pin]
    iotlb: SpinLock<Iotlb>,
    /// What it has seen.
    pub counters: Counters,
}

/// The direction of a DMA.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Device reads guest memory.
    Read,
    /// Device writes guest memory.
    Write,
}

impl Domain {
    /// A domain for a table with `layout` rooted at `root`, nothing cached.
    pub fn new(layout: Layout, root: u64, fault_on_miss: bool) -> impl PinInit<Self> {
        pin_init!(Domain {
            layout,
            root,
            fault_on_miss,
            iotlb <- new_spinlock!(Iotlb::new(), "kvm_tdp_iommu:iotlb"),
            counters: Counters::default(),
        })
    }

    /// Translates `gpa` for `dir` and copies `buf` (within one page) from or
    /// to it with the IOTLB locked; faults once on a miss if allowed.
    pub fn dma_page(&self, fd: &TdpFd, gpa: u64, buf: &mut [u8], dir: Dir) -> Result {
        let gfn = gpa >> 12;
        let offset = gpa & 0xfff;
        let write = dir == Dir::Write;
        let mut faulted = false;
        loop {
            {
                let mut iotlb = self.iotlb.lock();
                let reader = TableReader::new();
                let pfn = match iotlb.lookup(gfn) {
                    Some(e) if e.writable || !write => {
                        inc(&self.counters.iotlb_hits);
                        Some(e.pfn)
                    }
                    _ => {
                        inc(&self.counters.iotlb_misses);
                        match self.layout.walk(self.root, gpa, |t, i| reader.read(t, i)) {
                            Ok(leaf) if leaf.readable && (leaf.writable || !write) => {
                                iotlb.insert(Entry {
                                    gfn,
                                    pfn: leaf.pa >> 12,
                                    writable: leaf.writable,
                                });
                                Some(leaf.pa >> 12)
                            }
                            Ok(_) | Err(WalkError::NotMapped) => None,
                            Err(WalkError::BadLayout) => return Err(EINVAL),
                            Err(WalkError::Read(e)) => return Err(e),
                        }
                    }
                };
                if let Some(pfn) = pfn {
                    let pa = (pfn << 12) | offset;
                    return match dir {
                        Dir::Read => reader.copy_from(pa, buf),
                        Dir::Write => reader.copy_to(pa, buf),
                    };
                }
            }
            // Not mapped, or not writable: an I/O page fault.
            if !self.fault_on_miss || faulted {
                return Err(EFAULT);
            }
            inc(&self.counters.walk_faults);
            inc(&self.counters.faults);
            let access = if write { ACCESS_WRITE } else { ACCESS_READ };
            fd.fault(gfn, access)?;
            faulted = true;
        }
    }
}

impl Importer for Domain {
    fn invalidate(&self, start: u64, size: u64) {
        let c = &self.counters;
        let dropped = self.iotlb.lock().flush(start, size);
        c.iotlb_flushes.fetch_add(dropped, Relaxed);
        c.invalidations.fetch_add(1, Relaxed);
        if start == 0 && size == u64::MAX {
            c.whole.fetch_add(1, Relaxed);
        }
        c.last_start.store(start, Relaxed);
        c.last_size.store(size, Relaxed);
    }
}
