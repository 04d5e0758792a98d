// SPDX-License-Identifier: GPL-2.0

//! An IOMMUFD-style importer of KVM TDP FDs, in safe Rust.
//!
//! `/dev/kvm_tdp_iommu` takes the ioctls of
//! `samples/include/kvm_tdp_importer.h`.  Each open file is like an iommufd
//! context; each attachment like a device attached to an IOMMU domain whose
//! I/O page table is the VM's TDP: the domain registers as the TDP FD's
//! importer through the safe API of `kernel::kvm_tdp::importer`.
//!
//! Every attachment registers importer ops of its own (see
//! `kernel::kvm_tdp::importer::TdpFdRef::attach`), so one TDP FD may be
//! attached several times, like one I/O page table shared by several
//! domains; each attachment hears every invalidation.
//!
//! DMA (`KTI_DMA_READ`/`KTI_DMA_WRITE`) translates each page as an IOMMU
//! would: the IOTLB ([`iotlb`]) first, else a walk of the real table from
//! the root the metadata gives ([`pte`]), honouring permissions and huge
//! pages; a walk that finds no mapping (or a read-only one, for a write)
//! faults the GFN in through the TDP FD and retries, like an I/O page fault,
//! unless the attachment was made with `KTI_ATTACH_NO_FAULT`.  Host
//! physical addresses never leave the kernel.
//!
//! `KTI_ATTACH_HW` makes the domain hardware-faithful: it also caches the
//! table pointers its walks read, per level ([`psc`]), starts each walk from
//! the deepest one cached, and drops them only when `invalidate` covers
//! them, as an IOMMU's paging-structure caches do (see [`domain`]).
//!
//! `KTI_ATTACH_SHADOW` makes a shadow domain instead, on no TDP FD: like
//! VFIO's type1 driver, `KTI_SHADOW_MAP` pins the VMM's memory behind a
//! GPA range and maps it in a table of the domain's own ([`shadow`]), and
//! DMA translates through that.  It exists for `make bench`'s comparison.

use core::{pin::Pin, sync::atomic::Ordering::Relaxed};
use kernel::{
    c_str,
    ioctl::{_IOC_DIR, _IOC_NR, _IOC_SIZE, _IOC_TYPE, _IOW, _IOWR},
    kvm_tdp::{
        importer::{Attachment, TdpFdRef},
        MmGrab, TableKind, ACCESS_EXEC, ACCESS_READ, ACCESS_WRITE,
    },
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, ArcBorrow, Mutex},
    uaccess::UserSlice,
};

pub mod domain;
pub mod iotlb;
pub mod psc;
pub mod pte;
pub mod shadow;

// The pure-logic files (also built on the host) keep their own copies of
// the kernel's numbers: they must agree.
const _: () = assert!(pte::MAX_LEVELS == kernel::kvm_tdp::MAX_LEVELS);
const _: () = assert!(pte::ENTRIES == kernel::table_page::ENTRIES);
const _: () = assert!(pte::PAGE_SHIFT as usize == kernel::page::PAGE_SHIFT);

use domain::{DmaDirection, Domain};
use pte::{Format, Layout};

module! {
    type: KvmTdpIommuModule,
    name: "kvm_tdp_iommu",
    author: "kvm-tdp-fd developers",
    description: "IOMMUFD-style importer of KVM TDP FDs (sample)",
    license: "GPL",
}

/// Attachments one open file may have.
const MAX_ATTACHMENTS: usize = 16;

const KTI_MAGIC: u32 = 0xAF;

/// The ioctl argument layouts, for the sizes in the command numbers.
#[repr(C)]
struct KtiAttach {
    _tdp_fd: i32,
    _flags: u32,
}

#[repr(C)]
struct KtiFault {
    _id: u32,
    _access: u32,
    _gfn: u64,
}

#[repr(C)]
struct KtiInfo {
    _id: u32,
    _type: u32,
    _levels: u32,
    _max_huge_page_level: u32,
}

#[repr(C)]
struct KtiDma {
    _id: u32,
    _flags: u32,
    _gpa: u64,
    _len: u64,
    _buf: u64,
}

/// `struct kti_stats` as it was before the PSC counters: `KTI_STATS` of
/// this size returns only its fields, for callers built against it.
#[repr(C)]
struct KtiStatsV1 {
    _id: u32,
    _pad: u32,
    _counters: [u64; 12],
}

/// `struct kti_stats`: the PSC counters, then the report span, which only
/// the C importer keeps (0, 0 here), then the last leaf entry and the MMIO
/// walks, which only this importer keeps.
#[repr(C)]
struct KtiStats {
    _v1: KtiStatsV1,
    _psc: [u64; 5],
    _span: [u64; 2],
    _entries: [u64; 2],
}

