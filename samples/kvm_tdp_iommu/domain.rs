// SPDX-License-Identifier: GPL-2.0

//! An attachment's translation domain: the importer KVM's reports reach,
//! its IOTLB and its DMA.
//!
//! # Locking
//!
//! `caches` (a spinlock over the IOTLB and, in the hardware-faithful mode,
//! the paging-structure cache) is taken by [`Domain::invalidate`], under
//! KVM's `mmu_lock` and the TDP FD's importer lock, and by DMA, which
//! translates, caches and copies each page with it held.  So once
//! `invalidate` for a range has returned, no DMA uses a translation or a
//! table pointer of that range it cached before, and no copy to or from a
//! page of the range is in flight: KVM may then free the page, or the
//! table.  Faults are requested with `caches` released (a fault takes
//! `mmu_lock`, which ranks above it).
//!
//! # The hardware-faithful mode
//!
//! With `KTI_ATTACH_HW` the domain also caches the table pointers its walks
//! read ([`crate::psc`]) and starts each walk from the deepest one cached
//! for the GPA.  Each walk still runs under a [`TableReader`], i.e. with
//! the RCU read lock held, but that does not protect a table pointer cached
//! by an earlier walk: a grace period may have ended between the two, and
//! KVM frees page tables after one.  So such a walk reads a table that only
//! KVM's invalidations vouch for, as an IOMMU's does, which is the point:
//! a table KVM frees or repurposes without reporting its range is read
//! after it is gone (stale data, a failed DMA, or a KASAN report).
//!
//! A shadow domain ([`Domain::new_shadow`]) walks a table of its own
//! instead, built by [`Domain::shadow_map`] from pinned pages; its `shadow`
//! mutex serializes mappings and ranks above `caches`.

use crate::{
    iotlb::{Entry, Iotlb, Slot, IOTLB_SIZE},
    psc::{self, Psc, PSC_SLOTS},
    pte::{Layout, WalkError, ENTRIES},
    shadow::{self, MapError, Store},
};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{
    alloc::KVVec,
    io_pgtable::TablePage,
    kvm_tdp::{
        importer::{Importer, TableReader, TdpFd},
        MmGrab, ACCESS_READ, ACCESS_WRITE,
    },
    new_mutex, new_spinlock,
    pinned_pages::PinnedPages,
    prelude::*,
    sync::{Mutex, SpinLock},
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
    /// Level of the leaf the last walk found (1: 4K, 2: 2M, 3: 1G).
    pub last_leaf_level: AtomicU64,
    /// The leaf entry the last walk found, as KVM wrote it (its memory
    /// type and A/D bits are KVM's; the importer only reads them).
    pub last_leaf_entry: AtomicU64,
    /// Walks that ended at one of KVM's MMIO entries.
    pub mmio_walks: AtomicU64,
}

/// What the paging-structure cache holds and has done; all zero for a
/// domain without one.
#[derive(Clone, Copy, Default)]
pub struct PscCounters {
    /// Its statistics.
    pub stats: psc::Stats,
    /// Table pointers it holds now.
    pub entries: u64,
}

/// What DMA caches: the IOTLB and, in the hardware-faithful mode, the
/// paging-structure cache.
pub struct Caches {
    iotlb: Iotlb<KVec<Slot>>,
    psc: Option<Psc<KVec<psc::Slot>>>,
}

impl Caches {
    /// Empty caches; a paging-structure cache only if `hw`.
    fn new(hw: bool) -> Result<Self> {
        let psc = if hw {
            Some(Psc::with_slots(KVec::from_elem(
                None, PSC_SLOTS, GFP_KERNEL,
            )?))
        } else {
            None
        };
        Ok(Self {
            iotlb: new_iotlb()?,
            psc,
        })
    }
}

/// An empty IOTLB, its slots on the heap.
fn new_iotlb() -> Result<Iotlb<KVec<Slot>>> {
    Ok(Iotlb::with_slots(KVec::from_elem(
        None, IOTLB_SIZE, GFP_KERNEL,
    )?))
}

