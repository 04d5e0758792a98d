// SPDX-License-Identifier: GPL-2.0
/*
 * A real (emulated) IOMMU walks KVM's NPT: QEMU's intel-iommu with
 * first-stage translation in the x86-64 format (x-flts=on) translates the DMA
 * of QEMU's edu device, driven from here through VFIO's device cdev and
 * iommufd, with a HWPT allocated from a KVM TDP FD (IOMMU_HWPT_DATA_KVM_TDP,
 * patches/iommufd/).  IOVA = GPA of the VM; the device's DMA is translated by
 * the very table the vCPU uses.
 *
 *  1. the platform: edu behind a vIOMMU with first-stage translation,
 *     bound to vfio-pci and iommufd; a 4-level NPT;
 *  2. the device reads what the L2 guest wrote and writes it where the
 *     guest reads it back: no page pinned, no IOMMU page-table page, no
 *     page-table page added to KVM's;
 *  3. madvise(MADV_DONTNEED) of a page the device read: KVM's report
 *     flushes the IOMMU's IOTLB, the next DMA faults at the IOMMU (the old
 *     page is kept alive by a child, so a stale IOTLB entry would read its
 *     bytes); once the guest touches the page again, the DMA reads the new
 *     bytes;
 *  4. a KVM_X86_SW_PROTECTED_VM's shared view: a shared GPA (faulted in by
 *     a second importer) is read, a private GPA faults at the IOMMU;
 *  5. every bad input of IOMMU_HWPT_ALLOC with a TDP FD;
 *  6. lifetimes: VM fd and TDP FD closed while attached change nothing;
 *     destroying an attached HWPT is refused; destroying it after detach
 *     ends the export.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/iommufd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define EDU_VENDOR	0x1234
#define EDU_DEVICE	0x11e8
#define EDU_DMA_SRC	0x80
#define EDU_DMA_DST	0x88
#define EDU_DMA_CNT	0x90
#define EDU_DMA_CMD	0x98
#define EDU_DMA_RUN	0x1
#define EDU_DMA_TO_RAM	0x2
#define EDU_BUF		0x40000		/* the device's buffer, 4 KiB */

#define GPA		0x40000000ULL
#define SLOT		1
#define PAGES		16
#define PAGE_A		(GPA)			/* the guest writes, device reads */
#define PAGE_B		(GPA + 4096)		/* the device writes, guest reads */
#define PAGE_C		(GPA + 2 * 4096)	/* a second pattern */

struct edu {
	char bdf[256];
	int iommufd;
	int dev;
	__u32 dev_id;
	__u64 bar0;	/* offsets of the regions in the device fd */
	__u64 cfg;
};

static struct edu edu;

static uint64_t pattern(uint64_t gpa, int i, uint64_t gen)
{
	return (gpa >> 12) * 0x0101010101010101ULL + i * 0x10001 + (gen << 56);
}

/*
 * Set by the host before each run to GUEST_SYNC(1): first check that PAGE_B
 * holds generation @check_gen of PAGE_A (what the device copied), then write
 * generation @write_gen of PAGE_A and PAGE_C and zero PAGE_B (0: neither).
 */
static uint64_t check_gen, write_gen;

static void guest_code(void)
{
	int i;

	for (;;) {
		for (i = 0; check_gen && i < 512; i++)
			GUEST_ASSERT_EQ(((volatile uint64_t *)PAGE_B)[i],
					pattern(PAGE_A, i, check_gen));
		for (i = 0; write_gen && i < 512; i++) {
			((volatile uint64_t *)PAGE_A)[i] = pattern(PAGE_A, i, write_gen);
			((volatile uint64_t *)PAGE_C)[i] = pattern(PAGE_C, i, write_gen);
			((volatile uint64_t *)PAGE_B)[i] = 0;
		}
		GUEST_SYNC(1);
	}
}

static void guest_run(struct kvm_vm *vm, struct kvm_vcpu *vcpu, uint64_t check,
		      uint64_t write)
{
	check_gen = check;
	write_gen = write;
	sync_global_to_guest(vm, check_gen);
	sync_global_to_guest(vm, write_gen);
	vcpu_run_expect(vcpu, 1);
}

