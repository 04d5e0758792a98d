// SPDX-License-Identifier: GPL-2.0
/*
 * Seed 001's table, source by source, on a KVM_X86_SW_PROTECTED_VM whose
 * guest converts its own memory with KVM_HC_MAP_GPA_RANGE (seed 004's
 * flow: the exit goes to userspace, which sets the memory attributes).
 * One row per zap source; each names the private/shared filter KVM must
 * give the zap and whether an importer of the shared view is woken:
 *
 *   mmu notifier (madvise, mprotect, munmap)   shared    woken
 *   set attributes shared -> private (guest)   shared    woken (old state)
 *   set attributes private -> shared (guest)   private   not woken
 *   guest_memfd punch hole                     private   not woken
 *   guest_memfd release                        private   not woken
 *   memslot deletion                           both      woken
 *   VM teardown (the process exits)            both      woken, (0, -1)
 *
 * "Not woken" is checked at both ends: the importer gets nothing and the
 * provider got no report at all (such zaps skip the shared-view root).  A
 * shared-view importer also never maps a private page: its fault fails
 * with EACCES whenever the guest has made the page private.
 *
 * The table runs in a child process so that its last row can be the
 * child's exit; the importer's open file is shared with the parent, which
 * checks that row.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define GPA		0x40000000ULL
#define SLOT		1
#define PAGES		32
#define GPA2		0x48000000ULL	/* a second slot, to delete */
#define SLOT2		2
#define PAGES2		4

enum { OP_PRIVATE = 1, OP_SHARED, OP_WRITE, OP_DONE };

/* The guest's command, set by the host before each run. */
static uint64_t cmd_op, cmd_gpa, cmd_val;

static void guest_code(void)
{
	for (;;) {
		GUEST_SYNC(0);
		switch (READ_ONCE(cmd_op)) {
		case OP_PRIVATE:
			kvm_hypercall_map_gpa_range(cmd_gpa, 4096,
						    KVM_MAP_GPA_RANGE_ENCRYPTED);
			break;
		case OP_SHARED:
			kvm_hypercall_map_gpa_range(cmd_gpa, 4096,
						    KVM_MAP_GPA_RANGE_DECRYPTED);
			break;
		case OP_WRITE:
			*(volatile uint64_t *)cmd_gpa = cmd_val;
			break;
		case OP_DONE:
			GUEST_DONE();
		}
	}
}

static struct kvm_vm *vm;
static struct kvm_vcpu *vcpu;
static char *hva;
static int dev;
static __u32 id;

/* Has the guest run @op on @gpa, serving its MAP_GPA_RANGE exit. */
static void guest_do(uint64_t op, uint64_t gpa, uint64_t val)
{
	struct kvm_run *run = vcpu->run;

	cmd_op = op;
	cmd_gpa = gpa;
	cmd_val = val;
	sync_global_to_guest(vm, cmd_op);
	sync_global_to_guest(vm, cmd_gpa);
	sync_global_to_guest(vm, cmd_val);
	for (;;) {
		vcpu_run(vcpu);
		if (run->exit_reason != KVM_EXIT_HYPERCALL)
			break;
		TEST_ASSERT_EQ(run->hypercall.nr, KVM_HC_MAP_GPA_RANGE);
		TEST_ASSERT_EQ(run->hypercall.args[0], gpa);
		handle_map_gpa_range(vm, run);
	}
	expect_ucall(vcpu, op == OP_DONE ? -1 : 0);
}

static int fault(uint64_t gpa, __u32 access)
{
	return kti_fault(dev, id, gpa, access);
}

static uint64_t provider_reports(void)
{
	return tdp_fd_stat("reports_shared") + tdp_fd_stat("reports_private") +
	       tdp_fd_stat("reports_both");
}

/* Each row's page starts shared and mapped by the importer, or private. */
enum state { MAPPED_SHARED, PRIVATE };

static void page_to(uint64_t gpa, enum state st)
{
	if (st == MAPPED_SHARED) {
		TEST_ASSERT_EQ(fault(gpa, KTI_ACCESS_READ | KTI_ACCESS_WRITE), 0);
		guest_do(OP_WRITE, gpa, gpa);
	} else {
		guest_do(OP_PRIVATE, gpa, 0);
		/* The guest uses it as private memory: KVM maps it. */
		guest_do(OP_WRITE, gpa, ~gpa);
		TEST_ASSERT_EQ(fault(gpa, KTI_ACCESS_READ), -EACCES);
	}
}

static void do_madvise(uint64_t gpa)
{
	TEST_ASSERT(!madvise(hva + (gpa - GPA), 4096, MADV_DONTNEED), "madvise");
}

static void do_mprotect(uint64_t gpa)
{
	TEST_ASSERT(!mprotect(hva + (gpa - GPA), 4096, PROT_READ), "mprotect");
	TEST_ASSERT(!mprotect(hva + (gpa - GPA), 4096, PROT_READ | PROT_WRITE),
		    "mprotect back");
}

