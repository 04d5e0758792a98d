// SPDX-License-Identifier: GPL-2.0
//! Walks of NPT and EPT tables built in memory.

use kvm_tdp_fd_logic::pte::*;
use std::collections::HashMap;

const PFN_MASK: u64 = ((1u64 << 52) - 1) & !0xfff;
const KVM_PRESENT: u64 = 1 << 11;

fn layout(format: Format, levels: u32) -> Layout {
    let mut rsvd = [[0u64; 5]; 2];
    // As KVM reports for NPT/EPT: bits 51:MAXPHYADDR reserved, and for a
    // large page the low address bits below its alignment.
    for level in 0..5 {
        rsvd[0][level] = 0x000f_0000_0000_0000;
        rsvd[1][level] = 0x000f_0000_0000_0000;
    }
    rsvd[1][1] |= 0x1f_e000; // 2M: bits 20:13
    rsvd[1][2] |= 0x3fff_e000; // 1G: bits 29:13
    Layout {
        format,
        levels,
        max_huge_level: 3,
        pfn_mask: PFN_MASK,
        // KVM's MMU-present bit (SPTE_MMU_PRESENT_MASK), as the metadata
        // reports it.
        present_mask: KVM_PRESENT,
        present_value: KVM_PRESENT,
        mmio_mask: 0,
        mmio_value: 0,
        rsvd,
    }
}

#[derive(Default)]
struct Mem {
    tables: HashMap<u64, [u64; 512]>,
    next: u64,
}

impl Mem {
    fn table(&mut self) -> u64 {
        self.next += 0x1000;
        let pa = 0x1000_0000 + self.next;
        self.tables.insert(pa, [0; 512]);
        pa
    }
    fn set(&mut self, table: u64, idx: usize, v: u64) {
        self.tables.get_mut(&table).unwrap()[idx] = v;
    }
    fn read(&self, table: u64, idx: usize) -> Result<u64, ()> {
        self.tables.get(&table).map(|t| t[idx]).ok_or(())
    }
}

fn perms(format: Format, write: bool) -> u64 {
    match format {
        Format::Npt => KVM_PRESENT | NPT_P | NPT_US | if write { NPT_RW } else { 0 },
        Format::Ept => KVM_PRESENT | EPT_R | EPT_X | if write { EPT_W } else { 0 },
    }
}

/// Builds the path to `gpa` down to `leaf_level`, and returns the root and
/// the table holding the leaf.
fn build(m: &mut Mem, format: Format, levels: u32, gpa: u64, leaf_level: u32) -> (u64, u64) {
    let root = m.table();
    let mut table = root;
    let mut level = levels;
    while level > leaf_level {
        let next = m.table();
        m.set(table, Layout::index(gpa, level), next | perms(format, true));
        table = next;
        level -= 1;
    }
    (root, table)
}

fn check_leaf(format: Format, levels: u32, leaf_level: u32) {
    let l = layout(format, levels);
    let mut m = Mem::default();
    let gpa = 0x4000_0000u64 + 0x12_3000 + 0x5000 * u64::from(leaf_level == 1);
    let (root, table) = build(&mut m, format, levels, gpa, leaf_level);
    let size = Layout::page_size(leaf_level);
    let page = 0x2_0000_0000u64; // aligned for every size
    let ps = if leaf_level > 1 { PS } else { 0 };
    m.set(
        table,
        Layout::index(gpa, leaf_level),
        page | ps | perms(format, true),
    );
    let leaf = l.walk(root, gpa, |t, i| m.read(t, i)).unwrap();
    assert_eq!(leaf.level, leaf_level);
    assert_eq!(leaf.pa, page + ((gpa & (size - 1)) & !0xfff));
    assert!(leaf.readable && leaf.writable);
}

#[test]
fn leaves_at_each_level_both_formats() {
    for format in [Format::Npt, Format::Ept] {
        for levels in [4, 5] {
            for leaf_level in 1..=3 {
                check_leaf(format, levels, leaf_level);
            }
        }
    }
}