static void sysfs_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, s, strlen(s)) == (ssize_t)strlen(s),
		    "write '%s' to %s: %s", s, path, strerror(errno));
	close(fd);
}

static unsigned int sysfs_hex(const char *dir, const char *name)
{
	char path[512], buf[32] = "";
	unsigned int v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f))
		sscanf(buf, "%x", &v);
	if (f)
		fclose(f);
	return v;
}

/* Finds the edu device, binds it to vfio-pci, opens its VFIO cdev. */
static void edu_open(void)
{
	char path[600], dir[300];
	struct dirent *d;
	DIR *dd;

	dd = opendir("/sys/bus/pci/devices");
	TEST_ASSERT(dd, "/sys/bus/pci/devices");
	while ((d = readdir(dd))) {
		snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", d->d_name);
		if (sysfs_hex(dir, "vendor") == EDU_VENDOR &&
		    sysfs_hex(dir, "device") == EDU_DEVICE)
			snprintf(edu.bdf, sizeof(edu.bdf), "%s", d->d_name);
	}
	closedir(dd);
	TEST_ASSERT(edu.bdf[0],
		    "no edu device (QEMU -device edu): the test platform is not the one scripts/vm.sh starts");

	snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", edu.bdf);
	snprintf(path, sizeof(path), "%s/iommu_group", dir);
	TEST_ASSERT(!access(path, F_OK), "%s is behind no IOMMU", edu.bdf);
	snprintf(path, sizeof(path), "%s/driver", dir);
	if (access(path, F_OK)) {
		snprintf(path, sizeof(path), "%s/driver_override", dir);
		sysfs_write(path, "vfio-pci");
		sysfs_write("/sys/bus/pci/drivers_probe", edu.bdf);
	}
	snprintf(path, sizeof(path), "%s/vfio-dev", dir);
	dd = opendir(path);
	TEST_ASSERT(dd, "%s: not bound to vfio-pci", edu.bdf);
	while ((d = readdir(dd)))
		if (!strncmp(d->d_name, "vfio", 4))
			snprintf(path, sizeof(path), "/dev/vfio/devices/%s", d->d_name);
	closedir(dd);
	edu.dev = open(path, O_RDWR);
	TEST_ASSERT(edu.dev >= 0, "open %s: %s", path, strerror(errno));
}

static __u64 region_offset(__u32 index)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	TEST_ASSERT(!ioctl(edu.dev, VFIO_DEVICE_GET_REGION_INFO, &info),
		    "VFIO_DEVICE_GET_REGION_INFO %u: %s", index, strerror(errno));
	return info.offset;
}

static __u64 edu_read(__u64 reg)
{
	__u64 v = 0;

	TEST_ASSERT(pread(edu.dev, &v, 8, edu.bar0 + reg) == 8,
		    "edu register %#llx: %s", reg, strerror(errno));
	return v;
}

static void edu_write(__u64 reg, __u64 v)
{
	TEST_ASSERT(pwrite(edu.dev, &v, 8, edu.bar0 + reg) == 8,
		    "edu register %#llx: %s", reg, strerror(errno));
}

static __u32 edu_reg_ident(void)
{
	__u32 v = 0;

	TEST_ASSERT(pread(edu.dev, &v, 4, edu.bar0) == 4, "edu ident");
	return v;
}

static void edu_bind(void)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	__u16 cmd;

	edu.iommufd = open("/dev/iommu", O_RDWR);
	TEST_ASSERT(edu.iommufd >= 0, "/dev/iommu: %s", strerror(errno));
	bind.iommufd = edu.iommufd;
	TEST_ASSERT(!ioctl(edu.dev, VFIO_DEVICE_BIND_IOMMUFD, &bind),
		    "VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno));
	edu.dev_id = bind.out_devid;
	edu.bar0 = region_offset(VFIO_PCI_BAR0_REGION_INDEX);
	edu.cfg = region_offset(VFIO_PCI_CONFIG_REGION_INDEX);

	/* Bus mastering: the device may DMA. */
	TEST_ASSERT(pread(edu.dev, &cmd, 2, edu.cfg + PCI_COMMAND) == 2, "config read");
	cmd |= PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY;
	TEST_ASSERT(pwrite(edu.dev, &cmd, 2, edu.cfg + PCI_COMMAND) == 2, "config write");
	TEST_ASSERT_EQ(edu_reg_ident(), 0x010000ed);
}

