// SPDX-License-Identifier: GPL-2.0
/*
 * The hardware-faithful importer (/dev/kvm_tdp_iommu attached with
 * KTI_ATTACH_HW, issue 12): besides leaf translations it caches the table
 * pointers its walks read (a paging-structure cache, PSC) and starts each
 * walk from the deepest one cached, with nothing of KVM's held between
 * walks; only invalidate() drops them.  So it reads, after the fact, every
 * page table KVM frees without reporting its range.
 *
 *  - flags and stats: KTI_ATTACH_HW is refused with a shadow domain and by
 *    the C importer (unknown flags are EINVAL there); KTI_STATS of the
 *    first layout's size is still served, and fills only that much;
 *  - collapse: a THP-backed slot the guest wrote is mapped by 2M leaves;
 *    dirty logging splits them into tables of 4K leaves, which DMA walks
 *    (the PSC caches those tables and serves walks from them); disabling
 *    logging collapses them (KVM frees the tables and maps 2M leaves
 *    again): the PSC must hold none of them any more, and after the guest
 *    writes new bytes, DMA of every page must return exactly those bytes,
 *    through 2M leaves;
 *  - mm exit: a child process owns the VM, creates the TDP FD, attaches in
 *    HW mode (on an importer file it shares with the parent), fills the
 *    caches by DMA, hands the TDP FD to the parent over a unix socket and
 *    exits: its mm goes, KVM zaps everything and reports the whole table
 *    once, (0, -1); both caches must then be empty, and DMA through the
 *    attachment must fail (EPERM: nothing is mapped, and the parent is not
 *    the VM's mm, so its I/O page fault is refused), copying nothing.
 *
 * Every outcome is exact: the bytes are those the guest wrote last, the
 * errors are the ones named.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define DATA_GPA	0x40000000ULL	/* 2M-aligned */
#define DATA_SLOT	1
#define REGIONS		2		/* 2M regions: one table each when split */
#define PAGES		(REGIONS * 512)
#define GPA(pg)		(DATA_GPA + (uint64_t)(pg) * PAGE_SIZE)
#define WORDS		(PAGE_SIZE / 8)
/* What the guest writes at words 0 and WORDS - 1 of page @pg in @stage. */
#define TAG(pg, stage)	((uint64_t)(0x6857ULL << 48 | (uint64_t)(stage) << 32 | (pg)))

/* Stages of the guest: 1, 2 and 3 write every page's tags, then sync. */
#define LAST_STAGE	3

static void guest_code(void)
{
	uint64_t stage, pg;

	for (stage = 1; stage <= LAST_STAGE; stage++) {
		for (pg = 0; pg < PAGES; pg++) {
			uint64_t *p = (uint64_t *)GPA(pg);

			WRITE_ONCE(p[0], TAG(pg, stage));
			WRITE_ONCE(p[WORDS - 1], TAG(pg, stage));
		}
		GUEST_SYNC(stage);
	}
	GUEST_DONE();
}

/* Lets RCU grace periods pass, so that tables KVM freed are freed now. */
static void grace_periods(void)
{
	/* synchronize_rcu() in the kernel; not available is fine too. */
	syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
}

/*
 * DMA-reads page @pg through attachment @id: it must succeed, equal the
 * host's view of the page byte for byte, carry @stage's tags, and have
 * been translated by a leaf of @level if it walked.
 */
static void expect_page(int dev, __u32 id, char *hva, unsigned int pg,
			uint64_t stage, uint64_t level, const char *when)
{
	uint64_t buf[WORDS];
	struct kti_stats s0 = kti_stats(dev, id), s;
	int r;

	memset(buf, 0xee, sizeof(buf));
	r = kti_dma(dev, KTI_DMA_READ, id, GPA(pg), buf, PAGE_SIZE);
	TEST_ASSERT(!r, "%s: page %u: DMA read: %s", when, pg, strerror(-r));
	TEST_ASSERT(buf[0] == TAG(pg, stage) && buf[WORDS - 1] == TAG(pg, stage),
		    "%s: page %u: DMA read %#lx ... %#lx, the guest wrote %#lx: stale data",
		    when, pg, buf[0], buf[WORDS - 1], TAG(pg, stage));
	TEST_ASSERT(!memcmp(buf, hva + (size_t)pg * PAGE_SIZE, PAGE_SIZE),
		    "%s: page %u: DMA and the host's view differ", when, pg);
	s = kti_stats(dev, id);
	if (s.iotlb_misses != s0.iotlb_misses)
		TEST_ASSERT(s.last_leaf_level == level,
			    "%s: page %u: walk found a level %llu leaf, expected %lu",
			    when, pg, s.last_leaf_level, level);
}

