// SPDX-License-Identifier: GPL-2.0
//! The paging-structure cache: what a flush drops, and walks through it
//! against a table that KVM-like operations change, reporting what they
//! took away.

use kvm_tdp_fd_logic::psc::*;
use kvm_tdp_fd_logic::pte::*;
use proptest::prelude::*;
use std::collections::HashMap;

const PFN_MASK: u64 = ((1u64 << 52) - 1) & !0xfff;
const KVM_PRESENT: u64 = 1 << 11;
/// What KVM leaves in the entries of a table it removed (FROZEN_SPTE).
const FROZEN: u64 = (1 << 63) | 0x5a0;
const G: u64 = 1 << 30;
const M2: u64 = 2 << 20;

fn layout(levels: u32) -> Layout {
    Layout {
        format: Format::Npt,
        levels,
        max_huge_level: 2,
        pfn_mask: PFN_MASK,
        present_mask: KVM_PRESENT,
        present_value: KVM_PRESENT,
        mmio_mask: 0,
        mmio_value: 0,
        rsvd: [[0; 5]; 2],
    }
}

fn new_psc() -> Psc<Vec<Slot>> {
    Psc::with_slots(vec![None; PSC_SLOTS])
}

fn table_entry(pa: u64, write: bool) -> u64 {
    pa | KVM_PRESENT | NPT_P | NPT_US | if write { NPT_RW } else { 0 }
}

fn leaf_entry(pa: u64, level: u32) -> u64 {
    table_entry(pa, true) | if level > 1 { PS } else { 0 }
}

#[test]
fn a_flush_drops_every_table_whose_range_it_touches() {
    let mut p = new_psc();
    let gpa = G + 5 * M2 + 0x3000;
    // Level-1 tables of two neighbouring 2M regions.
    p.insert(1, gpa, 0x1000, true, true);
    p.insert(1, G + 6 * M2, 0x9000, true, true);
    // Next to them, not in them: nothing.
    assert_eq!(p.flush(G + 4 * M2, M2), 0);
    assert_eq!(p.flush(G + 7 * M2, 0x1000), 0);
    assert_eq!(p.flush(gpa, 0), 0);
    // Ranges ending exactly at a table's first byte, starting past its last.
    assert_eq!(p.flush(0, G + 5 * M2), 0);
    assert_eq!(p.flush(G + 7 * M2, G), 0);
    // One byte of a 4K page in region 6: its table, not region 5's.
    assert_eq!(p.flush(G + 7 * M2 - 1, 1), 1);
    assert_eq!(p.lookup(1, gpa).map(|e| e.table), Some(0x1000));
    assert_eq!(p.lookup(1, G + 6 * M2), None);
    // The tables above translate every byte below them: any flush in their
    // range drops them, wherever their level-1 tables are.
    for level in 2..=PSC_LEVELS {
        p.insert(level, gpa, 0x1000 * u64::from(level), true, true);
    }
    assert_eq!(p.len(), 4);
    // Another 1G region: the level-3 and level-4 tables translate it.
    assert_eq!(p.flush(2 * G, 0x1000), 2);
    assert_eq!(p.lookup(2, gpa).map(|e| e.table), Some(0x2000));
    assert_eq!(p.lookup(3, gpa), None);
    assert_eq!(p.deepest(gpa, 5).map(|(l, _)| l), Some(1));
    // 512G away: only the level-4 table (256T) translates it.
    p.insert(4, gpa, 0x4000, true, true);
    assert_eq!(p.flush(gpa + 512 * G, 1), 1);
    assert_eq!(p.lookup(4, gpa), None);
    // The whole table.
    assert_eq!(p.flush(0, u64::MAX), 2);
    assert!(p.is_empty());
    // A range running to the top of the address space.
    p.insert(4, u64::MAX, 0x1000, true, true);
    assert_eq!(p.flush(u64::MAX - 0xfff, 0x1000), 1);
    assert_eq!(p.stats.flushes, 7);
}

