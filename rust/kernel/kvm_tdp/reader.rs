// SPDX-License-Identifier: GPL-2.0

//! Reading an exported table, and guest memory through it, as a device
//! would: with no lock of KVM's.
//!
//! An importer walks KVM's table and copies guest memory through what it
//! finds, and may cache both (an IOTLB, a paging-structure cache) for as
//! long as KVM does not invalidate them.  Only a walk can say which
//! physical addresses are KVM's page tables and guest pages, and only KVM's
//! invalidations say for how long, so the addresses never leave this file
//! bare: a walk hands out *tokens*, [`Table`] and [`Leaf`], which stand for
//! a table or a page the exported table linked or mapped when it was read,
//! and [`TableReader`] reads or copies only through a token that is still
//! current.
//!
//! # Why that is sound
//!
//! KVM's contract (`include/linux/kvm_tdp_fd.h`): it frees or repurposes a
//! page table, or lets a guest page go, only after every importer's
//! `invalidate` for a range that covers it has returned.  Each attachment
//! records the ranges its `invalidate` receives in a [`History`], behind a
//! spinlock taken *before* the importer is called, and a [`TableReader`]
//! holds that lock (and the RCU read lock) while it lives.  A token records
//! the number of invalidations seen when it was made and the GPA range the
//! table or page translates; it is current if no invalidation since then
//! overlaps that range.  So while a reader uses a current token, no
//! invalidation of its range has been recorded, hence none has returned,
//! and none can complete before the reader is dropped: the table or page is
//! still KVM's.  If more invalidations came since a token was made than the
//! history remembers, the token is stale (`EAGAIN`): the importer walks
//! again, as after an invalidation of its own cache.
//!
//! A token is also bound to the attachment that made it (a token of another
//! VM's table is refused), and a [`Leaf`] allows writes only if every level
//! of the walk allowed them (a read-only mapping may be the zero page, or a
//! page cache page).
//!
//! Memory that is not ordinary RAM (a vCPU's fault may map MMIO and other
//! `VM_PFNMAP`/`VM_IO` memory) is never copied: `ENXIO`.

use super::{history::History, meta::VendorMeta, TableKind};
use crate::{
    bindings,
    error::{
        code::{EACCES, EAGAIN, EINVAL, EIO, ENXIO},
        Result,
    },
    sync::{lock::spinlock::SpinLockBackend, lock::Guard, rcu, SpinLock},
};
use core::sync::atomic::{AtomicU64, Ordering};

/// log2 of the smallest page; a table page is one.
const PAGE_SHIFT: u32 = crate::page::PAGE_SHIFT as u32;
/// Bytes of the smallest page.
const PAGE_SIZE: u64 = crate::page::PAGE_SIZE as u64;
/// Entries of a table page.
pub use crate::table_page::ENTRIES;
/// The page-size bit of a non-leaf level's entry, in NPT and EPT alike.
const PS: u64 = 1 << 7;
/// The writable bit, in NPT (R/W) and EPT (W) alike.
const WRITABLE: u64 = 1 << 1;

/// Numbers attachments, so that a token names the one that made it.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Bytes translated by one entry of a table at `level` (1: 4K).
fn entry_span(level: u32) -> u64 {
    1u64.checked_shl(PAGE_SHIFT + 9 * (level - 1)).unwrap_or(0)
}

/// The last GPA of the range of `span` bytes at `first` (saturating: a root
/// of a 5-level table translates 2^57 bytes, of which any GPA is part).
fn last_gpa(first: u64, span: u64) -> u64 {
    match span {
        0 => u64::MAX,
        span => first.saturating_add(span - 1),
    }
}

/// What an attachment needs of the table's format to make tokens.
#[derive(Clone, Copy)]
pub(super) struct Format {
    id: u64,
    root: u64,
    levels: u32,
    max_huge_level: u32,
    present_mask: u64,
    present_value: u64,
    pfn_mask: u64,
}

impl Format {
    /// The format of `meta`, for a new attachment.
    ///
    /// # Errors
    ///
    /// `EIO` for a table of other than 4 or 5 levels, or with leaves above
    /// 1G or none at 4K.
    pub(super) fn new(meta: &VendorMeta) -> Result<Self> {
        // Both formats share the bits used here (the exhaustive match makes
        // a new format say what its bits are).
        match meta.kind() {
            TableKind::Npt | TableKind::Ept => {}
        }
        if !(4..=5).contains(&meta.levels()) || !(1..=3).contains(&meta.max_huge_level()) {
            return Err(EIO);
        }
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: meta.root_hpa(),
            levels: meta.levels(),
            max_huge_level: meta.max_huge_level(),
            present_mask: meta.present_mask(),
            present_value: meta.present_value(),
            pfn_mask: meta.pfn_mask(),
        })
    }
}

