// SPDX-License-Identifier: GPL-2.0
/*
 * What an export must refuse, so that an importer never touches memory it
 * has no business touching and never writes what the VMM cannot see
 * (issue 13):
 *
 *  1. a dirty ring and an export exclude each other, in both orders of
 *     setup: enabling the ring while exported fails with EBUSY, creating an
 *     export on a VM with a ring with EOPNOTSUPP, and KVM_CAP_TDP_FD reads
 *     0 on such a VM;
 *  2. a GPA beyond what the exported table translates (bits above its
 *     levels' reach, or above the host's MAXPHYADDR) is EINVAL for a DMA
 *     and for a fault, never an alias of a low GPA, not even through the
 *     IOTLB once the low page is gone;
 *  3. memory that is not ordinary RAM (a /dev/mem mapping of a firmware-
 *     reserved range, VM_PFNMAP|VM_IO) is refused with ENXIO: by KVM's
 *     fault on the importer's behalf, and by the importer's copy when a
 *     vCPU's fault has mapped it;
 *  4. the capability and ioctl numbers are not upstream's: capability 239
 *     (upstream's KVM_CAP_ARM_WRITABLE_IMP_ID_REGS) reads 0 on x86.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define DATA_GPA	0x40000000ULL
#define DATA_SLOT	1
#define DATA_PAGES	16
#define PFNMAP_GPA	0x50000000ULL
#define PFNMAP_SLOT	2
#define PATTERN		0x7472757374656421ULL

/* KVM_CREATE_TDP_FD without asserting; the fd or -errno. */
static int try_tdp_fd(struct kvm_vm *vm)
{
	struct kvm_create_tdp_fd args = { .mode = KVM_TDP_FD_MODE_SHARED };
	int fd = ioctl(vm->fd, KVM_CREATE_TDP_FD, &args);

	return fd < 0 ? -errno : fd;
}

/* Enabling a dirty ring of @bytes on @vm; 0 or -errno. */
static int try_ring(struct kvm_vm *vm, uint32_t cap, uint32_t bytes)
{
	return __vm_enable_cap(vm, cap, bytes) ? -errno : 0;
}

static void test_dirty_ring(void)
{
	uint32_t caps[] = { KVM_CAP_DIRTY_LOG_RING, KVM_CAP_DIRTY_LOG_RING_ACQ_REL };
	uint32_t bytes = 4096 * sizeof(struct kvm_dirty_gfn);
	struct kvm_vm *vm;
	int tdp, i, r;

	TEST_ASSERT(kvm_check_cap(KVM_CAP_DIRTY_LOG_RING) >= (int)bytes,
		    "no dirty ring of %u bytes", bytes);

	/* Export first: no ring, of either kind, while it lives. */
	vm = vm_create_barebones();
	tdp = try_tdp_fd(vm);
	TEST_ASSERT(tdp >= 0, "KVM_CREATE_TDP_FD: %s", strerror(-tdp));
	for (i = 0; i < 2; i++) {
		if (!kvm_check_cap(caps[i]))
			continue;
		r = try_ring(vm, caps[i], bytes);
		TEST_ASSERT(r == -EBUSY,
			    "enabling dirty ring cap %u with a live export: %d (%s), expected EBUSY",
			    caps[i], r, strerror(-r));
	}
	/* Once it is closed, the ring is fine, and then no export is. */
	close(tdp);
	TEST_ASSERT_EQ(try_ring(vm, KVM_CAP_DIRTY_LOG_RING, bytes), 0);
	TEST_ASSERT_EQ(vm_check_cap(vm, KVM_CAP_TDP_FD), 0);
	TEST_ASSERT_EQ(try_tdp_fd(vm), -EOPNOTSUPP);
	kvm_vm_free(vm);

	/* Ring first: KVM_CAP_TDP_FD says no, and the export is refused. */
	vm = vm_create_barebones();
	TEST_ASSERT_EQ(vm_check_cap(vm, KVM_CAP_TDP_FD), 1);
	TEST_ASSERT_EQ(try_ring(vm, KVM_CAP_DIRTY_LOG_RING, bytes), 0);
	TEST_ASSERT_EQ(vm_check_cap(vm, KVM_CAP_TDP_FD), 0);
	r = try_tdp_fd(vm);
	TEST_ASSERT(r == -EOPNOTSUPP,
		    "KVM_CREATE_TDP_FD with a dirty ring: %d (%s), expected EOPNOTSUPP",
		    r, r < 0 ? strerror(-r) : "an fd");
	kvm_vm_free(vm);

}