/// The pages of a shadow table: kernel pages, and which entry links which.
pub struct Pages {
    pages: KVVec<TablePage>,
    /// `ENTRIES` per table: the handle entry `i` links, 0 if none.
    children: KVVec<u32>,
}

impl Pages {
    /// A table with an empty root.
    fn new() -> Result<Self> {
        let mut this = Self {
            pages: KVVec::new(),
            children: KVVec::new(),
        };
        this.alloc()?;
        Ok(this)
    }
}

impl Store for Pages {
    type Error = Error;

    fn alloc(&mut self) -> Result<usize> {
        let n = self.pages.len();
        if n >= u32::MAX as usize {
            return Err(ENOMEM);
        }
        self.pages.reserve(1, GFP_KERNEL)?;
        self.children.reserve(ENTRIES, GFP_KERNEL)?;
        self.pages.push(TablePage::new()?, GFP_KERNEL)?;
        self.children.extend_with(ENTRIES, 0, GFP_KERNEL)?;
        Ok(n)
    }

    fn pa(&self, t: usize) -> u64 {
        self.pages[t].pa()
    }

    fn get(&self, t: usize, i: usize) -> u64 {
        self.pages[t].get(i)
    }

    fn set(&mut self, t: usize, i: usize, entry: u64) {
        self.pages[t].set(i, entry)
    }

    fn child(&self, t: usize, i: usize) -> Option<usize> {
        match self.children[t * ENTRIES + i] {
            0 => None,
            c => Some(c as usize),
        }
    }

    fn set_child(&mut self, t: usize, i: usize, child: usize) {
        self.children[t * ENTRIES + i] = child as u32;
    }
}

/// A shadow domain's own table and the pins behind its mappings.
pub struct Shadow {
    pages: Pages,
    pins: KVec<PinnedPages>,
}

impl Shadow {
    /// Page-table pages of the table.
    pub fn table_pages(&self) -> u64 {
        self.pages.pages.len() as u64
    }

    /// Pages pinned for it.
    pub fn pinned_pages(&self) -> u64 {
        self.pins.iter().map(|p| p.len() as u64).sum()
    }
}

