// SPDX-License-Identifier: GPL-2.0

//! KVM TDP FD: exports a VM's TDP page table to other kernel components.
//!
//! KVM's `KVM_CREATE_TDP_FD` ioctl hands out a file that stands for the TDP
//! (NPT/EPT) root of one address space of a VM.  Importers, such as an IOMMU
//! driver, look the file up with `kvm_tdp_fd_get()`, register invalidation
//! callbacks, fault GFNs into the table and read its metadata so that they can
//! walk the very table the vCPUs use.  See `Documentation/kvm_tdp_fd.rst`.

use kernel::prelude::*;

pub mod range;

module! {
    type: KvmTdpFdModule,
    name: "kvm_tdp_fd",
    author: "kvm-tdp-fd developers",
    description: "Export KVM's TDP page table to importers such as IOMMUs",
    license: "GPL",
}

/// The module's state: alive from load to unload.
struct KvmTdpFdModule;

impl kernel::Module for KvmTdpFdModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        Ok(KvmTdpFdModule)
    }
}

impl Drop for KvmTdpFdModule {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