/* One DMA of the device: 4 KiB between its buffer and @iova. */
static void edu_dma(__u64 iova, bool to_ram)
{
	int i;

	edu_write(EDU_DMA_SRC, to_ram ? EDU_BUF : iova);
	edu_write(EDU_DMA_DST, to_ram ? iova : EDU_BUF);
	edu_write(EDU_DMA_CNT, 4096);
	edu_write(EDU_DMA_CMD, EDU_DMA_RUN | (to_ram ? EDU_DMA_TO_RAM : 0));
	/* The device runs the transfer 100 ms (virtual) after the command. */
	for (i = 0; i < 2000 && (edu_read(EDU_DMA_CMD) & EDU_DMA_RUN); i++)
		usleep(10000);
	TEST_ASSERT(!(edu_read(EDU_DMA_CMD) & EDU_DMA_RUN), "edu DMA never ended");
}

static void attach(__u32 pt_id)
{
	struct vfio_device_attach_iommufd_pt at = {
		.argsz = sizeof(at), .pt_id = pt_id,
	};

	TEST_ASSERT(!ioctl(edu.dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at),
		    "VFIO_DEVICE_ATTACH_IOMMUFD_PT %u: %s", pt_id, strerror(errno));
}

static void detach(void)
{
	struct vfio_device_detach_iommufd_pt de = { .argsz = sizeof(de) };

	TEST_ASSERT(!ioctl(edu.dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &de),
		    "VFIO_DEVICE_DETACH_IOMMUFD_PT: %s", strerror(errno));
}

static int destroy(__u32 id)
{
	struct iommu_destroy d = { .size = sizeof(d), .id = id };

	return ioctl(edu.iommufd, IOMMU_DESTROY, &d) ? -errno : 0;
}

/* IOMMU_HWPT_ALLOC from a TDP FD; the HWPT id, or -errno. */
static int hwpt_alloc_raw(__u32 fd, __u32 flags, __u32 pt_id, __u32 reserved,
			  __u32 len)
{
	struct iommu_hwpt_kvm_tdp data = { .fd = fd, .__reserved = reserved };
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = edu.dev_id,
		.pt_id = pt_id,
		.data_type = IOMMU_HWPT_DATA_KVM_TDP,
		.data_len = len,
		.data_uptr = (__u64)(unsigned long)&data,
	};

	if (ioctl(edu.iommufd, IOMMU_HWPT_ALLOC, &cmd))
		return -errno;
	return cmd.out_hwpt_id;
}

static __u32 hwpt_alloc(int tdp)
{
	int id = hwpt_alloc_raw(tdp, 0, 0, 0, sizeof(struct iommu_hwpt_kvm_tdp));

	TEST_ASSERT(id > 0, "IOMMU_HWPT_ALLOC(KVM_TDP): %s", strerror(-id));
	return id;
}

/* The kernel log from now on: a DMAR fault for @iova must show up there. */
static int kmsg_open(void)
{
	int fd = kmsg_open_at_end();

	TEST_ASSERT(fd >= 0, "/dev/kmsg: %s", strerror(errno));
	return fd;
}

static bool kmsg_has_fault(int fd, __u64 iova)
{
	char rec[1024], want[64];
	bool found = false;

	snprintf(want, sizeof(want), "fault addr 0x%llx", iova);
	while (kmsg_next(fd, rec, sizeof(rec)))
		if (strstr(rec, "DMAR") && strstr(rec, want))
			found = true;
	close(fd);
	return found;
}

static void expect_page(const void *hva, uint64_t gpa, uint64_t gen, const char *what)
{
	int i;

	for (i = 0; i < 512; i++)
		TEST_ASSERT(((const uint64_t *)hva)[i] == pattern(gpa, i, gen),
			    "%s: word %d is %#lx, expected %#lx", what, i,
			    ((const uint64_t *)hva)[i], pattern(gpa, i, gen));
}