static void data_guest_code(void)
{
	*(volatile uint64_t *)DATA_GPA = PATTERN;
	GUEST_DONE();
}

static void test_gpa_reach(void)
{
	struct kvm_vcpu *vcpu;
	struct kti_info info;
	struct kvm_vm *vm;
	uint64_t alias[2], v;
	int dev, tdp, i, reach;
	__u32 id;

	vm = vm_create_with_one_vcpu(&vcpu, data_guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA,
				    DATA_SLOT, DATA_PAGES, 0);
	virt_map(vm, DATA_GPA, DATA_GPA, DATA_PAGES);
	vcpu_run_expect(vcpu, -1);

	tdp = tdp_fd_create(vm);
	dev = kti_open("/dev/kvm_tdp_iommu");
	id = kti_attach(dev, tdp, KTI_ATTACH_NO_FAULT);
	info.id = id;
	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO: %s", strerror(errno));
	reach = 12 + 9 * info.levels;
	alias[0] = DATA_GPA | (1ULL << reach);
	alias[1] = DATA_GPA | (1ULL << 63);
	ksft_print_msg("%u levels: the table reaches %d bits\n", info.levels, reach);

	/* The vCPU's mapping of DATA_GPA, read by a walk. */
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, DATA_GPA, &v, 8), 0);
	TEST_ASSERT_EQ(v, PATTERN);
	for (i = 0; i < 2; i++) {
		int r = kti_dma(dev, KTI_DMA_READ, id, alias[i], &v, 8);

		TEST_ASSERT(r == -EINVAL,
			    "DMA read at %#" PRIx64 " (%u levels): %d, read %#" PRIx64 ", expected EINVAL",
			    alias[i], info.levels, r, v);
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, alias[i], &v, 8), -EINVAL);
	}

	/* The low page goes; the aliases still read nothing, not the old page. */
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, DATA_GPA), 4096, MADV_DONTNEED),
		    "madvise");
	for (i = 0; i < 2; i++)
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, alias[i], &v, 8), -EINVAL);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");

	/* With faults on: neither the DMA nor KVM's fault takes an alias. */
	id = kti_attach(dev, tdp, 0);
	for (i = 0; i < 2; i++) {
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, alias[i], &v, 8), -EINVAL);
		TEST_ASSERT_EQ(kti_fault(dev, id, alias[i], KTI_ACCESS_READ), -EINVAL);
	}
	/* Beyond any host's MAXPHYADDR (52 bits), within a 5-level reach. */
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA | (1ULL << 52), KTI_ACCESS_READ),
		       -EINVAL);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, DATA_GPA, &v, 8), 0);
	TEST_ASSERT_EQ(v, 0);

	close(dev);
	close(tdp);
	kvm_vm_free(vm);
}

/*
 * A firmware-reserved range of /proc/iomem: top level, page aligned, not
 * RAM; above 1 MiB if there is one (those need not be in the direct map).
 */
static uint64_t reserved_page(void)
{
	unsigned long long start, end;
	uint64_t low = 0, page;
	char line[256], name[128];
	FILE *f = fopen("/proc/iomem", "r");

	TEST_ASSERT(f, "/proc/iomem: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == ' ' ||
		    sscanf(line, "%llx-%llx : %127[^\n]", &start, &end, name) != 3 ||
		    strcmp(name, "Reserved"))
			continue;
		page = (start + 4095) & ~4095ULL;
		if (!page || page + 4095 > end)
			continue;
		if (page >= 0x100000) {
			fclose(f);
			return page;
		}
		if (!low)
			low = page;
	}
	fclose(f);
	TEST_ASSERT(low, "no reserved page in /proc/iomem");
	return low;
}

static void pfnmap_guest_code(void)
{
	GUEST_SYNC(1);
	(void)*(volatile uint64_t *)PFNMAP_GPA;
	GUEST_SYNC(2);
	GUEST_DONE();
}

