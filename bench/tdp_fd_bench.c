// SPDX-License-Identifier: GPL-2.0
/*
 * make bench, the in-VM part: the cost of sharing the TDP with importers,
 * measured side by side in one run.  Absolute times under QEMU TCG mean
 * little; every figure that matters is a ratio of two measurements taken
 * here, interleaved so that drift hits both sides alike, or a count.
 *
 *   inval   host zap (madvise(MADV_DONTNEED) of N 4K pages, the mmu
 *           notifier path) with no TDP FD, and with a TDP FD and 0, 1, 4,
 *           16 and 64 importers (the C sample, one attachment each)
 *   fault   importer fault per page against KVM_PRE_FAULT_MEMORY per page
 *           (the vCPU's fault path), on identical fresh VMs, 4K and 2M
 *   ptmem   page-table memory of a fully mapped guest: KVM's own table, what
 *           exporting and attaching adds (SecPageTables), and what a shadow
 *           domain (pinned copy, as VFIO type1) allocates
 *   dma     importer DMA reads (8 bytes): IOTLB warm, IOTLB cold (table
 *           walk), the same on a shadow domain, and first touch (I/O page
 *           fault)
 *
 * Every timed figure is repeated until it is known: one warm-up repetition
 * is thrown away, then repetitions go on (interleaved with the figure's
 * other cases) until the 95% confidence interval of the median is within
 * +-0.5% of it, or a cap is reached.  Each figure is printed as its median
 * (item), min (item-min), max (item-max), the half-width of that interval
 * (item-ci, in % of the median) and the number of repetitions (item-n).
 * Under make bench the VM's clock counts instructions (QEMU icount), so a
 * figure varies only with the instructions run, e.g. an interrupt landing
 * inside the measured window.
 *
 * Output: CSV rows "item,case,x,value,unit" on stdout after a header, and
 * progress on stderr.
 *
 * Usage: tdp_fd_bench [quick|full|base|trace CASE READY DONE]
 *   quick  fewer sizes and a lower cap: a smoke run of the pipeline
 *   base   only what runs on unpatched KVM too (no TDP FD, no importer):
 *          zaps of 1 and 512 pages and the vCPU fault path, for
 *          bench/kvm_perf.sh's comparison of patched and unpatched KVM
 *   trace  repeat one operation for bench/trace.py (see bench_trace())
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define GPA		0x100000000ULL	/* 4G: 1G-aligned, above slot 0 */
#define SLOT		1
#define MAX_IMP		64

static bool quick, base, trace;
static int cdev, idev;

static void guest_code(void)
{
	GUEST_DONE();
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void row(const char *item, const char *c, uint64_t x, double value,
		const char *unit)
{
	printf("%s,%s,%llu,%.6g,%s\n", item, c, (unsigned long long)x, value, unit);
	fflush(stdout);
}

/*
 * The repetitions of one timed figure, in ns.  A figure is "known" once its
 * median's 95% confidence interval (order statistics n/2 -+ 0.98 sqrt(n),
 * distribution-free) is within +-0.5% of the median, after at least
 * MIN_REPS repetitions; the caller stops at its own cap regardless.
 */
#define MIN_REPS	5
#define CI_TARGET	0.005

struct samples {
	uint64_t v[512];
	int n;
	int warm;	/* warm-up repetitions still to throw away */
};

static void sample_init(struct samples *s)
{
	s->n = 0;
	s->warm = 1;
}

static void sample_add(struct samples *s, uint64_t ns)
{
	if (s->warm) {
		s->warm--;
		return;
	}
	TEST_ASSERT(s->n < (int)ARRAY_SIZE(s->v), "too many repetitions");
	s->v[s->n++] = ns;
}

/* Sorts @s; the median, and the CI's half-width relative to it. */
static double sample_median(struct samples *s, double *ci)
{
	int n = s->n, k = 0, lo, hi;
	double med;

	qsort(s->v, n, sizeof(s->v[0]), cmp_u64);
	med = n % 2 ? s->v[n / 2] : (s->v[n / 2 - 1] + s->v[n / 2]) / 2.0;
	/* k = ceil(0.98 sqrt(n)), without libm. */
	while ((double)k * k < 0.9604 * n)
		k++;
	lo = n / 2 - k;
	hi = (n - 1) / 2 + k;
	lo = lo < 0 ? 0 : lo;
	hi = hi > n - 1 ? n - 1 : hi;
	if (ci)
		*ci = med ? (s->v[hi] - s->v[lo]) / 2.0 / med : 0;
	return med;
}

static bool sample_known(struct samples *s)
{
	double ci;

	if (s->n < MIN_REPS)
		return false;
	sample_median(s, &ci);
	return ci <= CI_TARGET;
}

/* Prints the figure's rows; @scale divides ns into @unit. */
static void sample_rows(const char *item, const char *c, uint64_t x,
			struct samples *s, double scale, const char *unit)
{
	char name[48];
	double ci, med;

	TEST_ASSERT(s->n > 0, "%s %s: no repetition", item, c);
	med = sample_median(s, &ci);
	row(item, c, x, med / scale, unit);
	snprintf(name, sizeof(name), "%s-min", item);
	row(name, c, x, s->v[0] / scale, unit);
	snprintf(name, sizeof(name), "%s-max", item);
	row(name, c, x, s->v[s->n - 1] / scale, unit);
	snprintf(name, sizeof(name), "%s-ci", item);
	row(name, c, x, ci * 100, "%");
	snprintf(name, sizeof(name), "%s-n", item);
	row(name, c, x, s->n, "reps");
}

static void progress(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

/* A VM with one vCPU and a slot of @pages at GPA, 4K- or THP-backed. */
static struct kvm_vm *bench_vm(struct kvm_vcpu **vcpu, uint64_t pages, bool thp)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest_code);

	vm_userspace_mem_region_add(vm, thp ? VM_MEM_SRC_ANONYMOUS_THP :
				    VM_MEM_SRC_ANONYMOUS, GPA, SLOT, pages, 0);
	if (!thp)
		TEST_ASSERT(!madvise(addr_gpa2hva(vm, GPA), pages * 4096,
				     MADV_NOHUGEPAGE), "madvise");
	return vm;
}

