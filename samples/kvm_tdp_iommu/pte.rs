// SPDX-License-Identifier: GPL-2.0

//! Page-table entry decoding and the walk of an exported TDP table.
//!
//! What an IOMMU's page walker does in hardware: from the root, read the
//! entry that covers the address at each level, stop at a leaf or at an
//! entry that maps nothing, and collect the permissions on the way.  The
//! formats are x86-64 long mode (AMD NPT) and Intel EPT; the layout's masks
//! come from the TDP FD's metadata.
//!
//! This file depends on `core` only, so it is compiled both into the module
//! and into the host-side unit tests (`logic/`).

/// log2 of the smallest page.
pub const PAGE_SHIFT: u32 = 12;
/// Entries per table.
pub const ENTRIES: usize = 512;
/// Levels a table has at most (5-level paging), as the metadata's
/// `rsvd_bits_mask` describes them.
pub const MAX_LEVELS: usize = 5;

/// NPT: present.
pub const NPT_P: u64 = 1 << 0;
/// NPT: writable.
pub const NPT_RW: u64 = 1 << 1;
/// NPT: user (NPT walks are user accesses, so it must be set).
pub const NPT_US: u64 = 1 << 2;
/// NPT and EPT: page size (a leaf above level 1).
pub const PS: u64 = 1 << 7;
/// EPT: read.
pub const EPT_R: u64 = 1 << 0;
/// EPT: write.
pub const EPT_W: u64 = 1 << 1;
/// EPT: execute.
pub const EPT_X: u64 = 1 << 2;

/// The format of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// AMD nested page table.
    Npt,
    /// Intel extended page table.
    Ept,
}

/// What a walker needs to know of a table, from its metadata.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Entry format.
    pub format: Format,
    /// Number of levels (4 or 5).
    pub levels: u32,
    /// Largest level with leaves.
    pub max_huge_level: u32,
    /// Bits holding the physical address.
    pub pfn_mask: u64,
    /// With `present_value`: an entry is present for KVM iff
    /// `entry & present_mask == present_value` (KVM's MMU-present bit).
    /// 0 and 0 for a table of the importer's own.
    pub present_mask: u64,
    /// See `present_mask`.
    pub present_value: u64,
    /// With `mmio_value`: KVM's MMIO entries, `entry & mmio_mask ==
    /// mmio_value`, if `mmio_value` is not 0.
    pub mmio_mask: u64,
    /// See `mmio_mask`.
    pub mmio_value: u64,
    /// Must-be-zero bits of a present entry, `[ps][level - 1]`.
    pub rsvd: [[u64; MAX_LEVELS]; 2],
}

/// A translation found by a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Physical address of the 4K page holding the address walked.
    pub pa: u64,
    /// Level of the leaf entry (1: 4K, 2: 2M, 3: 1G).
    pub level: u32,
    /// Reads allowed at every level.
    pub readable: bool,
    /// Writes allowed at every level.
    pub writable: bool,
    /// The leaf entry as read from the table (memory type, A/D bits).
    pub entry: u64,
}

/// What an entry is, by the decision procedure of `struct
/// kvm_exported_tdp_meta` (`include/linux/kvm_tdp_fd.h`), in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Not present for KVM: the non-present value, a frozen entry, zero.
    NotPresent,
    /// One of KVM's MMIO entries (its address bits hold a GPA).
    Mmio,
    /// Present for KVM, but with none of the hardware's present bits:
    /// access-tracked (EPT without A/D bits).  Not a translation now.
    AccessTracked,
    /// A must-be-zero bit is set, or a huge page above the largest level.
    Reserved,
    /// Points to a table of the next level.
    Table,
    /// Maps a page.
    Leaf,
}

/// The outcome of decoding one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Maps nothing: not present for KVM, an MMIO or access-tracked entry,
    /// or reserved bits set.
    NotPresent,
    /// Points to the next level's table at this physical address.
    Table {
        /// Physical address of the table.
        pa: u64,
        /// Reads allowed by this entry.
        readable: bool,
        /// Writes allowed by this entry.
        writable: bool,
    },
    /// Maps a page.
    Leaf(Leaf),
}

