// SPDX-License-Identifier: GPL-2.0

use kvm_tdp_fd_logic::filter::{View, ALL, PRIVATE, SHARED};
use proptest::prelude::*;

/// Seed 001's table: which zap source wakes an importer of which view.
#[test]
fn zap_sources_by_view() {
    let sources = [
        ("mmu notifier", SHARED),
        ("guest_memfd punch hole / release", PRIVATE),
        ("attributes: shared -> private (old state)", SHARED),
        ("attributes: private -> shared (old state)", PRIVATE),
        ("memslot deletion / teardown", ALL),
    ];
    let expect_shared = [true, false, true, false, true];
    let expect_private = [false, true, false, true, true];
    for (i, (what, filter)) in sources.iter().enumerate() {
        assert_eq!(View::Shared.wants(*filter), expect_shared[i], "{what}");
        assert_eq!(View::Private.wants(*filter), expect_private[i], "{what}");
        assert!(View::All.wants(*filter), "{what}");
    }
}

#[test]
fn unfiltered_reports_concern_everyone() {
    for view in [View::Shared, View::Private, View::All] {
        assert!(view.wants(0));
    }
}

proptest! {
    #[test]
    fn unknown_bits_are_ignored(filter: u32) {
        for view in [View::Shared, View::Private, View::All] {
            prop_assert_eq!(view.wants(filter), view.wants(filter & ALL));
        }
    }

    #[test]
    fn all_view_wants_everything(filter: u32) {
        prop_assert!(View::All.wants(filter));
    }
}