const KTI_ATTACH: u32 = _IOW::<KtiAttach>(KTI_MAGIC, 0);
const KTI_DETACH: u32 = _IOW::<u32>(KTI_MAGIC, 1);
const KTI_FAULT: u32 = _IOW::<KtiFault>(KTI_MAGIC, 2);
const KTI_INFO: u32 = _IOWR::<KtiInfo>(KTI_MAGIC, 3);
const KTI_STATS: u32 = _IOWR::<KtiStats>(KTI_MAGIC, 4);
const KTI_DMA_READ: u32 = _IOW::<KtiDma>(KTI_MAGIC, 5);
const KTI_DMA_WRITE: u32 = _IOW::<KtiDma>(KTI_MAGIC, 6);
const KTI_SHADOW_MAP: u32 = _IOW::<KtiDma>(KTI_MAGIC, 7);

/// Largest DMA one ioctl does.
const MAX_DMA: u64 = 16 << 20;

const KTI_ATTACH_NO_FAULT: u32 = 1 << 0;
const KTI_ATTACH_SHADOW: u32 = 1 << 1;
const KTI_ATTACH_FAULT_WQ: u32 = 1 << 2;
const KTI_ATTACH_HW: u32 = 1 << 3;

const KTI_SHADOW_MAP_READONLY: u32 = 1 << 0;

const KTI_ACCESS_READ: u32 = 1 << 0;
const KTI_ACCESS_WRITE: u32 = 1 << 1;
const KTI_ACCESS_EXEC: u32 = 1 << 2;

/// A domain of an open file.
enum Att {
    /// Registered as the importer of a TDP FD.
    Tdp(Attachment<Domain>),
    /// A shadow domain, on no TDP FD.
    Shadow(Arc<Domain>),
}

impl Att {
    fn domain(&self) -> &Domain {
        match self {
            Att::Tdp(a) => a.importer(),
            Att::Shadow(d) => d,
        }
    }

    /// The TDP FD, or `EINVAL` for a shadow domain.
    fn tdp(&self) -> Result<&Attachment<Domain>> {
        match self {
            Att::Tdp(a) => Ok(a),
            Att::Shadow(_) => Err(EINVAL),
        }
    }
}

/// An open file of the device: its attachments, by id.
#[pin_data]
struct IommuFile {
    #[pin]
    attachments: Mutex<KVec<Option<Att>>>,
}

impl IommuFile {
    fn attach(&self, tdp_fd: i32, flags: u32) -> Result<isize> {
        let known = KTI_ATTACH_NO_FAULT | KTI_ATTACH_SHADOW | KTI_ATTACH_FAULT_WQ | KTI_ATTACH_HW;
        if flags & !known != 0 {
            return Err(EINVAL);
        }
        // A shadow table never changes behind the domain: nothing for a
        // hardware-faithful cache to be told, and no faults.
        if flags & KTI_ATTACH_SHADOW != 0 && flags & (KTI_ATTACH_FAULT_WQ | KTI_ATTACH_HW) != 0 {
            return Err(EINVAL);
        }
        if flags & KTI_ATTACH_SHADOW != 0 && tdp_fd != -1 {
            return Err(EINVAL);
        }
        let mut attachments = self.attachments.lock();
        let id = match attachments.iter().position(Option::is_none) {
            Some(id) => id,
            None if attachments.len() < MAX_ATTACHMENTS => {
                attachments.push(None, GFP_KERNEL)?;
                attachments.len() - 1
            }
            None => return Err(ENOSPC),
        };
        if flags & KTI_ATTACH_SHADOW != 0 {
            let domain = Arc::pin_init(Domain::new_shadow()?, GFP_KERNEL)?;
            attachments[id] = Some(Att::Shadow(domain));
            return Ok(id as isize);
        }
        let fd = TdpFdRef::get(tdp_fd)?;
        let meta = fd.metadata()?;
        let layout = Layout {
            format: match meta.kind() {
                TableKind::Npt => Format::Npt,
                TableKind::Ept => Format::Ept,
            },
            levels: meta.levels(),
            max_huge_level: meta.max_huge_level(),
            pfn_mask: meta.pfn_mask(),
            present_mask: meta.present_mask(),
            present_value: meta.present_value(),
            mmio_mask: meta.mmio_mask(),
            mmio_value: meta.mmio_value(),
            rsvd: meta.rsvd_bits_table(),
        };
        let fault_on_miss = flags & KTI_ATTACH_NO_FAULT == 0;
        // The attaching process's mm, which the workqueue's faults are made
        // on behalf of (KVM refuses them if it is not the VM's).
        let fault_wq = if flags & KTI_ATTACH_FAULT_WQ != 0 {
            Some(MmGrab::current().ok_or(EINVAL)?)
        } else {
            None
        };
        let domain = Arc::pin_init(
            Domain::new(layout, fault_on_miss, fault_wq, flags & KTI_ATTACH_HW != 0)?,
            GFP_KERNEL,
        )?;
        let attachment = fd.attach(domain).map_err(|(e, _fd)| e)?;
        attachments[id] = Some(Att::Tdp(attachment));
        Ok(id as isize)
    }

