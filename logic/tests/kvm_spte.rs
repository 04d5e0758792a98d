// SPDX-License-Identifier: GPL-2.0
//! The sample's decoder against SPTEs built exactly as KVM builds them.
//!
//! The masks mirror Linux 6.12's arch/x86/kvm/mmu/spte.h and spte.c
//! (kvm_mmu_reset_all_pte_masks() for NPT, kvm_mmu_set_ept_masks() for
//! EPT, make_spte(), make_nonleaf_spte(), make_mmio_spte(),
//! mark_spte_for_access_track()) and arch/x86/include/asm/vmx.h; the
//! layout is what kvm_mmu_tdp_export_meta() reports for them.

use kvm_tdp_fd_logic::pte::*;

// spte.h
const SPTE_MMU_PRESENT_MASK: u64 = 1 << 11;
const SPTE_TDP_AD_DISABLED: u64 = 1 << 52;
const SHADOW_ACC_TRACK_SAVED_BITS_MASK: u64 = 0x1 | 0x4; // R | X
const SHADOW_ACC_TRACK_SAVED_BITS_SHIFT: u32 = 54;
const MMIO_SPTE_GEN_LOW_MASK: u64 = 0x7f8; // bits 10:3
const MMIO_SPTE_GEN_HIGH_MASK: u64 = 0x7ff0_0000_0000_0000; // bits 62:52
const MMIO_SPTE_GEN_LOW_SHIFT: u32 = 3;
const MMIO_SPTE_GEN_HIGH_SHIFT: u32 = 52 - 8;
const SHADOW_NONPRESENT_VALUE: u64 = 1 << 63; // CONFIG_X86_64
const FROZEN_SPTE: u64 = SHADOW_NONPRESENT_VALUE | 0x5a0;
const SHADOW_NONPRESENT_OR_RSVD_MASK_LEN: u32 = 5;
const EPT_SPTE_HOST_WRITABLE: u64 = 1 << 57;
const EPT_SPTE_MMU_WRITABLE: u64 = 1 << 58;
const DEFAULT_SPTE_HOST_WRITABLE: u64 = 1 << 9;
const DEFAULT_SPTE_MMU_WRITABLE: u64 = 1 << 10;
// vmx.h
const VMX_EPT_READABLE_MASK: u64 = 0x1;
const VMX_EPT_WRITABLE_MASK: u64 = 0x2;
const VMX_EPT_EXECUTABLE_MASK: u64 = 0x4;
const VMX_EPT_RWX_MASK: u64 = 0x7;
const VMX_EPT_ACCESS_BIT: u64 = 1 << 8;
const VMX_EPT_DIRTY_BIT: u64 = 1 << 9;
const VMX_EPT_SUPPRESS_VE_BIT: u64 = 1 << 63;
const VMX_EPT_MISCONFIG_WX_VALUE: u64 = VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK;
/// MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT
const WB_MEMTYPE: u64 = 6 << 3;

// x86 page tables
const PT_PRESENT_MASK: u64 = 1 << 0;
const PT_WRITABLE_MASK: u64 = 1 << 1;
const PT_USER_MASK: u64 = 1 << 2;
const PT_ACCESSED_MASK: u64 = 1 << 5;
const PT_DIRTY_MASK: u64 = 1 << 6;
const PT_PAGE_SIZE_MASK: u64 = 1 << 7;
const PT64_NX_MASK: u64 = 1 << 63;

/// A host with MAXPHYADDR 46 and the L1TF mitigation (cache bits 46):
/// shadow_nonpresent_or_rsvd_mask is rsvd_bits(41, 45).
const MAXPHYADDR: u32 = 46;
const NONPRESENT_OR_RSVD_MASK: u64 = ((1 << 46) - 1) & !((1 << 41) - 1);

/// The masks of one configuration of KVM's MMU.
struct Kvm {
    ept: bool,
    ad: bool,
    present: u64,
    user: u64,
    x: u64,
    #[allow(dead_code)] // NX is set only without ACC_EXEC_MASK.
    nx: u64,
    accessed: u64,
    dirty: u64,
    host_writable: u64,
    mmu_writable: u64,
    memtype: u64,
    acc_track: u64,
    mmio_value: u64,
    mmio_mask: u64,
    mmio_access: u64,
}

fn npt() -> Kvm {
    // kvm_mmu_reset_all_pte_masks(): MMIO uses reserved bit 51 with P, as
    // MAXPHYADDR < 52.
    Kvm {
        ept: false,
        ad: true,
        present: PT_PRESENT_MASK,
        user: PT_USER_MASK,
        x: 0,
        nx: PT64_NX_MASK,
        accessed: PT_ACCESSED_MASK,
        dirty: PT_DIRTY_MASK,
        host_writable: DEFAULT_SPTE_HOST_WRITABLE,
        mmu_writable: DEFAULT_SPTE_MMU_WRITABLE,
        memtype: 0,
        acc_track: 0,
        mmio_value: (1 << 51) | PT_PRESENT_MASK,
        mmio_mask: (1 << 51) | PT_PRESENT_MASK,
        mmio_access: PT_WRITABLE_MASK | PT_USER_MASK,
    }
}

