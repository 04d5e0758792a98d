// SPDX-License-Identifier: GPL-2.0
/*
 * DMA through the exported TDP table, by the IOMMUFD-style sample importer
 * (/dev/kvm_tdp_iommu), on a default VM whose guest runs:
 *
 *  - the exported root is the vCPUs' root: with faults off, the importer
 *    reads every page the guest wrote (4K-backed and THP-backed memory)
 *    by walking the table, without one fault, and exporting and attaching
 *    adds no page-table page (SecPageTables);
 *  - the IOTLB serves repeats; a page the guest never touched is an I/O
 *    page fault: an error with faults off, mapped by the importer's fault
 *    with them on, and the guest then sees what the importer wrote there;
 *  - a zap (madvise) flushes exactly that page from the IOTLB, and the next
 *    DMA faults in the new page: never the stale data;
 *  - every DMA argument error;
 *  - a shadow domain (KTI_ATTACH_SHADOW) pins the same memory, maps it in
 *    a table of its own and reads and writes the same bytes; its errors,
 *    its page-table pages, and every pin released on detach.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define THP_GPA		0x40000000ULL	/* 2M-aligned, THP-backed */
#define THP_SLOT	1
#define SMALL_GPA	0x40200000ULL	/* 4K-backed */
#define SMALL_SLOT	2
#define SLOT_PAGES	512
#define WRITTEN		16		/* pages the guest writes per slot */
#define FILL		256		/* bytes written per page */
#define UNTOUCHED1	(SMALL_GPA + 100 * 4096)
#define UNTOUCHED2	(SMALL_GPA + 101 * 4096)
#define HOST_PAT1	0x1111222233334444ULL
#define HOST_PAT2	0x5555666677778888ULL

static uint8_t guest_byte(uint64_t gpa, int j)
{
	return (uint8_t)((gpa >> 12) * 7 + j + 1);
}

static void guest_code(void)
{
	uint64_t base[2] = { THP_GPA, SMALL_GPA };
	int s, i, j;

	for (s = 0; s < 2; s++)
		for (i = 0; i < WRITTEN; i++)
			for (j = 0; j < FILL; j++) {
				uint64_t gpa = base[s] + i * 4096;

				*(volatile uint8_t *)(gpa + j) = guest_byte(gpa, j);
			}
	GUEST_SYNC(1);
	/* What the importer wrote: over a guest page and an untouched one. */
	GUEST_ASSERT_EQ(*(volatile uint64_t *)(SMALL_GPA + 4096), HOST_PAT1);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)UNTOUCHED2, HOST_PAT2);
	GUEST_DONE();
}

static void expect_guest_bytes(int dev, __u32 id, __u64 gpa)
{
	uint8_t buf[FILL];
	int j;

	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, gpa, buf, FILL), 0);
	for (j = 0; j < FILL; j++)
		TEST_ASSERT(buf[j] == guest_byte(gpa, j),
			    "gpa %#llx + %d: read %#x, guest wrote %#x",
			    gpa, j, buf[j], guest_byte(gpa, j));
}