#[test]
fn levels_out_of_range_are_never_cached() {
    let mut p = new_psc();
    p.insert(0, G, 0x1000, true, true);
    p.insert(PSC_LEVELS + 1, G, 0x1000, true, true);
    assert!(p.is_empty());
    assert_eq!(p.lookup(0, G), None);
    // A 4-level table's root (level 4) is never looked up.
    p.insert(4, G, 0x1000, true, true);
    assert_eq!(p.deepest(G, 4), None);
    assert_eq!(p.deepest(G, 5).map(|(l, _)| l), Some(4));
}

#[test]
fn colliding_tables_replace_each_other() {
    let mut p = new_psc();
    p.insert(1, G, 0x1000, true, true);
    p.insert(1, G + PSC_SIZE as u64 * M2, 0x2000, true, true);
    assert_eq!(p.lookup(1, G), None);
    assert_eq!(p.lookup(1, G + PSC_SIZE as u64 * M2).unwrap().table, 0x2000);
    assert_eq!(p.len(), 1);
}

/// A KVM-like table: pages by physical address, never reused, so that a
/// read of a freed table is an error ("use after free").
struct Tdp {
    layout: Layout,
    root: u64,
    tables: HashMap<u64, [u64; 512]>,
    next: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Freed(u64);

impl Tdp {
    fn new(levels: u32) -> Self {
        let mut t = Tdp {
            layout: layout(levels),
            root: 0,
            tables: HashMap::new(),
            next: 0x1_0000_0000,
        };
        t.root = t.alloc();
        t
    }

    fn alloc(&mut self) -> u64 {
        self.next += 0x1000;
        self.tables.insert(self.next, [0; 512]);
        self.next
    }

    fn read(&self, table: u64, i: usize) -> Result<u64, Freed> {
        self.tables.get(&table).map(|t| t[i]).ok_or(Freed(table))
    }

    fn entry(&mut self, table: u64, i: usize) -> &mut u64 {
        &mut self.tables.get_mut(&table).unwrap()[i]
    }

    /// The table holding the entry for `gpa` at `level`, creating tables
    /// on the way; `None` if a leaf above `level` is in the way.
    fn table_at(&mut self, gpa: u64, level: u32) -> Option<u64> {
        let mut table = self.root;
        for l in (level + 1..=self.layout.levels).rev() {
            let i = Layout::index(gpa, l);
            let e = self.read(table, i).unwrap();
            table = match self.layout.decode(e, l, gpa) {
                Step::Table { pa, .. } => pa,
                Step::Leaf(_) => return None,
                Step::NotPresent => {
                    let t = self.alloc();
                    *self.entry(table, i) = table_entry(t, true);
                    t
                }
            };
        }
        Some(table)
    }

    /// The table holding the entry for `gpa` at `level`, if there is one.
    fn find(&self, gpa: u64, level: u32) -> Option<u64> {
        let mut table = self.root;
        for l in (level + 1..=self.layout.levels).rev() {
            match self
                .layout
                .decode(self.read(table, Layout::index(gpa, l)).ok()?, l, gpa)
            {
                Step::Table { pa, .. } => table = pa,
                _ => return None,
            }
        }
        Some(table)
    }

    /// Frees the table at `pa` (at `level`) and every table below it, as
    /// KVM does: its entries frozen first, then the page gone.
    fn free(&mut self, pa: u64, level: u32) {
        for i in 0..512 {
            let e = self.read(pa, i).unwrap();
            if let Step::Table { pa: child, .. } = self.layout.decode(e, level, 0) {
                self.free(child, level - 1);
            }
            *self.entry(pa, i) = FROZEN;
        }
        self.tables.remove(&pa);
    }

