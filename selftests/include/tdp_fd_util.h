/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the TDP FD selftests: creating a TDP FD, driving a
 * sample importer (samples/include/kvm_tdp_importer.h), reading the
 * provider's debugfs counters, and running a vCPU to its next ucall.
 */
#ifndef SELFTEST_TDP_FD_UTIL_H
#define SELFTEST_TDP_FD_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "ucall_common.h"
#include "kvm_tdp_importer.h"

#define TDP_FD_DEBUGFS	"/sys/kernel/debug/kvm_tdp_fd"

/* Fails the test unless KVM exports the TDP of SW-protected VMs. */
static inline void require_tdp_fd_sw_protected(void)
{
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");
	TEST_ASSERT(kvm_check_cap(KVM_CAP_VM_TYPES) &
		    BIT(KVM_X86_SW_PROTECTED_VM), "no KVM_X86_SW_PROTECTED_VM");
}

/* Whether a module parameter file (bool or int) reads Y or 1. */
static inline bool param_is_yes(const char *path)
{
	char c = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	if (fread(&c, 1, 1, f) != 1)
		c = 0;
	fclose(f);
	return c == 'Y' || c == '1';
}

/*
 * Runs @fn in a child and reports one TAP line, @what, for it: so that one
 * item's failure (an assertion, or a kernel oops killing the task) does not
 * hide the others'.
 */
static inline void run_in_child(void (*fn)(void), const char *what)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		fn();
		exit(0);
	}
	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	ksft_test_result(WIFEXITED(status) && !WEXITSTATUS(status), "%s\n", what);
}

/* Opens a sample importer's device; must work. */
static inline int kti_open(const char *path)
{
	int fd = open(path, O_RDWR);

	TEST_ASSERT(fd >= 0, "open(%s): %s", path, strerror(errno));
	return fd;
}

/*
 * KTI_DMA_READ or KTI_DMA_WRITE (@cmd) of @len bytes at guest physical @gpa
 * through attachment @id of @dev, from or to @buf; 0 or -errno.
 */
static inline int kti_dma(int dev, unsigned long cmd, __u32 id, __u64 gpa,
			  void *buf, __u64 len)
{
	struct kti_dma d = {
		.id = id, .gpa = gpa, .len = len, .buf = (unsigned long)buf,
	};

	return ioctl(dev, cmd, &d) ? -errno : 0;
}

/*
 * KTI_SHADOW_MAP: pins @len bytes at @hva and maps them at @gpa in shadow
 * domain @id of @dev (flags KTI_SHADOW_MAP_*); 0 or -errno.
 */
static inline int kti_shadow_map(int dev, __u32 id, __u64 gpa, void *hva,
				 __u64 len, __u32 flags)
{
	struct kti_dma d = {
		.id = id, .flags = flags, .gpa = gpa, .len = len,
		.buf = (unsigned long)hva,
	};

	return ioctl(dev, KTI_SHADOW_MAP, &d) ? -errno : 0;
}

/* KVM_CREATE_TDP_FD for the shared view of address space 0; must work. */
static inline int tdp_fd_create(struct kvm_vm *vm)
{
	struct kvm_create_tdp_fd args = { .mode = KVM_TDP_FD_MODE_SHARED };
	int fd = ioctl(vm->fd, KVM_CREATE_TDP_FD, &args);

	TEST_ASSERT(fd >= 0, "KVM_CREATE_TDP_FD: %s", strerror(errno));
	return fd;
}

/* KTI_ATTACH of @tdp with @flags; returns the attachment id. */
static inline __u32 kti_attach(int dev, int tdp, __u32 flags)
{
	struct kti_attach a = { .tdp_fd = tdp, .flags = flags };
	int id = ioctl(dev, KTI_ATTACH, &a);

	TEST_ASSERT(id >= 0, "KTI_ATTACH: %s", strerror(errno));
	return id;
}

static inline struct kti_stats kti_stats(int dev, __u32 id)
{
	struct kti_stats s = { .id = id };

	TEST_ASSERT(!ioctl(dev, KTI_STATS, &s), "KTI_STATS: %s", strerror(errno));
	TEST_ASSERT_EQ(s.id, id);
	return s;
}

/* KTI_FAULT of the GFN of @gpa; 0 or -errno. */
static inline int kti_fault(int dev, __u32 id, __u64 gpa, __u32 access)
{
	struct kti_fault f = { .id = id, .access = access, .gfn = gpa >> 12 };

	return ioctl(dev, KTI_FAULT, &f) ? -errno : 0;
}

/*
 * The number of this process's TDP FD debugfs directories; the path of the
 * last one found in @path (if not NULL).
 */
static inline int tdp_fd_debugfs_dirs(char *path, size_t len)
{
	char prefix[32];
	struct dirent *d;
	int found = 0;
	DIR *dir;

	snprintf(prefix, sizeof(prefix), "%d-", getpid());
	dir = opendir(TDP_FD_DEBUGFS);
	TEST_ASSERT(dir, "opendir(%s): %s", TDP_FD_DEBUGFS, strerror(errno));
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, prefix, strlen(prefix)))
			continue;
		if (path)
			snprintf(path, len, TDP_FD_DEBUGFS "/%.200s", d->d_name);
		found++;
	}
	closedir(dir);
	return found;
}

