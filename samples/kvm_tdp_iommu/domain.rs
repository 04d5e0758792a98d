// SPDX-License-Identifier: GPL-2.0

//! An attachment's translation domain: the importer KVM's reports reach,
//! its IOTLB and its DMA.
//!
//! # Locking
//!
//! `caches` (a spinlock over the IOTLB and, in the hardware-faithful mode,
//! the paging-structure cache) is taken by [`Domain::invalidate`], under
//! KVM's `mmu_lock` and the TDP FD's importer lock, and by DMA, which
//! translates, caches and copies each page with it held, and under it the
//! attachment's [`TableReader`].  So once `invalidate` for a range has
//! returned, no DMA uses a translation or a table of that range it cached
//! before, and no copy to or from a page of the range is in flight: KVM may
//! then free the page, or the table.  Faults are requested with `caches`
//! released (a fault takes `mmu_lock`, which ranks above it).
//!
//! What DMA caches are tokens of the reader's (`kernel::kvm_tdp::reader`):
//! the reader reads a table and copies a page only through a token that no
//! invalidation since its walk has covered, so even a cache this domain
//! failed to flush could not make it touch memory KVM let go; but a report
//! KVM fails to make leaves the token current, and the DMA then uses the
//! stale translation, as a device would.
//!
//! # The hardware-faithful mode
//!
//! With `KTI_ATTACH_HW` the domain also caches the tables its walks reach
//! ([`crate::psc`]) and starts each walk from the deepest one cached for
//! the GPA.  Each walk runs under a [`TableReader`], with the RCU read lock
//! held, but that does not protect a table cached by an earlier walk: a
//! grace period may have ended between the two, and KVM frees page tables
//! after one.  So such a walk reads a table that only KVM's invalidations
//! vouch for, as an IOMMU's does, which is the point: a table KVM frees or
//! repurposes without reporting its range is read after it is gone (stale
//! data, a failed DMA, or a KASAN report).
//!
//! A shadow domain ([`Domain::new_shadow`]) walks a table of its own
//! instead, built by [`Domain::shadow_map`] from pinned pages; its `shadow`
//! mutex serializes mappings and ranks above `caches`.

use crate::{
    iotlb::{self, Iotlb, IOTLB_SIZE},
    psc::{self, Psc, PSC_SLOTS},
    pte::{self, Layout, Tables, WalkError, ENTRIES},
    shadow::{self, MapError, Store},
};
use core::{
    convert::Infallible,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};
use kernel::{
    alloc::KVVec,
    kvm_tdp::{
        importer::{Attachment, Importer, TdpFdRef},
        reader::{Entry, Leaf, Table, TableReader},
        MmGrab, ACCESS_READ, ACCESS_WRITE,
    },
    new_mutex, new_spinlock,
    pinned_pages::PinnedPages,
    prelude::*,
    sync::{Mutex, SpinLock},
    table_page::TablePage,
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

/// What DMA caches: the IOTLB (with the leaf's token, for a domain on a
/// TDP FD) and, in the hardware-faithful mode, the paging-structure cache
/// (of table tokens).
pub struct Caches {
    iotlb: Iotlb<KVec<iotlb::Slot<Option<Leaf>>>>,
    psc: Option<Psc<KVec<psc::Slot<Table>>>>,
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
fn new_iotlb() -> Result<Iotlb<KVec<iotlb::Slot<Option<Leaf>>>>> {
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
    /// Each pinned range, with the GPA it is mapped at.
    pins: KVec<(u64, PinnedPages)>,
}

impl Shadow {
    /// The pins and the page index behind `gpa`, if mapped.
    fn pin_of(&self, gpa: u64) -> Option<(&PinnedPages, usize)> {
        self.pins.iter().find_map(|(start, pins)| {
            let page = gpa.checked_sub(*start)? >> 12;
            (page < pins.len() as u64).then_some((pins, page as usize))
        })
    }
}

/// The shadow table, read through its pages: a table is the index of its
/// page.
struct ShadowTables<'a> {
    pages: &'a Pages,
    /// The table and index of the entry read last.
    last: (usize, usize),
}

impl Tables for ShadowTables<'_> {
    type Table = usize;
    type Error = Infallible;

    fn read(&mut self, table: usize, index: usize) -> Result<u64, Infallible> {
        self.last = (table, index);
        Ok(self.pages.get(table, index))
    }

    fn next(&mut self, pa: u64) -> Option<usize> {
        let child = self.pages.child(self.last.0, self.last.1)?;
        (self.pages.pa(child) == pa).then_some(child)
    }
}

/// The exported table, read through `reader`: a table is a token of it.
struct ExportedTables<'r, 'a> {
    reader: &'r TableReader<'a>,
    /// The entry read last.
    last: Option<Entry>,
}

