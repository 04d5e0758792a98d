// SPDX-License-Identifier: GPL-2.0
/*
 * The demo behind `make run`: a short, readable report of what the stack
 * does inside the test VM.  It grows with the project; today it shows the
 * provider module loaded, a KVM guest running on nested paging, and the
 * guest's TDP exported as a file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

static char guest_msg[64] __aligned(4096);

static void guest_code(void)
{
	static const char msg[] = "hello from a KVM guest, written at GPA ";
	unsigned int i;

	for (i = 0; i < sizeof(msg) - 1; i++)
		guest_msg[i] = msg[i];
	GUEST_SYNC(0);
	GUEST_DONE();
}

/* KVM_CREATE_TDP_FD, and what the file is. */
static void export_tdp(struct kvm_vm *vm)
{
	struct kvm_create_tdp_fd args = { .mode = KVM_TDP_FD_MODE_SHARED };
	char path[64], target[PATH_MAX] = "?";
	int fd = ioctl(vm->fd, KVM_CREATE_TDP_FD, &args);

	TEST_ASSERT(fd >= 0, "KVM_CREATE_TDP_FD: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (readlink(path, target, sizeof(target) - 1) < 0)
		strcpy(target, "?");
	printf("TDP exported:        fd %d (%s)\n", fd, target);
	TEST_ASSERT(ioctl(vm->fd, KVM_CREATE_TDP_FD, &args) < 0 &&
		    errno == EEXIST, "second KVM_CREATE_TDP_FD");
	printf("second export:       refused (EEXIST)\n");
	close(fd);
}

static const char *yes(bool b)
{
	return b ? "yes" : "NO";
}

int main(void)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct utsname u;
	struct ucall uc;
	vm_paddr_t gpa;
	char npt = '?';
	FILE *f;

	uname(&u);
	f = fopen("/sys/module/kvm_amd/parameters/npt", "r");
	if (f) {
		if (fread(&npt, 1, 1, f) != 1)
			npt = '?';
		fclose(f);
	}

	printf("== kvm-tdp-fd demo ==\n");
	printf("kernel:              %s %s\n", u.release, u.version);
	printf("kvm_tdp_fd loaded:   %s\n",
	       yes(access("/sys/module/kvm_tdp_fd", F_OK) == 0));
	printf("kvm_amd nested TDP:  %s\n", yes(npt == 'Y' || npt == '1'));

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	gpa = addr_gva2gpa(vm, (vm_vaddr_t)guest_msg);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_SYNC);
	printf("guest says:          \"%s0x%lx\"\n",
	       (char *)addr_gpa2hva(vm, gpa), (unsigned long)gpa);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);
	printf("guest finished:      yes\n");
	export_tdp(vm);
	kvm_vm_free(vm);
	return 0;
}