static void test_not_ram(void)
{
	uint64_t pa = reserved_page();
	struct kvm_vcpu *vcpu;
	struct kti_stats s0, s;
	struct kvm_vm *vm;
	int mem, dev, tdp, r;
	uint64_t v = 0;
	void *hva;
	__u32 id;

	ksft_print_msg("firmware-reserved page %#" PRIx64 "\n", pa);
	mem = open("/dev/mem", O_RDWR | O_SYNC);
	TEST_ASSERT(mem >= 0, "/dev/mem: %s", strerror(errno));
	hva = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mem, pa);
	TEST_ASSERT(hva != MAP_FAILED, "mmap /dev/mem at %#" PRIx64 ": %s", pa,
		    strerror(errno));

	vm = vm_create_with_one_vcpu(&vcpu, pfnmap_guest_code);
	vm_set_user_memory_region(vm, PFNMAP_SLOT, 0, PFNMAP_GPA, 4096, hva);
	virt_map(vm, PFNMAP_GPA, PFNMAP_GPA, 1);
	tdp = tdp_fd_create(vm);
	dev = kti_open("/dev/kvm_tdp_iommu");
	id = kti_attach(dev, tdp, 0);
	vcpu_run_expect(vcpu, 1);

	/* KVM's fault on the importer's behalf refuses the page. */
	r = kti_fault(dev, id, PFNMAP_GPA, KTI_ACCESS_READ);
	TEST_ASSERT(r == -ENXIO, "importer fault on /dev/mem page %#" PRIx64 ": %d (%s), expected ENXIO",
		    pa, r, strerror(-r));
	TEST_ASSERT_EQ(kti_fault(dev, id, PFNMAP_GPA, KTI_ACCESS_WRITE), -ENXIO);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, PFNMAP_GPA, &v, 8), -ENXIO);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");

	/* A vCPU maps it; the importer walks to the leaf and refuses the copy. */
	vcpu_run_expect(vcpu, 2);
	id = kti_attach(dev, tdp, KTI_ATTACH_NO_FAULT);
	s0 = kti_stats(dev, id);
	r = kti_dma(dev, KTI_DMA_READ, id, PFNMAP_GPA, &v, 8);
	TEST_ASSERT(r == -ENXIO, "DMA read of the vCPU-mapped /dev/mem page %#" PRIx64 ": %d, read %#" PRIx64 ", expected ENXIO",
		    pa, r, v);
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.iotlb_misses, s0.iotlb_misses + 1);
	TEST_ASSERT_EQ(s.walk_faults, 0);
	TEST_ASSERT_EQ(s.last_leaf_level, 1);

	vcpu_run_expect(vcpu, -1);
	close(dev);
	close(tdp);
	kvm_vm_free(vm);
	munmap(hva, 4096);
	close(mem);
}

static void test_numbers(void)
{
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_TDP_FD), 1);
	/* Upstream's KVM_CAP_ARM_WRITABLE_IMP_ID_REGS: nothing on x86. */
	TEST_ASSERT(kvm_check_cap(239) == 0,
		    "capability 239 reads %d: KVM_CAP_TDP_FD (%d) collides with upstream",
		    kvm_check_cap(239), KVM_CAP_TDP_FD);
	TEST_ASSERT(KVM_CAP_TDP_FD > 248, "KVM_CAP_TDP_FD is %d", KVM_CAP_TDP_FD);
}

int main(void)
{
	ksft_print_header();
	ksft_set_plan(4);
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");

	run_in_child(test_numbers,
	    "uapi: capability 239 is not ours; KVM_CAP_TDP_FD above upstream's");
	run_in_child(test_dirty_ring,
	    "dirty ring: EBUSY while exported; then EOPNOTSUPP, KVM_CAP_TDP_FD 0");
	run_in_child(test_gpa_reach,
	    "GPA beyond the table's reach: EINVAL for DMA (IOTLB too) and fault");
	/* Last: on a kernel that copies it, it may oops. */
	run_in_child(test_not_ram,
	    "/dev/mem (VM_PFNMAP) page: ENXIO from KVM's fault and the importer's copy");
	ksft_finished();
}
