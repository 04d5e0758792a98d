// SPDX-License-Identifier: GPL-2.0
/*
 * The ops of a KVM TDP FD, driven through both sample importers: the C one
 * (/dev/kvm_tdp_importer_c, include/linux/kvm_tdp_fd.h called directly) and
 * the Rust one (/dev/kvm_tdp_iommu, the safe kernel::kvm_tdp::importer API).
 *
 * For each: kvm_tdp_fd_get() errors, registration (-EBUSY on a repeat of
 * the same ops, a second attachment of the Rust importer registers),
 * unregistering an unknown importer, metadata, vCPU-less faults and their
 * errors (no access, bad access bits, no memslot, read-only memslot, another
 * process's mm), invalidations that arrive exactly when a mapping of the
 * exported table goes (munmap-less madvise, mprotect, memslot deletion) with
 * their range and filter, several importers on one fd, the life of the
 * objects (TDP FD and VM fd closed while attached), and the module pinned
 * while in use.  The provider's debugfs counters are checked against what
 * the importers saw.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "tdp_fd_util.h"

#define DATA_GPA	0x40000000ULL	/* 1 GiB */
#define DATA_SLOT	1
#define DATA_PAGES	16
#define RO_GPA		0x48000000ULL
#define RO_SLOT		2
#define RO_PAGES	4

struct importer_dev {
	const char *path;
	const char *module;
	bool is_c;
};

#define EXPECT_ERRNO(want, fd, cmd, arg)				\
do {									\
	int __r = ioctl(fd, cmd, arg);					\
	TEST_ASSERT(__r == -1 && errno == (want),			\
		    "%s: expected errno %d (%s), got r=%d errno=%d (%s)",	\
		    #cmd, want, strerror(want), __r, errno, strerror(errno)); \
} while (0)

static void test_get_errors(const struct importer_dev *d, int dev, int vm_fd)
{
	struct kti_attach a = { .tdp_fd = -1 };
	int devnull = open("/dev/null", O_RDONLY);
	__s32 fd;

	EXPECT_ERRNO(EBADF, dev, KTI_ATTACH, &a);
	a.tdp_fd = 12345;
	EXPECT_ERRNO(EBADF, dev, KTI_ATTACH, &a);
	a.tdp_fd = vm_fd;
	EXPECT_ERRNO(EINVAL, dev, KTI_ATTACH, &a);
	a.tdp_fd = devnull;
	EXPECT_ERRNO(EINVAL, dev, KTI_ATTACH, &a);
	a.tdp_fd = dev;
	EXPECT_ERRNO(EINVAL, dev, KTI_ATTACH, &a);
	if (d->is_c) {
		fd = -1;
		EXPECT_ERRNO(EBADF, dev, KTI_C_GET, &fd);
		fd = vm_fd;
		EXPECT_ERRNO(EINVAL, dev, KTI_C_GET, &fd);
	}
	close(devnull);
	ksft_test_result_pass("%s: kvm_tdp_fd_get: EBADF, EINVAL\n", d->path);
}

static void test_registration(const struct importer_dev *d, int dev, int tdp,
			      __u32 id)
{
	struct kti_attach a = { .tdp_fd = tdp };
	__u64 errors = tdp_fd_stat("op_errors");
	__u32 id2;

	TEST_ASSERT_EQ(tdp_fd_stat("importers"), 1);
	if (d->is_c) {
		/* Same ops again: -EBUSY from register_importer. */
		EXPECT_ERRNO(EBUSY, dev, KTI_C_REGISTER_AGAIN, &id);
		TEST_ASSERT_EQ(tdp_fd_stat("op_errors"), errors + 1);
		/* Unknown ops: nothing happens but the error count. */
		TEST_ASSERT(!ioctl(dev, KTI_C_UNREGISTER_UNKNOWN, &id),
			    "KTI_C_UNREGISTER_UNKNOWN: %s", strerror(errno));
		TEST_ASSERT_EQ(tdp_fd_stat("op_errors"), errors + 2);
		TEST_ASSERT_EQ(tdp_fd_stat("importers"), 1);
		/* Another importer (ops of its own) on the same fd. */
		id2 = kti_attach(dev, tdp, 0);
		TEST_ASSERT(id2 != id, "same id %u twice", id);
		TEST_ASSERT_EQ(tdp_fd_stat("importers"), 2);
		TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id2), "KTI_DETACH: %s",
			    strerror(errno));
		TEST_ASSERT_EQ(tdp_fd_stat("importers"), 1);
	} else {
		/*
		 * Each attachment has ops of its own: a second one of the same
		 * importer type registers, and hears invalidations as the
		 * first does.
		 */
		id2 = kti_attach(dev, tdp, 0);
		TEST_ASSERT(id2 != id, "same id %u twice", id);
		TEST_ASSERT_EQ(tdp_fd_stat("importers"), 2);
		TEST_ASSERT_EQ(tdp_fd_stat("op_errors"), errors);
		TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id2), "KTI_DETACH: %s",
			    strerror(errno));
		TEST_ASSERT_EQ(tdp_fd_stat("importers"), 1);
	}
	/* Unknown attachment ids. */
	id2 = 63;
	EXPECT_ERRNO(ENOENT, dev, KTI_DETACH, &id2);
	a.flags = 0x80;
	EXPECT_ERRNO(EINVAL, dev, KTI_ATTACH, &a);
	ksft_test_result_pass("%s: register, EBUSY, unregister unknown\n",
			      d->path);
}

