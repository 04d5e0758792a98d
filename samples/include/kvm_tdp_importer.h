/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The ioctls of the sample KVM TDP FD importers:
 *   /dev/kvm_tdp_iommu       samples/kvm_tdp_iommu (Rust, IOMMUFD-style)
 *   /dev/kvm_tdp_importer_c  samples/kvm_tdp_importer_c (C, minimal)
 *
 * Both implement ATTACH, DETACH, FAULT, INFO and STATS the same way; the
 * commands marked (C) exist only in the C importer, which exercises the
 * C interface directly.  An attachment is identified by the id ATTACH
 * returns, unique within the open file.
 */
#ifndef _UAPI_KVM_TDP_IMPORTER_H
#define _UAPI_KVM_TDP_IMPORTER_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define KTI_MAGIC		0xAF

/* Attach: look up @tdp_fd and register as its importer; returns the id. */
struct kti_attach {
	__s32 tdp_fd;
	__u32 flags;		/* KTI_ATTACH_* */
};

/* DMA misses return the error instead of faulting the GFN in. */
#define KTI_ATTACH_NO_FAULT	0x1
/*
 * (Rust) A shadow domain on no TDP FD (@tdp_fd must be -1): DMA translates
 * through a table of the importer's own that KTI_SHADOW_MAP fills, as
 * VFIO's type1 driver does.  For the benchmark's comparison.
 */
#define KTI_ATTACH_SHADOW	0x2
/*
 * (Rust) Faults, for DMA misses and KTI_FAULT, are made by a worker of the
 * system workqueue (a kernel thread with no mm) on behalf of the attaching
 * process's mm, and waited for, as an IOMMU's I/O page fault handler does.
 */
#define KTI_ATTACH_FAULT_WQ	0x4
/*
 * (Rust) Hardware-faithful: besides leaf translations (the IOTLB), DMA
 * caches the table pointers its walks read, per level (a paging-structure
 * cache), and starts each walk from the deepest one cached for the GPA
 * instead of the root, holding nothing of KVM's between walks; cached
 * entries are dropped only when invalidate() covers their GPA range.  So a
 * page table KVM frees without reporting its range is read after it is
 * gone, as an IOMMU would.  Not with KTI_ATTACH_SHADOW.
 */
#define KTI_ATTACH_HW		0x8

/* Fault @gfn with @access (KTI_ACCESS_*) through the attachment @id. */
struct kti_fault {
	__u32 id;
	__u32 access;
	__u64 gfn;
};

#define KTI_ACCESS_READ		0x1
#define KTI_ACCESS_WRITE	0x2
#define KTI_ACCESS_EXEC		0x4

/* The table's format: type (1 NPT, 2 EPT) and levels.  No addresses. */
struct kti_info {
	__u32 id;
	__u32 type;
	__u32 levels;
	__u32 max_huge_page_level;
};

/* What attachment @id has seen. */
struct kti_stats {
	__u32 id;
	__u32 pad;
	__u64 invalidations;	/* invalidate() calls */
	__u64 whole;		/* ... of the whole table (0, -1) */
	__u64 last_start;	/* the last one's range */
	__u64 last_size;
	__u64 faults;		/* fault() calls made */
	__u64 iotlb_hits;	/* translations served by the IOTLB */
	__u64 iotlb_misses;	/* translations that walked the table */
	__u64 iotlb_flushes;	/* IOTLB entries dropped by invalidate() */
	__u64 walk_faults;	/* misses that found no mapping and faulted */
	__u64 last_leaf_level;	/* leaf of the last walk: 1 4K, 2 2M, 3 1G */
	__u64 table_pages;	/* page-table pages the importer allocated */
	__u64 pinned_pages;	/* guest pages it pinned */
	/* (Rust) The paging-structure cache of KTI_ATTACH_HW; 0 without. */
	__u64 psc_hits;		/* walks started from a cached table */
	__u64 psc_misses;	/* walks started from the root */
	__u64 psc_fills;	/* table pointers cached */
	__u64 psc_flushes;	/* ... dropped by invalidate() */
	__u64 psc_entries;	/* ... cached now */
	/*
	 * (C) The smallest range [span_start, span_end) covering every
	 * invalidate() since the previous KTI_STATS of this attachment, which
	 * restarts it; 0, 0 if none.  KVM may split one operation's report
	 * where it yields mmu_lock: the span is what the operation reported.
	 */
	__u64 span_start;
	__u64 span_end;
	/*
	 * (Rust) The leaf entry the last walk found, as KVM wrote it (memory
	 * type, A/D bits), and the walks that ended at one of KVM's MMIO
	 * entries (struct kvm_exported_tdp_meta's decoding, step 2).
	 */
	__u64 last_leaf_entry;
	__u64 mmio_walks;
};

