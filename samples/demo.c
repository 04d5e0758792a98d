// SPDX-License-Identifier: GPL-2.0
/*
 * The demo behind `make run`: what the stack does, told as it happens, in
 * the test VM.  For a default VM and then a KVM_X86_SW_PROTECTED_VM with
 * guest_memfd, a guest writes a pattern; the host exports the VM's TDP and
 * attaches the IOMMUFD-style sample importer (/dev/kvm_tdp_iommu), which
 * reads the pattern by walking the real table, writes where the guest never
 * touched (an I/O page fault) for the guest to check, and then sees a host
 * zap arrive as an invalidation that flushes its IOTLB, followed by a
 * re-fault.  In the SW-protected VM the guest also converts a page to
 * private and back (KVM_HC_MAP_GPA_RANGE): the importer of the shared view
 * is told when the page becomes private, cannot reach it while it is, and
 * never sees what the guest wrote in private.
 *
 * Every claim printed is also asserted: the demo fails loudly, never lies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define DATA_GPA	0x40000000ULL
#define DATA_SLOT	1
#define DATA_PAGES	16
#define PAGE(n)		(DATA_GPA + (n) * 4096ULL)
#define GUEST_PAGES	4	/* pages 0..3 written by the guest */
#define IMPORTER_PAGE	8	/* never touched by the guest */
#define PRIVATE_PAGE	2	/* converted to private and back */

static const char importer_msg[] = "written by the importer through the exported TDP";
static const char secret[] = "a private secret";

static void guest_fill(char *p, int n)
{
	static const char msg[] = "page N: written by the guest";
	int i;

	for (i = 0; i < (int)sizeof(msg); i++)
		p[i] = msg[i] == 'N' ? '0' + n : msg[i];
}

static void guest_code(bool private_vm)
{
	volatile char *p;
	int i;

	for (i = 0; i < GUEST_PAGES; i++)
		guest_fill((char *)PAGE(i), i);
	GUEST_SYNC(1);

	/* What the importer wrote into a page this guest never touched. */
	p = (volatile char *)PAGE(IMPORTER_PAGE);
	for (i = 0; i < (int)sizeof(importer_msg); i++)
		GUEST_ASSERT_EQ(p[i], importer_msg[i]);
	GUEST_SYNC(2);

	if (private_vm) {
		p = (volatile char *)PAGE(PRIVATE_PAGE);
		kvm_hypercall_map_gpa_range(PAGE(PRIVATE_PAGE), 4096,
					    KVM_MAP_GPA_RANGE_ENCRYPTED);
		for (i = 0; i < (int)sizeof(secret); i++)
			p[i] = secret[i];
		GUEST_SYNC(3);
		kvm_hypercall_map_gpa_range(PAGE(PRIVATE_PAGE), 4096,
					    KVM_MAP_GPA_RANGE_DECRYPTED);
		GUEST_SYNC(4);
	}
	GUEST_DONE();
}

static int dev;
static __u32 id;
static struct kti_stats last;

static int dma(unsigned long cmd, __u64 gpa, void *buf, __u64 len)
{
	return kti_dma(dev, cmd, id, gpa, buf, len);
}

/* What changed in the importer's counters since the last call. */
static void show_delta(void)
{
	struct kti_stats s = kti_stats(dev, id);
	const char *sep = "";

	printf("      importer:");
#define D(f, name)							\
	do {								\
		if (s.f != last.f) {					\
			printf("%s %s +%llu", sep, name, s.f - last.f);	\
			sep = ",";					\
		}							\
	} while (0)
	D(iotlb_hits, "IOTLB hit");
	D(iotlb_misses, "IOTLB miss (table walk)");
	D(walk_faults, "I/O page fault");
	D(invalidations, "invalidation");
	D(iotlb_flushes, "IOTLB entries flushed");
#undef D
	if (!*sep)
		printf(" nothing");
	if (s.invalidations != last.invalidations)
		printf("; last range [%#llx, +%#llx)", s.last_start, s.last_size);
	printf("\n");
	last = s;
}

static void read_and_show(int page, const char *what)
{
	char buf[64] = "";
	int r = dma(KTI_DMA_READ, PAGE(page), buf, sizeof(buf) - 1);

	TEST_ASSERT(!r, "DMA read of page %d: %s", page, strerror(-r));
	printf("  DMA read  GPA %#llx: \"%s\"%s\n", PAGE(page), buf, what);
	show_delta();
}

/*
 * Runs the vCPU to GUEST_SYNC(@stage), or GUEST_DONE if @stage is 0,
 * serving MAP_GPA_RANGE on the way.
 */
static void run_to(struct kvm_vcpu *vcpu, struct kvm_vm *vm, uint64_t stage)
{
	struct kvm_run *run = vcpu->run;

	for (;;) {
		vcpu_run(vcpu);
		if (run->exit_reason != KVM_EXIT_HYPERCALL)
			break;
		TEST_ASSERT_EQ(run->hypercall.nr, KVM_HC_MAP_GPA_RANGE);
		handle_map_gpa_range(vm, run);
		printf("  guest asks KVM_HC_MAP_GPA_RANGE [%#llx, +%#llx) -> %s\n",
		       run->hypercall.args[0],
		       run->hypercall.args[1] * 4096,
		       run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED ?
		       "private" : "shared");
		show_delta();
	}
	expect_ucall(vcpu, stage ? (int64_t)stage : -1);
}

