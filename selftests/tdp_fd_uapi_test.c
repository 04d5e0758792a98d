// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CREATE_TDP_FD: the capability and every argument check, each with its
 * errno, on a default VM and on a KVM_X86_SW_PROTECTED_VM.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"

static int create_tdp_fd(struct kvm_vm *vm, __u32 as_id, __u32 mode, __u32 pad)
{
	struct kvm_create_tdp_fd args = {
		.as_id = as_id, .mode = mode, .fd = 0xdead, .pad = pad,
	};

	return ioctl(vm->fd, KVM_CREATE_TDP_FD, &args);
}

static void expect_errno(struct kvm_vm *vm, __u32 as_id, __u32 mode,
			 __u32 pad, int want, const char *what)
{
	int r = create_tdp_fd(vm, as_id, mode, pad);

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

int main(void)
{
	const struct vm_shape sw_protected = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	ksft_print_header();
	ksft_set_plan(4);

	vm = vm_create_with_one_vcpu(&vcpu, NULL);
	ksft_test_result(vm_check_cap(vm, KVM_CAP_TDP_FD) == 1,
			 "KVM_CAP_TDP_FD reported with the TDP MMU\n");

	test_bad_args(vm);
	ksft_test_result_pass("default VM: bad as_id, mode, pad -> EINVAL\n");

	/*
	 * No provider is registered yet (the module does not register), and
	 * the provider cannot be autoloaded from the guest's module tree.
	 */
	expect_errno(vm, 0, KVM_TDP_FD_MODE_SHARED, 0, EOPNOTSUPP,
		     "no provider");
	ksft_test_result_pass("no provider -> EOPNOTSUPP\n");
	kvm_vm_free(vm);

	vm = vm_create_shape_with_one_vcpu(sw_protected, &vcpu, NULL);
	test_bad_args(vm);
	ksft_test_result_pass("SW-protected VM: bad as_id, mode, pad -> EINVAL\n");
	kvm_vm_free(vm);

	ksft_finished();
}
