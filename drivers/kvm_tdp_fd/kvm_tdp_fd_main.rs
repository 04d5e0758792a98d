// SPDX-License-Identifier: GPL-2.0

//! KVM TDP FD: exports a VM's TDP page table to other kernel components.
//!
//! KVM's `KVM_CREATE_TDP_FD` ioctl hands out a file that stands for the TDP
//! (NPT/EPT) root of one address space of a VM.  This module is KVM's
//! provider for those files: it registers with KVM at load and gets a
//! [`tdp_fd::TdpFd`] object per export.  Importers (an IOMMU driver, say)
//! reach it through `include/linux/kvm_tdp_fd.h`: `kvm_tdp_fd_get()`
//! and `kvm_tdp_fd_put()` (defined here), and the ops of the object:
//! register and unregister importers, fault GFNs into the table, read its
//! format.  KVM reports every change that removes or weakens a mapping of
//! the table; the object passes each report on, as a GPA range, to every
//! importer whose view of memory it concerns.
//!
//! Layout: [`tdp_fd`] is the provider's part of the object, which counts
//! what happens; [`stats`] its debugfs counters.  The object itself, its
//! importers, their locking, the fan-out of reports and the unsafe glue to
//! KVM are `kernel::kvm_tdp::provider`, in `rust/`, with its pure logic
//! (report ranges, the importer registry) tested on the host (`logic/`).
//! See `Documentation/design.rst`.
//!
//! Lifetime: every export holds a reference on this module (KVM takes it),
//! and so does every module that links `kvm_tdp_fd_get()`, so the module
//! cannot be unloaded while a TDP FD or an importer module exists.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{c_str, debugfs::Dir, kvm_tdp::Registration, prelude::*};

pub mod stats;
pub mod tdp_fd;

module! {
    type: KvmTdpFdModule,
    name: "kvm_tdp_fd",
    author: "kvm-tdp-fd developers",
    description: "Export KVM's TDP page table to importers such as IOMMUs",
    license: "GPL",
}

kernel::kvm_tdp_fd_c_abi!(tdp_fd::TdpFd);

/// State shared by all TDP FD objects.
pub struct Shared {
    /// `/sys/kernel/debug/kvm_tdp_fd` (empty without debugfs).
    debugfs: Dir,
    /// Numbers the objects' debugfs directories.
    next: AtomicU64,
}

impl Shared {
    /// A number no other object of this module instance got.
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// The owner of this module's `'static` operation tables: the provider's
/// ops, which KVM's exports keep using, and its debugfs files.
impl kernel::ModuleOwner for KvmTdpFdModule {
    const THIS_MODULE: &'static ThisModule = &THIS_MODULE;
}

/// The module's state: the provider registration, from load to unload.
pub struct KvmTdpFdModule {
    _registration: Registration<tdp_fd::TdpFd>,
}

impl kernel::Module for KvmTdpFdModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let shared = Shared {
            debugfs: Dir::new(c_str!("kvm_tdp_fd")),
            next: AtomicU64::new(0),
        };
        let registration = Registration::new(shared)?;
        pr_info!("registered as KVM's TDP FD provider\n");
        Ok(KvmTdpFdModule {
            _registration: registration,
        })
    }
}
