// SPDX-License-Identifier: GPL-2.0

//! The format of an exported table, as importers receive it.
//!
//! KVM describes its table in `struct kvm_tdp_export_meta`
//! (`include/linux/kvm_tdp_export.h`); importers receive one of the vendor
//! layouts of `include/linux/kvm_tdp_fd.h`, `struct
//! kvm_exported_tdp_meta_npt` or `_ept`, from `get_metadata`.
//! [`VendorMeta`] is that layout, as a Rust value.

use crate::{bindings, error::code::EIO, error::Result, ffi::c_void};

/// Number of levels the `rsvd_bits` tables of [`VendorMeta`] describe.
pub const MAX_LEVELS: usize = bindings::KVM_TDP_FD_MAX_LEVELS as usize;

// KVM's table types (`KVM_TDP_TYPE_*`) and the importers'
// (`enum kvm_exported_tdp_type`) are the same numbers: `from_export` copies
// one into the other.
const _: () =
    assert!(bindings::KVM_TDP_TYPE_NPT == bindings::kvm_exported_tdp_type_KVM_TDP_FD_TYPE_NPT);
const _: () =
    assert!(bindings::KVM_TDP_TYPE_EPT == bindings::kvm_exported_tdp_type_KVM_TDP_FD_TYPE_EPT);
// And both headers describe as many levels.
const _: () = assert!(bindings::KVM_TDP_MAX_LEVELS == bindings::KVM_TDP_FD_MAX_LEVELS);

/// The kind of an exported table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// AMD nested page table (x86-64 page table entries).
    Npt,
    /// Intel extended page table.
    Ept,
}

/// The format of an exported table, in the C layout importers receive
/// from `get_metadata` (`struct kvm_exported_tdp_meta_npt` or `_ept`).
#[derive(Clone, Copy)]
pub enum VendorMeta {
    /// An AMD nested page table.
    Npt(bindings::kvm_exported_tdp_meta_npt),
    /// An Intel extended page table.
    Ept(bindings::kvm_exported_tdp_meta_ept),
}

/// Either vendor layout, in the memory `get_metadata` points importers to.
///
/// Both begin with `struct kvm_exported_tdp_meta`, whose `type` says which
/// one it is.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union CMeta {
    npt: bindings::kvm_exported_tdp_meta_npt,
    ept: bindings::kvm_exported_tdp_meta_ept,
}

impl VendorMeta {
    /// Composes the vendor layout from what KVM reports.
    ///
    /// # Errors
    ///
    /// `EIO` if KVM reports a table type this code does not know.
    pub(crate) fn from_export(m: &bindings::kvm_tdp_export_meta) -> Result<Self> {
        let hdr = bindings::kvm_exported_tdp_meta {
            type_: m.type_,
            levels: m.levels,
            max_huge_page_level: m.max_huge_level,
            flags: 0,
            root_hpa: m.root_hpa,
            present_mask: m.present_mask,
            present_value: m.present_value,
            mmio_mask: m.mmio_mask,
            mmio_value: m.mmio_value,
        };
        // The same shape on both sides (asserted above).
        let rsvd = m.rsvd_bits;
        match m.type_ {
            bindings::KVM_TDP_TYPE_NPT => Ok(Self::Npt(bindings::kvm_exported_tdp_meta_npt {
                hdr,
                pfn_mask: m.pfn_mask,
                nx_mask: m.nx_mask,
                accessed_mask: m.accessed_mask,
                dirty_mask: m.dirty_mask,
                kvm_sw_mask: m.kvm_sw_mask,
                rsvd_bits_mask: rsvd,
            })),
            bindings::KVM_TDP_TYPE_EPT => Ok(Self::Ept(bindings::kvm_exported_tdp_meta_ept {
                hdr,
                pfn_mask: m.pfn_mask,
                exec_mask: m.exec_mask,
                accessed_mask: m.accessed_mask,
                dirty_mask: m.dirty_mask,
                kvm_sw_mask: m.kvm_sw_mask,
                rsvd_bits_mask: rsvd,
            })),
            _ => Err(EIO),
        }
    }

