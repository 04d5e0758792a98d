// SPDX-License-Identifier: GPL-2.0

//! The paging-structure cache (PSC) of a hardware-faithful attachment
//! (`KTI_ATTACH_HW`).
//!
//! An IOMMU does not only cache leaf translations (its IOTLB): it also
//! caches the non-leaf entries of its walks, so that the next walk of a
//! nearby address starts from a cached table pointer instead of the root.
//! Such a walk reads a table the walker reached long ago, with no lock and
//! no RCU read section of the table's owner spanning both walks: the table
//! must still be the owner's when it is read, and the only thing that
//! guarantees that is the owner telling the IOMMU (an invalidation) before
//! it frees or repurposes the table.  This cache models exactly that, so an
//! importer in this mode checks the invalidation contract for page tables,
//! not only for leaves.
//!
//! For every table level below the root there is a direct-mapped cache,
//! fixed in size (so that `invalidate`, which runs under KVM's `mmu_lock`,
//! never allocates), keyed by the GPA prefix the table translates and
//! giving the table's physical address and the permissions of the entries
//! above it.  A walk ([`Psc::walk`]) starts from the deepest cached table
//! for the GPA (else the root), caches every table pointer it reads on the
//! way down, and returns the leaf; entries leave the cache only when a
//! flush ([`Psc::flush`], from `invalidate`) covers part of the GPA range
//! the table translates, or when another table takes their slot.  A walk
//! that finds nothing from a cached table does not drop it either: nothing
//! but an invalidation tells the walker that a table it reached is gone.
//!
//! This file depends on `core` only, so it is compiled both into the module
//! and into the host-side unit tests (`logic/`).

use crate::pte::{ByPa, Layout, Leaf, Start, Tables, WalkError, PAGE_SHIFT};

/// Entries per level.
pub const PSC_SIZE: usize = 32;
/// Table levels cached: 1 (tables of 4K leaves) to 4, every level below
/// the root of a 5-level table.
pub const PSC_LEVELS: u32 = 4;
/// Slots of a cache: `PSC_SIZE` per level.
pub const PSC_SLOTS: usize = PSC_SIZE * PSC_LEVELS as usize;

/// A cached pointer to a table: its physical address `T`, or a handle that
/// stands for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<T = u64> {
    /// GPA bits above what the table translates (`gpa >> span_shift`).
    pub prefix: u64,
    /// The table.
    pub table: T,
    /// Reads allowed by every entry above the table.
    pub readable: bool,
    /// Writes allowed by every entry above the table.
    pub writable: bool,
}

/// One slot of the cache.
pub type Slot<T = u64> = Option<Entry<T>>;

/// What the cache has done since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Walks that started from a cached table.
    pub hits: u64,
    /// Walks that started from the root.
    pub misses: u64,
    /// Table pointers cached by walks.
    pub fills: u64,
    /// Entries dropped by flushes.
    pub flushes: u64,
}

/// The cache, over `PSC_SLOTS` slots of storage `S` (a heap allocation
/// in the kernel).
pub struct Psc<S> {
    slots: S,
    /// What it has done.
    pub stats: Stats,
}

/// log2 of the bytes a table at `level` translates (2M for level 1).
pub fn span_shift(level: u32) -> u32 {
    PAGE_SHIFT + 9 * level
}

impl<T: Copy, S: core::ops::DerefMut<Target = [Slot<T>]>> Psc<S> {
    /// A cache over `slots`, emptied.
    ///
    /// # Panics
    ///
    /// If `slots` does not hold exactly `PSC_SLOTS` slots.
    pub fn with_slots(mut slots: S) -> Self {
        assert_eq!(slots.len(), PSC_SLOTS);
        slots.fill(None);
        Self {
            slots,
            stats: Stats::default(),
        }
    }

