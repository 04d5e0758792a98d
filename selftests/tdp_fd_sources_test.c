// SPDX-License-Identifier: GPL-2.0
/*
 * Which zap sources reach an importer, with which filter (seed 001's
 * table) and for which range, with no vCPU ever run:
 *
 *   source                                  filter   shared-view importer
 *   mmu notifier (madvise)                  shared   woken
 *   memory attributes shared -> private     shared   woken (old state)
 *   memory attributes private -> shared     private  not woken
 *   guest_memfd punch hole                  private  not woken
 *   memslot deletion                        both     woken
 *   guest_memfd release (fd closed)         private  not woken
 *   memslot move                            both     woken
 *   dirty logging enabled / log fetched     both     woken (write-protect)
 *   dirty log cleared (manual protect)      both     woken (write-protect)
 *   dirty logging disabled (collapse)       both     woken
 *   NX huge page recovery                   both     woken
 *   nx_huge_pages toggled (fast zap)        both     woken
 *   the VM's mm exits (teardown)            both     woken, (0, -1)
 *
 * KVM reports what an operation changed in the exported table: the GFNs of
 * the SPTEs it zapped or weakened, each an SPTE's whole range (4K for a
 * page, 2M for a huge page or a page table).  So every report below is
 * checked for its exact range, except the mm's exit, which reports the
 * whole table, (0, -1).  Memslot deletion and move are exact on a default
 * VM too: with the TDP exported they zap the slot's range, never a fast
 * zap of the whole root.
 *
 * The importer is the C sample (/dev/kvm_tdp_importer_c); the filter of a
 * report passed on is read from the provider's debugfs counters.  A
 * shared-view importer can never map a private GFN: its fault fails with
 * EACCES.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "tdp_fd_util.h"

#define GPA		0x40000000ULL
#define SLOT		1
#define PAGES		16
#define PAGE(n)		(GPA + (n) * 4096ULL)

static int dev;
static __u32 id;

static __u64 invalidations(void)
{
	return kti_stats(dev, id).invalidations;
}

static struct kti_stats stats(void)
{
	return kti_stats(dev, id);
}

static int fault(__u64 gpa, __u32 access)
{
	return kti_fault(dev, id, gpa, access);
}

/*
 * Runs @what and checks the importer was woken for exactly [@start, +@size),
 * with @filter; or, if !@woken, not at all.  KVM reports an operation's
 * changes once, unless it yields mmu_lock on the way, where it reports what
 * it changed so far (with both filters, the operation's being unknown
 * there): so what the operation reported is the span of its reports (the C
 * importer's span since the previous KTI_STATS), and the filter of its last
 * one includes @filter.
 */
