/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * KVM TDP FD: the interface for importers of a VM's TDP page table.
 *
 * KVM_CREATE_TDP_FD (Documentation/virt/kvm/api.rst) returns a file that
 * stands for the TDP (NPT on AMD, EPT on Intel) root of one address space of
 * a VM.  A kernel component that wants to walk that table in place of a copy
 * of its own, e.g. an IOMMU driver translating a device's DMA for the guest,
 * is an importer: it looks the file up with kvm_tdp_fd_get(), reads the
 * table's format and root with ->get_metadata(), registers with
 * ->register_importer() to hear of every change that removes or weakens a
 * mapping of the table, and asks for missing mappings with ->fault().
 *
 * The object is provided by the kvm_tdp_fd module; calling kvm_tdp_fd_get()
 * makes the importer's module depend on it.
 *
 * Locking: an importer's ->invalidate() is called with KVM's mmu_lock held
 * and with the TDP FD's importer lock (a spinlock) held.  It must not sleep,
 * allocate with GFP_KERNEL, or call any of the ops of this file.  The lock
 * order is kvm->mmu_lock -> TDP FD report and importer locks -> the
 * importer's own locks; so an importer must not hold a lock that its
 * ->invalidate() takes while it calls ->fault() or ->register_importer().
 */
#ifndef __LINUX_KVM_TDP_FD_H
#define __LINUX_KVM_TDP_FD_H

#include <linux/types.h>

struct file;
struct mm_struct;
struct kvm_exported_tdp;
struct kvm_exported_tdp_ops;
struct kvm_tdp_importer_ops;

/**
 * struct kvm_tdp_fd - a KVM TDP FD object
 * @file: the file behind the fd that KVM_CREATE_TDP_FD returned.
 * @ops: the operations an importer may call on the exported table.
 * @priv: the provider's object; not for importers.
 *
 * One object exists per file, for the file's whole life.  The file holds a
 * reference on the VM, so the VM (and its exported TDP root) outlives every
 * reference to the object, even after userspace has closed the VM fd.
 */
struct kvm_tdp_fd {
	/* Public */
	struct file *file;
	const struct kvm_exported_tdp_ops *ops;

	/* Private to the provider */
	struct kvm_exported_tdp *priv;
};

/**
 * kvm_tdp_fd_get() - look up the KVM TDP FD object of an fd
 * @fd: a file descriptor of the calling task, as returned by
 *	KVM_CREATE_TDP_FD.
 *
 * Context: process context.
 * Return: the object with a reference on its file, to be dropped with
 * kvm_tdp_fd_put(); ERR_PTR(-EBADF) if @fd is not an open file descriptor;
 * ERR_PTR(-EINVAL) if its file is not a KVM TDP FD.
 */
struct kvm_tdp_fd *kvm_tdp_fd_get(int fd);

/**
 * kvm_tdp_fd_put() - drop a reference taken by kvm_tdp_fd_get()
 * @tdp: the object.
 *
 * When the last reference to the file goes away (all importers' and the
 * fd's), the export ends: the root is no longer exported and the reference
 * on the VM is dropped.  An importer must unregister before it drops its
 * last reference.
 */
void kvm_tdp_fd_put(struct kvm_tdp_fd *tdp);

/**
 * struct kvm_tdp_fault_type - the access an importer's fault asks for
 * @read: the importer will read through the mapping.
 * @write: the importer will write through the mapping.
 * @exec: the importer will fetch instructions through the mapping.
 *
 * At least one bit must be set.
 */
struct kvm_tdp_fault_type {
	u32 read:1;
	u32 write:1;
	u32 exec:1;
};

/**
 * enum kvm_exported_tdp_type - the format of an exported table
 * @KVM_TDP_FD_TYPE_NPT: AMD nested page table: x86-64 long-mode page
 *	table entries.  Described by struct kvm_exported_tdp_meta_npt.
 * @KVM_TDP_FD_TYPE_EPT: Intel extended page table.  Described by
 *	struct kvm_exported_tdp_meta_ept.
 */
enum kvm_exported_tdp_type {
	KVM_TDP_FD_TYPE_NPT = 1,
	KVM_TDP_FD_TYPE_EPT = 2,
};

/* Levels of a table; index [ps][level - 1] of the rsvd_bits_mask arrays. */
#define KVM_TDP_FD_MAX_LEVELS	5