    /// The slot of the table at `level` (1..=`PSC_LEVELS`) for `prefix`.
    fn slot(level: u32, prefix: u64) -> usize {
        (level as usize - 1) * PSC_SIZE + (prefix as usize) % PSC_SIZE
    }

    /// The cached table at `level` that translates `gpa`.
    pub fn lookup(&self, level: u32, gpa: u64) -> Option<Entry<T>> {
        if !(1..=PSC_LEVELS).contains(&level) {
            return None;
        }
        let prefix = gpa >> span_shift(level);
        self.slots[Self::slot(level, prefix)].filter(|e| e.prefix == prefix)
    }

    /// Caches `table`, at `level`, as the table that translates `gpa`,
    /// replacing whatever shared its slot.
    pub fn insert(&mut self, level: u32, gpa: u64, table: T, readable: bool, writable: bool) {
        if !(1..=PSC_LEVELS).contains(&level) {
            return;
        }
        let prefix = gpa >> span_shift(level);
        self.slots[Self::slot(level, prefix)] = Some(Entry {
            prefix,
            table,
            readable,
            writable,
        });
    }

    /// The deepest cached table for `gpa` below a root at level `levels`,
    /// with its level.
    pub fn deepest(&self, gpa: u64, levels: u32) -> Option<(u32, Entry<T>)> {
        (1..levels.min(PSC_LEVELS + 1)).find_map(|l| self.lookup(l, gpa).map(|e| (l, e)))
    }

    /// Drops every cached table whose GPA range overlaps `[start, start +
    /// size)`, where `(0, u64::MAX)` is everything; returns how many were
    /// dropped.
    pub fn flush(&mut self, start: u64, size: u64) -> u64 {
        if size == 0 {
            return 0;
        }
        let whole = start == 0 && size == u64::MAX;
        // Last byte touched, inclusive; saturating for ranges at the top.
        let last = start.saturating_add(size - 1);
        let mut dropped = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(e) = slot {
                let shift = span_shift((i / PSC_SIZE) as u32 + 1);
                let first = e.prefix << shift;
                let end = first | ((1u64 << shift) - 1);
                if whole || (first <= last && end >= start) {
                    *slot = None;
                    dropped += 1;
                }
            }
        }
        self.stats.flushes += dropped;
        dropped
    }

    /// Number of cached tables.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether no table is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Walks the table with `layout` rooted at `root` for `gpa` as an IOMMU
    /// with this cache does: from the deepest cached table for `gpa` (else
    /// the root), reading tables through `tables` and caching every table
    /// it reaches.  Permissions are those of every level, the cached ones
    /// included.
    pub fn walk_tables<W: Tables<Table = T>>(
        &mut self,
        layout: &Layout,
        root: T,
        gpa: u64,
        tables: &mut W,
    ) -> Result<Leaf, WalkError<W::Error>> {
        layout.check(gpa)?;
        let start = match self.deepest(gpa, layout.levels) {
            Some((level, e)) => {
                self.stats.hits += 1;
                Start {
                    table: e.table,
                    level,
                    readable: e.readable,
                    writable: e.writable,
                }
            }
            None => {
                self.stats.misses += 1;
                Start {
                    table: root,
                    level: layout.levels,
                    readable: true,
                    writable: true,
                }
            }
        };
        layout.walk_from(start, gpa, tables, |t| {
            self.insert(t.level, gpa, t.table, t.readable, t.writable);
            self.stats.fills += 1;
        })
    }
}

impl<S: core::ops::DerefMut<Target = [Slot]>> Psc<S> {
    /// [`Psc::walk_tables`] of the table at physical address `root`,
    /// reading entries with `read(table_pa, index)`.
    pub fn walk<E>(
        &mut self,
        layout: &Layout,
        root: u64,
        gpa: u64,
        read: impl FnMut(u64, usize) -> Result<u64, E>,
    ) -> Result<Leaf, WalkError<E>> {
        self.walk_tables(layout, root, gpa, &mut ByPa(read))
    }
}
