// SPDX-License-Identifier: GPL-2.0
//! The shadow table: what it maps, the walker reads back.

use kvm_tdp_fd_logic::pte::WalkError;
use kvm_tdp_fd_logic::shadow::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// Table pages in a map; handle `h` lives at PA 0x10_0000 + h * 4K.
#[derive(Default)]
struct Mem {
    tables: Vec<[u64; 512]>,
    children: HashMap<(usize, usize), usize>,
    limit: Option<usize>,
}

impl Mem {
    fn new() -> Self {
        let mut m = Mem::default();
        m.alloc().unwrap();
        m
    }
    fn read(&self, pa: u64, i: usize) -> Result<u64, ()> {
        let h = ((pa - 0x10_0000) >> 12) as usize;
        self.tables.get(h).map(|t| t[i]).ok_or(())
    }
}

impl Store for Mem {
    type Error = ();
    fn alloc(&mut self) -> Result<usize, ()> {
        if self.limit == Some(self.tables.len()) {
            return Err(());
        }
        self.tables.push([0; 512]);
        Ok(self.tables.len() - 1)
    }
    fn pa(&self, t: usize) -> u64 {
        0x10_0000 + ((t as u64) << 12)
    }
    fn get(&self, t: usize, i: usize) -> u64 {
        self.tables[t][i]
    }
    fn set(&mut self, t: usize, i: usize, e: u64) {
        self.tables[t][i] = e;
    }
    fn child(&self, t: usize, i: usize) -> Option<usize> {
        self.children.get(&(t, i)).copied()
    }
    fn set_child(&mut self, t: usize, i: usize, c: usize) {
        self.children.insert((t, i), c);
    }
}

fn walk(m: &Mem, gpa: u64) -> Result<(u64, bool), WalkError<()>> {
    layout()
        .walk(m.pa(0), gpa, |t, i| m.read(t, i))
        .map(|l| (l.pa, l.writable))
}

#[test]
fn maps_and_refuses_bad_or_repeated_gpas() {
    let mut m = Mem::new();
    assert_eq!(map(&mut m, 0x4000_0000, 0x7_0000_0000, true), Ok(()));
    assert_eq!(map(&mut m, 0x4000_1000, 0x7_0000_5000, false), Ok(()));
    assert_eq!(walk(&m, 0x4000_0000), Ok((0x7_0000_0000, true)));
    assert_eq!(walk(&m, 0x4000_1000), Ok((0x7_0000_5000, false)));
    assert_eq!(walk(&m, 0x4000_2000), Err(WalkError::NotMapped));
    assert_eq!(
        map(&mut m, 0x4000_1000, 0x1000, true),
        Err(MapError::Exists)
    );
    assert_eq!(
        map(&mut m, 0x4000_0800, 0x1000, true),
        Err(MapError::BadAddress)
    );
    assert_eq!(
        map(&mut m, 1 << 48, 0x1000, true),
        Err(MapError::BadAddress)
    );
    // Root, one table at each of levels 3, 2 and 1.
    assert_eq!(m.tables.len(), 4);
    assert!(unmap(&mut m, 0x4000_1000));
    assert!(!unmap(&mut m, 0x4000_1000));
    assert!(!unmap(&mut m, 0x8000_0000));
    assert_eq!(walk(&m, 0x4000_1000), Err(WalkError::NotMapped));
    assert_eq!(walk(&m, 0x4000_0000), Ok((0x7_0000_0000, true)));
    assert_eq!(map(&mut m, 0x4000_1000, 0x1000, true), Ok(()));
}

#[test]
fn allocation_failure_leaves_no_partial_mapping() {
    let mut m = Mem::new();
    m.limit = Some(2);
    assert_eq!(
        map(&mut m, 0x4000_0000, 0x1000, true),
        Err(MapError::Alloc(()))
    );
    assert_eq!(walk(&m, 0x4000_0000), Err(WalkError::NotMapped));
    m.limit = None;
    assert_eq!(map(&mut m, 0x4000_0000, 0x1000, true), Ok(()));
    assert_eq!(walk(&m, 0x4000_0000), Ok((0x1000, true)));
}

#[test]
fn table_page_model_matches_a_contiguous_population() {
    for pages in [1u64, 511, 512, 513, 262_144] {
        let mut m = Mem::new();
        for p in 0..pages {
            map(&mut m, 0x4000_0000 + (p << 12), p << 12, true).unwrap();
        }
        assert_eq!(
            m.tables.len() as u64,
            table_pages_for(pages),
            "{pages} pages"
        );
    }
}

proptest! {
    /// Whatever is mapped walks back to what was mapped, and nothing else
    /// walks to anything.
    #[test]
    fn walks_back_what_was_mapped(gfns in prop::collection::hash_set(0u64..(1 << 22), 1..64),
                                  probe in 0u64..(1 << 22)) {
        let mut m = Mem::new();
        for &g in &gfns {
            prop_assert_eq!(map(&mut m, g << 12, (g + 7) << 12, g % 2 == 0), Ok(()));
        }
        for &g in &gfns {
            prop_assert_eq!(walk(&m, g << 12), Ok(((g + 7) << 12, g % 2 == 0)));
        }
        if !gfns.contains(&probe) {
            prop_assert_eq!(walk(&m, probe << 12), Err(WalkError::NotMapped));
        }
    }
}