static void do_munmap(uint64_t gpa)
{
	void *p = hva + (gpa - GPA);

	TEST_ASSERT(!munmap(p, 4096), "munmap");
	/* Memory again behind the memslot, for the rows after. */
	TEST_ASSERT(mmap(p, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == p,
		    "mmap back");
}

static void do_to_private(uint64_t gpa)
{
	guest_do(OP_PRIVATE, gpa, 0);
	TEST_ASSERT_EQ(fault(gpa, KTI_ACCESS_READ), -EACCES);
}

static void do_to_shared(uint64_t gpa)
{
	guest_do(OP_SHARED, gpa, 0);
	/* Shared again: the importer maps it again. */
	TEST_ASSERT_EQ(fault(gpa, KTI_ACCESS_READ), 0);
}

static void do_punch_hole(uint64_t gpa)
{
	vm_guest_mem_punch_hole(vm, gpa, 4096);
}

static void do_release(uint64_t gpa)
{
	struct userspace_mem_region *r = memslot2region(vm, SLOT);

	/* The memslot holds no reference: this is the file's release. */
	close(r->region.guest_memfd);
	r->region.guest_memfd = -1;
}

static void do_delete_slot(uint64_t gpa)
{
	vm_mem_region_delete(vm, SLOT2);
	TEST_ASSERT_EQ(fault(gpa, KTI_ACCESS_READ), -ENOENT);
}

static const struct row {
	const char *source;
	enum state before;
	void (*action)(uint64_t gpa);
	bool woken;
	__u64 filter;		/* KVM_TDP_EXPORT_*: 1 shared, 2 private, 3 both */
	bool slot2;		/* the row's page is in the second slot */
} table[] = {
	{ "mmu notifier: madvise(MADV_DONTNEED)", MAPPED_SHARED, do_madvise, true, 1 },
	{ "mmu notifier: mprotect(PROT_READ)", MAPPED_SHARED, do_mprotect, true, 1 },
	{ "mmu notifier: munmap", MAPPED_SHARED, do_munmap, true, 1 },
	{ "guest converts shared -> private", MAPPED_SHARED, do_to_private, true, 1 },
	{ "guest converts private -> shared", PRIVATE, do_to_shared, false, 0 },
	{ "guest_memfd punch hole", PRIVATE, do_punch_hole, false, 0 },
	{ "guest_memfd release", PRIVATE, do_release, false, 0 },
	{ "memslot deletion", MAPPED_SHARED, do_delete_slot, true, 3, true },
};

static void run_table(void)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kti_stats s0, s;
	unsigned int i;
	int tdp;

	vm = vm_create_shape_with_one_vcpu(shape, &vcpu, guest_code);
	vm_enable_cap(vm, KVM_CAP_EXIT_HYPERCALL, BIT(KVM_HC_MAP_GPA_RANGE));
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES,
		   KVM_MEM_GUEST_MEMFD, -1, 0);
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, GPA2, SLOT2, PAGES2,
		   KVM_MEM_GUEST_MEMFD, -1, 0);
	hva = addr_gpa2hva(vm, GPA);
	TEST_ASSERT(!madvise(hva, PAGES * 4096, MADV_NOHUGEPAGE), "madvise");
	virt_map(vm, GPA, GPA, PAGES);
	virt_map(vm, GPA2, GPA2, PAGES2);
	guest_do(0, 0, 0);	/* to the guest's first GUEST_SYNC */

	tdp = tdp_fd_create(vm);
	id = kti_attach(dev, tdp, 0);
	TEST_ASSERT_EQ(id, 0);

	for (i = 0; i < ARRAY_SIZE(table); i++) {
		const struct row *r = &table[i];
		uint64_t gpa = r->slot2 ? GPA2 : GPA + i * 4096;
		uint64_t p0;

		page_to(gpa, r->before);
		s0 = kti_stats(dev, id);
		p0 = provider_reports();
		r->action(gpa);
		s = kti_stats(dev, id);
		if (r->woken) {
			TEST_ASSERT(s.invalidations == s0.invalidations + 1,
				    "%s: %llu reports, expected 1", r->source,
				    s.invalidations - s0.invalidations);
			/* Exactly the page, but for a memslot's fast zap. */
			TEST_ASSERT(r->slot2 ? s.last_start <= gpa &&
				    s.last_start + s.last_size >= gpa + 4096 :
				    s.last_start == gpa && s.last_size == 4096,
				    "%s: reported [%#llx, +%#llx), not %#lx",
				    r->source, s.last_start, s.last_size, gpa);
			TEST_ASSERT(tdp_fd_stat("last_filter") == r->filter,
				    "%s: filter %llu, expected %llu", r->source,
				    tdp_fd_stat("last_filter"), r->filter);
		} else {
			TEST_ASSERT(s.invalidations == s0.invalidations,
				    "%s: woken, expected never", r->source);
			TEST_ASSERT(provider_reports() == p0,
				    "%s: reported to the provider", r->source);
		}
		ksft_test_result_pass("%s: %s\n", r->source,
				      r->woken ? "woken, right range and filter" :
				      "not woken, not even reported");
	}
	guest_do(OP_DONE, 0, 0);
	/* Exit without closing anything: the VM's mm goes first. */
	exit(0);
}

int main(void)
{
	int status;
	pid_t pid;

	require_tdp_fd_sw_protected();
	dev = kti_open("/dev/kvm_tdp_importer_c");

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(table) + 1);
	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid)
		run_table();
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "the table failed (status %#x)", status);
	/* The child's rows are its own; count them here too. */
	ksft_cnt.ksft_pass += ARRAY_SIZE(table);

	/* Teardown: the whole table, both kinds, once. */
	kti_expect_teardown(dev, 0);
	ksft_test_result_pass("VM teardown (the process exits): woken once, (0, -1)\n");
	close(dev);
	ksft_finished();
}
