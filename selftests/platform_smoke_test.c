// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke test of the test platform itself: the provider module is loaded,
 * KVM uses TDP (NPT on AMD, EPT on Intel) inside the test VM, and a KVM guest runs to
 * known exits with its memory shared correctly with the host.
 *
 * If this fails, nothing else in the suite can be trusted.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define NR_WORDS	512
#define PATTERN		0x6b766d7464706664ull

static uint64_t guest_buf[NR_WORDS] __aligned(4096);

static void guest_code(void)
{
	int i;

	for (i = 0; i < NR_WORDS; i++)
		guest_buf[i] = PATTERN ^ i;
	GUEST_SYNC(1);
	/* The host has complemented every word in the meantime. */
	for (i = 0; i < NR_WORDS; i++)
		GUEST_ASSERT_EQ(guest_buf[i], ~(PATTERN ^ i));
	GUEST_DONE();
}

static void test_guest_runs(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t *host;
	int i;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	host = addr_gva2hva(vm, (vm_vaddr_t)guest_buf);

	vcpu_run_expect(vcpu, 1);
	for (i = 0; i < NR_WORDS; i++) {
		TEST_ASSERT_EQ(host[i], PATTERN ^ i);
		host[i] = ~host[i];
	}
	vcpu_run_expect(vcpu, -1);
	kvm_vm_free(vm);
}

int main(void)
{
	ksft_print_header();
	ksft_set_plan(3);

	ksft_test_result(access("/sys/module/kvm_tdp_fd", F_OK) == 0,
			 "kvm_tdp_fd module is loaded\n");
	/* AMD: NPT under QEMU (make check); Intel: EPT in Bochs (check-ept). */
	if (host_cpu_is_amd)
		ksft_test_result(param_is_yes("/sys/module/kvm_amd/parameters/npt"),
				 "kvm_amd uses nested paging (TDP)\n");
	else
		ksft_test_result(host_cpu_is_intel &&
				 param_is_yes("/sys/module/kvm_intel/parameters/ept"),
				 "kvm_intel uses extended page tables (TDP)\n");

	/* TEST_ASSERT failures abort with a message and a non-zero exit. */
	test_guest_runs();
	ksft_test_result_pass("guest writes seen by host, host writes seen by guest\n");

	ksft_finished();
}