impl Tables for ExportedTables<'_, '_> {
    type Table = Table;
    type Error = Error;

    fn read(&mut self, table: Table, index: usize) -> Result<u64> {
        let entry = self.reader.entry(&table, index)?;
        self.last = Some(entry);
        Ok(entry.raw())
    }

    fn next(&mut self, pa: u64) -> Option<Table> {
        self.last?.table().filter(|t| t.pa() == pa)
    }
}

impl Shadow {
    /// Page-table pages of the table.
    pub fn table_pages(&self) -> u64 {
        self.pages.pages.len() as u64
    }

    /// Pages pinned for it.
    pub fn pinned_pages(&self) -> u64 {
        self.pins.iter().map(|(_, p)| p.len() as u64).sum()
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
pub enum DmaDirection {
    /// Device reads guest memory.
    Read,
    /// Device writes guest memory.
    Write,
}

impl Domain {
    /// A domain for a table with `layout`, nothing cached; hardware-faithful
    /// (with a paging-structure cache) if `hw`.
    pub fn new(
        layout: Layout,
        fault_on_miss: bool,
        fault_wq: Option<MmGrab>,
        hw: bool,
    ) -> Result<impl PinInit<Self>> {
        let caches = Caches::new(hw)?;
        Ok(pin_init!(Domain {
            layout,
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
        let caches = Caches::new(false)?;
        Ok(pin_init!(Domain {
            layout: shadow::layout(),
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
        shadow.pins.push((gpa, pins), GFP_KERNEL)?;
        Ok(())
    }

    /// Translates `gpa` for `dir` and copies `buf` (within one page) from or
    /// to it with the IOTLB locked; on a miss, faults and retries if allowed.
    /// `att` is the attachment of a domain on a TDP FD (this domain); `None`
    /// for a shadow domain.
    ///
    /// A mapping can be taken away again between a fault and the walk that
    /// follows (a zap, or the kernel migrating the page for compaction), as
    /// a device's page request can be answered "retry": so the walk is
    /// retried after up to [`MAX_FAULTS`] faults before the DMA fails with
    /// `EFAULT`.  A fault's own error ends the DMA at once.  `EINVAL` for a
    /// GPA beyond what the table translates; `ENXIO` for a page that is not
    /// ordinary RAM (which a vCPU's fault may have mapped), which is never
    /// copied.
    pub fn dma_page(
        &self,
        att: Option<&Attachment<Domain>>,
        gpa: u64,
        buf: &mut [u8],
        dir: DmaDirection,
    ) -> Result {
        // An address beyond the table's reach is no address of the guest's:
        // neither the walk nor the IOTLB may alias it to a lower one.
        if !self.layout.reaches(gpa) {
            return Err(EINVAL);
        }
        let Some(att) = att else {
            return self.dma_shadow(gpa, buf, dir);
        };
        let gfn = gpa >> 12;
        let write = dir == DmaDirection::Write;
        let mut faults = 0;
        loop {
            {
                let mut caches = self.caches.lock();
                let Caches { iotlb, psc } = &mut *caches;
                let reader = att.reader();
                let hit = match iotlb.lookup(gfn) {
                    Some(iotlb::Entry {
                        writable,
                        token: Some(leaf),
                        ..
                    }) if (writable || !write) && reader.is_current(&leaf) => Some(leaf),
                    _ => None,
                };
                let leaf = match hit {
                    Some(leaf) => {
                        inc(&self.counters.iotlb_hits);
                        Some(leaf)
                    }
                    None => {
                        inc(&self.counters.iotlb_misses);
                        self.walk(&reader, iotlb, psc, gpa, write)?
                    }
                };
                if let Some(leaf) = leaf {
                    return match dir {
                        DmaDirection::Read => reader.copy_from(&leaf, gpa, buf),
                        DmaDirection::Write => reader.copy_to(&leaf, gpa, buf),
                    };
                }
            }
            // Not mapped, or not writable: an I/O page fault.
            if !self.fault_on_miss || faults >= MAX_FAULTS {
                return Err(EFAULT);
            }
            inc(&self.counters.walk_faults);
            inc(&self.counters.faults);
            let access = if write { ACCESS_WRITE } else { ACCESS_READ };
            self.fault(att, gfn, access)?;
            faults += 1;
        }
    }

    /// Walks the exported table for `gpa` through `reader` (in the
    /// hardware-faithful mode, from the deepest cached table: see "The
    /// hardware-faithful mode") and caches the translation; `None` if the
    /// GPA is not mapped for the access.
    fn walk(
        &self,
        reader: &TableReader<'_>,
        iotlb: &mut Iotlb<KVec<iotlb::Slot<Option<Leaf>>>>,
        psc: &mut Option<Psc<KVec<psc::Slot<Table>>>>,
        gpa: u64,
        write: bool,
    ) -> Result<Option<Leaf>> {
        // A cached table whose token went stale (more invalidations than
        // the attachment remembers, or one not yet flushed from the cache)
        // is dropped, and the walk starts again from the root: twice at
        // most, as a walk from the root reads only current tokens.
        for _ in 0..2 {
            let mut tables = ExportedTables { reader, last: None };
            let walk = match psc {
                Some(psc) => psc.walk_tables(&self.layout, reader.root(), gpa, &mut tables),
                None => self.layout.walk_tables(reader.root(), gpa, &mut tables),
            };
            match walk {
                Ok(leaf) if leaf.readable && (leaf.writable || !write) => {
                    // The reader's token for the same leaf: the two decode
                    // the same entry, else the layout is not the table's.
                    let token = tables.last.and_then(|e| e.leaf()).ok_or(EIO)?;
                    self.note_leaf(&leaf);
                    iotlb.insert(iotlb::Entry {
                        gfn: gpa >> 12,
                        pfn: leaf.pa >> 12,
                        writable: leaf.writable,
                        token: Some(token),
                    });
                    return Ok(Some(token));
                }
                Ok(_) | Err(WalkError::NotMapped) => return Ok(None),
                // Emulated MMIO for the guest: no page behind it, and a
                // fault cannot map one.
                Err(WalkError::Mmio) => {
                    inc(&self.counters.mmio_walks);
                    return Ok(None);
                }
                Err(WalkError::BadLayout | WalkError::BadAddress) => return Err(EINVAL),
                Err(WalkError::Read(e)) if e == EAGAIN => {
                    if let Some(psc) = psc {
                        psc.flush(gpa, 1);
                    }
                }
                Err(WalkError::Read(e)) => return Err(e),
            }
        }
        Err(EIO)
    }

    /// Notes the leaf a walk found, for `KTI_STATS`.
    fn note_leaf(&self, leaf: &pte::Leaf) {
        let level = u64::from(leaf.level);
        self.counters.last_leaf_level.store(level, Relaxed);
        self.counters.last_leaf_entry.store(leaf.entry, Relaxed);
    }

    /// [`Domain::dma_page`] for a shadow domain: its own table, and the
    /// pinned pages behind it.  Misses are errors, never faults.
    fn dma_shadow(&self, gpa: u64, buf: &mut [u8], dir: DmaDirection) -> Result {
        let gfn = gpa >> 12;
        let write = dir == DmaDirection::Write;
        // The shadow mutex ranks above the caches' spinlock.
        let guard = self.shadow.lock();
        let shadow = guard.as_ref().ok_or(EINVAL)?;
        let pfn = {
            let mut caches = self.caches.lock();
            match caches.iotlb.lookup(gfn) {
                Some(e) if e.writable || !write => {
                    inc(&self.counters.iotlb_hits);
                    e.pfn
                }
                _ => {
                    inc(&self.counters.iotlb_misses);
                    let mut tables = ShadowTables {
                        pages: &shadow.pages,
                        last: (0, 0),
                    };
                    match self.layout.walk_tables(0, gpa, &mut tables) {
                        Ok(leaf) if leaf.readable && (leaf.writable || !write) => {
                            self.note_leaf(&leaf);
                            caches.iotlb.insert(iotlb::Entry {
                                gfn,
                                pfn: leaf.pa >> 12,
                                writable: leaf.writable,
                                token: None,
                            });
                            leaf.pa >> 12
                        }
                        Ok(_) | Err(WalkError::NotMapped | WalkError::Mmio) => return Err(EFAULT),
                        Err(WalkError::BadLayout | WalkError::BadAddress) => return Err(EINVAL),
                        Err(WalkError::Read(never)) => match never {},
                    }
                }
            }
        };
        // The copy goes through the pin behind the GPA, which the
        // translation must agree with.
        let (pins, page) = shadow.pin_of(gpa).ok_or(EFAULT)?;
        if pins.pfn(page) != Some(pfn) {
            return Err(EIO);
        }
        let offset = (gpa & 0xfff) as usize;
        match dir {
            DmaDirection::Read => pins.copy_from(page, offset, buf),
            DmaDirection::Write => pins.copy_to(page, offset, buf),
        }
    }
}

impl Domain {
    /// Faults `gfn` in through `fd`: from the workqueue on behalf of the
    /// attaching process with `KTI_ATTACH_FAULT_WQ`, else as the current
    /// task.
    pub fn fault(&self, fd: &TdpFdRef, gfn: u64, access: u32) -> Result {
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