static bool page_is(const void *hva, uint64_t gpa, uint64_t gen)
{
	int i;

	for (i = 0; i < 512; i++)
		if (((const uint64_t *)hva)[i] != pattern(gpa, i, gen))
			return false;
	return true;
}

/* The levels of the table behind TDP FD @tdp, as an importer reads them. */
static __u32 tdp_levels(int tdp)
{
	int dev = kti_open("/dev/kvm_tdp_iommu");
	struct kti_info info = { .id = kti_attach(dev, tdp, 0) };

	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO: %s", strerror(errno));
	close(dev);
	return info.levels;
}

/*
 * 1. The platform: the device's IOMMU has scalable mode and first-stage
 * translation (ecap SMTS, FLTS), and KVM's NPT has the 4 levels it walks.
 * No IOAS here: 6.12's VT-d driver gives IOAS (user paging) domains a
 * second-stage table, which this vIOMMU (x-flts=on) does not implement.
 */
static void test_platform(void)
{
	char path[600], buf[64] = "";
	unsigned long long ecap = 0;
	struct kvm_vm *vm;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu/intel-iommu/ecap",
		 edu.bdf);
	f = fopen(path, "r");
	TEST_ASSERT(f && fgets(buf, sizeof(buf), f), "%s", path);
	fclose(f);
	n = sscanf(buf, "%llx", &ecap);
	TEST_ASSERT(n == 1 && (ecap & (1ULL << 43)) && (ecap & (1ULL << 47)),
		    "ecap %s: no scalable mode (bit 43) or first-stage translation (bit 47)",
		    buf);
	vm = vm_create_barebones();
	n = tdp_fd_create(vm);
	TEST_ASSERT_EQ(tdp_levels(n), 4);
	close(n);
	kvm_vm_free(vm);
	ksft_test_result_pass("edu %s behind an IOMMU with first-stage translation (ecap %#llx), through VFIO cdev and iommufd; KVM's NPT has 4 levels\n",
			      edu.bdf, ecap);
}

