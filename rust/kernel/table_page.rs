// SPDX-License-Identifier: GPL-2.0

//! Pages of a page table that software builds, such as an I/O page table.
//!
//! An IOMMU driver (or a sample importer standing in for one) that builds
//! its own translation table keeps it in ordinary kernel pages, which the
//! hardware walker reads by physical address and software through the
//! page itself.  [`TablePage`] is one such page: zeroed when allocated,
//! with a physical address for the entry that links it, and read and
//! written one 64-bit entry at a time with single accesses, so that a
//! concurrent walker sees each entry either before or after a change,
//! never torn.  (Not the kernel's io-pgtable library, which builds whole
//! tables of a given hardware format.)
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::{
    alloc::flags::{GFP_KERNEL, __GFP_ZERO},
    bindings,
    error::Result,
    page::Page,
};

/// Entries in one table page.
pub const ENTRIES: usize = 512;

/// One zeroed page of 512 64-bit page-table entries, freed on drop.
///
/// # Examples
///
/// ```
/// use kernel::table_page::TablePage;
///
/// let table = TablePage::new()?;
/// assert_eq!(table.get(511), 0);
/// table.set(3, 0x1234_5003);
/// assert_eq!(table.get(3), 0x1234_5003);
/// assert_eq!(table.pa() % 4096, 0);
/// # Ok::<(), Error>(())
/// ```
///
/// Whoever links it into a table must unlink it (and make sure no walker
/// still reads it) before dropping it.
pub struct TablePage {
    page: Page,
}

impl TablePage {
    /// Allocates a table page with every entry zero (not present).
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    pub fn new() -> Result<Self> {
        Ok(Self {
            page: Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?,
        })
    }

    /// The page's physical address, for the entry that links it.
    pub fn pa(&self) -> u64 {
        // SAFETY: `self.page` is a valid, owned page allocated without
        // `__GFP_HIGHMEM`, so it has a physical address in the direct map.
        unsafe { bindings::table_page_page_pa(self.page.as_ptr()) }
    }

    /// Entry `index`, read once.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`ENTRIES`].
    pub fn get(&self, index: usize) -> u64 {
        assert!(index < ENTRIES);
        // SAFETY: the page is owned, mapped in the direct map (not
        // highmem), and `index` is within its 512 entries.
        unsafe { bindings::table_page_get(self.page.as_ptr(), index) }
    }

    /// Sets entry `index` to `entry` in one store.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`ENTRIES`].
    pub fn set(&self, index: usize, entry: u64) {
        assert!(index < ENTRIES);
        // SAFETY: as in `get`; the store is a single `WRITE_ONCE`, and the
        // page holds plain integers, so concurrent readers are fine.
        unsafe { bindings::table_page_set(self.page.as_ptr(), index, entry) }
    }
}
