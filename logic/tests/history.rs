// SPDX-License-Identifier: GPL-2.0
//! The invalidation history against a model that remembers every range: a
//! token is current exactly when no later invalidation overlaps its range,
//! except that one older than the history's length is always stale.

use kvm_tdp_fd_logic::history::{History, HISTORY};
use proptest::prelude::*;

/// Every invalidation, as a half-open interval of GPAs `[start, end)` in
/// 128-bit arithmetic (the whole table is `[0, 2^64)`), computed apart from
/// the history's own inclusive, saturating bounds.
#[derive(Default)]
struct Model {
    all: Vec<(u128, u128)>,
}

impl Model {
    fn record(&mut self, start: u64, size: u64) {
        if size == 0 {
            return;
        }
        let end = if start == 0 && size == u64::MAX {
            1u128 << 64
        } else {
            (u128::from(start) + u128::from(size)).min(1u128 << 64)
        };
        self.all.push((u128::from(start), end));
    }

    fn unchanged_since(&self, seen: u64, first: u64, last: u64) -> bool {
        let now = self.all.len() as u64;
        if seen > now || now - seen > HISTORY as u64 {
            return false;
        }
        let (first, end) = (u128::from(first), u128::from(last) + 1);
        self.all[seen as usize..]
            .iter()
            .all(|&(s, e)| e <= first || s >= end)
    }
}

#[test]
fn a_covering_invalidation_makes_a_token_stale() {
    let mut h = History::new();
    let seen = h.seen();
    assert!(h.unchanged_since(seen, 0x1000, 0x1fff));
    h.record(0x3000, 0x1000);
    assert!(h.unchanged_since(seen, 0x1000, 0x1fff), "no overlap");
    h.record(0x1fff, 1);
    assert!(!h.unchanged_since(seen, 0x1000, 0x1fff), "last byte");
    assert!(h.unchanged_since(h.seen(), 0x1000, 0x1fff), "a newer token");
}

#[test]
fn the_whole_table_covers_the_top_of_the_address_space() {
    let mut h = History::new();
    h.record(0, u64::MAX);
    assert!(!h.unchanged_since(0, u64::MAX, u64::MAX));
}

#[test]
fn an_empty_invalidation_is_not_recorded() {
    let mut h = History::new();
    h.record(0x1000, 0);
    assert_eq!(h.seen(), 0);
}

#[test]
fn older_than_the_history_is_stale() {
    let mut h = History::new();
    for _ in 0..HISTORY {
        h.record(1 << 40, 0x1000);
    }
    assert!(h.unchanged_since(0, 0, 0xfff), "exactly HISTORY since");
    h.record(1 << 40, 0x1000);
    assert!(!h.unchanged_since(0, 0, 0xfff), "one more");
}

#[test]
fn a_token_from_the_future_is_stale() {
    let h = History::new();
    assert!(!h.unchanged_since(1, 0, 0xfff));
}

fn invalidation() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        (0u64..64, 1u64..8).prop_map(|(p, n)| (p << 12, n << 12)),
        Just((0, u64::MAX)),
        (0u64..64).prop_map(|p| (p << 12, 0)),
        (any::<u64>(), any::<u64>()),
    ]
}

proptest! {
    #[test]
    fn matches_the_model(
        before in proptest::collection::vec(invalidation(), 0..80),
        after in proptest::collection::vec(invalidation(), 0..80),
        page in 0u64..64,
        pages in 1u64..4,
    ) {
        let mut h = History::new();
        let mut m = Model::default();
        for &(s, n) in &before {
            h.record(s, n);
            m.record(s, n);
        }
        let seen = h.seen();
        prop_assert_eq!(seen, m.all.len() as u64);
        let (first, last) = (page << 12, ((page + pages) << 12) - 1);
        for &(s, n) in &after {
            h.record(s, n);
            m.record(s, n);
            prop_assert_eq!(
                h.unchanged_since(seen, first, last),
                m.unchanged_since(seen, first, last)
            );
        }
    }
}