static void test_metadata(const struct importer_dev *d, int dev, __u32 id)
{
	struct kti_info info = { .id = id };

	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO: %s",
		    strerror(errno));
	TEST_ASSERT_EQ(info.type, host_cpu_is_amd ? 1 : 2);
	TEST_ASSERT(info.levels == 4 || info.levels == 5, "levels %u",
		    info.levels);
	TEST_ASSERT(info.max_huge_page_level >= 2 &&
		    info.max_huge_page_level <= 3,
		    "max_huge_page_level %u", info.max_huge_page_level);
	ksft_test_result_pass("%s: metadata: type %u, %u levels, huge %u\n",
			      d->path, info.type, info.levels,
			      info.max_huge_page_level);
}

static void test_faults(const struct importer_dev *d, int dev, __u32 id)
{
	__u64 faults = tdp_fd_stat("faults");
	__u64 errors = tdp_fd_stat("fault_errors");
	int status;
	pid_t pid;

	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA, KTI_ACCESS_READ | KTI_ACCESS_WRITE), 0);
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA + 4096, KTI_ACCESS_READ), 0);
	TEST_ASSERT_EQ(kti_fault(dev, id, RO_GPA, KTI_ACCESS_READ), 0);
	TEST_ASSERT_EQ(tdp_fd_stat("faults"), faults + 3);
	TEST_ASSERT_EQ(tdp_fd_stat("fault_errors"), errors);

	TEST_ASSERT_EQ(kti_fault(dev, id, RO_GPA, KTI_ACCESS_WRITE), -EROFS);
	TEST_ASSERT_EQ(kti_fault(dev, id, 0x7f000000ULL, KTI_ACCESS_READ), -ENOENT);
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA, 0), -EINVAL);
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA, 1u << 5), -EINVAL);
	TEST_ASSERT_EQ(tdp_fd_stat("fault_errors"), errors + 2);

	/* Another process (another mm) may not fault into this VM. */
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid)
		_exit(-kti_fault(dev, id, DATA_GPA, KTI_ACCESS_READ));
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == EPERM,
		    "fault from a child: status %#x", status);
	/* fork() write-protected the mapped pages for COW: reported. */
	TEST_ASSERT(kti_stats(dev, id).invalidations > 0, "fork: no report");

	ksft_test_result_pass("%s: fault: 0, EROFS, ENOENT, EINVAL, EPERM\n",
			      d->path);
}

