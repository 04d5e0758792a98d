// SPDX-License-Identifier: GPL-2.0

//! The pure-logic files of the kernel modules, compiled on the host.
//!
//! Each module below is the very file the kernel module builds (`#[path]`),
//! so the host tests exercise the code that runs in the kernel.

#[path = "../../drivers/kvm_tdp_fd/filter.rs"]
pub mod filter;
#[path = "../../samples/kvm_tdp_iommu/iotlb.rs"]
pub mod iotlb;
#[path = "../../samples/kvm_tdp_iommu/psc.rs"]
pub mod psc;
#[path = "../../samples/kvm_tdp_iommu/pte.rs"]
pub mod pte;
#[path = "../../drivers/kvm_tdp_fd/range.rs"]
pub mod range;
#[path = "../../drivers/kvm_tdp_fd/registry.rs"]
pub mod registry;
#[path = "../../samples/kvm_tdp_iommu/shadow.rs"]
pub mod shadow;
