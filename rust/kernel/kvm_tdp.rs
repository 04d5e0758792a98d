// SPDX-License-Identifier: GPL-2.0

//! Exported KVM TDP page tables: the provider's and the importers' side.
//!
//! `KVM_CREATE_TDP_FD` exports the TDP (NPT/EPT) page table of a VM through a
//! file.  KVM owns the table, the export ([`Export`]) and the file; the
//! object behind the file, its importers and the fan-out of KVM's reports to
//! them come from the one registered *provider*, which implements
//! [`Provider`] and keeps a [`Registration`] alive while it is loaded
//! ([`provider`]).  The provider also serves the C interface of
//! `include/linux/kvm_tdp_fd.h` to importers: its `kvm_tdp_fd_get()` and
//! `kvm_tdp_fd_put()` come from [`kvm_tdp_fd_c_abi!`].
//!
//! Importers written in Rust use [`importer`], which wraps that same C
//! interface in safe types.
//!
//! Files: [`meta`] (the table's format), [`export`] (KVM's export, address
//! spaces), [`provider`] (the objects and their importers), [`registry`],
//! [`range`] and [`history`] (the importer registry, report ranges, the
//! invalidations an attachment heard: pure logic, also tested on the host), [`importer`] (the importers' side) and [`reader`]
//! (how importers read the table and guest memory through it).
//!
//! Every function here that calls into KVM or into the provider module is
//! generic or `#[inline]`: those symbols live in modules, so such calls must
//! be compiled into the calling module, not into `vmlinux`.
//!
//! C headers: [`include/linux/kvm_tdp_export.h`](srctree/include/linux/kvm_tdp_export.h),
//! [`include/linux/kvm_tdp_fd.h`](srctree/include/linux/kvm_tdp_fd.h)

pub mod export;
pub mod history;
pub mod importer;
pub mod meta;
pub mod provider;
pub mod range;
pub mod reader;
pub mod registry;

pub use export::{Export, Mm, MmGrab};
pub use meta::{TableKind, VendorMeta, MAX_LEVELS};
pub use provider::{ImporterOp, Provider, Registration, Report};
pub use range::GpaRange;

use crate::bindings;

/// Report filter bit: the change concerns shared memory.
pub const FILTER_SHARED: u32 = bindings::KVM_TDP_EXPORT_SHARED;
/// Report filter bit: the change concerns private memory.
pub const FILTER_PRIVATE: u32 = bindings::KVM_TDP_EXPORT_PRIVATE;
/// Both report filter bits.
pub const FILTER_ALL: u32 = FILTER_SHARED | FILTER_PRIVATE;

/// Fault access bit: read.
pub const ACCESS_READ: u32 = bindings::KVM_TDP_ACCESS_READ;
/// Fault access bit: write.
pub const ACCESS_WRITE: u32 = bindings::KVM_TDP_ACCESS_WRITE;
/// Fault access bit: instruction fetch.
pub const ACCESS_EXEC: u32 = bindings::KVM_TDP_ACCESS_EXEC;
/// Every fault access bit.
pub const ACCESS_ALL: u32 = ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC;
