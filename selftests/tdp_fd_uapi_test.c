// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CREATE_TDP_FD: the capability, every argument check with its errno,
 * and the life of the file: one per VM, re-creatable once closed, holding
 * the VM and the provider module while open, on a default VM and on a
 * KVM_X86_SW_PROTECTED_VM.
 *
 * With --no-provider (run before kvm_tdp_fd is loaded): a valid request
 * fails with EOPNOTSUPP.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"

static const struct vm_shape default_shape = {
	.mode = VM_MODE_DEFAULT,
	.type = VM_TYPE_DEFAULT,
};

static const struct vm_shape sw_protected = {
	.mode = VM_MODE_DEFAULT,
	.type = KVM_X86_SW_PROTECTED_VM,
};

static int __create_tdp_fd(int vm_fd, __u32 as_id, __u32 mode, __u32 pad,
			   __u32 *out_fd)
{
	struct kvm_create_tdp_fd args = {
		.as_id = as_id, .mode = mode, .fd = 0xdead, .pad = pad,
	};
	int r = ioctl(vm_fd, KVM_CREATE_TDP_FD, &args);

	if (out_fd)
		*out_fd = args.fd;
	return r;
}

static int create_tdp_fd(struct kvm_vm *vm)
{
	__u32 reported;
	int fd = __create_tdp_fd(vm->fd, 0, KVM_TDP_FD_MODE_SHARED, 0,
				 &reported);

	TEST_ASSERT(fd >= 0, "KVM_CREATE_TDP_FD: errno %d (%s)", errno,
		    strerror(errno));
	TEST_ASSERT_EQ(reported, (__u32)fd);
	return fd;
}

static void expect_errno(struct kvm_vm *vm, __u32 as_id, __u32 mode,
			 __u32 pad, int want, const char *what)
{
	int r = __create_tdp_fd(vm->fd, as_id, mode, pad, NULL);

	TEST_ASSERT(r == -1 && errno == want,
		    "%s: expected errno %d (%s), got r=%d errno=%d (%s)",
		    what, want, strerror(want), r, errno, strerror(errno));
}

static void test_bad_args(struct kvm_vm *vm)
{
	expect_errno(vm, 0, KVM_TDP_FD_MODE_SHARED, 1, EINVAL, "pad != 0");
	expect_errno(vm, 0, 1, 0, EINVAL, "unknown mode");
	expect_errno(vm, 0, ~0u, 0, EINVAL, "unknown mode ~0");
	expect_errno(vm, 1, KVM_TDP_FD_MODE_SHARED, 0, EINVAL, "as_id 1");
	expect_errno(vm, ~0u, KVM_TDP_FD_MODE_SHARED, 0, EINVAL, "as_id ~0");
	TEST_ASSERT(ioctl(vm->fd, KVM_CREATE_TDP_FD, NULL) == -1 &&
		    errno == EFAULT, "NULL argument: errno %d", errno);
}

static bool provider_loaded(void)
{
	return access("/sys/module/kvm_tdp_fd", F_OK) == 0;
}

static void check_file_name(int fd)
{
	char path[64], target[PATH_MAX] = {};

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	TEST_ASSERT(readlink(path, target, sizeof(target) - 1) > 0,
		    "readlink %s", path);
	TEST_ASSERT(!strcmp(target, "anon_inode:kvm-tdp-fd"),
		    "fd %d is '%s'", fd, target);
	TEST_ASSERT(fcntl(fd, F_GETFD) & FD_CLOEXEC, "fd %d lacks O_CLOEXEC",
		    fd);
}

/* One live file per VM; closing it allows another. */
static void test_lifecycle(struct kvm_vm *vm)
{
	int fd = create_tdp_fd(vm);

	check_file_name(fd);
	expect_errno(vm, 0, KVM_TDP_FD_MODE_SHARED, 0, EEXIST, "second fd");
	/* The capability says what the VM supports, not what a call does now. */
	TEST_ASSERT_EQ(vm_check_cap(vm, KVM_CAP_TDP_FD), 1);
	/* Argument errors take precedence over EEXIST. */
	expect_errno(vm, 0, KVM_TDP_FD_MODE_SHARED, 1, EINVAL, "pad, live fd");

	/* The provider cannot go away under an export. */
	TEST_ASSERT(syscall(__NR_delete_module, "kvm_tdp_fd", O_NONBLOCK) == -1 &&
		    (errno == EWOULDBLOCK || errno == EBUSY),
		    "unloading kvm_tdp_fd with a live export: errno %d", errno);

	TEST_ASSERT(!close(fd), "close");
	fd = create_tdp_fd(vm);
	TEST_ASSERT(!close(fd), "close");
}

/* The file holds the VM: closing the VM fd first is fine. */
static void test_vm_closed_first(const struct vm_shape *shape)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_shape_with_one_vcpu(*shape, &vcpu, NULL);
	int fd = create_tdp_fd(vm);

	kvm_vm_free(vm);
	check_file_name(fd);
	TEST_ASSERT(!close(fd), "close after the VM fd");
}

static int no_provider(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ksft_print_header();
	ksft_set_plan(1);
	TEST_ASSERT(!provider_loaded(), "kvm_tdp_fd is loaded");
	vm = vm_create_with_one_vcpu(&vcpu, NULL);
	expect_errno(vm, 0, KVM_TDP_FD_MODE_SHARED, 0, EOPNOTSUPP,
		     "no provider");
	kvm_vm_free(vm);
	ksft_test_result_pass("no provider -> EOPNOTSUPP\n");
	ksft_finished();
}

int main(int argc, char *argv[])
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	if (argc > 1 && !strcmp(argv[1], "--no-provider"))
		return no_provider();

	ksft_print_header();
	ksft_set_plan(6);
	TEST_ASSERT(provider_loaded(), "kvm_tdp_fd is not loaded");

	vm = vm_create_with_one_vcpu(&vcpu, NULL);
	ksft_test_result(vm_check_cap(vm, KVM_CAP_TDP_FD) == 1,
			 "KVM_CAP_TDP_FD reported with the TDP MMU\n");
	test_bad_args(vm);
	ksft_test_result_pass("default VM: bad as_id, mode, pad -> EINVAL\n");
	test_lifecycle(vm);
	ksft_test_result_pass("default VM: one fd, EEXIST, re-create after close, module pinned\n");
	kvm_vm_free(vm);

	vm = vm_create_shape_with_one_vcpu(sw_protected, &vcpu, NULL);
	test_bad_args(vm);
	ksft_test_result_pass("SW-protected VM: bad as_id, mode, pad -> EINVAL\n");
	test_lifecycle(vm);
	ksft_test_result_pass("SW-protected VM: one fd, EEXIST, re-create after close\n");
	kvm_vm_free(vm);

	test_vm_closed_first(&default_shape);
	test_vm_closed_first(&sw_protected);
	ksft_test_result_pass("VM fd closed before the TDP fd\n");

	ksft_finished();
}