#[test]
fn not_present_and_reserved_bits_map_nothing() {
    for format in [Format::Npt, Format::Ept] {
        let l = layout(format, 4);
        let mut m = Mem::default();
        let gpa = 0x1234_5000;
        let (root, table) = build(&mut m, format, 4, gpa, 1);
        let idx = Layout::index(gpa, 1);
        assert_eq!(
            l.walk(root, gpa, |t, i| m.read(t, i)),
            Err(WalkError::NotMapped)
        );
        // KVM's MMIO entries: present-looking, but with reserved bits set.
        m.set(
            table,
            idx,
            0x000f_0000_0000_0000 | 0x5000 | perms(format, true),
        );
        assert_eq!(
            l.walk(root, gpa, |t, i| m.read(t, i)),
            Err(WalkError::NotMapped)
        );
        // KVM's frozen entry (0x5a0) during an update: not present.
        m.set(table, idx, 0x5a0 & !(NPT_P | EPT_R | EPT_W | EPT_X));
        assert_eq!(
            l.walk(root, gpa, |t, i| m.read(t, i)),
            Err(WalkError::NotMapped)
        );
        // A 2M leaf with misaligned address bits is reserved too.
        let (root2, t2) = build(&mut m, format, 4, gpa, 2);
        // (Bit 12 of a large leaf is PAT; bit 13 is reserved.)
        m.set(
            t2,
            Layout::index(gpa, 2),
            0x2_0000_2000 | PS | perms(format, true),
        );
        assert_eq!(
            l.walk(root2, gpa, |t, i| m.read(t, i)),
            Err(WalkError::NotMapped)
        );
    }
}

#[test]
fn permissions_are_those_of_every_level() {
    for format in [Format::Npt, Format::Ept] {
        let l = layout(format, 4);
        let mut m = Mem::default();
        let gpa = 0x8000_0000;
        let (root, table) = build(&mut m, format, 4, gpa, 1);
        m.set(table, Layout::index(gpa, 1), 0x9000 | perms(format, true));
        assert!(l.walk(root, gpa, |t, i| m.read(t, i)).unwrap().writable);
        // Read-only leaf.
        m.set(table, Layout::index(gpa, 1), 0x9000 | perms(format, false));
        let leaf = l.walk(root, gpa, |t, i| m.read(t, i)).unwrap();
        assert!(leaf.readable && !leaf.writable);
        // Writable leaf under a read-only directory entry: read-only.
        m.set(table, Layout::index(gpa, 1), 0x9000 | perms(format, true));
        let l4 = Layout::index(gpa, 4);
        let next = m.read(root, l4).unwrap() & PFN_MASK;
        m.set(root, l4, next | perms(format, false));
        assert!(!l.walk(root, gpa, |t, i| m.read(t, i)).unwrap().writable);
    }
    // NPT without the user bit: not readable by a (user) NPT walk.
    let l = layout(Format::Npt, 4);
    assert_eq!(
        l.decode(0x9000 | KVM_PRESENT | NPT_P | NPT_RW, 1, 0),
        Step::Leaf(Leaf {
            pa: 0x9000,
            level: 1,
            readable: false,
            writable: false,
            entry: 0x9000 | KVM_PRESENT | NPT_P | NPT_RW,
        })
    );
    // EPT execute-only is present but neither readable nor writable.
    let l = layout(Format::Ept, 4);
    assert_eq!(
        l.decode(0x9000 | KVM_PRESENT | EPT_X, 1, 0),
        Step::Leaf(Leaf {
            pa: 0x9000,
            level: 1,
            readable: false,
            writable: false,
            entry: 0x9000 | KVM_PRESENT | EPT_X,
        })
    );
}

#[test]
fn read_errors_and_bad_layouts_propagate() {
    let mut l = layout(Format::Npt, 4);
    assert_eq!(
        l.walk(0x1000, 0, |_, _| Err::<u64, u32>(7)),
        Err(WalkError::Read(7))
    );
    l.levels = 3;
    assert_eq!(
        l.walk(0x1000, 0, |_, _| Ok::<u64, u32>(0)),
        Err(WalkError::BadLayout)
    );
}

#[test]
fn addresses_beyond_the_table_do_not_alias() {
    for format in [Format::Npt, Format::Ept] {
        for levels in [4u32, 5] {
            let l = layout(format, levels);
            let mut m = Mem::default();
            let gpa = 0x4000_1000u64;
            let (root, table) = build(&mut m, format, levels, gpa, 1);
            m.set(table, Layout::index(gpa, 1), 0x9000 | perms(format, true));
            assert_eq!(l.walk(root, gpa, |t, i| m.read(t, i)).unwrap().pa, 0x9000);
            let reach = 12 + 9 * levels;
            // The highest address the table translates is still walked.
            assert!(l.reaches((1u64 << reach) - 1));
            // Any bit above the reach, up to bit 63, is refused: the index
            // of the top level would ignore it and find `gpa`'s page.
            for bit in reach..64 {
                let alias = gpa | (1u64 << bit);
                assert!(!l.reaches(alias));
                assert_eq!(
                    l.walk(root, alias, |t, i| m.read(t, i)),
                    Err(WalkError::BadAddress),
                    "{format:?} {levels} levels: bit {bit}"
                );
            }
        }
    }
}