    fn detach(&self, id: u32) -> Result<isize> {
        let mut attachments = self.attachments.lock();
        let slot = attachments.get_mut(id as usize).ok_or(ENOENT)?;
        // Dropping the attachment unregisters and puts the TDP FD.
        slot.take().ok_or(ENOENT)?;
        Ok(0)
    }

    /// Runs `f` on attachment `id`, with the attachment list locked.
    fn with<R>(&self, id: u32, f: impl FnOnce(&Att) -> Result<R>) -> Result<R> {
        let attachments = self.attachments.lock();
        match attachments.get(id as usize) {
            Some(Some(attachment)) => f(attachment),
            _ => Err(ENOENT),
        }
    }
}

/// Copies `len` bytes between the user buffer at `buf` and guest physical
/// `gpa` through attachment `a`, one page at a time.
fn dma(a: &Att, gpa: u64, len: u64, buf: usize, dir: DmaDirection) -> Result<isize> {
    if len == 0 || len > MAX_DMA || gpa.checked_add(len).is_none() {
        return Err(EINVAL);
    }
    let mut bounce = KVec::from_elem(0u8, 4096, GFP_KERNEL)?;
    let user = UserSlice::new(buf, len as usize);
    let (mut reader, mut writer) = user.reader_writer();
    let mut done = 0u64;
    while done < len {
        let at = gpa + done;
        let chunk = core::cmp::min(len - done, 4096 - (at & 0xfff)) as usize;
        let page = &mut bounce[..chunk];
        let att = a.tdp().ok();
        match dir {
            DmaDirection::Read => {
                a.domain().dma_page(att, at, page, dir)?;
                writer.write_slice(page)?;
            }
            DmaDirection::Write => {
                reader.read_slice(page)?;
                a.domain().dma_page(att, at, page, dir)?;
            }
        }
        done += chunk as u64;
    }
    Ok(0)
}

fn kti_access(access: u32) -> Result<u32> {
    if access & !(KTI_ACCESS_READ | KTI_ACCESS_WRITE | KTI_ACCESS_EXEC) != 0 {
        return Err(EINVAL);
    }
    let mut kvm = 0;
    if access & KTI_ACCESS_READ != 0 {
        kvm |= ACCESS_READ;
    }
    if access & KTI_ACCESS_WRITE != 0 {
        kvm |= ACCESS_WRITE;
    }
    if access & KTI_ACCESS_EXEC != 0 {
        kvm |= ACCESS_EXEC;
    }
    Ok(kvm)
}

/// Whether `cmd` is `KTI_STATS` for a `struct kti_stats` of a size this
/// module knows: the first layout's, the current one's, or one between
/// (a multiple of 8).
fn is_stats(cmd: u32) -> bool {
    let size = _IOC_SIZE(cmd);
    _IOC_DIR(cmd) == _IOC_DIR(KTI_STATS)
        && _IOC_TYPE(cmd) == KTI_MAGIC
        && _IOC_NR(cmd) == _IOC_NR(KTI_STATS)
        && (core::mem::size_of::<KtiStatsV1>()..=core::mem::size_of::<KtiStats>()).contains(&size)
        && size % 8 == 0
}

struct KvmTdpIommu;

#[vtable]
impl MiscDevice for KvmTdpIommu {
    type Owner = KvmTdpIommuModule;
    type Ptr = Arc<IommuFile>;