/* KVM_PRE_FAULT_MEMORY of [gpa, gpa + size): the vCPU's fault path. */
static void prefault(struct kvm_vcpu *vcpu, uint64_t gpa, uint64_t size)
{
	struct kvm_pre_fault_memory r = { .gpa = gpa, .size = size };
	int ret;

	do {
		ret = ioctl(vcpu->fd, KVM_PRE_FAULT_MEMORY, &r);
	} while (r.size && (!ret || errno == EINTR || errno == EAGAIN));
	TEST_ASSERT(!r.size, "KVM_PRE_FAULT_MEMORY: %s", strerror(errno));
}

/* An export of @vm with @n C-sample importers; -1 importers: no export. */
struct exp {
	int tdp;
	int n;
	__u32 ids[MAX_IMP];
};

static void exp_open(struct exp *e, struct kvm_vm *vm, int n)
{
	int i;

	e->n = n;
	e->tdp = n < 0 ? -1 : tdp_fd_create(vm);
	for (i = 0; i < n; i++)
		e->ids[i] = kti_attach(cdev, e->tdp, 0);
}

static void exp_close(struct exp *e)
{
	int i;

	for (i = 0; i < e->n; i++)
		TEST_ASSERT(!ioctl(cdev, KTI_DETACH, &e->ids[i]), "KTI_DETACH");
	if (e->tdp >= 0)
		close(e->tdp);
}

/*
 * 1. Invalidation: the time of madvise(MADV_DONTNEED) of @npages mapped
 * pages with no TDP FD and with one and 0 to 64 importers, the cases
 * interleaved in each round, rounds until every case is known or @cap.
 */
static void bench_inval(struct kvm_vm *vm, struct kvm_vcpu *vcpu,
			uint64_t npages, int cap)
{
	static const int counts[] = { -1, 0, 1, 4, 16, 64 };
	const int nc = base ? 1 : ARRAY_SIZE(counts);
	struct samples *t = calloc(nc, sizeof(*t));
	char *hva = addr_gpa2hva(vm, GPA);
	uint64_t len = npages * 4096, reports = 0;
	bool known = false;
	int c;

	TEST_ASSERT(t, "calloc");
	for (c = 0; c < nc; c++)
		sample_init(&t[c]);
	while (!known && t[0].n < cap) {
		known = true;
		for (c = 0; c < nc; c++) {
			struct exp e;
			uint64_t t0;

			exp_open(&e, vm, counts[c]);
			prefault(vcpu, GPA, len);
			t0 = now_ns();
			TEST_ASSERT(!madvise(hva, len, MADV_DONTNEED), "madvise");
			sample_add(&t[c], now_ns() - t0);
			if (counts[c] > 0) {
				struct kti_stats s = kti_stats(cdev, e.ids[counts[c] - 1]);

				/*
				 * Each importer heard of it: once, or once more
				 * for each time the zap yielded mmu_lock, as
				 * KVM reports before yielding.
				 */
				TEST_ASSERT(s.invalidations >= 1,
					    "importer %d not told of the zap",
					    counts[c] - 1);
				if (s.invalidations > reports)
					reports = s.invalidations;
			}
			exp_close(&e);
			known &= sample_known(&t[c]);
		}
	}
	for (c = 0; c < nc; c++) {
		char name[32];

		if (counts[c] < 0)
			snprintf(name, sizeof(name), "no-export");
		else
			snprintf(name, sizeof(name), "importers=%d", counts[c]);
		sample_rows("inval", name, npages, &t[c], 1e3, "us");
	}
	/* The most reports one zap took (the price of yielding). */
	if (!base)
		row("inval-reports", "importers", npages, reports, "reports");
	free(t);
}

