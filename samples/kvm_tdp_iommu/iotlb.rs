// SPDX-License-Identifier: GPL-2.0

//! The IOTLB of an attachment: recent translations, GFN to PFN.
//!
//! Direct-mapped and fixed in size, so that `invalidate` (which runs under
//! KVM's `mmu_lock`) never allocates.  A flush drops exactly the entries
//! whose GFN lies in the invalidated range.
//!
//! This file depends on `core` only, so it is compiled both into the module
//! and into the host-side unit tests (`logic/`).

/// Number of entries.
pub const IOTLB_SIZE: usize = 256;

/// One cached translation of a 4K guest page, with what its user needs to
/// reach the page (`T`: nothing in the host tests, the leaf's token in the
/// module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<T = ()> {
    /// Guest frame.
    pub gfn: u64,
    /// Host frame.
    pub pfn: u64,
    /// Whether writes may use it.
    pub writable: bool,
    /// How to reach the page.
    pub token: T,
}

/// One slot of the cache.
pub type Slot<T = ()> = Option<Entry<T>>;

/// The cache, over `IOTLB_SIZE` slots of storage `S` (a heap allocation
/// in the kernel: 4 KiB and more do not belong on a kernel stack).
pub struct Iotlb<S> {
    slots: S,
}

impl<T: Copy, S: core::ops::DerefMut<Target = [Slot<T>]>> Iotlb<S> {
    /// An IOTLB over `slots`, emptied.
    ///
    /// # Panics
    ///
    /// If `slots` does not hold exactly `IOTLB_SIZE` slots.
    pub fn with_slots(mut slots: S) -> Self {
        assert_eq!(slots.len(), IOTLB_SIZE);
        slots.fill(None);
        Self { slots }
    }

    fn slot(gfn: u64) -> usize {
        (gfn as usize) % IOTLB_SIZE
    }

    /// The cached translation of `gfn`.
    pub fn lookup(&self, gfn: u64) -> Option<Entry<T>> {
        self.slots[Self::slot(gfn)].filter(|e| e.gfn == gfn)
    }

    /// Caches `entry`, replacing whatever shared its slot.
    pub fn insert(&mut self, entry: Entry<T>) {
        self.slots[Self::slot(entry.gfn)] = Some(entry);
    }

    /// Drops the translations of GPAs `[start, start + size)`, where
    /// `(0, u64::MAX)` is everything; returns how many were dropped.
    pub fn flush(&mut self, start: u64, size: u64) -> u64 {
        let whole = start == 0 && size == u64::MAX;
        let first = start >> 12;
        // Last GFN touched, inclusive; saturating for ranges at the top.
        let last = start.saturating_add(size.saturating_sub(1)) >> 12;
        let mut dropped = 0;
        for slot in self.slots.iter_mut() {
            if let Some(e) = slot {
                if size != 0 && (whole || (e.gfn >= first && e.gfn <= last)) {
                    *slot = None;
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// Number of cached translations.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