/// Stands for a page table of the exported table, as a walk found it.
///
/// Made only by [`TableReader::root`] and [`Entry::table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    id: u64,
    seen: u64,
    pa: u64,
    level: u32,
    /// The first GPA the table translates.
    first: u64,
    /// Whether every entry above it allows writes.
    writable: bool,
}

impl Table {
    /// The table's host physical address.
    pub fn pa(&self) -> u64 {
        self.pa
    }

    /// The table's level (the root's is the table's number of levels).
    pub fn level(&self) -> u32 {
        self.level
    }

    fn last(&self) -> u64 {
        last_gpa(self.first, entry_span(self.level + 1))
    }
}

/// Stands for a guest page (4K, 2M or 1G) that the exported table mapped
/// when a walk read its leaf.
///
/// Made only by [`Entry::leaf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    id: u64,
    seen: u64,
    /// Host physical address of the page's first byte.
    pa: u64,
    level: u32,
    /// The first GPA the leaf maps.
    first: u64,
    writable: bool,
}

impl Leaf {
    /// The leaf's level (1: 4K, 2: 2M, 3: 1G).
    pub fn level(&self) -> u32 {
        self.level
    }

    /// Whether every level of the walk allowed writes.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The host physical address `gpa` maps to, if the leaf maps `gpa`.
    pub fn pa_of(&self, gpa: u64) -> Option<u64> {
        let offset = gpa.checked_sub(self.first)?;
        (offset < entry_span(self.level)).then(|| self.pa + offset)
    }

    fn last(&self) -> u64 {
        last_gpa(self.first, entry_span(self.level))
    }
}

/// One entry of an exported table, as [`TableReader::entry`] read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    raw: u64,
    next: Option<Table>,
    leaf: Option<Leaf>,
}

impl Entry {
    /// The entry as KVM wrote it.
    pub fn raw(&self) -> u64 {
        self.raw
    }

    /// The table of the next level the entry links, if it is present for
    /// KVM and links one.
    pub fn table(&self) -> Option<Table> {
        self.next
    }

    /// The page the entry maps, if it is present for KVM and a leaf.
    pub fn leaf(&self) -> Option<Leaf> {
        self.leaf
    }
}

/// Reads an attachment's exported table, and guest memory through it.
///
/// Made by [`super::importer::Attachment::reader`]; holds the RCU read lock
/// and the attachment's history lock (see the [module
/// documentation](self)).  Not `Send`, and must not be held across
/// anything that sleeps.
pub struct TableReader<'a> {
    history: Guard<'a, History, SpinLockBackend>,
    format: &'a Format,
    _rcu: rcu::Guard,
}

impl<'a> TableReader<'a> {
    pub(super) fn new(history: &'a SpinLock<History>, format: &'a Format) -> Self {
        let rcu = rcu::read_lock();
        Self {
            history: history.lock(),
            format,
            _rcu: rcu,
        }
    }

    /// The root table.
    pub fn root(&self) -> Table {
        let f = self.format;
        Table {
            id: f.id,
            seen: self.history.seen(),
            pa: f.root,
            level: f.levels,
            first: 0,
            writable: true,
        }
    }

    fn current(&self, id: u64, seen: u64, first: u64, last: u64) -> Result {
        if id != self.format.id {
            return Err(EINVAL);
        }
        if !self.history.unchanged_since(seen, first, last) {
            return Err(EAGAIN);
        }
        Ok(())
    }

    /// Whether `leaf` is a current token of this reader's attachment, one
    /// that [`TableReader::copy_from`] accepts.
    pub fn is_current(&self, leaf: &Leaf) -> bool {
        self.current(leaf.id, leaf.seen, leaf.first, leaf.last())
            .is_ok()
    }