fn ept(ad: bool) -> Kvm {
    // kvm_mmu_set_ept_masks(has_ad_bits, has_exec_only = true).
    Kvm {
        ept: true,
        ad,
        present: VMX_EPT_SUPPRESS_VE_BIT,
        user: VMX_EPT_READABLE_MASK,
        x: VMX_EPT_EXECUTABLE_MASK,
        nx: 0,
        accessed: if ad { VMX_EPT_ACCESS_BIT } else { 0 },
        dirty: if ad { VMX_EPT_DIRTY_BIT } else { 0 },
        host_writable: EPT_SPTE_HOST_WRITABLE,
        mmu_writable: EPT_SPTE_MMU_WRITABLE,
        memtype: WB_MEMTYPE,
        acc_track: VMX_EPT_RWX_MASK,
        mmio_value: VMX_EPT_MISCONFIG_WX_VALUE,
        mmio_mask: VMX_EPT_RWX_MASK | VMX_EPT_SUPPRESS_VE_BIT,
        mmio_access: 0,
    }
}

impl Kvm {
    /// What kvm_mmu_tdp_export_meta() reports, as the sample reads it.
    fn layout(&self) -> Layout {
        let mut rsvd = [[0u64; 5]; 2];
        let high = ((1u64 << 52) - 1) & !((1u64 << MAXPHYADDR) - 1);
        for level in 0..5 {
            rsvd[0][level] = high;
            rsvd[1][level] = high;
        }
        rsvd[1][1] |= 0x1f_e000;
        rsvd[1][2] |= 0x3fff_e000;
        Layout {
            format: if self.ept { Format::Ept } else { Format::Npt },
            levels: 4,
            max_huge_level: 3,
            pfn_mask: ((1u64 << 52) - 1) & !0xfff,
            present_mask: SPTE_MMU_PRESENT_MASK,
            present_value: SPTE_MMU_PRESENT_MASK,
            mmio_mask: self.mmio_mask,
            mmio_value: self.mmio_value,
            rsvd,
        }
    }

    /// make_spte() for a TDP leaf, not prefetched, with ACC_ALL.
    fn leaf(&self, level: u32, pa: u64, write: bool) -> u64 {
        let mut spte = SPTE_MMU_PRESENT_MASK;
        if !self.ad {
            spte |= SPTE_TDP_AD_DISABLED;
        }
        spte |= self.present;
        spte |= self.accessed; // !prefetch
        spte |= self.x; // ACC_EXEC_MASK
        spte |= self.user; // ACC_USER_MASK
        if level > 1 {
            spte |= PT_PAGE_SIZE_MASK;
        }
        spte |= self.memtype;
        spte |= self.host_writable;
        spte |= pa;
        if write {
            spte |= PT_WRITABLE_MASK | self.mmu_writable | self.dirty;
        }
        spte
    }

    /// make_nonleaf_spte().
    fn nonleaf(&self, child_pa: u64) -> u64 {
        let mut spte = SPTE_MMU_PRESENT_MASK;
        spte |= child_pa | self.present | PT_WRITABLE_MASK | self.user | self.x;
        if self.ad {
            spte | self.accessed
        } else {
            spte | SPTE_TDP_AD_DISABLED
        }
    }

    /// make_mmio_spte() for `gfn` and memslot generation `gen`.
    fn mmio(&self, gfn: u64, gen: u64, access: u64) -> u64 {
        let mut spte = (gen << MMIO_SPTE_GEN_LOW_SHIFT) & MMIO_SPTE_GEN_LOW_MASK;
        spte |= (gen << MMIO_SPTE_GEN_HIGH_SHIFT) & MMIO_SPTE_GEN_HIGH_MASK;
        let gpa = gfn << 12;
        spte |= self.mmio_value | (access & self.mmio_access);
        spte |= gpa | NONPRESENT_OR_RSVD_MASK;
        spte |= (gpa & NONPRESENT_OR_RSVD_MASK) << SHADOW_NONPRESENT_OR_RSVD_MASK_LEN;
        spte
    }

    /// mark_spte_for_access_track() of a present SPTE.
    fn access_tracked(&self, spte: u64) -> u64 {
        assert!(!self.ad, "A/D bits enabled: Accessed is cleared instead");
        let saved = (spte & SHADOW_ACC_TRACK_SAVED_BITS_MASK) << SHADOW_ACC_TRACK_SAVED_BITS_SHIFT;
        (spte | saved) & !self.acc_track
    }
}

fn configs() -> [Kvm; 3] {
    [npt(), ept(true), ept(false)]
}

