// SPDX-License-Identifier: GPL-2.0

//! KVM TDP FD: exports a VM's TDP page table to other kernel components.
//!
//! KVM's `KVM_CREATE_TDP_FD` ioctl hands out a file that stands for the TDP
//! (NPT/EPT) root of one address space of a VM.  This module is KVM's
//! provider for those files: it registers with KVM at load, gets an object
//! per export, and receives KVM's reports of every change that removes or
//! weakens a mapping of the exported table.  See `Documentation/design.rst`.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    kvm_tdp::{Export, Provider, Registration},
    prelude::*,
    sync::{Arc, ArcBorrow},
};

pub mod filter;
pub mod range;
pub mod registry;

// The report bits this module's logic uses are KVM's.
const _: () = assert!(filter::SHARED == kernel::kvm_tdp::FILTER_SHARED);
const _: () = assert!(filter::PRIVATE == kernel::kvm_tdp::FILTER_PRIVATE);

module! {
    type: KvmTdpFdModule,
    name: "kvm_tdp_fd",
    author: "kvm-tdp-fd developers",
    description: "Export KVM's TDP page table to importers such as IOMMUs",
    license: "GPL",
}

/// The provider's object for one export of a VM's TDP.
struct TdpFd {
    export: Export,
    /// Reports received from KVM.
    invalidations: AtomicU64,
}

impl Provider for TdpFd {
    fn create(export: Export) -> Result<Arc<Self>> {
        pr_debug!("export {:p} created\n", export.as_ptr());
        Ok(Arc::new(
            TdpFd {
                export,
                invalidations: AtomicU64::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    fn invalidate(this: ArcBorrow<'_, Self>, _start: u64, _end: u64, _filter: u32) {
        this.invalidations.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for TdpFd {
    fn drop(&mut self) {
        pr_debug!(
            "export {:p} released after {} reports\n",
            self.export.as_ptr(),
            self.invalidations.load(Ordering::Relaxed)
        );
    }
}

/// The module's state: the provider registration, from load to unload.
struct KvmTdpFdModule {
    _registration: Registration<TdpFd>,
}

impl kernel::Module for KvmTdpFdModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::new(module)?;
        pr_info!("registered as KVM's TDP FD provider\n");
        Ok(KvmTdpFdModule {
            _registration: registration,
        })
    }
}