/// Why a walk stopped without a translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError<E> {
    /// An entry on the way maps nothing: the GPA is not mapped (yet).
    NotMapped,
    /// The walk met one of KVM's MMIO entries: the GPA is emulated MMIO
    /// for the guest, never memory (a fault cannot map it either).
    Mmio,
    /// The layout is not one this walker knows.
    BadLayout,
    /// The address has bits set above what the table's levels translate:
    /// walking it would alias a lower address.
    BadAddress,
    /// Reading an entry failed.
    Read(E),
}

impl Layout {
    /// Index of the entry for `gpa` in a table at `level` (1-based).
    pub fn index(gpa: u64, level: u32) -> usize {
        ((gpa >> (PAGE_SHIFT + 9 * (level - 1))) as usize) & (ENTRIES - 1)
    }

    /// Bytes mapped by a leaf at `level`.
    pub fn page_size(level: u32) -> u64 {
        1u64 << (PAGE_SHIFT + 9 * (level - 1))
    }

    /// Whether the table translates `gpa` at all: its levels index bits
    /// `PAGE_SHIFT + 9 * levels - 1` down to `PAGE_SHIFT`, and a bit above
    /// them would be ignored by the walk, aliasing a lower address.
    pub fn reaches(&self, gpa: u64) -> bool {
        let bits = PAGE_SHIFT + 9 * self.levels;
        bits >= 64 || gpa >> bits == 0
    }

    fn rsvd_bits(&self, ps: bool, level: u32) -> u64 {
        match level.checked_sub(1) {
            Some(i) if (i as usize) < MAX_LEVELS => self.rsvd[usize::from(ps)][i as usize],
            _ => 0,
        }
    }

    /// Classifies `entry`, read at `level`.
    pub fn classify(&self, entry: u64, level: u32) -> Kind {
        if self.mmio_value != 0 && entry & self.mmio_mask == self.mmio_value {
            return Kind::Mmio;
        }
        if entry & self.present_mask != self.present_value {
            return Kind::NotPresent;
        }
        let hw_present = match self.format {
            Format::Npt => entry & NPT_P != 0,
            Format::Ept => entry & (EPT_R | EPT_W | EPT_X) != 0,
        };
        if !hw_present {
            // A table of the importer's own (`present_mask` 0) has no
            // access-tracked entries: there, this is just not present.
            return if self.present_mask == 0 {
                Kind::NotPresent
            } else {
                Kind::AccessTracked
            };
        }
        let ps = level > 1 && entry & PS != 0;
        if entry & self.rsvd_bits(ps, level) != 0 || (ps && level > self.max_huge_level) {
            return Kind::Reserved;
        }
        if level == 1 || ps {
            Kind::Leaf
        } else {
            Kind::Table
        }
    }

    /// Decodes `entry`, read at `level` on the walk of `gpa`.
    pub fn decode(&self, entry: u64, level: u32, gpa: u64) -> Step {
        let kind = self.classify(entry, level);
        if !matches!(kind, Kind::Leaf | Kind::Table) {
            return Step::NotPresent;
        }
        let (readable, writable) = match self.format {
            Format::Npt => (
                entry & NPT_US != 0,
                entry & (NPT_RW | NPT_US) == NPT_RW | NPT_US,
            ),
            Format::Ept => (entry & EPT_R != 0, entry & EPT_W != 0),
        };
        let pa = entry & self.pfn_mask;
        if kind == Kind::Leaf {
            let size = Self::page_size(level);
            let base = pa & !(size - 1);
            let offset = gpa & (size - 1) & !((1u64 << PAGE_SHIFT) - 1);
            return Step::Leaf(Leaf {
                pa: base | offset,
                level,
                readable,
                writable,
                entry,
            });
        }
        Step::Table {
            pa: pa & !((1u64 << PAGE_SHIFT) - 1),
            readable,
            writable,
        }
    }

    /// Walks the table whose root is at physical address `root` for `gpa`,
    /// reading entries with `read(table_pa, index)`.  Permissions are those
    /// of every level.
    pub fn walk<E>(
        &self,
        root: u64,
        gpa: u64,
        read: impl FnMut(u64, usize) -> Result<u64, E>,
    ) -> Result<Leaf, WalkError<E>> {
        self.walk_tables(root, gpa, &mut ByPa(read))
    }