#define EXPECT_REPORT(woken, filter, start, size, what)			\
do {									\
	const unsigned long long __start = (start), __size = (size);	\
	struct kti_stats __b = stats(), __s;				\
	unsigned long long __n;						\
	what;								\
	__s = stats();							\
	__n = __s.invalidations - __b.invalidations;			\
	if (woken) {							\
		TEST_ASSERT(__n >= 1, "%s: not reported", #what);	\
		TEST_ASSERT(__s.whole == __b.whole &&			\
			    __s.span_start == __start &&		\
			    __s.span_end - __s.span_start == __size,	\
			    "%s: reported [%#llx, %#llx) in %llu report(s), expected exactly [%#llx, +%#llx)", \
			    #what, __s.span_start, __s.span_end, __n,	\
			    __start, __size);				\
		if (__n == 1)						\
			TEST_ASSERT_EQ(tdp_fd_stat("last_filter"), filter); \
		else							\
			TEST_ASSERT((tdp_fd_stat("last_filter") & (filter)) == \
				    (filter), "%s: filter %#llx", #what,	\
				    (unsigned long long)tdp_fd_stat("last_filter")); \
	} else {							\
		TEST_ASSERT(__n == 0, "%s: woken %llu times, expected never", \
			    #what, __n);				\
	}								\
} while (0)

static void attach_to(struct kvm_vm *vm, int *tdp)
{
	*tdp = tdp_fd_create(vm);
	id = kti_attach(dev, *tdp, 0);
}

static void test_sw_protected(void)
{
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	const __u32 rw = KTI_ACCESS_READ | KTI_ACCESS_WRITE;
	char *hva;
	int tdp;

	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES,
		   KVM_MEM_GUEST_MEMFD, -1, 0);
	hva = addr_gpa2hva(vm, GPA);
	TEST_ASSERT(!madvise(hva, PAGES * 4096, MADV_NOHUGEPAGE), "madvise");
	attach_to(vm, &tdp);

	/*
	 * Shared pages map; the mmu notifier's zap is a shared one.  Exact:
	 * the one 4K leaf of the discarded page, not page 0 next to it.
	 */
	TEST_ASSERT_EQ(fault(PAGE(0), rw), 0);
	TEST_ASSERT_EQ(fault(PAGE(1), rw), 0);
	EXPECT_REPORT(true, 1, PAGE(1), 4096,
		      madvise(hva + 4096, 4096, MADV_DONTNEED));

	/*
	 * shared -> private zaps the shared mapping: woken, old state.  Exact:
	 * only the converted page is unmapped (page 1 is not mapped now).
	 */
	EXPECT_REPORT(true, 1, PAGE(0), 4096,
		      vm_mem_set_private(vm, PAGE(0), 4096));
	/* The shared view never maps a private GFN. */
	TEST_ASSERT_EQ(fault(PAGE(0), KTI_ACCESS_READ), -EACCES);
	/* A conversion of a page the table does not map: nothing to say. */
	EXPECT_REPORT(false, 0, 0, 0, vm_mem_set_private(vm, PAGE(2), 4096));

	/* Private memory going away never wakes a shared-view importer. */
	EXPECT_REPORT(false, 0, 0, 0, vm_guest_mem_punch_hole(vm, PAGE(0), 4096));
	EXPECT_REPORT(false, 0, 0, 0, vm_mem_set_shared(vm, PAGE(2), 4096));
	EXPECT_REPORT(false, 0, 0, 0, vm_mem_set_shared(vm, PAGE(0), 4096));

	/* Shared again: it maps again. */
	TEST_ASSERT_EQ(fault(PAGE(0), rw), 0);

	/*
	 * Closing the guest_memfd (the memslot holds no reference) zaps
	 * everything it backs, as private: the shared mappings stay.
	 */
	EXPECT_REPORT(false, 0, 0, 0, ({
		close(memslot2region(vm, SLOT)->region.guest_memfd);
		memslot2region(vm, SLOT)->region.guest_memfd = -1;
	}));
	TEST_ASSERT_EQ(fault(PAGE(1), rw), 0);
	TEST_ASSERT_EQ(tdp_fd_stat("reports_private"), 0);

	/*
	 * Memslot deletion: both kinds.  Exact: a SW-protected VM's memslot
	 * is zapped by unmap_gfn_range over the slot (6.12.117 takes the fast
	 * zap only for default VMs), which zaps the leaves that are mapped:
	 * pages 0 and 1, not the slot's 16 pages.
	 */
	EXPECT_REPORT(true, 3, PAGE(0), 2 * 4096, vm_mem_region_delete(vm, SLOT));
	TEST_ASSERT_EQ(fault(PAGE(0), KTI_ACCESS_READ), -ENOENT);

	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("SW-protected VM: madvise, conversions both ways, punch hole, guest_memfd release, memslot deletion\n");
}

static void test_dirty_logging(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	const __u32 rw = KTI_ACCESS_READ | KTI_ACCESS_WRITE;
	unsigned long bitmap[PAGES / 64 + 1];
	int tdp;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, GPA), PAGES * 4096, MADV_NOHUGEPAGE),
		    "madvise");
	attach_to(vm, &tdp);

	/*
	 * Writable mappings get write-protected when logging starts.  Exact:
	 * the slot's one writable 4K leaf.
	 */
	TEST_ASSERT_EQ(fault(PAGE(3), rw), 0);
	EXPECT_REPORT(true, 3, PAGE(3), 4096,
		      vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES));
	/* A write faults again (and dirties the page). */
	TEST_ASSERT_EQ(fault(PAGE(3), rw), 0);
	/* Fetching the log write-protects the dirty page again.  Exact. */
	EXPECT_REPORT(true, 3, PAGE(3), 4096, kvm_vm_get_dirty_log(vm, SLOT, bitmap));
	TEST_ASSERT(bitmap[0] & (1UL << 3), "page 3 not dirty");
	/* Nothing dirty, nothing write-protected: no report. */
	EXPECT_REPORT(false, 0, 0, 0, kvm_vm_get_dirty_log(vm, SLOT, bitmap));
	/* Read-only mappings are left alone by a log fetch too. */
	TEST_ASSERT_EQ(fault(PAGE(4), KTI_ACCESS_READ), 0);
	EXPECT_REPORT(false, 0, 0, 0, kvm_vm_get_dirty_log(vm, SLOT, bitmap));

	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("default VM: dirty logging enabled and log fetched report write-protection\n");
}