/**
 * struct kvm_exported_tdp_meta - what every table format shares
 * @type: an enum kvm_exported_tdp_type; tells which layout this header
 *	begins.
 * @levels: the number of levels of the table: 4 or 5.
 * @max_huge_page_level: the largest level with leaf entries (1: 4K only,
 *	2: up to 2M, 3: up to 1G).
 * @flags: zero; reserved.
 * @root_hpa: host physical address of the root table.  It does not change
 *	while the TDP FD exists.
 * @present_mask: with @present_value, tells the entries that are present
 *	for KVM (a table, or a leaf backed by memory) from every other value
 *	KVM writes in the table: (entry & @present_mask) == @present_value.
 *	KVM's own bit, not the hardware's: see "Decoding an entry" below.
 * @present_value: see @present_mask; never zero.
 * @mmio_mask: with @mmio_value, KVM's MMIO entries: (entry & @mmio_mask)
 *	== @mmio_value.  They trap the guest's MMIO accesses, carry a GPA
 *	(not an HPA) in their address bits, and are never present.
 * @mmio_value: see @mmio_mask; zero if KVM writes no MMIO entries (then
 *	nothing is an MMIO entry).
 *
 * Decoding an entry.  The table holds, besides tables and leaves, values
 * that only KVM understands; the hardware's present bits (NPT: P; EPT: any
 * of R, W, X) alone do not tell them apart.  An importer decodes an entry,
 * at every level, in this order:
 *
 *  1. (entry & @present_mask) != @present_value: not present.  This is
 *     KVM's non-present value (bit 63 set on x86-64, no permission bits),
 *     a frozen entry (another thread is changing it: 0x5a0 with bit 63), an
 *     MMIO entry (on EPT: W and X set, R clear, which the CPU treats as a
 *     misconfiguration, and a GPA in the address bits; on NPT: P and a
 *     reserved address bit set), and zero.
 *  2. (entry & @mmio_mask) == @mmio_value and @mmio_value != 0: an MMIO
 *     entry, not present.  Step 1 already refuses it; an importer may
 *     check it first instead, to count or report MMIO.
 *  3. None of the hardware's present bits set: an access-tracked entry
 *     (EPT without A/D bits: KVM cleared R, W and X to see the next
 *     access, and keeps the old ones in bits of @kvm_sw_mask).  Not a
 *     translation now: fault the GFN in, which restores it.
 *  4. A bit of the format's rsvd_bits_mask[ps][level - 1] set: not a
 *     translation.
 *  5. Otherwise a table (levels above 1 without the page-size bit) or a
 *     leaf, with the hardware's permission bits.
 */
struct kvm_exported_tdp_meta {
	u32 type;
	u32 levels;
	u32 max_huge_page_level;
	u32 flags;
	u64 root_hpa;
	u64 present_mask;
	u64 present_value;
	u64 mmio_mask;
	u64 mmio_value;
};

/**
 * struct kvm_exported_tdp_meta_npt - an AMD nested page table
 * @hdr: common part; @hdr.type is KVM_TDP_FD_TYPE_NPT.
 * @pfn_mask: bits of an entry holding the physical address.
 * @nx_mask: the no-execute bit.
 * @accessed_mask: the Accessed bit.
 * @dirty_mask: the Dirty bit (leaf entries).
 * @kvm_sw_mask: bits KVM keeps for itself; an importer must neither
 *	interpret nor change them, except that it tests @hdr.present_mask,
 *	which is one of them.
 * @rsvd_bits_mask: must-be-zero bits of an entry with the present bit set,
 *	[ps][level - 1] where ps is the entry's page-size bit.  An entry with
 *	one of them set is not a translation and must be treated as not
 *	present.
 *
 * Entries are x86-64 long-mode page table entries: present (bit 0),
 * writable (bit 1), user (bit 2), accessed (bit 5), dirty (bit 6), page
 * size (bit 7) and no-execute (bit 63), decoded as struct
 * kvm_exported_tdp_meta says.
 */
struct kvm_exported_tdp_meta_npt {
	struct kvm_exported_tdp_meta hdr;
	u64 pfn_mask;
	u64 nx_mask;
	u64 accessed_mask;
	u64 dirty_mask;
	u64 kvm_sw_mask;
	u64 rsvd_bits_mask[2][KVM_TDP_FD_MAX_LEVELS];
};

/**
 * struct kvm_exported_tdp_meta_ept - an Intel extended page table
 * @hdr: common part; @hdr.type is KVM_TDP_FD_TYPE_EPT.
 * @pfn_mask: bits of an entry holding the physical address.
 * @exec_mask: the bits that allow an instruction fetch.
 * @accessed_mask: the Accessed bit, zero if KVM runs EPT without A/D bits.
 * @dirty_mask: the Dirty bit, zero if KVM runs EPT without A/D bits.
 * @kvm_sw_mask: bits KVM keeps for itself; an importer must neither
 *	interpret nor change them, except that it tests @hdr.present_mask,
 *	which is one of them.
 * @rsvd_bits_mask: must-be-zero bits of a present entry, [ps][level - 1]
 *	where ps is the entry's page-size bit (bit 7).
 *
 * Entries are EPT entries: read (bit 0), write (bit 1), execute (bit 2),
 * memory type (bits 5:3), page size (bit 7), accessed (bit 8) and dirty
 * (bit 9), decoded as struct kvm_exported_tdp_meta says.  Having one of
 * read, write and execute set does not make an entry present: KVM's MMIO
 * entries are write+execute.
 */
struct kvm_exported_tdp_meta_ept {
	struct kvm_exported_tdp_meta hdr;
	u64 pfn_mask;
	u64 exec_mask;
	u64 accessed_mask;
	u64 dirty_mask;
	u64 kvm_sw_mask;
	u64 rsvd_bits_mask[2][KVM_TDP_FD_MAX_LEVELS];
};