#[test]
fn present_leaves_at_4k_2m_1g() {
    for kvm in configs() {
        let l = kvm.layout();
        for (level, pa) in [(1, 0x1234_5000u64), (2, 0x4020_0000), (3, 0x8000_0000)] {
            for write in [false, true] {
                let spte = kvm.leaf(level, pa, write);
                assert_eq!(l.classify(spte, level), Kind::Leaf, "{spte:#x}");
                let gpa = 0x4000_0000;
                match l.decode(spte, level, gpa) {
                    Step::Leaf(leaf) => {
                        assert!(leaf.readable);
                        assert_eq!(leaf.writable, write);
                        assert_eq!(leaf.level, level);
                        assert_eq!(leaf.pa, pa);
                    }
                    s => panic!("{spte:#x} at level {level}: {s:?}"),
                }
            }
        }
    }
}

#[test]
fn nonleaf_is_a_table() {
    for kvm in configs() {
        let l = kvm.layout();
        let spte = kvm.nonleaf(0x7654_3000);
        for level in 2..=4 {
            assert_eq!(l.classify(spte, level), Kind::Table);
            assert_eq!(
                l.decode(spte, level, 0),
                Step::Table {
                    pa: 0x7654_3000,
                    readable: true,
                    writable: true
                }
            );
        }
    }
}

#[test]
fn mmio_sptes_are_not_translations() {
    for kvm in configs() {
        let l = kvm.layout();
        // A GFN with bits in the L1TF range, and generations whose low bits
        // set bit 7 (page size) and bits 5:3 (EPT memory type).
        for gfn in [0xfee00u64, 0x3ff_ffff_fff0 >> 12, 0x200_0000] {
            for gen in [0u64, 0x10, 0x7_ffff] {
                let spte = kvm.mmio(gfn, gen, PT_WRITABLE_MASK | PT_USER_MASK);
                assert_eq!(spte & SPTE_MMU_PRESENT_MASK, 0);
                for level in 1..=4 {
                    assert_eq!(l.classify(spte, level), Kind::Mmio, "{spte:#x}");
                    assert_eq!(l.decode(spte, level, gfn << 12), Step::NotPresent);
                }
            }
        }
    }
}

/// A walk that meets an MMIO SPTE, at any level, says so (the importer counts
/// it and never faults the GFN as if it were memory).
#[test]
fn walks_end_at_mmio_sptes() {
    for kvm in configs() {
        let l = kvm.layout();
        let gpa = 0xfee0_0000u64;
        for mmio_level in 1..=4u32 {
            let walk = l.walk(0x4000, gpa, |table, _| {
                // The table of each level is at 0x1000 * level.
                let level = (table / 0x1000) as u32;
                Ok::<u64, ()>(if level == mmio_level {
                    kvm.mmio(gpa >> 12, 3, PT_WRITABLE_MASK | PT_USER_MASK)
                } else {
                    kvm.nonleaf((table / 0x1000 - 1) * 0x1000)
                })
            });
            let walk = walk.map(|leaf| leaf.pa);
            assert_eq!(
                walk,
                Err(WalkError::Mmio),
                "MMIO SPTE at level {mmio_level}"
            );
        }
    }
}

/// What the decoder did before the metadata carried KVM's present bit:
/// "any of the hardware's present bits set is present" misreads an EPT
/// MMIO SPTE (W|X, R clear) as a writable leaf at the guest's own GPA.
#[test]
fn hardware_present_bits_alone_misread_ept_mmio() {
    let kvm = ept(true);
    let spte = kvm.mmio(0xfee00, 0, 0);
    assert_ne!(spte & VMX_EPT_RWX_MASK, 0, "EPT MMIO SPTEs look present");
    let mut l = kvm.layout();
    l.present_mask = 0;
    l.present_value = 0;
    l.mmio_value = 0;
    match l.decode(spte, 1, 0xfee0_0000) {
        Step::Leaf(leaf) => assert!(leaf.writable && leaf.pa & 0xfee0_0000 == 0xfee0_0000),
        s => panic!("{s:?}"),
    }
    assert_eq!(kvm.layout().decode(spte, 1, 0xfee0_0000), Step::NotPresent);
}

#[test]
fn access_tracked_sptes_are_not_translations() {
    let kvm = ept(false);
    let l = kvm.layout();
    for (level, pa) in [(1, 0x1234_5000u64), (2, 0x4020_0000), (3, 0x8000_0000)] {
        for write in [false, true] {
            let spte = kvm.access_tracked(kvm.leaf(level, pa, write));
            assert_ne!(spte & SPTE_MMU_PRESENT_MASK, 0);
            assert_eq!(spte & VMX_EPT_RWX_MASK, 0);
            assert_eq!(l.classify(spte, level), Kind::AccessTracked);
            assert_eq!(l.decode(spte, level, 0), Step::NotPresent);
        }
    }
}

#[test]
fn frozen_and_nonpresent_sptes() {
    for kvm in configs() {
        let l = kvm.layout();
        for spte in [FROZEN_SPTE, SHADOW_NONPRESENT_VALUE, 0] {
            for level in 1..=4 {
                assert_eq!(l.classify(spte, level), Kind::NotPresent, "{spte:#x}");
                assert_eq!(l.decode(spte, level, 0), Step::NotPresent);
            }
        }
        // KVM's own check: a frozen SPTE must never match the MMIO value.
        assert_ne!(FROZEN_SPTE & kvm.mmio_mask, kvm.mmio_value);
    }
}