static void test_flags_and_stats(void)
{
	struct kvm_vm *vm = vm_create_barebones();
	struct kti_attach a = { .tdp_fd = -1 };
	int rust = kti_open("/dev/kvm_tdp_iommu");
	int c = kti_open("/dev/kvm_tdp_importer_c");
	int tdp = tdp_fd_create(vm);
	/* Room past the struct: a command that wrote too much would show. */
	union {
		struct kti_stats s;
		unsigned char bytes[sizeof(struct kti_stats) + 16];
	} u;
	struct kti_stats *s = &u.s;
	void *buf = &u;
	__u32 id;

	/* A shadow domain has no invalidations to model. */
	a.flags = KTI_ATTACH_SHADOW | KTI_ATTACH_HW;
	TEST_ASSERT(ioctl(rust, KTI_ATTACH, &a) == -1 && errno == EINVAL,
		    "KTI_ATTACH_SHADOW | KTI_ATTACH_HW: %s", strerror(errno));
	/* Unknown flags: EINVAL, from both importers. */
	a.tdp_fd = tdp;
	a.flags = KTI_ATTACH_HW << 1;
	TEST_ASSERT(ioctl(rust, KTI_ATTACH, &a) == -1 && errno == EINVAL,
		    "Rust importer, flags %#x: %s", a.flags, strerror(errno));
	a.flags = KTI_ATTACH_HW;
	TEST_ASSERT(ioctl(c, KTI_ATTACH, &a) == -1 && errno == EINVAL,
		    "C importer, KTI_ATTACH_HW: %s", strerror(errno));

	/* HW mode, faults off: a miss is EFAULT, and walked from the root. */
	id = kti_attach(rust, tdp, KTI_ATTACH_HW | KTI_ATTACH_NO_FAULT);
	TEST_ASSERT_EQ(kti_dma(rust, KTI_DMA_READ, id, 0, buf, 8), -EFAULT);
	TEST_ASSERT_EQ(kti_stats(rust, id).psc_misses, 1);

	/*
	 * KTI_STATS of the first layout's size: served, and nothing past it
	 * is written.  Sizes between, or past the struct, or not a multiple
	 * of 8: not a command.
	 */
	memset(&u, 0xa5, sizeof(u));
	s->id = id;
	TEST_ASSERT(!ioctl(rust, _IOWR(KTI_MAGIC, 4, char[KTI_STATS_SIZE_V1]), buf),
		    "KTI_STATS, first size: %s", strerror(errno));
	TEST_ASSERT_EQ(s->iotlb_misses, 1);
	TEST_ASSERT_EQ(s->psc_hits, 0xa5a5a5a5a5a5a5a5ULL);
	TEST_ASSERT(ioctl(rust, _IOWR(KTI_MAGIC, 4, char[KTI_STATS_SIZE_V1 - 8]), buf) == -1 &&
		    errno == ENOTTY, "KTI_STATS, short: %s", strerror(errno));
	TEST_ASSERT(ioctl(rust, _IOWR(KTI_MAGIC, 4, char[sizeof(*s) + 8]), buf) == -1 &&
		    errno == ENOTTY, "KTI_STATS, long: %s", strerror(errno));
	TEST_ASSERT(ioctl(rust, _IOWR(KTI_MAGIC, 4, char[KTI_STATS_SIZE_V1 + 4]), buf) == -1 &&
		    errno == ENOTTY, "KTI_STATS, odd: %s", strerror(errno));
	TEST_ASSERT(!ioctl(rust, KTI_DETACH, &id), "KTI_DETACH: %s", strerror(errno));

	/* The C importer: the first size too, and its PSC counters are 0. */
	id = kti_attach(c, tdp, 0);
	memset(&u, 0xa5, sizeof(u));
	s->id = id;
	TEST_ASSERT(!ioctl(c, _IOWR(KTI_MAGIC, 4, char[KTI_STATS_SIZE_V1]), buf),
		    "C importer, KTI_STATS, first size: %s", strerror(errno));
	TEST_ASSERT_EQ(s->psc_hits, 0xa5a5a5a5a5a5a5a5ULL);
	TEST_ASSERT_EQ(kti_stats(c, id).psc_entries, 0);
	TEST_ASSERT(!ioctl(c, KTI_DETACH, &id), "KTI_DETACH: %s", strerror(errno));

	close(c);
	close(rust);
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("KTI_ATTACH_HW refused with a shadow domain and by the C importer; KTI_STATS of the first size\n");
}