    /// Applies `op`; returns the range KVM reports, if any.
    fn apply(&mut self, op: &Op) -> Option<(u64, u64)> {
        let levels = self.layout.levels;
        match *op {
            Op::Map(gpa, level) => {
                let gpa = gpa & !(Layout::page_size(level) - 1);
                let table = self.table_at(gpa, level)?;
                let i = Layout::index(gpa, level);
                let old = self.read(table, i).unwrap();
                // Mapping where a table was (a collapse) frees the table.
                let report = match self.layout.decode(old, level, gpa) {
                    Step::Table { pa, .. } => {
                        self.free(pa, level - 1);
                        Some((gpa, Layout::page_size(level)))
                    }
                    Step::Leaf(_) => Some((gpa, Layout::page_size(level))),
                    Step::NotPresent => None,
                };
                // Backing pages: a function of the GPA and a generation.
                self.next += 0x20_0000;
                let page = (self.next + 0x1_0000_0000) & !(Layout::page_size(level) - 1);
                *self.entry(table, i) = leaf_entry(page, level);
                report
            }
            Op::Zap(gpa, level) => {
                // The entry at `level` for `gpa`, leaf or table, zapped.
                let level = level.min(levels - 1);
                let table = self.find(gpa, level)?;
                let i = Layout::index(gpa, level);
                let old = self.read(table, i).unwrap();
                let base = gpa & !(Layout::page_size(level) - 1);
                match self.layout.decode(old, level, gpa) {
                    Step::Table { pa, .. } => self.free(pa, level - 1),
                    Step::Leaf(_) => {}
                    Step::NotPresent => return None,
                }
                *self.entry(table, i) = 0;
                Some((base, Layout::page_size(level)))
            }
            Op::Split(gpa) => {
                // A 2M leaf becomes a table of its 512 4K pages: the same
                // translations, so nothing to report.
                let table = self.find(gpa, 2)?;
                let i = Layout::index(gpa, 2);
                let old = self.read(table, i).unwrap();
                if let Step::Leaf(leaf) = self.layout.decode(old, 2, 0) {
                    let t = self.alloc();
                    for j in 0..512u64 {
                        *self.entry(t, j as usize) = leaf_entry(leaf.pa + (j << 12), 1);
                    }
                    *self.entry(table, i) = table_entry(t, true);
                }
                None
            }
            Op::Teardown => {
                for i in 0..512 {
                    let e = self.read(self.root, i).unwrap();
                    if let Step::Table { pa, .. } = self.layout.decode(e, levels, 0) {
                        self.free(pa, levels - 1);
                    }
                    *self.entry(self.root, i) = 0;
                }
                Some((0, u64::MAX))
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Map a leaf of `level` (1 or 2) at the GPA.
    Map(u64, u32),
    /// Zap the entry at `level` for the GPA.
    Zap(u64, u32),
    /// Split the 2M leaf at the GPA.
    Split(u64),
    /// The mm's exit: everything.
    Teardown,
}

/// GPAs in a few 2M regions of two 1G regions.
fn gpa() -> impl Strategy<Value = u64> {
    (0u64..2, 0u64..4, 0u64..512).prop_map(|(g, m, p)| (1 + g) * G + m * M2 + (p << 12))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (gpa(), 1u32..3).prop_map(|(g, l)| Op::Map(g, l)),
        3 => (gpa(), 1u32..5).prop_map(|(g, l)| Op::Zap(g, l)),
        1 => gpa().prop_map(Op::Split),
        1 => Just(Op::Teardown),
    ]
}

/// Runs `ops`, flushing the PSC with each report unless `drop_report`
/// says otherwise, and walks `probes` through it after each: the first
/// walk that differs from a walk from the root.
fn run(
    levels: u32,
    ops: &[Op],
    probes: &[u64],
    drop_report: impl Fn(u64, u64) -> bool,
) -> Result<(), String> {
    let mut tdp = Tdp::new(levels);
    let mut psc = new_psc();
    for (n, op) in ops.iter().enumerate() {
        if let Some((start, size)) = tdp.apply(op) {
            if !drop_report(start, size) {
                psc.flush(start, size);
            }
        }
        for &g in probes {
            let want = tdp.layout.walk(tdp.root, g, |t, i| tdp.read(t, i));
            let got = psc.walk(&tdp.layout, tdp.root, g, |t, i| tdp.read(t, i));
            if got != want {
                return Err(format!(
                    "after op {n} {op:?}: walk of {g:#x}: {got:?}, expected {want:?}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn walks_fill_then_hit_and_keep_permissions() {
    for levels in [4, 5] {
        let mut tdp = Tdp::new(levels);
        tdp.apply(&Op::Map(G + 0x5000, 1));
        tdp.apply(&Op::Map(G + 0x6000, 1));
        // Write-protect the level-2 entry above them.
        let t = tdp.find(G, 2).unwrap();
        *tdp.entry(t, Layout::index(G, 2)) &= !NPT_RW;
        let mut psc = new_psc();
        let l = tdp.layout;
        let a = psc
            .walk(&l, tdp.root, G + 0x5000, |t, i| tdp.read(t, i))
            .unwrap();
        assert!(a.readable && !a.writable);
        assert_eq!(
            psc.stats,
            Stats {
                hits: 0,
                misses: 1,
                fills: u64::from(levels) - 1,
                flushes: 0
            }
        );
        assert_eq!(psc.len(), levels as usize - 1);
        // The next page starts from the cached level-1 table: one read, and
        // the permissions above it still apply.
        let mut reads = 0;
        let b = psc
            .walk(&l, tdp.root, G + 0x6000, |t, i| {
                reads += 1;
                tdp.read(t, i)
            })
            .unwrap();
        assert_eq!(reads, 1);
        assert!(b.readable && !b.writable);
        assert_eq!(
            b,
            l.walk(tdp.root, G + 0x6000, |t, i| tdp.read(t, i)).unwrap()
        );
        assert_eq!(psc.stats.hits, 1);
        // Nothing mapped there: from the cache too, and the cache stays.
        assert_eq!(
            psc.walk(&l, tdp.root, G + 0x7000, |t, i| tdp.read(t, i)),
            Err(WalkError::NotMapped)
        );
        assert_eq!(psc.len(), levels as usize - 1);
        // Bad layouts and addresses as the plain walk has them.
        let mut bad = l;
        bad.levels = 3;
        assert_eq!(
            psc.walk(&bad, tdp.root, G, |t, i| tdp.read(t, i)),
            Err(WalkError::BadLayout)
        );
        assert_eq!(
            psc.walk(&l, tdp.root, 1 << (12 + 9 * levels), |t, i| tdp.read(t, i)),
            Err(WalkError::BadAddress)
        );
    }
}

/// What the selftest's collapse does: 4K leaves under a cached table, the
/// table replaced by a 2M leaf.  Reported, the walk finds the huge page;
/// unreported, it reads the freed table.
#[test]
fn a_collapse_must_be_reported_for_its_table() {
    let ops = [Op::Map(G + 0x5000, 1), Op::Map(G, 2)];
    assert_eq!(run(4, &ops, &[G + 0x5000], |_, _| false), Ok(()));
    let err = run(4, &ops, &[G + 0x5000], |_, _| true).unwrap_err();
    assert!(err.contains("Read(Freed("), "{err}");
}

/// A table freed with no leaf under it: only its own report covers it.
#[test]
fn an_empty_table_freed_must_be_reported() {
    let ops = [
        Op::Map(G + 0x5000, 1),
        Op::Zap(G + 0x5000, 1),
        Op::Zap(G + 0x5000, 2),
    ];
    assert_eq!(run(5, &ops, &[G + 0x5000], |_, _| false), Ok(()));
    // The table's report (2M) dropped; the leaf's (4K) was flushed.
    let err = run(5, &ops, &[G + 0x5000], |_, size| size == M2).unwrap_err();
    assert!(err.contains("Read(Freed("), "{err}");
}

/// The mm's exit: (0, -1) must drop every cached table.
#[test]
fn teardown_drops_everything() {
    let ops = [Op::Map(G + 0x5000, 1), Op::Map(2 * G, 2), Op::Teardown];
    assert_eq!(run(5, &ops, &[G + 0x5000, 2 * G], |_, _| false), Ok(()));
    let err = run(5, &ops, &[G + 0x5000, 2 * G], |s, _| s == 0).unwrap_err();
    assert!(err.contains("Read(Freed("), "{err}");
}

proptest! {
    /// With every report flushed, a walk through the cache always finds
    /// what a walk from the root finds, and never reads a freed table.
    #[test]
    fn reported_changes_never_leave_a_stale_table(
        levels in 4u32..6,
        ops in proptest::collection::vec(op(), 1..60),
        probes in proptest::collection::vec(gpa(), 1..8),
    ) {
        prop_assert_eq!(run(levels, &ops, &probes, |_, _| false), Ok(()));
    }
}