    /// Reads entry `index` (0..512) of `table`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an index out of range or a token of another
    /// attachment, `EAGAIN` if an invalidation since the token was made
    /// may have taken the table away, `EIO` if the table is not a page of
    /// ordinary RAM (KVM's page tables always are).
    pub fn entry(&self, table: &Table, index: usize) -> Result<Entry> {
        if index >= ENTRIES {
            return Err(EINVAL);
        }
        self.current(table.id, table.seen, table.first, table.last())?;
        // SAFETY: any physical address may be tested.
        if !unsafe { bindings::kvm_tdp_pa_is_ram(table.pa) } {
            return Err(EIO);
        }
        // SAFETY: the token is current and the history lock is held, so the
        // table is still one of KVM's (see the module documentation): a page
        // of RAM in the direct map, of which the entry is a part.  The read
        // is a single `READ_ONCE`: a concurrent update by KVM yields the old
        // or the new entry.
        let raw = unsafe { bindings::kvm_tdp_read_pte(table.pa + (index as u64) * 8) };
        Ok(self.decode(table, index, raw))
    }

    fn decode(&self, table: &Table, index: usize, raw: u64) -> Entry {
        let f = self.format;
        let mut entry = Entry {
            raw,
            next: None,
            leaf: None,
        };
        if f.present_mask == 0 || raw & f.present_mask != f.present_value {
            return entry;
        }
        let level = table.level;
        let span = entry_span(level);
        let first = table.first + (index as u64) * span;
        let pa = raw & f.pfn_mask & !(PAGE_SIZE - 1);
        let ps = level > 1 && raw & PS != 0;
        let writable = table.writable && raw & WRITABLE != 0;
        if level == 1 || (ps && level <= f.max_huge_level) {
            entry.leaf = Some(Leaf {
                id: f.id,
                seen: self.history.seen(),
                pa: pa & !(span - 1),
                level,
                first,
                writable,
            });
        } else if !ps {
            entry.next = Some(Table {
                id: f.id,
                seen: self.history.seen(),
                pa,
                level: level - 1,
                first,
                writable,
            });
        }
        entry
    }

    /// The physical address of `[gpa, gpa + len)` through `leaf`.
    fn span(&self, leaf: &Leaf, gpa: u64, len: usize) -> Result<u64> {
        let len = len as u64;
        if len == 0 || (gpa % PAGE_SIZE) + len > PAGE_SIZE {
            return Err(EINVAL);
        }
        let pa = leaf.pa_of(gpa).ok_or(EINVAL)?;
        self.current(leaf.id, leaf.seen, leaf.first, leaf.last())?;
        // SAFETY: any physical address may be tested.
        if !unsafe { bindings::kvm_tdp_pa_is_ram(pa - pa % PAGE_SIZE) } {
            return Err(ENXIO);
        }
        Ok(pa)
    }

    /// Copies `dst.len()` bytes of guest memory at `gpa`, which `leaf`
    /// maps, to `dst`.
    ///
    /// # Errors
    ///
    /// `EINVAL` unless the bytes lie within one 4K page that `leaf` maps
    /// (or for a token of another attachment), `EAGAIN` if an invalidation
    /// since the token was made may have taken the page away, `ENXIO` if
    /// the page is not ordinary RAM.
    pub fn copy_from(&self, leaf: &Leaf, gpa: u64, dst: &mut [u8]) -> Result {
        let pa = self.span(leaf, gpa, dst.len())?;
        // SAFETY: the span is within one page of RAM, mapped in the direct
        // map, that is still the guest's (the token is current and the
        // history lock held); `dst` is valid for its length.  Guest memory
        // may change concurrently (the guest runs): the bytes are copied as
        // they are, as a device's DMA would.
        unsafe { bindings::kvm_tdp_copy_from_pa(dst.as_mut_ptr().cast(), pa, dst.len()) };
        Ok(())
    }

    /// Copies `src` to guest memory at `gpa`, which `leaf` maps writable.
    ///
    /// # Errors
    ///
    /// Those of [`TableReader::copy_from`], and `EACCES` if the walk that
    /// made `leaf` did not allow writes.
    pub fn copy_to(&self, leaf: &Leaf, gpa: u64, src: &[u8]) -> Result {
        if !leaf.writable {
            return Err(EACCES);
        }
        let pa = self.span(leaf, gpa, src.len())?;
        // SAFETY: as in `copy_from`; and the page is mapped writable at
        // every level, so it is a guest page the guest itself may write,
        // not a shared read-only one.
        unsafe { bindings::kvm_tdp_copy_to_pa(pa, src.as_ptr().cast(), src.len()) };
        Ok(())
    }
}