static void test_collapse(void)
{
	struct kti_stats s0, s;
	struct kvm_vcpu *vcpu;
	struct kti_info info;
	struct kvm_vm *vm;
	int dev, tdp;
	unsigned int pg;
	char *hva;
	__u32 id;

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, DATA_GPA,
				    DATA_SLOT, PAGES, 0);
	hva = addr_gpa2hva(vm, DATA_GPA);
	virt_map(vm, DATA_GPA, DATA_GPA, PAGES);
	tdp = tdp_fd_create(vm);
	dev = kti_open("/dev/kvm_tdp_iommu");
	id = kti_attach(dev, tdp, KTI_ATTACH_HW);
	info.id = id;
	TEST_ASSERT(!ioctl(dev, KTI_INFO, &info), "KTI_INFO: %s", strerror(errno));

	/* 1. The guest writes: THP-backed, mapped by 2M leaves. */
	vcpu_run_expect(vcpu, 1);
	for (pg = 0; pg < PAGES; pg++)
		expect_page(dev, id, hva, pg, 1, 2, "2M leaves");

	/*
	 * 2. Dirty logging splits the huge pages into tables of 4K leaves (and
	 * write-protects them: reported).  The guest writes again: 4K write
	 * faults.  DMA walks those tables, and the PSC caches each of them:
	 * every page after a region's first starts from its cached table.
	 */
	vm_mem_region_set_flags(vm, DATA_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	vcpu_run_expect(vcpu, 2);
	s0 = kti_stats(dev, id);
	for (pg = 0; pg < PAGES; pg++)
		expect_page(dev, id, hva, pg, 2, 1, "dirty logging");
	s = kti_stats(dev, id);
	ksft_print_msg("logging: %llu walks, PSC %llu hits, %llu misses, %llu fills, %llu entries\n",
		       s.iotlb_misses - s0.iotlb_misses, s.psc_hits - s0.psc_hits,
		       s.psc_misses - s0.psc_misses, s.psc_fills - s0.psc_fills,
		       s.psc_entries);
	/*
	 * Logging's write-protection is reported for the whole slot, so every
	 * page walks (no IOTLB entry is left); only a region's first walk may
	 * miss the PSC.
	 */
	TEST_ASSERT(s.psc_hits - s0.psc_hits >= s.iotlb_misses - s0.iotlb_misses - REGIONS &&
		    s.iotlb_misses - s0.iotlb_misses > REGIONS,
		    "PSC: %llu hits in %llu walks: the tables were not cached",
		    s.psc_hits - s0.psc_hits, s.iotlb_misses - s0.iotlb_misses);
	/* Each region's table, and the tables above them. */
	TEST_ASSERT(s.psc_entries >= info.levels - 1,
		    "PSC holds %llu tables, expected at least %u",
		    s.psc_entries, info.levels - 1);

	/*
	 * 3. Disabling logging collapses them: KVM frees each region's table
	 * of 4K leaves (reported, [region, +2M)).  Every table the PSC held
	 * lies in a reported range: none may be left.
	 */
	s0 = s;
	vm_mem_region_set_flags(vm, DATA_SLOT, 0);
	s = kti_stats(dev, id);
	ksft_print_msg("collapse: %llu invalidations, last [%#llx, +%#llx), %llu PSC entries flushed, %llu left\n",
		       s.invalidations - s0.invalidations, s.last_start,
		       s.last_size, s.psc_flushes - s0.psc_flushes, s.psc_entries);
	TEST_ASSERT(s.invalidations > s0.invalidations, "collapse: no invalidation");
	TEST_ASSERT(s.psc_entries == 0,
		    "collapse: the PSC still holds %llu tables: KVM freed a table it did not report",
		    s.psc_entries);
	grace_periods();

	/*
	 * 4. The guest writes new bytes: 2M leaves again.  DMA must read
	 * exactly them; a walk from a freed table finds nothing (EFAULT after
	 * its faults), or whatever the page holds now.
	 */
	vcpu_run_expect(vcpu, 3);
	for (pg = 0; pg < PAGES; pg++)
		expect_page(dev, id, hva, pg, 3, 2, "after the collapse");

	vcpu_run_expect(vcpu, -1);
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH: %s", strerror(errno));
	close(dev);
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("dirty logging disabled (collapse) under a HW importer: %d pages read back exactly, through 2M leaves\n",
			      PAGES);
}

/* Sends @fd over the unix socket @sock. */
static void send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	TEST_ASSERT_EQ(sendmsg(sock, &msg, 0), 1);
}

/* Receives a file descriptor from the unix socket @sock. */
static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	TEST_ASSERT_EQ(recvmsg(sock, &msg, 0), 1);
	cm = CMSG_FIRSTHDR(&msg);
	TEST_ASSERT(cm && cm->cmsg_type == SCM_RIGHTS, "no file descriptor received");
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

