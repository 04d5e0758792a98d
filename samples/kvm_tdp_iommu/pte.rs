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
    /// Must-be-zero bits of a present entry, `[ps][level - 1]`.
    pub rsvd: [[u64; 5]; 2],
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
}

/// The outcome of decoding one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Maps nothing (not present, or reserved bits set: a KVM MMIO entry).
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
            Some(i) if (i as usize) < 5 => self.rsvd[usize::from(ps)][i as usize],
            _ => 0,
        }
    }

    /// Decodes `entry`, read at `level` on the walk of `gpa`.
    pub fn decode(&self, entry: u64, level: u32, gpa: u64) -> Step {
        let (present, readable, writable) = match self.format {
            Format::Npt => (
                entry & NPT_P != 0,
                entry & NPT_US != 0,
                entry & (NPT_RW | NPT_US) == NPT_RW | NPT_US,
            ),
            Format::Ept => (
                entry & (EPT_R | EPT_W | EPT_X) != 0,
                entry & EPT_R != 0,
                entry & EPT_W != 0,
            ),
        };
        if !present {
            return Step::NotPresent;
        }
        let ps = level > 1 && entry & PS != 0;
        if entry & self.rsvd_bits(ps, level) != 0 {
            return Step::NotPresent;
        }
        let pa = entry & self.pfn_mask;
        if level == 1 || ps {
            if ps && level > self.max_huge_level {
                return Step::NotPresent;
            }
            let size = Self::page_size(level);
            let base = pa & !(size - 1);
            let offset = gpa & (size - 1) & !((1u64 << PAGE_SHIFT) - 1);
            return Step::Leaf(Leaf {
                pa: base | offset,
                level,
                readable,
                writable,
            });
        }
        Step::Table {
            pa: pa & !((1u64 << PAGE_SHIFT) - 1),
            readable,
            writable,
        }
    }

    /// Walks the table whose root is at `root` for `gpa`, reading entries
    /// with `read(table_pa, index)`.  Permissions are those of every level.
    pub fn walk<E>(
        &self,
        root: u64,
        gpa: u64,
        mut read: impl FnMut(u64, usize) -> Result<u64, E>,
    ) -> Result<Leaf, WalkError<E>> {
        if !(4..=5).contains(&self.levels) || !(1..=3).contains(&self.max_huge_level) {
            return Err(WalkError::BadLayout);
        }
        if !self.reaches(gpa) {
            return Err(WalkError::BadAddress);
        }
        let mut table = root;
        let (mut readable, mut writable) = (true, true);
        let mut level = self.levels;
        loop {
            let entry = read(table, Self::index(gpa, level)).map_err(WalkError::Read)?;
            match self.decode(entry, level, gpa) {
                Step::NotPresent => return Err(WalkError::NotMapped),
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
                    readable &= r;
                    writable &= w;
                    table = pa;
                    level -= 1;
                }
            }
        }
    }
}