int main(void)
{
	const struct vm_shape sw_shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	long pins0, iommu0, sec0, dirs0;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int tdp, kmsg, kti, r, i, pfd[2];
	struct iovec iov;
	__u32 hwpt, kti_id;
	uint8_t *a, *b;

	ksft_print_header();
	ksft_set_plan(6);

	edu_open();
	edu_bind();
	test_platform();

	/* 2. DMA through KVM's NPT. */
	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, GPA), PAGES * 4096, MADV_NOHUGEPAGE),
		    "madvise(NOHUGEPAGE)");
	virt_map(vm, GPA, GPA, PAGES);
	a = addr_gpa2hva(vm, PAGE_A);
	b = addr_gpa2hva(vm, PAGE_B);
	guest_run(vm, vcpu, 0, 1);

	dirs0 = tdp_fd_debugfs_dirs(NULL, 0);
	pins0 = vmstat("nr_foll_pin_acquired");
	iommu0 = vmstat("nr_iommu_pages");
	sec0 = sec_page_tables_kb();
	tdp = tdp_fd_create(vm);
	hwpt = hwpt_alloc(tdp);
	attach(hwpt);
	edu_dma(PAGE_A, false);
	edu_dma(PAGE_B, true);
	expect_page(b, PAGE_A, 1, "PAGE_B after the device's copy, read by the host");
	guest_run(vm, vcpu, 1, 0);
	TEST_ASSERT(vmstat("nr_foll_pin_acquired") == pins0,
		    "DMA through the KVM HWPT pinned %ld pages",
		    vmstat("nr_foll_pin_acquired") - pins0);
	TEST_ASSERT(vmstat("nr_iommu_pages") == iommu0,
		    "the KVM HWPT added %ld IOMMU page-table pages",
		    vmstat("nr_iommu_pages") - iommu0);
	TEST_ASSERT(sec_page_tables_kb() == sec0,
		    "KVM's page tables grew %ld kB", sec_page_tables_kb() - sec0);
	ksft_test_result_pass("the device read what the guest wrote and wrote what the guest read back, through KVM's NPT: 0 pages pinned, 0 IOMMU page-table pages, 0 kB page tables added\n");

	/*
	 * 3. Invalidation reaches the IOMMU's IOTLB.  A pipe keeps PAGE_A's
	 * old page alive (vmsplice), so a stale IOTLB entry would read its
	 * bytes; what a faulting read leaves in the device's buffer is up to
	 * the device (QEMU's DMA reads zeros), but never PAGE_A's old or new
	 * bytes.
	 */
	guest_run(vm, vcpu, 0, 2);
	edu_dma(PAGE_A, false);			/* the IOTLB caches PAGE_A */
	TEST_ASSERT(!pipe(pfd), "pipe");
	iov.iov_base = a;
	iov.iov_len = 4096;
	TEST_ASSERT(vmsplice(pfd[1], &iov, 1, 0) == 4096, "vmsplice: %s", strerror(errno));
	TEST_ASSERT(!madvise(a, 4096, MADV_DONTNEED), "madvise(DONTNEED)");
	memset(a, 0x5a, 4096);			/* a new page, not in the NPT */
	edu_dma(PAGE_C, false);
	kmsg = kmsg_open();
	edu_dma(PAGE_A, false);			/* must fault */
	edu_dma(PAGE_B, true);
	TEST_ASSERT(!page_is(b, PAGE_A, 2),
		    "after the zap the device read PAGE_A's old page: the IOMMU's IOTLB was not flushed");
	for (i = 0; i < 4096; i++)
		TEST_ASSERT(b[i] != 0x5a,
			    "the device read the new page before any vCPU mapped it");
	TEST_ASSERT(kmsg_has_fault(kmsg, PAGE_A), "no DMAR fault at %#llx in the kernel log",
		    PAGE_A);
	close(pfd[0]);
	close(pfd[1]);
	guest_run(vm, vcpu, 0, 3);		/* the guest maps the new page */
	edu_dma(PAGE_A, false);
	edu_dma(PAGE_B, true);
	expect_page(b, PAGE_A, 3, "PAGE_B after the guest re-mapped PAGE_A");
	guest_run(vm, vcpu, 3, 0);
	ksft_test_result_pass("madvise(DONTNEED) flushed the IOMMU's IOTLB: the next DMA faulted at the IOMMU (not the old page's bytes), and read the new page once the guest mapped it\n");

	/* 6. Lifetimes (reported last). */
	TEST_ASSERT_EQ(destroy(hwpt), -EBUSY);
	close(tdp);
	edu_dma(PAGE_C, false);
	edu_dma(PAGE_B, true);
	expect_page(b, PAGE_C, 3, "DMA after the TDP FD was closed");
	/* The VM fd closed and its memory unmapped: KVM zaps, DMA faults. */
	kvm_vm_free(vm);
	kmsg = kmsg_open();
	edu_dma(PAGE_C, false);
	TEST_ASSERT(kmsg_has_fault(kmsg, PAGE_C),
		    "no DMAR fault at %#llx after the VM's memory was unmapped", PAGE_C);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), dirs0 + 1);
	detach();
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), dirs0 + 1);
	TEST_ASSERT_EQ(destroy(hwpt), 0);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), dirs0);
	TEST_ASSERT_EQ(destroy(hwpt), -ENOENT);

	/* 4. The shared view of a SW-protected VM. */
	vm = vm_create_shape_with_one_vcpu(sw_shape, &vcpu, guest_code);
	vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, GPA, SLOT, PAGES, KVM_MEM_GUEST_MEMFD, -1, 0);
	virt_map(vm, GPA, GPA, PAGES);
	guest_run(vm, vcpu, 0, 1);
	vm_mem_set_private(vm, PAGE_C, 4096);
	tdp = tdp_fd_create(vm);
	hwpt = hwpt_alloc(tdp);
	/* No vCPU uses the shared view: a second importer faults GPAs in. */
	kti = kti_open("/dev/kvm_tdp_iommu");
	kti_id = kti_attach(kti, tdp, 0);
	TEST_ASSERT_EQ(kti_fault(kti, kti_id, PAGE_A, KTI_ACCESS_READ), 0);
	TEST_ASSERT_EQ(kti_fault(kti, kti_id, PAGE_B, KTI_ACCESS_WRITE), 0);
	TEST_ASSERT_EQ(kti_fault(kti, kti_id, PAGE_C, KTI_ACCESS_READ), -EACCES);
	attach(hwpt);
	edu_dma(PAGE_A, false);
	edu_dma(PAGE_B, true);
	b = addr_gpa2hva(vm, PAGE_B);
	expect_page(b, PAGE_A, 1, "PAGE_B of the SW-protected VM");
	kmsg = kmsg_open();
	edu_dma(PAGE_C, false);			/* private: must fault */
	edu_dma(PAGE_B, true);
	/* Not the bytes the guest wrote there while it was shared. */
	TEST_ASSERT(!page_is(b, PAGE_C, 1),
		    "a DMA from private GPA %#llx read the page it had while shared", PAGE_C);
	TEST_ASSERT(kmsg_has_fault(kmsg, PAGE_C), "no DMAR fault at private GPA %#llx",
		    PAGE_C);
	/* The guest reads what the device copies there again. */
	edu_dma(PAGE_A, false);
	edu_dma(PAGE_B, true);
	guest_run(vm, vcpu, 1, 0);
	detach();
	TEST_ASSERT(!ioctl(kti, KTI_DETACH, &kti_id), "KTI_DETACH");
	close(kti);
	TEST_ASSERT_EQ(destroy(hwpt), 0);
	ksft_test_result_pass("SW-protected VM: a shared GPA is read through the shared view, a private GPA faults at the IOMMU\n");

	/* 5. Bad inputs. */
	r = hwpt_alloc_raw(vm->fd, 0, 0, 0, sizeof(struct iommu_hwpt_kvm_tdp));
	TEST_ASSERT_EQ(r, -EINVAL);		/* a VM fd, not a TDP FD */
	r = hwpt_alloc_raw(1000, 0, 0, 0, sizeof(struct iommu_hwpt_kvm_tdp));
	TEST_ASSERT_EQ(r, -EBADF);		/* no such fd */
	r = hwpt_alloc_raw(tdp, 0, 1, 0, sizeof(struct iommu_hwpt_kvm_tdp));
	TEST_ASSERT_EQ(r, -EINVAL);		/* a pt_id */
	r = hwpt_alloc_raw(tdp, IOMMU_HWPT_ALLOC_NEST_PARENT, 0, 0,
			   sizeof(struct iommu_hwpt_kvm_tdp));
	TEST_ASSERT_EQ(r, -EOPNOTSUPP);		/* flags */
	r = hwpt_alloc_raw(tdp, 0, 0, 1, sizeof(struct iommu_hwpt_kvm_tdp));
	TEST_ASSERT_EQ(r, -EOPNOTSUPP);		/* reserved */
	r = hwpt_alloc_raw(tdp, 0, 0, 0, 4);
	TEST_ASSERT_EQ(r, -EINVAL);		/* short data */
	r = hwpt_alloc_raw(tdp, 0, 0, 0, 0);
	TEST_ASSERT_EQ(r, -EINVAL);		/* no data */
	close(tdp);
	r = hwpt_alloc_raw(tdp, 0, 0, 0, sizeof(struct iommu_hwpt_kvm_tdp));
	TEST_ASSERT_EQ(r, -EBADF);		/* closed */
	kvm_vm_free(vm);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), dirs0);
	ksft_test_result_pass("bad inputs: a VM fd EINVAL, a bad or closed fd EBADF, pt_id EINVAL, flags and reserved EOPNOTSUPP, short or no data EINVAL\n");

	ksft_test_result_pass("lifetimes: destroy while attached EBUSY; TDP FD closed while attached, DMA unchanged; VM freed while attached, DMA faults; destroy after detach ends the export\n");
	close(edu.dev);
	close(edu.iommufd);
	ksft_finished();
}