/*
 * Moving a memslot takes its old GPAs away: both kinds.  With the TDP
 * exported, a default VM's memslot update zaps exactly the slot's range (not
 * a fast zap, which would take every mapping from the importers): the report
 * is the page that was mapped, exactly, and only when something was.
 */
static void test_memslot_move(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	const __u64 to = GPA + 0x10000000ULL;
	int tdp;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES, 0);
	attach_to(vm, &tdp);
	TEST_ASSERT_EQ(fault(PAGE(5), KTI_ACCESS_READ), 0);
	EXPECT_REPORT(true, 3, PAGE(5), 4096, vm_mem_region_move(vm, SLOT, to));
	TEST_ASSERT_EQ(fault(PAGE(5), KTI_ACCESS_READ), -ENOENT);
	TEST_ASSERT_EQ(fault(to + 5 * 4096, KTI_ACCESS_READ), 0);
	EXPECT_REPORT(true, 3, to + 5 * 4096, 4096,
		      vm_mem_region_move(vm, SLOT, GPA));
	/* Nothing of the old range is mapped: moving is silent. */
	EXPECT_REPORT(false, 0, 0, 0, vm_mem_region_move(vm, SLOT, to));

	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("memslot move reports the old range, both kinds\n");
}

/*
 * With KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE, fetching the log takes nothing
 * away; clearing it write-protects what it clears.
 */
static void test_manual_clear(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	const __u32 rw = KTI_ACCESS_READ | KTI_ACCESS_WRITE;
	unsigned long bitmap[PAGES / 64 + 1];
	int tdp;

	vm_enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, GPA), PAGES * 4096, MADV_NOHUGEPAGE),
		    "madvise");
	/*
	 * Exported first, then logged: with PML (Intel) an export cannot be
	 * made while a slot logs (tdp_fd_entries_test).  Nothing is mapped
	 * yet, so starting to log is silent.
	 */
	attach_to(vm, &tdp);
	EXPECT_REPORT(false, 0, 0, 0,
		      vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES));

	TEST_ASSERT_EQ(fault(PAGE(3), rw), 0);
	TEST_ASSERT_EQ(fault(PAGE(7), rw), 0);
	EXPECT_REPORT(false, 0, 0, 0, kvm_vm_get_dirty_log(vm, SLOT, bitmap));
	TEST_ASSERT_EQ(bitmap[0] & 0xffff, (1UL << 3) | (1UL << 7));
	/*
	 * Clearing page 3 alone write-protects page 3 alone.  Exact: page 7,
	 * writable too, is not in the report.
	 */
	bitmap[0] = 1UL << 3;
	EXPECT_REPORT(true, 3, PAGE(3), 4096,
		      kvm_vm_clear_dirty_log(vm, SLOT, bitmap, 0, PAGES));
	/* Clearing it again: no longer writable, nothing to say. */
	EXPECT_REPORT(false, 0, 0, 0,
		      kvm_vm_clear_dirty_log(vm, SLOT, bitmap, 0, PAGES));
	/* Then page 7 alone.  Exact. */
	bitmap[0] = 1UL << 7;
	EXPECT_REPORT(true, 3, PAGE(7), 4096,
		      kvm_vm_clear_dirty_log(vm, SLOT, bitmap, 0, PAGES));

	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("manual-protect dirty log: fetch is silent, clear reports write-protection\n");
}