static void test_invalidations(const struct importer_dev *d, int dev,
			       __u32 id, struct kvm_vm *vm)
{
	char *hva = addr_gpa2hva(vm, DATA_GPA);
	struct kti_stats s0, s;

	/*
	 * fork() in test_faults() write-protected the VM's memory for
	 * copy-on-write, which zapped it: map the pages used here again.
	 */
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA, KTI_ACCESS_READ | KTI_ACCESS_WRITE), 0);
	TEST_ASSERT_EQ(kti_fault(dev, id, RO_GPA, KTI_ACCESS_READ), 0);

	/* A zap of a page the table maps: one report, exactly its range. */
	s0 = kti_stats(dev, id);
	TEST_ASSERT(!madvise(hva, 4096, MADV_DONTNEED), "madvise");
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.invalidations, s0.invalidations + 1);
	TEST_ASSERT_EQ(s.last_start, DATA_GPA);
	TEST_ASSERT_EQ(s.last_size, 4096);
	TEST_ASSERT_EQ(tdp_fd_stat("last_filter"), 1);	/* shared */

	/* The same page again: not mapped any more, so no report. */
	TEST_ASSERT(!madvise(hva, 4096, MADV_DONTNEED), "madvise");
	/* A page the table never mapped: no report either. */
	TEST_ASSERT(!madvise(hva + 8 * 4096, 4096, MADV_DONTNEED), "madvise");
	TEST_ASSERT_EQ(kti_stats(dev, id).invalidations, s0.invalidations + 1);

	/* Write-protecting a writable mapping weakens it: reported. */
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA + 2 * 4096,
			     KTI_ACCESS_READ | KTI_ACCESS_WRITE), 0);
	s0 = kti_stats(dev, id);
	TEST_ASSERT(!mprotect(hva + 2 * 4096, 4096, PROT_READ), "mprotect");
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.invalidations, s0.invalidations + 1);
	TEST_ASSERT_EQ(s.last_start, DATA_GPA + 2 * 4096);
	TEST_ASSERT_EQ(s.last_size, 4096);
	TEST_ASSERT(!mprotect(hva + 2 * 4096, 4096, PROT_READ | PROT_WRITE),
		    "mprotect");

	/*
	 * Deleting a memslot with a mapped page: reported, both kinds, and
	 * exactly the page mapped (with the TDP exported, the deletion zaps
	 * the slot's range, never the whole root).
	 */
	s0 = kti_stats(dev, id);
	vm_mem_region_delete(vm, RO_SLOT);
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.invalidations, s0.invalidations + 1);
	TEST_ASSERT(s.whole == s0.whole && s.last_start == RO_GPA &&
		    s.last_size == 4096,
		    "memslot deletion reported [%#llx, +%#llx), expected exactly [%#llx, +0x1000)",
		    s.last_start, s.last_size, (unsigned long long)RO_GPA);
	TEST_ASSERT_EQ(tdp_fd_stat("last_filter"), 3);
	TEST_ASSERT_EQ(kti_fault(dev, id, RO_GPA, KTI_ACCESS_READ), -ENOENT);

	ksft_test_result_pass("%s: invalidations: madvise, mprotect, memslot deletion\n",
			      d->path);
}

static void test_device(const struct importer_dev *d)
{
	struct kvm_vm *vm = vm_create_barebones();
	struct kti_info info;
	int dev, tdp, r;
	__u32 id;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA,
				    DATA_SLOT, DATA_PAGES, 0);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, RO_GPA, RO_SLOT,
				    RO_PAGES, KVM_MEM_READONLY);
	/* 4K host pages, so that KVM maps 4K and ranges are exact. */
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, DATA_GPA), DATA_PAGES * 4096,
			     MADV_NOHUGEPAGE), "madvise(NOHUGEPAGE)");

	dev = open(d->path, O_RDWR);
	TEST_ASSERT(dev >= 0, "open(%s): %s", d->path, strerror(errno));

	test_get_errors(d, dev, vm->fd);

	tdp = tdp_fd_create(vm);
	id = kti_attach(dev, tdp, 0);
	test_registration(d, dev, tdp, id);
	test_metadata(d, dev, id);
	test_faults(d, dev, id);
	test_invalidations(d, dev, id, vm);

	/* The module is pinned while a TDP FD exists. */
	r = syscall(__NR_delete_module, "kvm_tdp_fd", O_NONBLOCK);
	TEST_ASSERT(r == -1 && (errno == EWOULDBLOCK || errno == EBUSY),
		    "delete_module(kvm_tdp_fd) in use: r=%d errno=%d", r, errno);
	/* So is the importer's, while its device is open. */
	r = syscall(__NR_delete_module, d->module, O_NONBLOCK);
	TEST_ASSERT(r == -1 && (errno == EWOULDBLOCK || errno == EBUSY),
		    "delete_module(%s) in use: r=%d errno=%d", d->module, r, errno);

	/* The TDP FD closed: the importer's reference keeps it alive. */
	close(tdp);
	info.id = id;
	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO after close: %s",
		    strerror(errno));
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA + 3 * 4096, KTI_ACCESS_READ), 0);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), 1);

	/* The VM fd closed (and its memory unmapped): still alive. */
	kvm_vm_free(vm);
	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO after VM close: %s",
		    strerror(errno));
	/* Its memslots went with it: nothing left to fault. */
	TEST_ASSERT_EQ(kti_fault(dev, id, DATA_GPA + 3 * 4096, KTI_ACCESS_READ),
		       -ENOENT);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), 1);

	/* The last reference goes: the object is gone. */
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH: %s",
		    strerror(errno));
	EXPECT_ERRNO(ENOENT, dev, KTI_DETACH, &id);
	EXPECT_ERRNO(ENOENT, dev, KTI_INFO, &info);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), 0);
	close(dev);
	ksft_test_result_pass("%s: lifetimes: TDP FD and VM fd closed while attached\n",
			      d->path);
}