int main(void)
{
	uint64_t base[2] = { THP_GPA, SMALL_GPA };
	struct kvm_vcpu *vcpu;
	struct kti_stats s0, s;
	struct kvm_vm *vm;
	int dev, tdp, i, s_;
	long sec0, sec1;
	__u32 id;
	uint8_t big[8192];
	__u64 v;

	ksft_print_header();
	ksft_set_plan(7);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, THP_GPA,
				    THP_SLOT, SLOT_PAGES, 0);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SMALL_GPA,
				    SMALL_SLOT, SLOT_PAGES, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, SMALL_GPA), SLOT_PAGES * 4096,
			     MADV_NOHUGEPAGE), "madvise(NOHUGEPAGE)");
	virt_map(vm, THP_GPA, THP_GPA, SLOT_PAGES);
	virt_map(vm, SMALL_GPA, SMALL_GPA, SLOT_PAGES);

	vcpu_run_expect(vcpu, 1);

	/* 1. One table: what the vCPU mapped, the importer walks. */
	sec0 = sec_page_tables_kb();
	tdp = tdp_fd_create(vm);
	dev = kti_open("/dev/kvm_tdp_iommu");
	id = kti_attach(dev, tdp, KTI_ATTACH_NO_FAULT);
	sec1 = sec_page_tables_kb();
	TEST_ASSERT(sec1 == sec0,
		    "exporting and attaching added page tables: %ld -> %ld kB",
		    sec0, sec1);
	for (s_ = 0; s_ < 2; s_++) {
		for (i = 0; i < WRITTEN; i++)
			expect_guest_bytes(dev, id, base[s_] + i * 4096);
		/* THP-backed memory is mapped by 2M leaves, the rest by 4K. */
		TEST_ASSERT_EQ(kti_stats(dev, id).last_leaf_level, s_ ? 1 : 2);
	}
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.walk_faults, 0);
	TEST_ASSERT_EQ(s.faults, 0);
	TEST_ASSERT_EQ(s.iotlb_misses, 2 * WRITTEN);
	TEST_ASSERT_EQ(sec_page_tables_kb(), sec0);
	TEST_ASSERT_EQ(s.table_pages, 0);
	ksft_test_result_pass("exported root is the vCPU root: %d guest pages read without a fault (2M and 4K leaves), no page-table page added\n",
			      2 * WRITTEN);

	/* 2. The IOTLB serves repeats; misses with faults off are errors. */
	expect_guest_bytes(dev, id, SMALL_GPA);
	TEST_ASSERT_EQ(kti_stats(dev, id).iotlb_hits, s.iotlb_hits + 1);
	/* Across a page boundary: two pages, one DMA. */
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, SMALL_GPA + 4096 - 16, big, 32), 0);
	TEST_ASSERT_EQ(big[16], guest_byte(SMALL_GPA + 4096, 0));
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, UNTOUCHED1, &v, 8), -EFAULT);
	TEST_ASSERT_EQ(kti_stats(dev, id).walk_faults, 0);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	ksft_test_result_pass("IOTLB hits; a miss with faults off fails with EFAULT\n");

	/* 3. I/O page faults: the importer maps what the guest never touched. */
	id = kti_attach(dev, tdp, 0);
	memset(big, 0xaa, sizeof(big));
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, UNTOUCHED1, big, 4096), 0);
	for (i = 0; i < 4096; i++)
		TEST_ASSERT_EQ(big[i], 0);
	TEST_ASSERT_EQ(kti_stats(dev, id).walk_faults, 1);
	v = HOST_PAT2;
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, UNTOUCHED2, &v, 8), 0);
	v = HOST_PAT1;
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, SMALL_GPA + 4096, &v, 8), 0);
	v = 0;
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, UNTOUCHED2, &v, 8), 0);
	TEST_ASSERT_EQ(v, HOST_PAT2);
	ksft_test_result_pass("I/O page faults map untouched pages; writes land\n");

	/* 4. A zap flushes exactly its page; no stale data afterwards. */
	expect_guest_bytes(dev, id, SMALL_GPA);
	expect_guest_bytes(dev, id, SMALL_GPA + 5 * 4096);
	s0 = kti_stats(dev, id);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, SMALL_GPA + 5 * 4096), 4096,
			     MADV_DONTNEED), "madvise");
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.invalidations, s0.invalidations + 1);
	TEST_ASSERT_EQ(s.last_start, SMALL_GPA + 5 * 4096);
	TEST_ASSERT_EQ(s.last_size, 4096);
	TEST_ASSERT_EQ(s.iotlb_flushes, s0.iotlb_flushes + 1);
	memset(big, 0xaa, sizeof(big));
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, SMALL_GPA + 5 * 4096, big, FILL), 0);
	for (i = 0; i < FILL; i++)
		TEST_ASSERT(big[i] == 0, "stale byte %d: %#x", i, big[i]);
	TEST_ASSERT_EQ(kti_stats(dev, id).walk_faults, s0.walk_faults + 1);
	/* The neighbours were not flushed: still hits. */
	s0 = kti_stats(dev, id);
	expect_guest_bytes(dev, id, SMALL_GPA);
	TEST_ASSERT_EQ(kti_stats(dev, id).iotlb_hits, s0.iotlb_hits + 1);
	ksft_test_result_pass("madvise flushes exactly its page; the re-fault reads the new page\n");

	/* 5. Bad DMA arguments. */
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, SMALL_GPA, big, 0), -EINVAL);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, SMALL_GPA, big, (16 << 20) + 1),
		       -EINVAL);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, ~0ULL - 8, big, 16), -EINVAL);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, 0x7f000000ULL, big, 8), -ENOENT);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id + 7, SMALL_GPA, big, 8), -ENOENT);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, SMALL_GPA, NULL, 8), -EFAULT);
	/* Beyond the end of the last memslot. */
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id,
			   SMALL_GPA + SLOT_PAGES * 4096 - 8, big, 16), -ENOENT);
	ksft_test_result_pass("DMA errors: EINVAL, ENOENT, EFAULT\n");

	/* 6. The shadow domain VFIO type1 would build: same bytes, own table. */
	{
		long pins = vmstat("nr_foll_pin_acquired");
		long unpins = vmstat("nr_foll_pin_released");
		void *small = addr_gpa2hva(vm, SMALL_GPA);
		void *thp = addr_gpa2hva(vm, THP_GPA);
		struct kti_attach bad = { .tdp_fd = tdp, .flags = KTI_ATTACH_SHADOW };
		__u32 sid = kti_attach(dev, -1, KTI_ATTACH_SHADOW);

		struct kti_info info = { .id = sid };

		TEST_ASSERT(ioctl(dev, KTI_ATTACH, &bad) && errno == EINVAL,
			    "shadow attach with a TDP FD");
		/* Its own table: NPT format, 4 levels, 4K leaves only. */
		TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO: %s", strerror(errno));
		TEST_ASSERT(info.type == 1 && info.levels == 4 &&
			    info.max_huge_page_level == 1,
			    "shadow INFO: type %u, %u levels, huge %u", info.type,
			    info.levels, info.max_huge_page_level);
		TEST_ASSERT_EQ(kti_fault(dev, sid, SMALL_GPA, KTI_ACCESS_READ), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, id, SMALL_GPA, small, 4096, 0), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA + 8, small, 4096, 0), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA, small, 100, 0), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA, small, 0, 0), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA, small, 4096, 2), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, 1ULL << 48, small, 4096, 0), -EINVAL);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA, NULL, 4096, 0), -EFAULT);
		/* Nothing mapped yet: a miss is an error, never a fault. */
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, sid, SMALL_GPA, &v, 8), -EFAULT);

		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA, small,
					  SLOT_PAGES * 4096, 0), 0);
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, THP_GPA, thp, SLOT_PAGES * 4096,
					  KTI_SHADOW_MAP_READONLY), 0);
		/* Overlap: refused, and nothing more pinned. */
		TEST_ASSERT_EQ(kti_shadow_map(dev, sid, SMALL_GPA + 4096 * 4, small,
					  4096 * 2, 0), -EEXIST);
		s = kti_stats(dev, sid);
		TEST_ASSERT_EQ(s.pinned_pages, 2 * SLOT_PAGES);
		/* Root, one table at levels 3 and 2, two at level 1. */
		TEST_ASSERT_EQ(s.table_pages, 5);
		/* Held: both slots (the refused map's pins were dropped). */
		TEST_ASSERT_EQ((vmstat("nr_foll_pin_acquired") - pins) -
			       (vmstat("nr_foll_pin_released") - unpins),
			       2 * SLOT_PAGES);

		/* Every page reads the same through both tables. */
		for (s_ = 0; s_ < 2; s_++)
			for (i = 0; i < WRITTEN; i++) {
				__u64 gpa = base[s_] + i * 4096;

				TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, sid, gpa, big, 4096), 0);
				TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, gpa, big + 4096, 4096), 0);
				TEST_ASSERT(!memcmp(big, big + 4096, 4096),
					    "gpa %#llx differs between shadow and shared", gpa);
			}
		expect_guest_bytes(dev, sid, THP_GPA);
		expect_guest_bytes(dev, sid, SMALL_GPA + 2 * 4096);
		TEST_ASSERT_EQ(kti_stats(dev, sid).last_leaf_level, 1);
		/* Written through the shadow, read through the shared table. */
		v = HOST_PAT1 ^ HOST_PAT2;
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, sid, SMALL_GPA + 7 * 4096 + 1000,
				   &v, 8), 0);
		v = 0;
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, SMALL_GPA + 7 * 4096 + 1000,
				   &v, 8), 0);
		TEST_ASSERT_EQ(v, HOST_PAT1 ^ HOST_PAT2);
		/* Read-only mapping; outside any mapping. */
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, sid, THP_GPA, &v, 8), -EFAULT);
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, sid, SMALL_GPA + SLOT_PAGES * 4096,
				   &v, 8), -EFAULT);
		s = kti_stats(dev, sid);
		TEST_ASSERT_EQ(s.faults + s.walk_faults + s.invalidations, 0);

		TEST_ASSERT(!ioctl(dev, KTI_DETACH, &sid), "KTI_DETACH");
		TEST_ASSERT_EQ(vmstat("nr_foll_pin_released") - unpins,
			       vmstat("nr_foll_pin_acquired") - pins);
		ksft_test_result_pass("shadow domain: pinned copy of the mapping reads and writes the same bytes; %d pages pinned, 5 table pages, all unpinned on detach\n",
				      2 * SLOT_PAGES);
	}

	/*
	 * 7. Dirty logging write-protects what the importer maps: its next
	 * DMA write faults (an I/O page fault), and the page is logged dirty.
	 */
	{
		unsigned long bitmap[SLOT_PAGES / 64];
		__u64 gpa = SMALL_GPA + 6 * 4096;

		v = HOST_PAT1;
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, gpa, &v, 8), 0);
		s0 = kti_stats(dev, id);
		vm_mem_region_set_flags(vm, SMALL_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
		s = kti_stats(dev, id);
		TEST_ASSERT(s.invalidations > s0.invalidations,
			    "enabling dirty logging was not reported");
		kvm_vm_get_dirty_log(vm, SMALL_SLOT, bitmap);
		s0 = kti_stats(dev, id);
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, gpa, &v, 8), 0);
		s = kti_stats(dev, id);
		TEST_ASSERT_EQ(s.walk_faults, s0.walk_faults + 1);
		kvm_vm_get_dirty_log(vm, SMALL_SLOT, bitmap);
		TEST_ASSERT(bitmap[0] & (1UL << 6), "the importer's write was not logged");
		/* Reads do not fault: the mapping is still there, read-only. */
		s0 = kti_stats(dev, id);
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, gpa + 4096, &v, 8), 0);
		TEST_ASSERT_EQ(kti_stats(dev, id).walk_faults, s0.walk_faults);
		vm_mem_region_set_flags(vm, SMALL_SLOT, 0);
		ksft_test_result_pass("dirty logging: the importer's next write faults and is logged dirty\n");
	}

	/* The guest sees the importer's writes. */
	vcpu_run_expect(vcpu, -1);

	close(dev);
	close(tdp);
	kvm_vm_free(vm);
	ksft_finished();
}
