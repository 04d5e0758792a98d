// SPDX-License-Identifier: GPL-2.0

//! The pure-logic files of the kernel modules, compiled on the host.
//!
//! Each module below is the very file the kernel builds (`#[path]`): of the
//! `kernel` crate (`rust/`) or of a module,
//! so the host tests exercise the code that runs in the kernel.

#[path = "../../rust/kernel/kvm_tdp/history.rs"]
pub mod history;
#[path = "../../samples/kvm_tdp_iommu/iotlb.rs"]
pub mod iotlb;
#[path = "../../samples/kvm_tdp_iommu/psc.rs"]
pub mod psc;
#[path = "../../samples/kvm_tdp_iommu/pte.rs"]
pub mod pte;
#[path = "../../rust/kernel/kvm_tdp/range.rs"]
pub mod range;
#[path = "../../rust/kernel/kvm_tdp/registry.rs"]
pub mod registry;
#[path = "../../samples/kvm_tdp_iommu/shadow.rs"]
pub mod shadow;