    /// Reads the layout behind a pointer `get_metadata` returned.
    ///
    /// # Errors
    ///
    /// `EIO` for a table type this code does not know.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct kvm_exported_tdp_meta` that begins a
    /// complete vendor layout of its `type`, readable for the call.
    pub(crate) unsafe fn from_c(ptr: *const c_void) -> Result<Self> {
        // SAFETY: the caller guarantees a header is there.
        let hdr = unsafe { ptr.cast::<bindings::kvm_exported_tdp_meta>().read() };
        match hdr.type_ {
            // SAFETY: the header says which complete layout it begins.
            bindings::kvm_exported_tdp_type_KVM_TDP_FD_TYPE_NPT => Ok(Self::Npt(unsafe {
                ptr.cast::<bindings::kvm_exported_tdp_meta_npt>().read()
            })),
            // SAFETY: as above.
            bindings::kvm_exported_tdp_type_KVM_TDP_FD_TYPE_EPT => Ok(Self::Ept(unsafe {
                ptr.cast::<bindings::kvm_exported_tdp_meta_ept>().read()
            })),
            _ => Err(EIO),
        }
    }

    /// The layout as C code reads it.
    pub(crate) fn to_c(self) -> CMeta {
        match self {
            Self::Npt(npt) => CMeta { npt },
            Self::Ept(ept) => CMeta { ept },
        }
    }

    fn hdr(&self) -> &bindings::kvm_exported_tdp_meta {
        match self {
            Self::Npt(m) => &m.hdr,
            Self::Ept(m) => &m.hdr,
        }
    }

    /// The table's format.
    pub fn kind(&self) -> TableKind {
        match self {
            Self::Npt(_) => TableKind::Npt,
            Self::Ept(_) => TableKind::Ept,
        }
    }

    /// The number of levels of the table (4 or 5).
    pub fn levels(&self) -> u32 {
        self.hdr().levels
    }

    /// The largest level with leaf entries (1: 4K, 2: 2M, 3: 1G).
    pub fn max_huge_level(&self) -> u32 {
        self.hdr().max_huge_page_level
    }

    /// The host physical address of the root table.
    pub fn root_hpa(&self) -> u64 {
        self.hdr().root_hpa
    }

    /// An entry is present for KVM iff `entry & present_mask() ==
    /// present_value()` (KVM's MMU-present bit, not the hardware's).
    pub fn present_mask(&self) -> u64 {
        self.hdr().present_mask
    }

    /// See [`VendorMeta::present_mask`].
    pub fn present_value(&self) -> u64 {
        self.hdr().present_value
    }

    /// KVM's MMIO entries are those with `entry & mmio_mask() ==
    /// mmio_value()`, if `mmio_value()` is not 0.
    pub fn mmio_mask(&self) -> u64 {
        self.hdr().mmio_mask
    }

    /// See [`VendorMeta::mmio_mask`].
    pub fn mmio_value(&self) -> u64 {
        self.hdr().mmio_value
    }

    /// The bits of an entry holding a physical address.
    pub fn pfn_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.pfn_mask,
            Self::Ept(m) => m.pfn_mask,
        }
    }

    /// The bits KVM keeps for itself in entries.
    pub fn kvm_sw_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.kvm_sw_mask,
            Self::Ept(m) => m.kvm_sw_mask,
        }
    }

    /// The Accessed bit (0 if not used).
    pub fn accessed_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.accessed_mask,
            Self::Ept(m) => m.accessed_mask,
        }
    }

    /// The Dirty bit (0 if not used).
    pub fn dirty_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.dirty_mask,
            Self::Ept(m) => m.dirty_mask,
        }
    }

    /// The no-execute bit (NPT) or 0 (EPT).
    pub fn nx_mask(&self) -> u64 {
        match self {
            Self::Npt(m) => m.nx_mask,
            Self::Ept(_) => 0,
        }
    }

    /// The execute bits (EPT) or 0 (NPT).
    pub fn exec_mask(&self) -> u64 {
        match self {
            Self::Npt(_) => 0,
            Self::Ept(m) => m.exec_mask,
        }
    }

    /// The must-be-zero bits of a present entry: `[ps][level - 1]`, where
    /// `ps` is 1 for a leaf with the page-size bit set.
    pub fn rsvd_bits_table(&self) -> [[u64; MAX_LEVELS]; 2] {
        match self {
            Self::Npt(m) => m.rsvd_bits_mask,
            Self::Ept(m) => m.rsvd_bits_mask,
        }
    }
}
