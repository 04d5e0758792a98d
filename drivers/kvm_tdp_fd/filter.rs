// SPDX-License-Identifier: GPL-2.0

//! Which importers hear a report.
//!
//! KVM tags every report with the kind of memory whose mappings changed:
//! shared, private or both (`kvm_gfn_range_filter`).  An importer sees one
//! view of the table; a report concerns it only if the kinds overlap.
//!
//! This file depends on `core` only, so it is compiled both into the module
//! and into the host-side unit tests (`logic/`).

/// Report bit: mappings of shared memory changed (`KVM_TDP_EXPORT_SHARED`).
pub const SHARED: u32 = 1 << 0;
/// Report bit: mappings of private memory changed (`KVM_TDP_EXPORT_PRIVATE`).
pub const PRIVATE: u32 = 1 << 1;
/// Both kinds.
pub const ALL: u32 = SHARED | PRIVATE;

/// The kinds of memory an importer's view of the table maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// Shared memory only: every export made with `KVM_TDP_FD_MODE_SHARED`.
    Shared,
    /// Private memory only.
    Private,
    /// Both kinds.
    All,
}

impl View {
    /// The report bits of the kinds of memory this view maps.
    pub fn mask(self) -> u32 {
        match self {
            View::Shared => SHARED,
            View::Private => PRIVATE,
            View::All => ALL,
        }
    }

    /// Whether a report tagged with `filter` concerns this view.
    ///
    /// A report that names no kind (0) came from a zap that does not filter,
    /// so it concerns every view; unknown bits are ignored.
    pub fn wants(self, filter: u32) -> bool {
        let kinds = match filter & ALL {
            0 => ALL,
            kinds => kinds,
        };
        self.mask() & kinds != 0
    }
}