/// I/O page faults one page of a DMA may take before it fails.
pub const MAX_FAULTS: u32 = 8;

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
    /// With `KTI_ATTACH_FAULT_WQ`, the attaching process's mm: faults are
    /// made from a workqueue on its behalf, as an I/O page fault handler
    /// would.  `None`: faults are made by the task doing the DMA.
    fault_wq: Option<MmGrab>,
    /// Cached translations (and table pointers, in the hardware-faithful
    /// mode).
    #[pin]
    caches: SpinLock<Caches>,
    /// A shadow domain's table; `None` for a domain on a TDP FD.
    #[pin]
    shadow: Mutex<Option<Shadow>>,
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
    /// A domain for a table with `layout` rooted at `root`, nothing cached;
    /// hardware-faithful (with a paging-structure cache) if `hw`.
    pub fn new(
        layout: Layout,
        root: u64,
        fault_on_miss: bool,
        fault_wq: Option<MmGrab>,
        hw: bool,
    ) -> Result<impl PinInit<Self>> {
        let caches = Caches::new(hw)?;
        Ok(pin_init!(Domain {
            layout,
            root,
            fault_on_miss,
            fault_wq,
            caches <- new_spinlock!(caches, "kvm_tdp_iommu:caches"),
            shadow <- new_mutex!(None, "kvm_tdp_iommu:shadow"),
            counters: Counters::default(),
        }))
    }

    /// A shadow domain: an empty table of its own, filled by
    /// [`Domain::shadow_map`]; misses are errors, never faults.
    pub fn new_shadow() -> Result<impl PinInit<Self>> {
        let pages = Pages::new()?;
        let root = pages.pa(0);
        let caches = Caches::new(false)?;
        Ok(pin_init!(Domain {
            layout: shadow::layout(),
            root,
            fault_on_miss: false,
            fault_wq: None,
            caches <- new_spinlock!(caches, "kvm_tdp_iommu:caches"),
            shadow <- new_mutex!(
                Some(Shadow { pages, pins: KVec::new() }),
                "kvm_tdp_iommu:shadow"
            ),
            counters: Counters::default(),
        }))
    }

    /// The layout of the table the domain walks.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// What the paging-structure cache holds and has done.
    pub fn psc_counters(&self) -> PscCounters {
        let caches = self.caches.lock();
        caches
            .psc
            .as_ref()
            .map(|p| PscCounters {
                stats: p.stats,
                entries: p.len() as u64,
            })
            .unwrap_or_default()
    }

    /// Runs `f` on the shadow table, if this is a shadow domain.
    pub fn with_shadow<R>(&self, f: impl FnOnce(&Shadow) -> R) -> Option<R> {
        self.shadow.lock().as_ref().map(f)
    }

    /// Pins `len` bytes of the caller's memory at user address `addr` and
    /// maps them at `gpa` in the shadow table, read-only unless `writable`,
    /// as VFIO's `VFIO_IOMMU_MAP_DMA` does.
    ///
    /// `EINVAL` for a domain that is not a shadow one or an unaligned,
    /// empty or too large range, `EEXIST` if part of it is mapped, or the
    /// error of pinning or allocating; on error nothing is mapped.
    pub fn shadow_map(&self, gpa: u64, len: u64, addr: usize, writable: bool) -> Result {
        let mut guard = self.shadow.lock();
        let shadow = guard.as_mut().ok_or(EINVAL)?;
        let aligned = |x: u64| x % 4096 == 0;
        if len == 0 || !aligned(gpa) || !aligned(len) || !aligned(addr as u64) {
            return Err(EINVAL);
        }
        match gpa.checked_add(len) {
            Some(end) if end <= 1 << 48 => {}
            _ => return Err(EINVAL),
        }
        let npages = usize::try_from(len >> 12).map_err(|_| EINVAL)?;
        let pins = PinnedPages::pin(addr, npages, writable)?;
        shadow.pins.reserve(1, GFP_KERNEL)?;
        let mut mapped = 0;
        let mut result = Ok(());
        while mapped < npages {
            let Some(pfn) = pins.pfn(mapped) else {
                result = Err(EINVAL);
                break;
            };
            let at = gpa + ((mapped as u64) << 12);
            match shadow::map(&mut shadow.pages, at, pfn << 12, writable) {
                Ok(()) => mapped += 1,
                Err(MapError::Exists) => {
                    result = Err(EEXIST);
                    break;
                }
                Err(MapError::BadAddress) => {
                    result = Err(EINVAL);
                    break;
                }
                Err(MapError::Alloc(e)) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            // Nothing of this call may outlive its pins, which go when
            // `pins` is dropped on return, after the IOTLB flush.
            for i in 0..mapped {
                shadow::unmap(&mut shadow.pages, gpa + ((i as u64) << 12));
            }
            self.caches.lock().iotlb.flush(gpa, len);
            return Err(e);
        }
        // Cannot fail: room was reserved before anything was mapped.
        shadow.pins.push(pins, GFP_KERNEL)?;
        Ok(())
    }

    /// Translates `gpa` for `dir` and copies `buf` (within one page) from or
    /// to it with the IOTLB locked; on a miss, faults and retries if allowed.
    /// `fd` is the TDP FD of a domain that faults; `None` for a shadow one.
    ///
    /// A mapping can be taken away again between a fault and the walk that
    /// follows (a zap, or the kernel migrating the page for compaction), as
    /// a device's page request can be answered "retry": so the walk is
    /// retried after up to [`MAX_FAULTS`] faults before the DMA fails with
    /// `EFAULT`.  A fault's own error ends the DMA at once.  `EINVAL` for a
    /// GPA beyond what the table translates; `ENXIO` for a page that is not
    /// ordinary RAM (which a vCPU's fault may have mapped), which is never
    /// copied.
    pub fn dma_page(&self, fd: Option<&TdpFd>, gpa: u64, buf: &mut [u8], dir: Dir) -> Result {
        // An address beyond the table's reach is no address of the guest's:
        // neither the walk nor the IOTLB may alias it to a lower one.
        if !self.layout.reaches(gpa) {
            return Err(EINVAL);
        }
        let gfn = gpa >> 12;
        let offset = gpa & 0xfff;
        let write = dir == Dir::Write;
        let mut faults = 0;
        loop {
            {
                let mut caches = self.caches.lock();
                let Caches { iotlb, psc } = &mut *caches;
                let reader = TableReader::new();
                let read = |t: u64, i: usize| reader.read(t, i);
                let pfn = match iotlb.lookup(gfn) {
                    Some(e) if e.writable || !write => {
                        inc(&self.counters.iotlb_hits);
                        Some(e.pfn)
                    }
                    _ => {
                        inc(&self.counters.iotlb_misses);
                        // In the hardware-faithful mode, from the deepest
                        // cached table: see "The hardware-faithful mode".
                        let walk = match psc {
                            Some(psc) => psc.walk(&self.layout, self.root, gpa, read),
                            None => self.layout.walk(self.root, gpa, read),
                        };
                        match walk {
                            Ok(leaf) if leaf.readable && (leaf.writable || !write) => {
                                let level = u64::from(leaf.level);
                                self.counters.last_leaf_level.store(level, Relaxed);
                                self.counters.last_leaf_entry.store(leaf.entry, Relaxed);
                                iotlb.insert(Entry {
                                    gfn,
                                    pfn: leaf.pa >> 12,
                                    writable: leaf.writable,
                                });
                                Some(leaf.pa >> 12)
                            }
                            Ok(_) | Err(WalkError::NotMapped) => None,
                            // Emulated MMIO for the guest: no page behind
                            // it, and a fault cannot map one.
                            Err(WalkError::Mmio) => {
                                inc(&self.counters.mmio_walks);
                                None
                            }
                            Err(WalkError::BadLayout | WalkError::BadAddress) => {
                                return Err(EINVAL)
                            }
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
            let fd = match fd {
                Some(fd) if self.fault_on_miss && faults < MAX_FAULTS => fd,
                _ => return Err(EFAULT),
            };
            inc(&self.counters.walk_faults);
            inc(&self.counters.faults);
            let access = if write { ACCESS_WRITE } else { ACCESS_READ };
            self.fault(fd, gfn, access)?;
            faults += 1;
        }
    }
}

impl Domain {
    /// Faults `gfn` in through `fd`: from the workqueue on behalf of the
    /// attaching process with `KTI_ATTACH_FAULT_WQ`, else as the current
    /// task.
    pub fn fault(&self, fd: &TdpFd, gfn: u64, access: u32) -> Result {
        match &self.fault_wq {
            Some(mm) => fd.fault_from_workqueue(mm, gfn, access),
            None => fd.fault(gfn, access),
        }
    }
}

impl Importer for Domain {
    fn invalidate(&self, start: u64, size: u64) {
        let c = &self.counters;
        let dropped = {
            let mut caches = self.caches.lock();
            // Table pointers of the range go with its translations: KVM
            // may free the tables once this returns.
            if let Some(psc) = &mut caches.psc {
                psc.flush(start, size);
            }
            caches.iotlb.flush(start, size)
        };
        c.iotlb_flushes.fetch_add(dropped, Relaxed);
        c.invalidations.fetch_add(1, Relaxed);
        if start == 0 && size == u64::MAX {
            c.whole.fetch_add(1, Relaxed);
        }
        c.last_start.store(start, Relaxed);
        c.last_size.store(size, Relaxed);
    }
}