    fn open() -> Result<Arc<IommuFile>> {
        Arc::pin_init(
            pin_init!(IommuFile {
                attachments <- new_mutex!(KVec::new(), "kvm_tdp_iommu:attachments"),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(file: ArcBorrow<'_, IommuFile>, cmd: u32, arg: usize) -> Result<isize> {
        let size = _IOC_SIZE(cmd);
        let (mut reader, mut writer) = UserSlice::new(arg, size).reader_writer();
        // `KTI_STATS` of any size from the first layout's to the current
        // one's: as many bytes are written as the caller's struct holds.
        let cmd = if is_stats(cmd) { KTI_STATS } else { cmd };
        match cmd {
            KTI_ATTACH => {
                let tdp_fd = reader.read::<i32>()?;
                let flags = reader.read::<u32>()?;
                file.attach(tdp_fd, flags)
            }
            KTI_DETACH => file.detach(reader.read::<u32>()?),
            KTI_FAULT => {
                let id = reader.read::<u32>()?;
                let access = kti_access(reader.read::<u32>()?)?;
                let gfn = reader.read::<u64>()?;
                file.with(id, |a| {
                    let a = a.tdp()?;
                    a.importer().counters.faults.fetch_add(1, Relaxed);
                    a.importer().fault(a, gfn, access)
                })?;
                Ok(0)
            }
            KTI_INFO => {
                let id = reader.read::<u32>()?;
                // The layout the domain walks: the TDP FD's, from its
                // metadata at attach, or a shadow domain's own.
                let info = file.with(id, |a| {
                    let layout = a.domain().layout();
                    let kind = match layout.format {
                        Format::Npt => 1u32,
                        Format::Ept => 2u32,
                    };
                    Ok([kind, layout.levels, layout.max_huge_level])
                })?;
                writer.write(&id)?;
                for v in info {
                    writer.write(&v)?;
                }
                Ok(0)
            }
            KTI_STATS => {
                let id = reader.read::<u32>()?;
                let values = file.with(id, |a| {
                    let d = a.domain();
                    let c = &d.counters;
                    let (table_pages, pinned_pages) = d
                        .with_shadow(|s| (s.table_pages(), s.pinned_pages()))
                        .unwrap_or((0, 0));
                    let psc = d.psc_counters();
                    Ok([
                        c.invalidations.load(Relaxed),
                        c.whole.load(Relaxed),
                        c.last_start.load(Relaxed),
                        c.last_size.load(Relaxed),
                        c.faults.load(Relaxed),
                        c.iotlb_hits.load(Relaxed),
                        c.iotlb_misses.load(Relaxed),
                        c.iotlb_flushes.load(Relaxed),
                        c.walk_faults.load(Relaxed),
                        c.last_leaf_level.load(Relaxed),
                        table_pages,
                        pinned_pages,
                        psc.stats.hits,
                        psc.stats.misses,
                        psc.stats.fills,
                        psc.stats.flushes,
                        psc.entries,
                        0,
                        0,
                        c.last_leaf_entry.load(Relaxed),
                        c.mmio_walks.load(Relaxed),
                    ])
                })?;
                writer.write(&id)?;
                writer.write(&0u32)?;
                // The writer holds the caller's size: stop at its end.
                for v in values.iter().take((size - 8) / 8) {
                    writer.write(v)?;
                }
                Ok(0)
            }
            KTI_DMA_READ | KTI_DMA_WRITE => {
                let id = reader.read::<u32>()?;
                let flags = reader.read::<u32>()?;
                let gpa = reader.read::<u64>()?;
                let len = reader.read::<u64>()?;
                let buf = reader.read::<u64>()? as usize;
                if flags != 0 {
                    return Err(EINVAL);
                }
                let dir = if cmd == KTI_DMA_READ {
                    DmaDirection::Read
                } else {
                    DmaDirection::Write
                };
                file.with(id, |a| dma(a, gpa, len, buf, dir))
            }
            KTI_SHADOW_MAP => {
                let id = reader.read::<u32>()?;
                let flags = reader.read::<u32>()?;
                let gpa = reader.read::<u64>()?;
                let len = reader.read::<u64>()?;
                let addr = reader.read::<u64>()? as usize;
                if flags & !KTI_SHADOW_MAP_READONLY != 0 {
                    return Err(EINVAL);
                }
                let writable = flags & KTI_SHADOW_MAP_READONLY == 0;
                file.with(id, |a| a.domain().shadow_map(gpa, len, addr, writable))?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The owner of the device's `'static` file operations.
impl kernel::ModuleOwner for KvmTdpIommuModule {
    const THIS_MODULE: &'static ThisModule = &THIS_MODULE;
}

/// The module's state: the device, from load to unload.
struct KvmTdpIommuModule {
    _misc: Pin<KBox<MiscDeviceRegistration<KvmTdpIommu>>>,
}

impl kernel::Module for KvmTdpIommuModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let options = MiscDeviceOptions {
            name: c_str!("kvm_tdp_iommu"),
        };
        Ok(Self {
            _misc: KBox::pin_init(MiscDeviceRegistration::register(options), GFP_KERNEL)?,
        })
    }
}
