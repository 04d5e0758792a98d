// SPDX-License-Identifier: GPL-2.0
/*
 * Importer faults from a workqueue, as an IOMMU's I/O page fault handler
 * makes them: the sample importer attached with KTI_ATTACH_FAULT_WQ makes
 * every fault from a worker of the system workqueue (a kernel thread with
 * no mm) on behalf of the attaching process's mm.
 *
 *  - the VM's process attached: after mprotect() zapped the guest's pages,
 *    DMA reads fault them in from the workqueue and return exactly what
 *    the guest wrote; KTI_FAULT through the workqueue succeeds;
 *  - another process (a child, another mm) attached: KVM refuses the
 *    workqueue's faults on its behalf with -EPERM;
 *  - the VM's process has exited: the workqueue's fault on behalf of its
 *    mm, which has no users left, is refused with -ESRCH;
 *  - a workqueue fault that blocks (on a userfaultfd nobody answers) does
 *    not make the waiting process unkillable: SIGKILL ends it, and then the
 *    fault, whose worker holds its own references.  Were the wait not
 *    interruptible, the process could never exit: the userfaultfd would
 *    only be released by its exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define DATA_GPA	0x40000000ULL
#define DATA_SLOT	1
#define DATA_PAGES	16

static uint8_t guest_byte(uint64_t gpa, int j)
{
	return (uint8_t)((gpa >> 12) * 31 + j * 7 + 1);
}

static void guest_code(void)
{
	uint64_t gpa;
	int j;

	for (gpa = DATA_GPA; gpa < DATA_GPA + DATA_PAGES * 4096; gpa += 4096)
		for (j = 0; j < 4096; j++)
			*(volatile uint8_t *)(gpa + j) = guest_byte(gpa, j);
	GUEST_SYNC(1);
	GUEST_DONE();
}

static struct kvm_vm *vm_with_guest_data(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA,
				    DATA_SLOT, DATA_PAGES, 0);
	virt_map(vm, DATA_GPA, DATA_GPA, DATA_PAGES);
	vcpu_run_expect(vcpu, 1);
	return vm;
}

/* mprotect() invalidates the pages' SPTEs and keeps their contents. */
static void zap_data(struct kvm_vm *vm)
{
	void *hva = addr_gpa2hva(vm, DATA_GPA);

	TEST_ASSERT(!mprotect(hva, DATA_PAGES * 4096, PROT_READ) &&
		    !mprotect(hva, DATA_PAGES * 4096, PROT_READ | PROT_WRITE),
		    "mprotect: %s", strerror(errno));
}

static void test_vm_process(struct kvm_vm *vm, int dev, int tdp)
{
	static uint8_t buf[DATA_PAGES * 4096];
	struct kti_stats s0, s;
	__u32 id;
	int j;

	id = kti_attach(dev, tdp, KTI_ATTACH_FAULT_WQ);
	zap_data(vm);
	s0 = kti_stats(dev, id);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, DATA_GPA, buf, sizeof(buf)), 0);
	for (j = 0; j < (int)sizeof(buf); j++)
		TEST_ASSERT(buf[j] == guest_byte(DATA_GPA + j, j & 4095),
			    "byte %d: %#x, the guest wrote %#x", j, buf[j],
			    guest_byte(DATA_GPA + j, j & 4095));
	s = kti_stats(dev, id);
	TEST_ASSERT(s.walk_faults >= DATA_PAGES,
		    "DMA took %llu I/O page faults, expected at least %d",
		    (unsigned long long)(s.walk_faults - s0.walk_faults), DATA_PAGES);

	zap_data(vm);
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA, KTI_ACCESS_READ | KTI_ACCESS_WRITE), 0);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH: %s", strerror(errno));
	ksft_test_result_pass("VM's mm: DMA faults from the workqueue, bytes equal the guest's\n");
}

