// SPDX-License-Identifier: GPL-2.0

//! A shadow I/O page table, built the way VFIO's type1 driver builds one.
//!
//! The alternative to sharing KVM's table: pin the guest's memory and map
//! it, 4K page by 4K page, into a table the importer owns, in x86-64 (NPT)
//! format so that the same walker ([`crate::pte::Layout::walk`]) translates
//! through it.  Nothing in it ever changes behind the importer's back, so
//! it needs no invalidations, at the price of pinning everything and of
//! its own page-table pages: the comparison `make bench` measures.
//!
//! The table's pages live in a [`Store`]: kernel pages in the module, a
//! map in the host tests.  This file depends on `core` only.

use crate::pte::{Format, Layout, ENTRIES, MAX_LEVELS, NPT_P, NPT_RW, NPT_US, PAGE_SHIFT};

/// Levels of a shadow table (4-level paging: 48-bit GPAs).
pub const LEVELS: u32 = 4;

/// Physical address bits 51:12 of an entry.
pub const PFN_MASK: u64 = ((1u64 << 52) - 1) & !((1u64 << PAGE_SHIFT) - 1);

/// The layout a walker uses for a shadow table: NPT format, 4 levels, 4K
/// leaves only, no reserved bits beyond the address width.
pub fn layout() -> Layout {
    Layout {
        format: Format::Npt,
        levels: LEVELS,
        max_huge_level: 1,
        pfn_mask: PFN_MASK,
        present_mask: 0,
        present_value: 0,
        mmio_mask: 0,
        mmio_value: 0,
        rsvd: [[0; MAX_LEVELS]; 2],
    }
}

/// The entry linking the table page at `pa`: present, writable, user (the
/// leaves decide the permissions).
pub fn table_entry(pa: u64) -> u64 {
    (pa & PFN_MASK) | NPT_P | NPT_RW | NPT_US
}

/// The 4K leaf mapping the page at `pa`.
pub fn leaf_entry(pa: u64, writable: bool) -> u64 {
    (pa & PFN_MASK) | NPT_P | NPT_US | if writable { NPT_RW } else { 0 }
}

/// The pages of a shadow table, identified by handles; handle 0 is the
/// root, allocated with the store.
pub trait Store {
    /// Allocation failure.
    type Error;
    /// Allocates a zeroed table page; returns its handle.
    fn alloc(&mut self) -> Result<usize, Self::Error>;
    /// The physical address of table `t`.
    fn pa(&self, t: usize) -> u64;
    /// Entry `i` of table `t`.
    fn get(&self, t: usize, i: usize) -> u64;
    /// Sets entry `i` of table `t`.
    fn set(&mut self, t: usize, i: usize, entry: u64);
    /// The handle of the table entry `i` of table `t` links, if any.
    fn child(&self, t: usize, i: usize) -> Option<usize>;
    /// Records that entry `i` of table `t` links table `child`.
    fn set_child(&mut self, t: usize, i: usize, child: usize);
}

/// Why a page could not be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError<E> {
    /// The GPA is already mapped (or not page aligned, or beyond 48 bits).
    Exists,
    /// The GPA is not a 4K-aligned address below 2^48.
    BadAddress,
    /// A table page could not be allocated.
    Alloc(E),
}

/// Maps the 4K page at `gpa` to the page at `pa` in the table of `store`,
/// allocating the table pages on the way.  A new table page is linked only
/// once its entries are set, and the leaf is set last, so a concurrent
/// walker sees either no mapping or the whole path.
pub fn map<S: Store>(
    store: &mut S,
    gpa: u64,
    pa: u64,
    writable: bool,
) -> Result<(), MapError<S::Error>> {
    if gpa % (1 << PAGE_SHIFT) != 0 || gpa >> (PAGE_SHIFT + 9 * LEVELS) != 0 {
        return Err(MapError::BadAddress);
    }
    let mut t = 0;
    for level in (2..=LEVELS).rev() {
        let i = Layout::index(gpa, level);
        t = match store.child(t, i) {
            Some(child) => child,
            None => {
                let child = store.alloc().map_err(MapError::Alloc)?;
                store.set_child(t, i, child);
                let entry = table_entry(store.pa(child));
                store.set(t, i, entry);
                child
            }
        };
    }
    let i = Layout::index(gpa, 1);
    if store.get(t, i) != 0 {
        return Err(MapError::Exists);
    }
    store.set(t, i, leaf_entry(pa, writable));
    Ok(())
}

/// Unmaps the 4K page at `gpa`; whether it was mapped.  Table pages stay
/// (they are freed with the table).
pub fn unmap<S: Store>(store: &mut S, gpa: u64) -> bool {
    if gpa % (1 << PAGE_SHIFT) != 0 || gpa >> (PAGE_SHIFT + 9 * LEVELS) != 0 {
        return false;
    }
    let mut t = 0;
    for level in (2..=LEVELS).rev() {
        match store.child(t, Layout::index(gpa, level)) {
            Some(child) => t = child,
            None => return false,
        }
    }
    let i = Layout::index(gpa, 1);
    let mapped = store.get(t, i) != 0;
    store.set(t, i, 0);
    mapped
}

/// Table pages a fully populated table needs for `pages` contiguous 4K
/// pages starting at a 1G-aligned GPA: the model `make bench` checks its
/// measurement against.
pub fn table_pages_for(pages: u64) -> u64 {
    let per = ENTRIES as u64;
    let l1 = pages.div_ceil(per);
    let l2 = l1.div_ceil(per);
    let l3 = l2.div_ceil(per);
    l1 + l2 + l3 + 1
}