/*
 * 2. Faults: per-page time of the importer's fault against the vCPU path
 * (KVM_PRE_FAULT_MEMORY), on identical fresh VMs with a TDP FD each;
 * @page is 4K or 2M, @n pages.  In base mode, the vCPU path alone, on a
 * VM without a TDP FD.
 */
static void bench_fault(uint64_t page, uint64_t n, int cap)
{
	struct samples *t = calloc(2, sizeof(*t));
	const int nm = base ? 1 : 2;
	bool known = false;

	TEST_ASSERT(t, "calloc");
	sample_init(&t[0]);
	sample_init(&t[1]);
	while (!known && t[0].n < cap) {
		int m;

		known = true;
		for (m = 0; m < nm; m++) {
			struct kvm_vcpu *vcpu;
			struct kvm_vm *vm = bench_vm(&vcpu, n * page / 4096,
						     page > 4096);
			struct exp e;
			uint64_t t0, i;

			/*
			 * Allocate the memory first: both paths then map the
			 * same present pages, and neither pays for zeroing.
			 */
			memset(addr_gpa2hva(vm, GPA), 1, n * page);
			exp_open(&e, vm, base ? -1 : m);
			t0 = now_ns();
			for (i = 0; i < n; i++) {
				if (m)
					TEST_ASSERT_EQ(kti_fault(cdev, e.ids[0],
								 GPA + i * page,
								 KTI_ACCESS_READ |
								 KTI_ACCESS_WRITE), 0);
				else
					prefault(vcpu, GPA + i * page, page);
			}
			sample_add(&t[m], (now_ns() - t0) / n);
			exp_close(&e);
			kvm_vm_free(vm);
			known &= sample_known(&t[m]);
		}
	}
	sample_rows("fault", page > 4096 ? "vcpu-2M" : "vcpu-4K", n, &t[0], 1e3, "us");
	if (!base)
		sample_rows("fault", page > 4096 ? "importer-2M" : "importer-4K", n,
			    &t[1], 1e3, "us");
	free(t);
}

/*
 * 3. Page-table memory of a guest of @mib MiB, every page mapped 4K: KVM's
 * table, what exporting and attaching the shared-mode importer adds, and
 * what a shadow domain allocates (and pins).
 */