/*
 * Several importers on one TDP FD, of both kinds (three C ones, one Rust):
 * each gets each report exactly once, with the same range; a detached one
 * gets no more.
 */
static void test_fanout(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	int cdev = kti_open("/dev/kvm_tdp_importer_c");
	int rdev = kti_open("/dev/kvm_tdp_iommu");
	const __u32 rw = KTI_ACCESS_READ | KTI_ACCESS_WRITE;
	struct kti_stats s;
	__u32 cid[3], rid;
	char *hva;
	int tdp, i;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA,
				    DATA_SLOT, DATA_PAGES, 0);
	hva = addr_gpa2hva(vm, DATA_GPA);
	TEST_ASSERT(!madvise(hva, DATA_PAGES * 4096, MADV_NOHUGEPAGE), "madvise");
	tdp = tdp_fd_create(vm);
	for (i = 0; i < 3; i++)
		cid[i] = kti_attach(cdev, tdp, 0);
	rid = kti_attach(rdev, tdp, 0);
	TEST_ASSERT_EQ(tdp_fd_stat("importers"), 4);

	TEST_ASSERT_EQ(kti_fault(rdev, rid, DATA_GPA + 4096, rw), 0);
	TEST_ASSERT(!madvise(hva + 4096, 4096, MADV_DONTNEED), "madvise");
	for (i = 0; i < 4; i++) {
		s = i < 3 ? kti_stats(cdev, cid[i]) : kti_stats(rdev, rid);
		TEST_ASSERT_EQ(s.invalidations, 1);
		TEST_ASSERT_EQ(s.last_start, DATA_GPA + 4096);
		TEST_ASSERT_EQ(s.last_size, 4096);
	}
	TEST_ASSERT_EQ(tdp_fd_stat("deliveries"), 4);

	/* One goes; the others keep hearing, once each. */
	TEST_ASSERT(!ioctl(cdev, KTI_DETACH, &cid[1]), "KTI_DETACH");
	TEST_ASSERT_EQ(kti_fault(cdev, cid[0], DATA_GPA + 2 * 4096, rw), 0);
	TEST_ASSERT(!madvise(hva + 2 * 4096, 4096, MADV_DONTNEED), "madvise");
	TEST_ASSERT_EQ(kti_stats(cdev, cid[0]).invalidations, 2);
	TEST_ASSERT_EQ(kti_stats(cdev, cid[2]).invalidations, 2);
	TEST_ASSERT_EQ(kti_stats(rdev, rid).invalidations, 2);
	TEST_ASSERT_EQ(tdp_fd_stat("deliveries"), 7);

	close(rdev);	/* detaches the Rust one */
	TEST_ASSERT_EQ(tdp_fd_stat("importers"), 2);
	close(cdev);
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("fan-out: 3 C and 1 Rust importers, each report exactly once; none after detach\n");
}

int main(void)
{
	static const struct importer_dev devs[] = {
		{ "/dev/kvm_tdp_importer_c", "kvm_tdp_importer_c", true },
		{ "/dev/kvm_tdp_iommu", "kvm_tdp_iommu", false },
	};
	unsigned int i;

	/* Missing support is a failure here, not a skip. */
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");
	ksft_print_header();
	ksft_set_plan(13);
	for (i = 0; i < ARRAY_SIZE(devs); i++)
		test_device(&devs[i]);
	test_fanout();
	ksft_finished();
}
