// SPDX-License-Identifier: GPL-2.0

use kvm_tdp_fd_logic::range::{GpaRange, PAGE_SHIFT};
use proptest::prelude::*;

#[test]
fn empty_ranges_are_none() {
    assert_eq!(GpaRange::from_gfns(5, 5), None);
    assert_eq!(GpaRange::from_gfns(6, 5), None);
}

#[test]
fn one_page() {
    let r = GpaRange::from_gfns(0x100, 0x101).unwrap();
    assert_eq!(
        r,
        GpaRange {
            start: 0x100000,
            size: 0x1000
        }
    );
    assert!(r.contains(0x100fff));
    assert!(!r.contains(0x101000));
    assert!(!r.is_whole());
}

#[test]
fn everything_is_whole() {
    assert_eq!(GpaRange::from_gfns(0, u64::MAX), Some(GpaRange::WHOLE));
    assert!(GpaRange::WHOLE.contains(u64::MAX));
    assert!(GpaRange::WHOLE.contains(0));
}

#[test]
fn open_ended_range_clamps_to_the_top() {
    let r = GpaRange::from_gfns(1, u64::MAX).unwrap();
    assert_eq!(r.start, 1 << PAGE_SHIFT);
    assert_eq!(r.last(), u64::MAX);
    assert_eq!(r.start.wrapping_add(r.size), 0);
}

#[test]
fn start_beyond_gpa_space_is_none() {
    assert_eq!(
        GpaRange::from_gfns(u64::MAX >> PAGE_SHIFT << 1, u64::MAX),
        None
    );
}

proptest! {
    #[test]
    fn gfn_ranges_round_trip(start in 0u64..(1 << 40), len in 1u64..(1 << 20)) {
        let r = GpaRange::from_gfns(start, start + len).unwrap();
        prop_assert_eq!(r.start >> PAGE_SHIFT, start);
        prop_assert_eq!(r.size >> PAGE_SHIFT, len);
        prop_assert!(r.contains(r.start) && r.contains(r.last()));
        prop_assert!(!r.contains(r.last() + 1));
    }

    #[test]
    fn overlap_is_symmetric_and_matches_contains(
        a in 0u64..4096, al in 1u64..64, b in 0u64..4096, bl in 1u64..64,
    ) {
        let ra = GpaRange::from_gfns(a, a + al).unwrap();
        let rb = GpaRange::from_gfns(b, b + bl).unwrap();
        let brute = (a..a + al).any(|g| (b..b + bl).contains(&g));
        prop_assert_eq!(ra.overlaps(&rb), brute);
        prop_assert_eq!(rb.overlaps(&ra), brute);
    }

    #[test]
    fn never_panics(start: u64, end: u64) {
        if let Some(r) = GpaRange::from_gfns(start, end) {
            prop_assert!(r.size > 0);
            prop_assert!(r.is_whole() || r.start.checked_add(r.size - 1).is_some());
        }
    }
}