/**
 * struct kvm_exported_tdp_ops - operations on a KVM TDP FD object
 * @register_importer: registers @ops and @importer_data to receive the
 *	invalidations of the exported table, from now until
 *	@unregister_importer returns.  Several importers may register on one
 *	object.  May sleep.  Returns 0, -EBUSY if @ops is registered already,
 *	-ENOSPC if the object has as many importers as it takes, or -EINVAL
 *	if @ops has no invalidate callback.
 * @unregister_importer: unregisters @ops.  When it returns, no callback of
 *	the importer runs or can still start.  May sleep; must not be called
 *	from the importer's own callback.  Unregistering @ops that are not
 *	registered does nothing (and is counted as an error in debugfs).
 * @fault: maps @gfn into the exported table with at least the access
 *	@type asks for, on the importer's behalf: no vCPU is involved.  @mm
 *	must be the VM's.  The caller is either a task of the VM's process
 *	(current->mm == @mm) or a kernel thread with no mm of its own, e.g. a
 *	workqueue worker running an I/O page fault handler, which then
 *	borrows @mm for the fault (kthread_use_mm()); the importer keeps @mm
 *	alive with mmgrab() while it may pass it.  May sleep.  Returns 0, or
 *	-EINVAL (no access bit; the caller has an mm and it is not @mm; the
 *	caller has no mm and is not a kernel thread; or @gfn lies beyond what
 *	the table translates: above the reach of its
 *	&kvm_exported_tdp_meta.levels or above the host's MAXPHYADDR), -EPERM
 *	(@mm is not the VM's, or a write to a write-tracked GFN), -ESRCH (a
 *	kernel thread's fault, but the VM's mm has no users left: the
 *	process is exiting), -ENOENT (no
 *	memslot holds @gfn), -EACCES (@gfn is private: the exported view maps
 *	shared memory only), -EROFS (write to a read-only memslot), -ENXIO
 *	(@gfn is backed by memory that is not ordinary RAM: MMIO, or
 *	VM_PFNMAP/VM_IO memory without a refcounted struct page), -EFAULT or
 *	-EHWPOISON (the page could not be had), -EOPNOTSUPP (the VM has
 *	non-coherent DMA, whose memory type needs a vCPU), -EINTR (a signal is
 *	pending) or -ENOMEM.
 *
 *	What ->fault() maps is ordinary RAM, mapped write-back in the direct
 *	map.  A vCPU's own fault may still have mapped other memory (MMIO, a
 *	/dev/mem range) in the table: an importer that accesses guest memory
 *	through the CPU must check each page it finds in a leaf, and must not
 *	access one that is not ordinary RAM through the direct map.  An
 *	importer must likewise refuse a GPA with bits above the table's
 *	levels, which its walk would otherwise alias to a lower GPA.
 *
 *	Never mapped for an importer, because the VM cannot have them with an
 *	export: a dirty ring (enabling one while the TDP is exported fails
 *	with -EBUSY, and KVM_CREATE_TDP_FD fails with -EOPNOTSUPP on a VM
 *	with one) and SEV (the same, for every kind of SEV initialization).
 * @get_metadata: returns the format of the table, a
 *	struct kvm_exported_tdp_meta_npt or struct kvm_exported_tdp_meta_ept
 *	(tell them apart by their common first member), valid as long as the
 *	caller's reference on the object; or an ERR_PTR().
 */
struct kvm_exported_tdp_ops {
	int (*register_importer)(struct kvm_tdp_fd *tdp_fd,
				 struct kvm_tdp_importer_ops *ops,
				 void *importer_data);

	void (*unregister_importer)(struct kvm_tdp_fd *tdp_fd,
				    struct kvm_tdp_importer_ops *ops);

	int (*fault)(struct kvm_tdp_fd *tdp_fd, struct mm_struct *mm,
		     unsigned long gfn, struct kvm_tdp_fault_type type);

	void *(*get_metadata)(struct kvm_tdp_fd *tdp_fd);
};

/**
 * struct kvm_tdp_importer_ops - callbacks of an importer
 * @invalidate: mappings of the guest physical range [@start, @start +
 *	@size) of the exported table were removed or weakened (made read-only
 *	or made to fault on access): the importer must stop using every
 *	translation of the range it cached before it returns, leaves and
 *	cached page-table entries (paging-structure caches) alike: KVM hands a
 *	page table removed from the range to RCU only after this returns, and
 *	reports before the operation that made the change returns or yields
 *	mmu_lock, so the page behind a dropped leaf is not freed before
 *	either.  The root itself never changes while exported.  @start == 0
 *	and @size == -1 means the whole table.  @data is the importer_data
 *	given at registration.  Called with KVM's mmu_lock held: must not
 *	sleep.  An importer of the shared view of a VM with private memory is
 *	not called for changes that concern private memory only.
 */
struct kvm_tdp_importer_ops {
	void (*invalidate)(void *data, unsigned long start, unsigned long size);
};

#endif /* __LINUX_KVM_TDP_FD_H */