/* One counter of the "stats" file of this process's only TDP FD. */
static inline __u64 tdp_fd_stat(const char *name)
{
	char dir[256], path[300], line[128], key[64];
	unsigned long long v = 0;
	bool found = false;
	FILE *f;

	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(dir, sizeof(dir)), 1);
	snprintf(path, sizeof(path), "%s/stats", dir);
	f = fopen(path, "r");
	TEST_ASSERT(f, "fopen(%s): %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63[^:]: %llu", key, &v) == 2 &&
		    !strcmp(key, name)) {
			found = true;
			break;
		}
	}
	fclose(f);
	TEST_ASSERT(found, "no '%s' in %s", name, path);
	return v;
}

/* Folds the per-CPU vmstat deltas, so that the counters read are exact. */
static inline void vm_stat_refresh(void)
{
	FILE *f = fopen("/proc/sys/vm/stat_refresh", "w");

	TEST_ASSERT(f && fputs("1", f) >= 0 && !fclose(f),
		    "/proc/sys/vm/stat_refresh: %s", strerror(errno));
}

/* SecPageTables of /proc/meminfo (KVM's page tables), exact, in KiB. */
static inline long sec_page_tables_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f;

	vm_stat_refresh();
	f = fopen("/proc/meminfo", "r");
	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SecPageTables: %ld kB", &kb) == 1)
			break;
	fclose(f);
	TEST_ASSERT(kb >= 0, "no SecPageTables in /proc/meminfo");
	return kb;
}

/* The counter @name of /proc/vmstat, exact. */
static inline long vmstat(const char *name)
{
	char line[128], key[64];
	long v = -1, x;
	FILE *f;

	vm_stat_refresh();
	f = fopen("/proc/vmstat", "r");
	TEST_ASSERT(f, "/proc/vmstat");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %ld", key, &x) == 2 && !strcmp(key, name))
			v = x;
	fclose(f);
	TEST_ASSERT(v >= 0, "no %s in /proc/vmstat", name);
	return v;
}

/* /dev/kmsg opened at the end of the log, or -1 with errno set. */
static inline int kmsg_open_at_end(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/*
 * The text of the next kernel log record of @fd (its first line, without the
 * header) in @rec; false when none is left.  Records overwritten meanwhile
 * are skipped.
 */
static inline bool kmsg_next(int fd, char *rec, size_t size)
{
	ssize_t len;
	char *msg;

	for (;;) {
		len = read(fd, rec, size - 1);
		if (len < 0 && errno == EPIPE)
			continue;
		if (len <= 0)
			return false;
		rec[len] = 0;
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		msg[strcspn(msg, "\n")] = 0;
		memmove(rec, msg, strlen(msg) + 1);
		return true;
	}
}

/*
 * The VM's process has exited while attachment @id (of a file it shared)
 * was attached: KVM reported the whole table, (0, -1), once.  Detaches.
 */
static inline void kti_expect_teardown(int dev, __u32 id)
{
	struct kti_stats s = kti_stats(dev, id);

	TEST_ASSERT_EQ(s.whole, 1);
	TEST_ASSERT_EQ(s.last_start, 0);
	TEST_ASSERT_EQ(s.last_size, ~0ULL);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH: %s", strerror(errno));
}

/*
 * Checks the ucall @vcpu just exited with: GUEST_SYNC(@stage), or
 * GUEST_DONE if @stage is negative.  A guest assertion fails the test.
 */
static inline void expect_ucall(struct kvm_vcpu *vcpu, int64_t stage)
{
	struct ucall uc;

	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, &uc)) {
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	case UCALL_SYNC:
		TEST_ASSERT(stage >= 0 && uc.args[1] == (uint64_t)stage,
			    "guest at GUEST_SYNC(%lu), expected stage %ld",
			    uc.args[1], stage);
		break;
	case UCALL_DONE:
		TEST_ASSERT(stage < 0, "guest done, expected stage %ld", stage);
		break;
	default:
		TEST_FAIL("unexpected ucall %lu", uc.cmd);
	}
}

/*
 * Serves a KVM_HC_MAP_GPA_RANGE exit (seed 004's flow): converts the range
 * to private or shared as the guest asked, and lets the hypercall succeed.
 */
static inline void handle_map_gpa_range(struct kvm_vm *vm, struct kvm_run *run)
{
	uint64_t gpa = run->hypercall.args[0];
	uint64_t size = run->hypercall.args[1] * 4096;

	if (run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED)
		vm_mem_set_private(vm, gpa, size);
	else
		vm_mem_set_shared(vm, gpa, size);
	run->hypercall.ret = 0;
}

/* Runs @vcpu to GUEST_SYNC(@stage), or to GUEST_DONE if @stage < 0. */
static inline void vcpu_run_expect(struct kvm_vcpu *vcpu, int64_t stage)
{
	vcpu_run(vcpu);
	expect_ucall(vcpu, stage);
}

#endif /* SELFTEST_TDP_FD_UTIL_H */
