// SPDX-License-Identifier: GPL-2.0

//! The invalidations an attachment heard, which tell a current token of
//! [`super::reader`] from a stale one.
//!
//! Every range an attachment's `invalidate` receives is recorded, numbered
//! from 1; a token keeps the number of the last one before it was made and
//! the GPA range it covers, and is current if no invalidation recorded
//! since overlaps that range.  Only the last [`HISTORY`] ranges are kept (the
//! history lives in the attachment and is updated under KVM's `mmu_lock`,
//! so it is fixed in size): a token older than that is stale, whatever the
//! ranges were.  Erring towards stale is safe: the importer walks again.
//!
//! This file depends on `core` only, so it is compiled both into the kernel
//! crate and into the host-side unit tests (`logic/`).

use super::range::GpaRange;

/// Invalidations remembered.
pub const HISTORY: usize = 64;

/// The invalidations heard: how many, and the GPA ranges of the last
/// [`HISTORY`] of them.
///
/// # Examples
///
/// ```
/// use kernel::kvm_tdp::history::History;
///
/// let mut history = History::new();
/// // A token made now, for the page at GPA 0x1000.
/// let seen = history.seen();
/// history.record(0x3000, 0x1000);
/// assert!(history.unchanged_since(seen, 0x1000, 0x1fff));
/// history.record(0, u64::MAX);
/// assert!(!history.unchanged_since(seen, 0x1000, 0x1fff));
/// ```
#[derive(Clone, Debug)]
pub struct History {
    /// Invalidations recorded so far.
    seen: u64,
    /// Invalidation `n` (1-based) at `n % HISTORY`: its first and last GPA.
    recent: [(u64, u64); HISTORY],
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// No invalidation heard yet.
    pub const fn new() -> Self {
        Self {
            seen: 0,
            recent: [(0, 0); HISTORY],
        }
    }

    /// The number of invalidations recorded so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Records an invalidation of GPAs `[start, start + size)`, `(0,
    /// u64::MAX)` meaning all of them; one of size 0 covers nothing and is
    /// not recorded.
    pub fn record(&mut self, start: u64, size: u64) {
        if size == 0 {
            return;
        }
        let last = GpaRange { start, size }.last();
        self.seen += 1;
        self.recent[(self.seen % HISTORY as u64) as usize] = (start, last);
    }

    /// Whether no invalidation recorded after the `seen`th overlaps GPAs
    /// `[first, last]`, as far as the history tells: `false` if more were
    /// recorded since than it keeps, or if `seen` is in the future.
    pub fn unchanged_since(&self, seen: u64, first: u64, last: u64) -> bool {
        if seen > self.seen || self.seen - seen > HISTORY as u64 {
            return false;
        }
        (seen + 1..=self.seen).all(|n| {
            let (start, end) = self.recent[(n % HISTORY as u64) as usize];
            end < first || start > last
        })
    }
}