/* A 2M-aligned, THP-backed slot of one huge page, populated in the host. */
static char *thp_slot(struct kvm_vm *vm)
{
	char *hva;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, GPA, SLOT,
				    512, 0);
	hva = addr_gpa2hva(vm, GPA);
	memset(hva, 0x5a, 2 << 20);
	return hva;
}

/*
 * Disabling dirty logging collapses the 4K mappings logging forced back
 * into a huge page: the small ones are zapped first, both kinds.
 */
static void test_collapse(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	const __u32 rw = KTI_ACCESS_READ | KTI_ACCESS_WRITE;
	int tdp;

	thp_slot(vm);
	/* Exported before logging starts (PML, as in test_manual_clear). */
	attach_to(vm, &tdp);
	EXPECT_REPORT(false, 0, 0, 0,
		      vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES));
	/*
	 * Logging forces 4K.  Disabling it zaps the page table holding page
	 * 5's leaf, i.e. the 2M entry above it: more than the page mapped,
	 * but exactly known, so exact: [GPA, +2M).
	 */
	TEST_ASSERT_EQ(fault(PAGE(5), rw), 0);
	EXPECT_REPORT(true, 3, GPA, 2 << 20,
		      vm_mem_region_set_flags(vm, SLOT, 0));
	/*
	 * Now the fault maps the whole huge page: when logging starts again,
	 * KVM splits it (eagerly, same translations: silent) and
	 * write-protects all of it: its 512 4K leaves, exactly the 2M.
	 */
	TEST_ASSERT_EQ(fault(PAGE(5), rw), 0);
	EXPECT_REPORT(true, 3, GPA, 2 << 20,
		      vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES));
	/* Disabling it collapses the split page again: its table, exactly. */
	EXPECT_REPORT(true, 3, GPA, 2 << 20, vm_mem_region_set_flags(vm, SLOT, 0));
	/* With nothing mapped, logging on and off is silent. */
	EXPECT_REPORT(false, 0, 0, 0,
		      vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES));
	EXPECT_REPORT(false, 0, 0, 0, vm_mem_region_set_flags(vm, SLOT, 0));

	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("dirty logging disabled: collapsing 4K mappings is reported\n");
}

static void guest_done(void)
{
	GUEST_DONE();
}

