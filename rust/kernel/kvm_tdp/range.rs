// SPDX-License-Identifier: GPL-2.0

//! Invalidation ranges as importers see them.
//!
//! KVM reports zaps as half-open GFN ranges `[start, end)`.  Importers receive
//! `invalidate(data, start, size)` in bytes of guest physical address space,
//! with the convention that `(0, u64::MAX)` (size -1) means "the whole table".
//!
//! This file depends on `core` only, so it is compiled both into the kernel
//! crate and into the host-side unit tests (`logic/`).

/// log2 of the size of a guest frame.
pub const PAGE_SHIFT: u32 = 12;

/// A range of guest physical addresses handed to an importer's `invalidate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpaRange {
    /// First guest physical address of the range.
    pub start: u64,
    /// Length in bytes; `u64::MAX` together with `start == 0` means everything.
    pub size: u64,
}

impl GpaRange {
    /// The whole table: what teardown and other global events report.
    pub const WHOLE: GpaRange = GpaRange {
        start: 0,
        size: u64::MAX,
    };

    /// Converts the GFN range `[start, end)` to a GPA range.
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::kvm_tdp::GpaRange;
    ///
    /// let r = GpaRange::from_gfns(1, 3).unwrap();
    /// assert_eq!((r.start, r.size), (0x1000, 0x2000));
    /// assert_eq!(GpaRange::from_gfns(0, u64::MAX), Some(GpaRange::WHOLE));
    /// assert_eq!(GpaRange::from_gfns(5, 5), None);
    /// ```
    ///
    /// Returns `None` for an empty range.  A range whose end lies beyond the
    /// 64-bit GPA space is clamped to the end of that space; one that then
    /// starts at 0 is reported as [`GpaRange::WHOLE`].
    pub fn from_gfns(start: u64, end: u64) -> Option<GpaRange> {
        if end <= start {
            return None;
        }
        let max_gfn = u64::MAX >> PAGE_SHIFT;
        if start > max_gfn {
            return None;
        }
        let start_gpa = start << PAGE_SHIFT;
        if end > max_gfn {
            // Runs to the end of the address space.
            if start_gpa == 0 {
                return Some(Self::WHOLE);
            }
            return Some(GpaRange {
                start: start_gpa,
                size: start_gpa.wrapping_neg(),
            });
        }
        Some(GpaRange {
            start: start_gpa,
            size: (end - start) << PAGE_SHIFT,
        })
    }

    /// Whether this range stands for the whole table.
    pub fn is_whole(&self) -> bool {
        *self == Self::WHOLE
    }

    /// The last address covered by the range (inclusive), saturating.
    ///
    /// [`GpaRange::WHOLE`] covers 2^64 bytes although its size is 2^64 - 1.
    pub fn last(&self) -> u64 {
        if self.is_whole() {
            return u64::MAX;
        }
        self.start.saturating_add(self.size.saturating_sub(1))
    }

    /// Whether the range covers the GPA `gpa`.
    pub fn contains(&self, gpa: u64) -> bool {
        self.size != 0 && gpa >= self.start && gpa <= self.last()
    }

    /// Whether the two ranges share at least one address.
    pub fn overlaps(&self, other: &GpaRange) -> bool {
        self.size != 0
            && other.size != 0
            && self.start <= other.last()
            && other.start <= self.last()
    }
}