/*
 * The size of struct kti_stats up to pinned_pages, its first layout.
 * KTI_STATS is accepted with any size from this one to the current one's
 * (a multiple of 8, encoded in the command): the importer fills that many
 * bytes, so a caller built against a shorter struct gets its fields.
 */
#define KTI_STATS_SIZE_V1	104

/*
 * DMA through attachment @id: copy @len bytes at guest physical @gpa.
 * KTI_SHADOW_MAP (Rust): pin @len bytes of the caller's memory at @buf and
 * map them at @gpa in shadow domain @id (page aligned; flags
 * KTI_SHADOW_MAP_READONLY).
 */
struct kti_dma {
	__u32 id;
	__u32 flags;
	__u64 gpa;
	__u64 len;
	__u64 buf;		/* user address */
};

#define KTI_ATTACH		_IOW(KTI_MAGIC, 0, struct kti_attach)
#define KTI_DETACH		_IOW(KTI_MAGIC, 1, __u32)
#define KTI_FAULT		_IOW(KTI_MAGIC, 2, struct kti_fault)
#define KTI_INFO		_IOWR(KTI_MAGIC, 3, struct kti_info)
#define KTI_STATS		_IOWR(KTI_MAGIC, 4, struct kti_stats)
#define KTI_DMA_READ		_IOW(KTI_MAGIC, 5, struct kti_dma)
#define KTI_DMA_WRITE		_IOW(KTI_MAGIC, 6, struct kti_dma)
#define KTI_SHADOW_MAP		_IOW(KTI_MAGIC, 7, struct kti_dma)

#define KTI_SHADOW_MAP_READONLY	0x1

/* (C) kvm_tdp_fd_get(fd) then kvm_tdp_fd_put(): 0 or its error. */
#define KTI_C_GET		_IOW(KTI_MAGIC, 16, __s32)
/* (C) register attachment @id's ops a second time: its error. */
#define KTI_C_REGISTER_AGAIN	_IOW(KTI_MAGIC, 17, __u32)
/* (C) unregister ops that were never registered on attachment @id's fd. */
#define KTI_C_UNREGISTER_UNKNOWN _IOW(KTI_MAGIC, 18, __u32)

/*
 * (C) The metadata of attachment @id's table, as get_metadata() returns it
 * (include/linux/kvm_tdp_fd.h): the common header's masks, then the
 * format's.  @fmt_mask is the NPT no-execute bit or the EPT execute bits.
 * The root's address is not given out.
 */
struct kti_c_meta {
	__u32 id;
	__u32 type;
	__u32 levels;
	__u32 max_huge_page_level;
	__u64 present_mask;
	__u64 present_value;
	__u64 mmio_mask;
	__u64 mmio_value;
	__u64 pfn_mask;
	__u64 fmt_mask;
	__u64 accessed_mask;
	__u64 dirty_mask;
	__u64 kvm_sw_mask;
	__u64 rsvd_bits_mask[2][5];
};

#define KTI_C_META		_IOWR(KTI_MAGIC, 19, struct kti_c_meta)

#endif /* _UAPI_KVM_TDP_IMPORTER_H */