static void bench_ptmem(uint64_t mib)
{
	uint64_t pages = mib << 8;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	long base, kvm_kb, shared_kb;
	struct kti_stats s;
	__u32 id, sid;
	int tdp;

	base = sec_page_tables_kb();
	vm = bench_vm(&vcpu, pages, false);
	prefault(vcpu, GPA, pages * 4096);
	kvm_kb = sec_page_tables_kb() - base;

	tdp = tdp_fd_create(vm);
	id = kti_attach(idev, tdp, KTI_ATTACH_NO_FAULT);
	shared_kb = sec_page_tables_kb() - base - kvm_kb;
	s = kti_stats(idev, id);
	row("ptmem", "kvm-table", mib, kvm_kb, "KiB");
	row("ptmem", "shared-added", mib, shared_kb + s.table_pages * 4, "KiB");

	sid = kti_attach(idev, -1, KTI_ATTACH_SHADOW);
	TEST_ASSERT_EQ(kti_shadow_map(idev, sid, GPA, addr_gpa2hva(vm, GPA), pages * 4096, 0), 0);
	s = kti_stats(idev, sid);
	TEST_ASSERT_EQ(s.pinned_pages, pages);
	row("ptmem", "shadow-added", mib, s.table_pages * 4, "KiB");
	row("ptmem", "shadow-pinned", mib, s.pinned_pages * 4, "KiB");
	TEST_ASSERT(!ioctl(idev, KTI_DETACH, &sid), "KTI_DETACH");
	TEST_ASSERT(!ioctl(idev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
}

/* ns per 8-byte DMA read of @n pages from @first, @rounds times over. */
static uint64_t dma_pass(__u32 id, uint64_t first, uint64_t n, int rounds)
{
	uint64_t t0 = now_ns(), i, v;
	int k;

	for (k = 0; k < rounds; k++)
		for (i = 0; i < n; i++)
			TEST_ASSERT_EQ(kti_dma(idev, KTI_DMA_READ, id, first + i * 4096, &v, 8), 0);
	return (now_ns() - t0) / (n * rounds);
}

/*
 * 4. DMA: warm (64 pages, repeatedly: IOTLB hits), cold (4096 pages in
 * turn, more than the IOTLB's 256 entries: a walk each), for the shared
 * table and a shadow domain, interleaved until known or @cap; and first
 * touch (an I/O page fault each, once: the pages are then mapped).
 */
static void bench_dma(int cap)
{
	static const char *const names[] = {
		"shared-warm", "shared-cold", "shadow-warm", "shadow-cold",
	};
	const uint64_t pages = 8192;
	struct samples *t = calloc(5, sizeof(*t));
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = bench_vm(&vcpu, pages, false);
	__u64 walk_faults;
	bool known = false;
	__u32 id, sid;
	int tdp, c;

	TEST_ASSERT(t, "calloc");
	tdp = tdp_fd_create(vm);
	id = kti_attach(idev, tdp, 0);
	sid = kti_attach(idev, -1, KTI_ATTACH_SHADOW);
	memset(addr_gpa2hva(vm, GPA), 1, 4096 * 4096);
	TEST_ASSERT_EQ(kti_shadow_map(idev, sid, GPA, addr_gpa2hva(vm, GPA), 4096 * 4096, 0), 0);
	/* After the pins: pinning may migrate pages, which zaps them. */
	prefault(vcpu, GPA, 4096 * 4096);
	walk_faults = kti_stats(idev, id).walk_faults;

	for (c = 0; c < 5; c++)
		sample_init(&t[c]);
	while (!known && t[0].n < cap) {
		known = true;
		for (c = 0; c < 4; c++) {
			bool warm = !(c & 1);

			sample_add(&t[c], dma_pass(c < 2 ? id : sid, GPA,
						   warm ? 64 : 4096, warm ? 64 : 1));
			known &= sample_known(&t[c]);
		}
	}
	for (c = 0; c < 4; c++)
		sample_rows("dma", names[c], c & 1 ? 4096 : 64, &t[c], 1, "ns");
	/* The passes above measured translation only: no fault in them. */
	TEST_ASSERT_EQ(kti_stats(idev, id).walk_faults, walk_faults);
	/* Never mapped: each read is an I/O page fault, once (no warm-up). */
	t[4].warm = 0;
	sample_add(&t[4], dma_pass(id, GPA + 4096 * 4096, 4096, 1));
	sample_rows("dma", "shared-fault", 4096, &t[4], 1, "ns");
	TEST_ASSERT_EQ(kti_stats(idev, id).walk_faults, walk_faults + 4096);

	TEST_ASSERT(!ioctl(idev, KTI_DETACH, &sid), "KTI_DETACH");
	TEST_ASSERT(!ioctl(idev, KTI_DETACH, &id), "KTI_DETACH");
	close(tdp);
	kvm_vm_free(vm);
	free(t);
}

/*
 * trace CASE READY DONE: set up, create the file READY, then repeat one
 * operation, every 10 ms, until the file DONE exists, for bench/trace.py,
 * which waits for READY and single-steps one repetition through
 * QEMU's gdbstub from the entry of the function the case names (see
 * selftests/vm-run.sh) and counts its instructions one by one.
 *   zap1, zap8          madvise(MADV_DONTNEED) of 1 or 8 mapped 4K pages,
 *                       no TDP FD (__x64_sys_madvise)
 *   zap1-e0, zap8-e0    the same with a TDP FD and no importer
 *   zap1-e1, zap8-e1    ... and one C-sample importer
 *   fault4k             KVM_PRE_FAULT_MEMORY of one 4K page
 *                       (kvm_arch_vcpu_pre_fault_memory)
 *   clear64             KVM_CLEAR_DIRTY_LOG of 64 dirty, writable 4K
 *                       pages, manual dirty-log protection (kvm_vm_ioctl)
 * Everything but the traced call happens between traced calls.
 */
static void bench_trace(const char *what, const char *ready, const char *done)
{
	uint64_t npages = strstr(what, "8") ? 8 : strstr(what, "64") ? 64 : 1;
	bool clear = !strcmp(what, "clear64");
	bool fault = !strcmp(what, "fault4k");
	int importers = strstr(what, "-e1") ? 1 : strstr(what, "-e0") ? 0 : -1;
	uint64_t len = npages * 4096, bitmap = ~0ULL;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct exp e;
	char *hva;
	int fd;

	TEST_ASSERT(clear || fault || !strncmp(what, "zap", 3),
		    "unknown trace case %s", what);
	vm = bench_vm(&vcpu, 512, false);
	hva = addr_gpa2hva(vm, GPA);
	if (clear) {
		/* As dirty_log_perf_test does. */
		vm_enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			      kvm_check_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
			      (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			       KVM_DIRTY_LOG_INITIALLY_SET));
		vm_mem_region_set_flags(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	}
	exp_open(&e, vm, importers);
	/* Set up: from here on, the traced function runs only for the case. */
	fd = open(ready, O_WRONLY | O_CREAT, 0644);
	TEST_ASSERT(fd >= 0, "creating %s", ready);
	close(fd);
	while (access(done, F_OK)) {
		if (fault) {
			TEST_ASSERT(!madvise(hva, len, MADV_DONTNEED), "madvise");
			memset(hva, 1, len);
			prefault(vcpu, GPA, len);
		} else if (clear) {
			/*
			 * A page the host has written is mapped writable by
			 * a read fault, and logged dirty; clearing the log
			 * write-protects it again.
			 */
			TEST_ASSERT(!madvise(hva, len, MADV_DONTNEED), "madvise");
			memset(hva, 1, len);
			prefault(vcpu, GPA, len);
			kvm_vm_clear_dirty_log(vm, SLOT, &bitmap, 0, 64);
		} else {
			memset(hva, 1, len);
			prefault(vcpu, GPA, len);
			TEST_ASSERT(!madvise(hva, len, MADV_DONTNEED), "madvise");
		}
		usleep(10000);
	}
	exp_close(&e);
	kvm_vm_free(vm);
}

int main(int argc, char **argv)
{
	static const uint64_t sizes[] = { 256, 512, 1024, 2048 };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int i;

	quick = argc > 1 && !strcmp(argv[1], "quick");
	base = argc > 1 && !strcmp(argv[1], "base");
	trace = argc > 1 && !strcmp(argv[1], "trace");
	TEST_ASSERT(!trace || argc == 5, "usage: tdp_fd_bench trace CASE READY DONE");
	TEST_ASSERT(argc < 2 || quick || base || trace || !strcmp(argv[1], "full"),
		    "usage: tdp_fd_bench [quick|full|base|trace CASE READY DONE]");
	TEST_ASSERT(kvm_has_cap(KVM_CAP_PRE_FAULT_MEMORY), "no KVM_PRE_FAULT_MEMORY");
	if (trace) {
		if (strstr(argv[2], "-e"))
			cdev = kti_open("/dev/kvm_tdp_importer_c");
		bench_trace(argv[2], argv[3], argv[4]);
		return 0;
	}
	if (!base) {
		TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");
		cdev = kti_open("/dev/kvm_tdp_importer_c");
		idev = kti_open("/dev/kvm_tdp_iommu");
	}

	printf("item,case,x,value,unit\n");

	progress("invalidation overhead");
	vm = bench_vm(&vcpu, base || quick ? 512 : 262144, false);
	bench_inval(vm, vcpu, 1, quick ? 9 : 301);
	bench_inval(vm, vcpu, 512, quick ? 5 : 61);
	if (!quick && !base)
		bench_inval(vm, vcpu, 262144, 5);
	kvm_vm_free(vm);

	progress("fault throughput");
	bench_fault(4096, quick ? 256 : 4096, quick ? 3 : 9);
	bench_fault(2 << 20, quick ? 8 : 64, quick ? 3 : 9);
	if (base)
		goto out;

	progress("page-table memory");
	for (i = 0; i < (int)ARRAY_SIZE(sizes) && (!quick || !i); i++)
		bench_ptmem(sizes[i]);

	progress("DMA translation");
	bench_dma(quick ? 5 : 41);

	close(cdev);
	close(idev);
out:
	progress("done");
	return 0;
}