static void test_other_process(struct kvm_vm *vm, int dev, int tdp)
{
	int status;
	pid_t pid;

	zap_data(vm);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		uint8_t b;
		__u32 id = kti_attach(dev, tdp, KTI_ATTACH_FAULT_WQ);
		int r = kti_fault(dev, id, DATA_GPA, KTI_ACCESS_READ);

		if (r != -EPERM)
			_exit(100 + -r);
		r = kti_dma(dev, KTI_DMA_READ, id, DATA_GPA + 4096, &b, 1);
		if (r != -EPERM)
			_exit(200 + -r);
		ioctl(dev, KTI_DETACH, &id);
		_exit(0);
	}
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "another mm through the workqueue: status %#x (100+errno: KTI_FAULT, 200+errno: DMA)",
		    status);
	ksft_test_result_pass("another process's mm: EPERM from the workqueue\n");
}

static void test_exited_process(int dev)
{
	int status, pipefd[2];
	__u32 id;
	pid_t pid;

	TEST_ASSERT(!pipe(pipefd), "pipe: %s", strerror(errno));
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		struct kvm_vm *vm = vm_with_guest_data();

		id = kti_attach(dev, tdp_fd_create(vm), KTI_ATTACH_FAULT_WQ);
		TEST_ASSERT_EQ(write(pipefd[1], &id, sizeof(id)), sizeof(id));
		_exit(0);
	}
	TEST_ASSERT_EQ(read(pipefd[0], &id, sizeof(id)), sizeof(id));
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child: status %#x", status);
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA, KTI_ACCESS_READ), -ESRCH);
	kti_expect_teardown(dev, id);
	ksft_test_result_pass("exited VM process: ESRCH from the workqueue\n");
}

static int uffd, ready_fd;

/* Tells the parent once the worker's fault waits on the userfaultfd. */
static void *uffd_watcher(void *arg)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };
	char c = 1;

	TEST_ASSERT(poll(&p, 1, -1) == 1, "poll(userfaultfd): %s", strerror(errno));
	TEST_ASSERT_EQ(write(ready_fd, &c, 1), 1);
	return NULL;
}

static void test_killed_while_blocked(int dev)
{
	int status, pipefd[2];
	pid_t pid;
	char c;

	TEST_ASSERT(!pipe(pipefd), "pipe: %s", strerror(errno));
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		struct uffdio_api api = { .api = UFFD_API };
		struct uffdio_register reg = {
			.range.len = DATA_PAGES * 4096,
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		struct kvm_vm *vm = vm_create_barebones();
		pthread_t watcher;
		uint8_t b;
		__u32 id;

		vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA,
					    DATA_SLOT, DATA_PAGES, 0);
		reg.range.start = (unsigned long)addr_gpa2hva(vm, DATA_GPA);
		uffd = syscall(__NR_userfaultfd, O_CLOEXEC);
		TEST_ASSERT(uffd >= 0, "userfaultfd: %s", strerror(errno));
		TEST_ASSERT(!ioctl(uffd, UFFDIO_API, &api) &&
			    !ioctl(uffd, UFFDIO_REGISTER, &reg),
			    "UFFDIO_API/REGISTER: %s", strerror(errno));
		ready_fd = pipefd[1];
		pthread_create(&watcher, NULL, uffd_watcher, NULL);
		id = kti_attach(dev, tdp_fd_create(vm), KTI_ATTACH_FAULT_WQ);
		/* The page was never touched: the worker's fault blocks. */
		kti_dma(dev, KTI_DMA_READ, id, DATA_GPA, &b, 1);
		_exit(1);
	}
	TEST_ASSERT_EQ(read(pipefd[0], &c, 1), 1);
	TEST_ASSERT(!kill(pid, SIGKILL), "kill: %s", strerror(errno));
	/* Bounded: a process stuck in an uninterruptible wait never dies. */
	alarm(30);
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	alarm(0);
	TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		    "child: status %#x", status);
	close(pipefd[0]);
	close(pipefd[1]);
	ksft_test_result_pass("SIGKILL ends a process waiting on a blocked workqueue fault\n");
}

int main(void)
{
	struct kvm_vm *vm;
	int dev, tdp;

	ksft_print_header();
	ksft_set_plan(4);

	vm = vm_with_guest_data();
	tdp = tdp_fd_create(vm);
	dev = kti_open("/dev/kvm_tdp_iommu");

	test_vm_process(vm, dev, tdp);
	test_other_process(vm, dev, tdp);
	test_exited_process(dev);
	test_killed_while_blocked(dev);

	close(dev);
	close(tdp);
	kvm_vm_free(vm);
	ksft_finished();
}