static void write_param(const char *name, const char *val, char *old, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/kvm/parameters/%s", name);
	if (old) {
		f = fopen(path, "r");
		TEST_ASSERT(f && fgets(old, len, f), "read %s", path);
		old[strcspn(old, "\n")] = 0;
		fclose(f);
	}
	f = fopen(path, "w");
	TEST_ASSERT(f, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(fputs(val, f) >= 0 && !fclose(f), "write %s=%s: %s",
		    path, val, strerror(errno));
}

/*
 * An importer's exec fault on a huge page with the NX huge page mitigation
 * on maps 4K; the recovery thread later zaps that page table so that the
 * huge page can come back: both kinds.
 */
static void test_nx_recovery(void)
{
	char nx[16], ratio[16], period[16];
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct kti_stats s;
	__u64 n;
	int tdp, i;

	write_param("nx_huge_pages", "Y", nx, sizeof(nx));
	write_param("nx_huge_pages_recovery_ratio", "0", ratio, sizeof(ratio));
	vm = vm_create_with_one_vcpu(&vcpu, guest_done);
	thp_slot(vm);
	/* KVM starts the VM's recovery thread at its first KVM_RUN. */
	vcpu_run_expect(vcpu, -1);
	attach_to(vm, &tdp);

	TEST_ASSERT_EQ(fault(PAGE(5), KTI_ACCESS_READ | KTI_ACCESS_EXEC), 0);
	n = invalidations();
	/* Recover every NX-split page, every 100 ms. */
	write_param("nx_huge_pages_recovery_period_ms", "100", period, sizeof(period));
	write_param("nx_huge_pages_recovery_ratio", "1", NULL, 0);
	for (i = 0; i < 100 && invalidations() == n; i++)
		usleep(100 * 1000);
	s = stats();
	TEST_ASSERT_EQ(s.invalidations, n + 1);
	/*
	 * Exact: the recovered page table, i.e. the 2M entry above page 5's
	 * leaf, more than the page mapped but exactly known.
	 */
	TEST_ASSERT(s.last_start == GPA && s.last_size == 2 << 20,
		    "reported [%#llx, +%#llx), expected exactly [%#llx, +%#x)",
		    s.last_start, s.last_size, GPA, 2 << 20);
	TEST_ASSERT_EQ(tdp_fd_stat("last_filter"), 3);
	/* Once recovered, nothing more. */
	usleep(300 * 1000);
	TEST_ASSERT_EQ(invalidations(), n + 1);

	write_param("nx_huge_pages_recovery_ratio", ratio, NULL, 0);
	write_param("nx_huge_pages_recovery_period_ms", period, NULL, 0);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	write_param("nx_huge_pages", nx, NULL, 0);
	ksft_test_result_pass("NX huge page recovery reports the recovered page table\n");
}

/*
 * Toggling nx_huge_pages fast-zaps every VM.  The exported root is not
 * invalidated (its importers keep its HPA): its leaves are zapped in place,
 * and the report is exactly what was mapped, both kinds.  The root keeps
 * working afterwards: faults map into it, the VM is not bugged.  The MMIO
 * generation wrap takes the same path, kvm_mmu_zap_all_fast().
 */
static void test_nx_toggle(void)
{
	struct kvm_vm *vm;
	char nx[16];
	int tdp;

	write_param("nx_huge_pages", "N", nx, sizeof(nx));
	vm = vm_create_barebones();
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, GPA), PAGES * 4096, MADV_NOHUGEPAGE),
		    "madvise");
	attach_to(vm, &tdp);
	TEST_ASSERT_EQ(fault(PAGE(5), KTI_ACCESS_READ), 0);

	EXPECT_REPORT(true, 3, PAGE(5), 4096,
		      write_param("nx_huge_pages", "Y", NULL, 0));
	/* Nothing mapped: the next toggle is silent. */
	EXPECT_REPORT(false, 0, 0, 0, write_param("nx_huge_pages", "N", NULL, 0));
	TEST_ASSERT_EQ(fault(PAGE(6), KTI_ACCESS_READ), 0);
	EXPECT_REPORT(true, 3, PAGE(6), 4096,
		      write_param("nx_huge_pages", "Y", NULL, 0));
	/* The root still works, and the VM's memslots too. */
	TEST_ASSERT_EQ(fault(PAGE(6), KTI_ACCESS_READ), 0);
	EXPECT_REPORT(true, 3, PAGE(6), 4096, vm_mem_region_delete(vm, SLOT));

	write_param("nx_huge_pages", nx, NULL, 0);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("nx_huge_pages toggle zaps the exported root in place, exactly\n");
}

/*
 * The VM's process exits while an importer (here, another process sharing
 * the importer's open file) still holds the TDP FD: KVM tears the table
 * down when the mm goes, and reports the whole table, (0, -1), once.
 */
static void test_mm_exit(void)
{
	int status;
	pid_t pid;

	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid) {
		struct kvm_vm *vm = vm_create_barebones();
		int tdp;

		vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT,
					    PAGES, 0);
		attach_to(vm, &tdp);
		TEST_ASSERT_EQ(id, 0);
		TEST_ASSERT_EQ(fault(PAGE(0), KTI_ACCESS_READ), 0);
		/* Exit without closing anything: the mm goes first. */
		_exit(0);
	}
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status), "child failed");
	/*
	 * The one source that reports more than it zapped, by design: exactly
	 * (0, -1), once (the whole counter), although one page was mapped.
	 */
	kti_expect_teardown(dev, 0);
	ksft_test_result_pass("VM's mm exits while attached: one whole-table report (0, -1)\n");
}

int main(void)
{
	require_tdp_fd_sw_protected();
	dev = kti_open("/dev/kvm_tdp_importer_c");

	ksft_print_header();
	ksft_set_plan(8);
	test_sw_protected();
	test_dirty_logging();
	test_manual_clear();
	test_memslot_move();
	test_collapse();
	test_nx_recovery();
	test_nx_toggle();
	test_mm_exit();
	close(dev);
	ksft_finished();
}