static void demo(bool private_vm)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = private_vm ? KVM_X86_SW_PROTECTED_VM : KVM_X86_DEFAULT_VM,
	};
	struct kti_info info = { 0 };
	char buf[64], expect[64];
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int tdp, i, r;

	printf("\n-- %s --\n", private_vm ?
	       "KVM_X86_SW_PROTECTED_VM, guest memory in guest_memfd" :
	       "default VM");
	vm = vm_create_shape_with_one_vcpu(shape, &vcpu, guest_code);
	vcpu_args_set(vcpu, 1, private_vm);
	if (private_vm)
		vm_enable_cap(vm, KVM_CAP_EXIT_HYPERCALL,
			      BIT(KVM_HC_MAP_GPA_RANGE));
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT, DATA_PAGES,
		   private_vm ? KVM_MEM_GUEST_MEMFD : 0, -1, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, DATA_GPA), DATA_PAGES * 4096,
			     MADV_NOHUGEPAGE), "madvise");
	virt_map(vm, DATA_GPA, DATA_GPA, DATA_PAGES);

	run_to(vcpu, vm, 1);
	printf("  guest wrote pages 0-%d at GPA %#llx\n", GUEST_PAGES - 1, DATA_GPA);

	tdp = tdp_fd_create(vm);
	id = kti_attach(dev, tdp, 0);
	info.id = id;
	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO");
	printf("  TDP FD %d attached to /dev/kvm_tdp_iommu: %s, %u levels, huge pages up to %s\n",
	       tdp, info.type == 1 ? "NPT" : "EPT", info.levels,
	       info.max_huge_page_level == 3 ? "1G" : "2M");
	last = kti_stats(dev, id);

	/* The guest's bytes, through the table the vCPU uses. */
	for (i = 0; i < GUEST_PAGES; i++) {
		guest_fill(expect, i);
		TEST_ASSERT_EQ(dma(KTI_DMA_READ, PAGE(i), buf, sizeof(buf)), 0);
		TEST_ASSERT(!strcmp(buf, expect), "page %d: read \"%s\"", i, buf);
	}
	printf("  DMA read  pages 0-%d: each equals what the guest wrote\n",
	       GUEST_PAGES - 1);
	if (private_vm)
		printf("  (the shared view is a root of its own, which vCPUs never use:\n"
		       "   the importer's first reads fault the pages in)\n");
	else
		printf("  (the exported root is the vCPU's: no I/O page fault)\n");
	show_delta();
	read_and_show(0, " (again)");

	/* Where the guest never went: an I/O page fault, then the write. */
	r = dma(KTI_DMA_WRITE, PAGE(IMPORTER_PAGE), (void *)importer_msg,
		sizeof(importer_msg));
	TEST_ASSERT(!r, "DMA write: %s", strerror(-r));
	printf("  DMA write GPA %#llx (never touched by the guest): \"%s\"\n",
	       PAGE(IMPORTER_PAGE), importer_msg);
	show_delta();
	run_to(vcpu, vm, 2);
	printf("  guest read it back: equal\n");

	/* A host zap: the importer hears of it and flushes; then re-faults. */
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, PAGE(1)), 4096, MADV_DONTNEED),
		    "madvise");
	printf("  host: madvise(MADV_DONTNEED) on page 1's memory\n");
	show_delta();
	TEST_ASSERT_EQ(last.last_start, PAGE(1));
	TEST_ASSERT_EQ(last.last_size, 4096);
	memset(buf, 0x55, sizeof(buf));
	TEST_ASSERT_EQ(dma(KTI_DMA_READ, PAGE(1), buf, sizeof(buf)), 0);
	for (i = 0; i < (int)sizeof(buf); i++)
		TEST_ASSERT(!buf[i], "stale byte %d after the zap", i);
	printf("  DMA read  GPA %#llx: all zero (the page was discarded; nothing stale)\n",
	       PAGE(1));
	show_delta();

	if (private_vm) {
		read_and_show(PRIVATE_PAGE, "");
		run_to(vcpu, vm, 3);
		printf("  guest wrote \"%s\" into the private page\n", secret);
		r = dma(KTI_DMA_READ, PAGE(PRIVATE_PAGE), buf, sizeof(buf));
		TEST_ASSERT_EQ(r, -EACCES);
		printf("  DMA read  GPA %#llx: refused (%s): the shared view never maps private memory\n",
		       PAGE(PRIVATE_PAGE), strerror(-r));
		show_delta();
		run_to(vcpu, vm, 4);
		guest_fill(expect, PRIVATE_PAGE);
		TEST_ASSERT_EQ(dma(KTI_DMA_READ, PAGE(PRIVATE_PAGE), buf, sizeof(buf)), 0);
		TEST_ASSERT(!strcmp(buf, expect), "read \"%s\"", buf);
		printf("  DMA read  GPA %#llx: \"%s\" (the shared page; the secret stays private)\n",
		       PAGE(PRIVATE_PAGE), buf);
		show_delta();
	}
	run_to(vcpu, vm, 0);

	printf("  totals: %llu invalidations, IOTLB %llu hits / %llu misses / %llu flushed, %llu I/O page faults\n",
	       last.invalidations, last.iotlb_hits, last.iotlb_misses,
	       last.iotlb_flushes, last.walk_faults);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
}

int main(void)
{
	struct utsname u;

	uname(&u);
	printf("== kvm-tdp-fd demo ==\n");
	printf("kernel %s; kvm_tdp_fd %s; kvm_tdp_iommu %s\n", u.release,
	       access("/sys/module/kvm_tdp_fd", F_OK) ? "MISSING" : "loaded",
	       access("/sys/module/kvm_tdp_iommu", F_OK) ? "MISSING" : "loaded");
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");
	dev = kti_open("/dev/kvm_tdp_iommu");

	demo(false);
	demo(true);
	close(dev);
	printf("\ndemo: every step above held\n");
	return 0;
}
