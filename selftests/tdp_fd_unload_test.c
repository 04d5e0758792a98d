// SPDX-License-Identifier: GPL-2.0
/*
 * A module cannot be unloaded while a file it serves is open (issue 14,
 * item 6): every file_operations table the Rust abstractions hand to the
 * kernel names its module as owner, so an open file holds a reference on
 * the module and the last call into its code (a read, the release) cannot
 * find it gone.
 *
 *  1. /dev/kvm_tdp_iommu (kernel::miscdevice): rmmod kvm_tdp_iommu fails
 *     with EWOULDBLOCK while the device is open, succeeds once closed.
 *  2. debugfs (kernel::debugfs): open a TDP FD's "stats", close the TDP FD
 *     (its directory is removed, the file stays open): rmmod kvm_tdp_fd
 *     fails with EWOULDBLOCK, a read of the open file fails with EIO and
 *     does not call into the module; once the file is closed the module
 *     unloads and /sys/kernel/debug/kvm_tdp_fd is gone.
 *  3. The three modules load again, so the suite goes on as before.
 *
 * Without an owner, step 1 or 2 unloads the module with a file open: the
 * test says so, and the close that follows calls into freed module memory.
 *
 * The modules' paths come from the environment (KTDP_KO_TDP_FD,
 * KTDP_KO_IMPORTER_C, KTDP_KO_IOMMU), set by selftests/vm-run.sh and
 * selftests/ept-init.sh; without them the test fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "tdp_fd_util.h"

#define IOMMU_DEV	"/dev/kvm_tdp_iommu"

/* delete_module(@name, O_NONBLOCK): 0 or -errno. */
static int unload(const char *name)
{
	return syscall(__NR_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static bool loaded(const char *name)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return !stat(path, &st);
}

/* finit_module() of the file named by environment variable @var. */
static int load(const char *var)
{
	const char *path = getenv(var);
	int fd, r;

	if (!path) {
		ksft_print_msg("%s is not set\n", var);
		return -ENOENT;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ksft_print_msg("open(%s): %s\n", path, strerror(errno));
		return -errno;
	}
	r = syscall(__NR_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	if (r)
		ksft_print_msg("finit_module(%s): %s\n", path, strerror(-r));
	return r;
}

static void test_miscdevice(void)
{
	int dev, r;

	TEST_ASSERT(loaded("kvm_tdp_iommu"), "kvm_tdp_iommu is not loaded");
	dev = kti_open(IOMMU_DEV);
	r = unload("kvm_tdp_iommu");
	TEST_ASSERT(r == -EWOULDBLOCK,
		    "rmmod kvm_tdp_iommu with %s open: %d (%s), expected EWOULDBLOCK: the device's file_operations have no owner",
		    IOMMU_DEV, r, strerror(-r));
	close(dev);
	r = unload("kvm_tdp_iommu");
	TEST_ASSERT(!r, "rmmod kvm_tdp_iommu after close: %s", strerror(-r));
}

static void test_debugfs(void)
{
	char dir[256], path[300], buf[64];
	struct kvm_vm *vm;
	int tdp, stats, r;
	ssize_t n;

	r = unload("kvm_tdp_importer_c");
	TEST_ASSERT(!r || r == -ENOENT, "rmmod kvm_tdp_importer_c: %s", strerror(-r));
	TEST_ASSERT(!loaded("kvm_tdp_iommu"), "kvm_tdp_iommu still loaded");

	vm = vm_create_barebones();
	tdp = tdp_fd_create(vm);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(dir, sizeof(dir)), 1);
	snprintf(path, sizeof(path), "%s/stats", dir);
	stats = open(path, O_RDONLY);
	TEST_ASSERT(stats >= 0, "open(%s): %s", path, strerror(errno));
	n = read(stats, buf, sizeof(buf));
	TEST_ASSERT(n > 0, "read(%s): %zd (%s)", path, n, strerror(errno));
	TEST_ASSERT(lseek(stats, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));

	/* The export and its directory go; the open file stays. */
	close(tdp);
	kvm_vm_free(vm);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), 0);

	r = unload("kvm_tdp_fd");
	TEST_ASSERT(r == -EWOULDBLOCK,
		    "rmmod kvm_tdp_fd with %s open: %d (%s), expected EWOULDBLOCK: the debugfs file_operations have no owner",
		    path, r, strerror(-r));
	n = read(stats, buf, sizeof(buf));
	TEST_ASSERT(n == -1 && errno == EIO,
		    "read of a removed debugfs file: %zd (%s), expected EIO",
		    n, n < 0 ? strerror(errno) : "data");
	close(stats);

	r = unload("kvm_tdp_fd");
	TEST_ASSERT(!r, "rmmod kvm_tdp_fd after close: %s", strerror(-r));
	TEST_ASSERT(access(TDP_FD_DEBUGFS, F_OK) && errno == ENOENT,
		    "%s still exists after rmmod", TDP_FD_DEBUGFS);
}

int main(void)
{
	bool ok = true;

	ksft_print_header();
	ksft_set_plan(3);
	TEST_ASSERT(getenv("KTDP_KO_TDP_FD") && getenv("KTDP_KO_IMPORTER_C") &&
		    getenv("KTDP_KO_IOMMU"),
		    "KTDP_KO_TDP_FD, KTDP_KO_IMPORTER_C and KTDP_KO_IOMMU must name the modules");

	run_in_child(test_miscdevice,
	    "miscdevice: rmmod kvm_tdp_iommu is EWOULDBLOCK while /dev/kvm_tdp_iommu is open");
	run_in_child(test_debugfs,
	    "debugfs: rmmod kvm_tdp_fd is EWOULDBLOCK while a removed TDP FD's stats is open (read EIO)");

	/* Back to how the suite found them, whatever failed above. */
	if (!loaded("kvm_tdp_fd"))
		ok &= !load("KTDP_KO_TDP_FD");
	if (!loaded("kvm_tdp_importer_c"))
		ok &= !load("KTDP_KO_IMPORTER_C");
	if (!loaded("kvm_tdp_iommu"))
		ok &= !load("KTDP_KO_IOMMU");
	ksft_test_result(ok, "kvm_tdp_fd, kvm_tdp_importer_c, kvm_tdp_iommu load again\n");
	ksft_finished();
}