    /// Walks the table whose root is `root` for `gpa`, reading it through
    /// `tables`.  Permissions are those of every level.
    pub fn walk_tables<W: Tables>(
        &self,
        root: W::Table,
        gpa: u64,
        tables: &mut W,
    ) -> Result<Leaf, WalkError<W::Error>> {
        self.check(gpa)?;
        self.walk_from(
            Start {
                table: root,
                level: self.levels,
                readable: true,
                writable: true,
            },
            gpa,
            tables,
            |_| {},
        )
    }

    /// `BadLayout` for a layout no walk can follow, `BadAddress` for a GPA
    /// beyond the table's reach; checked before any walk.
    pub fn check<E>(&self, gpa: u64) -> Result<(), WalkError<E>> {
        if !(4..=5).contains(&self.levels) || !(1..=3).contains(&self.max_huge_level) {
            return Err(WalkError::BadLayout);
        }
        if !self.reaches(gpa) {
            return Err(WalkError::BadAddress);
        }
        Ok(())
    }

    /// Walks for `gpa` from `start` (the root, or a table a cache kept with
    /// the permissions of the levels above it), reading tables through
    /// `tables` and calling `table(next)` with every table it reaches.  The
    /// caller has run [`Layout::check`].
    pub fn walk_from<W: Tables>(
        &self,
        start: Start<W::Table>,
        gpa: u64,
        tables: &mut W,
        mut table: impl FnMut(Start<W::Table>),
    ) -> Result<Leaf, WalkError<W::Error>> {
        let Start {
            table: mut current,
            mut level,
            mut readable,
            mut writable,
        } = start;
        loop {
            let entry = tables
                .read(current, Self::index(gpa, level))
                .map_err(WalkError::Read)?;
            match self.decode(entry, level, gpa) {
                Step::NotPresent => {
                    return Err(if self.classify(entry, level) == Kind::Mmio {
                        WalkError::Mmio
                    } else {
                        WalkError::NotMapped
                    })
                }
                Step::Leaf(mut leaf) => {
                    leaf.readable &= readable;
                    leaf.writable &= writable;
                    return Ok(leaf);
                }
                Step::Table {
                    pa,
                    readable: r,
                    writable: w,
                } => {
                    if level == 1 {
                        return Err(WalkError::NotMapped);
                    }
                    // The reader of the tables must agree that the entry
                    // links the table at `pa`.
                    current = tables.next(pa).ok_or(WalkError::BadLayout)?;
                    readable &= r;
                    writable &= w;
                    level -= 1;
                    table(Start {
                        table: current,
                        level,
                        readable,
                        writable,
                    });
                }
            }
        }
    }
}

/// How a walk reads the tables it crosses.
pub trait Tables {
    /// A table the walk can read: its physical address, or a handle that
    /// stands for it.
    type Table: Copy;
    /// Why a read fails.
    type Error;

    /// Entry `index` of `table`.
    fn read(&mut self, table: Self::Table, index: usize) -> Result<u64, Self::Error>;

    /// The table at physical address `pa` that the entry read last links,
    /// or `None` if this reader does not find it there.
    fn next(&mut self, pa: u64) -> Option<Self::Table>;
}

/// Tables read by physical address, with `read(table_pa, index)`.
pub struct ByPa<F>(pub F);

impl<E, F: FnMut(u64, usize) -> Result<u64, E>> Tables for ByPa<F> {
    type Table = u64;
    type Error = E;

    fn read(&mut self, table: u64, index: usize) -> Result<u64, E> {
        (self.0)(table, index)
    }

    fn next(&mut self, pa: u64) -> Option<u64> {
        Some(pa)
    }
}

/// Where a walk starts: a table, its level, and the permissions of the levels
/// above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start<T = u64> {
    /// The table: its physical address, or a handle that stands for it.
    pub table: T,
    /// Its level (the root's is the layout's `levels`).
    pub level: u32,
    /// Whether every level above allows reads.
    pub readable: bool,
    /// Whether every level above allows writes.
    pub writable: bool,
}