#define EXIT_PAGES	16

/* The child: the VM's process.  Never returns. */
static void mm_exit_child(int dev, int sock)
{
	struct kvm_vm *vm = vm_create_barebones();
	struct kti_stats s;
	uint64_t v;
	char *hva;
	unsigned int pg;
	int tdp;
	__u32 id;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT,
				    EXIT_PAGES, 0);
	hva = addr_gpa2hva(vm, DATA_GPA);
	TEST_ASSERT(!madvise(hva, EXIT_PAGES * PAGE_SIZE, MADV_NOHUGEPAGE), "madvise");
	for (pg = 0; pg < EXIT_PAGES; pg++)
		*(uint64_t *)(hva + pg * PAGE_SIZE) = TAG(pg, 9);
	tdp = tdp_fd_create(vm);
	id = kti_attach(dev, tdp, KTI_ATTACH_HW);
	/* DMA faults each page in (this is the VM's mm) and fills the caches. */
	for (pg = 0; pg < EXIT_PAGES; pg++) {
		TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, GPA(pg), &v, 8), 0);
		TEST_ASSERT_EQ(v, TAG(pg, 9));
	}
	s = kti_stats(dev, id);
	TEST_ASSERT(s.psc_hits > 0 && s.psc_entries > 0,
		    "child: PSC %llu hits, %llu entries", s.psc_hits, s.psc_entries);
	TEST_ASSERT_EQ(write(sock, &id, sizeof(id)), sizeof(id));
	send_fd(sock, tdp);
	/* Exit without closing anything: the mm goes first. */
	_exit(0);
}

static void test_mm_exit(void)
{
	int dev = kti_open("/dev/kvm_tdp_iommu");
	int sv[2], status, tdp;
	struct kti_stats s0, s;
	uint64_t v = 0x1234;
	pid_t pid;
	__u32 id;

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair: %s",
		    strerror(errno));
	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		close(sv[0]);
		mm_exit_child(dev, sv[1]);
	}
	close(sv[1]);
	TEST_ASSERT_EQ(read(sv[0], &id, sizeof(id)), sizeof(id));
	tdp = recv_fd(sv[0]);
	/* Before the exit: the caches hold what the child's DMA filled. */
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "child: status %#x", status);
	grace_periods();

	s = kti_stats(dev, id);
	ksft_print_msg("mm exit: %llu invalidations (%llu whole), IOTLB %llu flushed, PSC %llu fills, %llu flushed, %llu left\n",
		       s.invalidations, s.whole, s.iotlb_flushes, s.psc_fills,
		       s.psc_flushes, s.psc_entries);
	TEST_ASSERT_EQ(s.whole, 1);
	TEST_ASSERT_EQ(s.last_start, 0);
	TEST_ASSERT_EQ(s.last_size, ~0ULL);
	TEST_ASSERT(s.psc_entries == 0,
		    "mm exit: the PSC still holds %llu tables", s.psc_entries);
	TEST_ASSERT(s.iotlb_flushes >= EXIT_PAGES,
		    "mm exit: %llu IOTLB entries flushed, %d were cached",
		    s.iotlb_flushes, EXIT_PAGES);

	/*
	 * Nothing is mapped: every DMA walks from the root, finds nothing,
	 * and its I/O page fault is refused (the parent is not the VM's mm).
	 */
	s0 = s;
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, GPA(0), &v, 8), -EPERM);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, GPA(EXIT_PAGES - 1), &v, 8), -EPERM);
	TEST_ASSERT_EQ(v, 0x1234);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, GPA(1), &v, 8), -EPERM);
	TEST_ASSERT_EQ(kti_fault(dev, id, GPA(0), KTI_ACCESS_READ), -EPERM);
	s = kti_stats(dev, id);
	TEST_ASSERT_EQ(s.iotlb_hits, s0.iotlb_hits);
	TEST_ASSERT_EQ(s.psc_hits, s0.psc_hits);
	TEST_ASSERT_EQ(s.psc_misses, s0.psc_misses + 3);
	TEST_ASSERT_EQ(s.whole, 1);

	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH: %s", strerror(errno));
	close(tdp);
	close(sv[0]);
	close(dev);
	ksft_test_result_pass("VM's mm exits under a HW importer: one whole-table report, both caches empty, DMA refused (EPERM), nothing copied\n");
}

int main(void)
{
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");

	ksft_print_header();
	ksft_set_plan(3);
	test_flags_and_stats();
	test_collapse();
	test_mm_exit();
	ksft_finished();
}
