// SPDX-License-Identifier: GPL-2.0
/*
 * Stress: a bounded run of threads that race everything which changes or
 * uses an exported TDP table, checking that no DMA ever sees stale data
 * once an invalidation has returned.
 *
 * Four phases of PHASE_SECS seconds each (wall clock; the iteration counts
 * only have to be non-zero): a default VM, whose exported root is the vCPU's
 * own (vCPU faults race importer faults in one table), then a
 * KVM_X86_SW_PROTECTED_VM whose data slot is in guest_memfd (the importer
 * walks the shared view, and pages are converted private <-> shared under
 * it); then both again with the importer in its hardware-faithful mode
 * (KTI_ATTACH_HW: it also caches the table pointers its walks read and
 * starts walks from them, so a page table freed without a report is read
 * after it is gone).  The two modes take turns, one per phase, so that a
 * failure names its mode; the churn thread adds a second attachment.  The
 * IOMMU-style importer (/dev/kvm_tdp_iommu, with faults on) is attached for
 * the whole phase; each thread owns its own pages of a 4K-backed data slot,
 * except where sharing is the point:
 *
 *  vcpu       the guest loops writing a tag (page, iteration) into its pages
 *             and reads each back: the tag, or zero if the page was just
 *             discarded;
 *  integrity  on its own pages, in a loop: MADV_DONTNEED, then a DMA read
 *             must return zero (the new page, not the old one's data); the
 *             host writes a fresh generation (COW of the zero page KVM
 *             mapped) and a DMA read must return it; a DMA write must be seen
 *             by the host; with the page write-protected (mprotect), a DMA
 *             write and a write fault must fail with EFAULT and change
 *             nothing; discarded again, a DMA write must land in the new page;
 *  zapper     MADV_DONTNEED of one, several or all "contended" pages and of
 *             vCPU pages, counted per page before and after (P.zaps), and
 *             mprotect(PROT_READ) of a contended page for a few rounds,
 *             published so that the importer thread knows when a page was
 *             write-protected for the whole of a DMA;
 *  importer   DMA reads, writes, page-straddling reads and KTI_FAULTs with
 *             every access on the contended pages: a read returns the last
 *             value it wrote there or zero, and which of the two the zap
 *             counts decide where they can: the value if no discard of the
 *             page began since before the write, zero if a whole discard ran
 *             after the write and before the read (the host's reads after
 *             a DMA write likewise); a write always fails with EFAULT while
 *             the page is write-protected; reads of vCPU pages return tags
 *             of that page no older than the guest's progress before the
 *             read and no newer than after it, and its own writes there
 *             (bounded as on contended pages); in the SW-protected phase,
 *             reads of the pages being converted fail with EACCES or return
 *             a value at least as new as the one the page held when the read
 *             began.  A value older than these lower bounds is a stale
 *             translation.  A DMA racing the zapper may fail with EFAULT,
 *             copying nothing (the importer retries its I/O page fault a few
 *             times); no other error is allowed;
 *  churn      attaches 1-3 C importers (/dev/kvm_tdp_importer_c) to the
 *             phase's TDP FD, faults a page through each, discards it and
 *             checks that each was told, then detaches them (or closes the
 *             file, whose release detaches them); a second attachment of the
 *             Rust importer, in either mode, registers (ops of its own) and
 *             is detached again;
 *  close      a small VM of the phase's type per iteration: TDP FD, a C
 *             importer attached, a fault, the TDP FD closed while attached
 *             (still usable, and KVM_CREATE_TDP_FD gives EEXIST), a
 *             discarded page reported; then the last reference goes by
 *             detach, by freeing the VM first (faults then fail with ENOENT)
 *             or by closing the importer's file; a private GFN faults with
 *             EACCES in the SW-protected phase;
 *  convert    (SW-protected phase) on its own pages: to private, where DMA
 *             reads, writes and faults must fail with EACCES (guest_memfd
 *             punched at times); the shared backing discarded and rewritten
 *             with a new generation; back to shared, where a DMA read must
 *             return that generation and a DMA write must reach the host.
 *
 * After each phase every thread must have made progress, the importer must
 * have seen invalidations, IOTLB flushes and faults (and in the HW mode,
 * walks started from cached tables, and cached tables flushed), and every
 * page must read the same through the importer as through the host mapping.  The TDP FD is
 * closed before the importer detaches.  Any violation aborts the test.
 *
 * Usage: tdp_fd_stress_test [seconds per phase]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

#define PHASE_SECS	8

#define DATA_GPA	0x40000000ULL
#define DATA_SLOT	1
#define DATA_PAGES	128
#define GPA(pg)		(DATA_GPA + (uint64_t)(pg) * PAGE_SIZE)

/* The data slot's pages, by owner. */
#define VCPU_FIRST	0
#define VCPU_PAGES	32
#define INTEG_FIRST	32
#define INTEG_PAGES	16
#define CONT_FIRST	48	/* contended: the zapper and the importer */
#define CONT_PAGES	32
#define CHURN_FIRST	80
#define CHURN_PAGES	8
#define CONV_FIRST	88
#define CONV_PAGES	16
#define USED_PAGES	104

#define WORDS		(PAGE_SIZE / 8)
/* What the guest writes at words 0 and WORDS - 1 of vCPU page @i. */
#define TAG(i, iter)	((uint64_t)((i) + 1) << 48 | (iter))
#define TAG_PAGE(v)	((v) >> 48)
#define TAG_ITER(v)	((v) & ((1ULL << 48) - 1))
/* Where the importer writes in vCPU pages: a word the guest never writes. */
#define HOST_WORD	256
#define HOST_TAG	(0xfeedULL << 48)
#define SYNC_EVERY	16

#define RW		(KTI_ACCESS_READ | KTI_ACCESS_WRITE)

/* The guest's copies: set by the host, and the guest's progress. */
static uint64_t guest_stop;
static uint64_t guest_iter;

static void guest_code(void)
{
	uint64_t iter, i, v;

	for (iter = 1; !READ_ONCE(guest_stop); iter++) {
		for (i = 0; i < VCPU_PAGES; i++) {
			uint64_t *p = (uint64_t *)GPA(VCPU_FIRST + i);

			WRITE_ONCE(p[0], TAG(i, iter));
			WRITE_ONCE(p[WORDS - 1], TAG(i, iter));
			v = READ_ONCE(p[0]);
			__GUEST_ASSERT(v == TAG(i, iter) || !v,
				       "page %lu: read %lx after writing %lx",
				       i, v, TAG(i, iter));
		}
		WRITE_ONCE(guest_iter, iter);
		if (!(iter % SYNC_EVERY))
			GUEST_SYNC(iter);
	}
	GUEST_DONE();
}

/* The phase: its VM, the importer attached to its TDP FD, shared state. */
static struct {
	const char *name;
	bool protected;
	bool hw;			/* the importer is in KTI_ATTACH_HW mode */
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	char *hva;			/* the data slot */
	uint64_t *guest_iter;		/* the guest's copy */
	int tdp;
	int iommu;			/* /dev/kvm_tdp_iommu */
	__u32 id;			/* its attachment */
	bool stop;
	/*
	 * The zapper's write-protected contended page: (changes << 32) |
	 * (page + 1), or changes << 32 if none.  Set once mprotect() has
	 * returned, cleared before the page is made writable again.
	 */
	uint64_t ro_state;
	uint32_t ro_changes;
	/*
	 * A converted page holds a value in [conv_lo, conv_hi]: conv_hi is
	 * raised before a write, conv_lo once it has completed.
	 */
	uint64_t conv_lo[CONV_PAGES];
	uint64_t conv_hi[CONV_PAGES];
	/*
	 * Discards of each data page by the zapper: raised before its
	 * MADV_DONTNEED starts and again once it has returned, so odd while
	 * one is in progress.  Only the zapper writes them.
	 */
	uint64_t zaps[DATA_PAGES];
	/* DMAs that lost a race with a zap: EFAULT, nothing copied. */
	uint64_t raced;
	/* EFAULTs on a page its thread owns, gone when retried (see below). */
	uint64_t transient;
} P;

struct worker {
	const char *name;
	void *(*fn)(void *arg);
	bool protected_only;
	pthread_t thread;
	uint64_t seed;
	uint64_t iters;
};

static bool stopping(void)
{
	return __atomic_load_n(&P.stop, __ATOMIC_ACQUIRE);
}

static uint64_t load(uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void store(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}


static int dma(unsigned long cmd, __u64 gpa, void *buf, __u64 len)
{
	return kti_dma(P.iommu, cmd, P.id, gpa, buf, len);
}

static int dma_read64(__u64 gpa, uint64_t *v)
{
	return dma(KTI_DMA_READ, gpa, v, 8);
}

static int dma_write64(__u64 gpa, uint64_t v)
{
	return dma(KTI_DMA_WRITE, gpa, &v, 8);
}

static uint64_t *word(unsigned int pg, unsigned int w)
{
	return (uint64_t *)(P.hva + pg * PAGE_SIZE) + w;
}

static uint64_t host_read(unsigned int pg)
{
	return READ_ONCE(*word(pg, 0));
}

static void host_write(unsigned int pg, uint64_t v)
{
	WRITE_ONCE(*word(pg, 0), v);
}

static void discard(unsigned int pg, unsigned int n)
{
	TEST_ASSERT(!madvise(word(pg, 0), n * PAGE_SIZE, MADV_DONTNEED),
		    "madvise(DONTNEED) page %u: %s", pg, strerror(errno));
}

static void protect(unsigned int pg, int prot)
{
	TEST_ASSERT(!mprotect(word(pg, 0), PAGE_SIZE, prot),
		    "mprotect(%d) page %u: %s", prot, pg, strerror(errno));
}

/*
 * The importer retries a page's I/O page fault a few times (MAX_FAULTS in
 * samples/kvm_tdp_iommu/domain.rs): if zaps (or, for a write,
 * write-protection) keep taking the page away before each retried walk,
 * the DMA fails with EFAULT and copies nothing.  Only a DMA racing the
 * zapper or a conversion may do that.  Whether @r is that case; any other error fails
 * the test.
 */
static bool raced(int r, unsigned int pg, const char *what)
{
	if (r == -EFAULT) {
		__atomic_add_fetch(&P.raced, 1, __ATOMIC_RELAXED);
		return true;
	}
	TEST_ASSERT(!r, "%s: page %u: %s: %s", P.name, pg, what, strerror(-r));
	return false;
}

/*
 * A DMA read of word 0 of @pg must succeed and return @want.
 *
 * One exception, seen about once in ten runs after the rest of the suite
 * (never alone): a read of a page no other thread touches fails with
 * EFAULT, and the same read succeeds, with the right data, at once.  The
 * kernel may take a page away behind every mapping of it (compaction
 * migrating it, say), and a device retries such a DMA; what must never
 * happen is stale data.  So an EFAULT is retried twice and counted, and
 * the value is then checked as always.
 */
static void expect_dma(unsigned int pg, uint64_t want, const char *after)
{
	uint64_t v = ~want;
	int r = dma_read64(GPA(pg), &v), tries;

	for (tries = 0; r == -EFAULT && tries < 2; tries++) {
		__atomic_add_fetch(&P.transient, 1, __ATOMIC_RELAXED);
		r = dma_read64(GPA(pg), &v);
	}
	TEST_ASSERT(!r, "%s: page %u: DMA read after %s: %s (retried %d times)",
		    P.name, pg, after, strerror(-r), tries);
	TEST_ASSERT(v == want,
		    "%s: page %u: DMA read %#lx after %s, expected %#lx: stale data",
		    P.name, pg, v, after, want);
}

static void *vcpu_thread(void *arg)
{
	struct worker *w = arg;
	struct ucall uc;

	for (;;) {
		vcpu_run(P.vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(P.vcpu, KVM_EXIT_IO);
		switch (get_ucall(P.vcpu, &uc)) {
		case UCALL_SYNC:
			continue;
		case UCALL_DONE:
			w->iters = READ_ONCE(*P.guest_iter);
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("unexpected ucall %lu", uc.cmd);
		}
	}
}

static void *integrity_thread(void *arg)
{
	uint64_t val[INTEG_PAGES] = {}, gen = 0, two[2];
	struct worker *w = arg;
	unsigned int i, pg;
	int r;

	for (; !stopping(); w->iters++) {
		i = w->iters % INTEG_PAGES;
		pg = INTEG_FIRST + i;

		/* Discarded: the importer sees the new, empty page. */
		discard(pg, 1);
		expect_dma(pg, 0, "MADV_DONTNEED");

		/* The host writes it: a new page replaces the zero page. */
		host_write(pg, ++gen);
		expect_dma(pg, gen, "a host write");

		/* The importer writes it: the host sees that. */
		TEST_ASSERT_EQ(dma_write64(GPA(pg), ++gen), 0);
		TEST_ASSERT(host_read(pg) == gen,
			    "%s: page %u: host reads %#lx after DMA write of %#lx",
			    P.name, pg, host_read(pg), gen);

		/* Write-protected: no write may land, reads still work. */
		protect(pg, PROT_READ);
		r = dma_write64(GPA(pg), gen + 1);
		TEST_ASSERT(r == -EFAULT,
			    "%s: page %u: DMA write to a write-protected page: %s",
			    P.name, pg, r ? strerror(-r) : "succeeded");
		r = kti_fault(P.iommu, P.id, GPA(pg), KTI_ACCESS_WRITE);
		TEST_ASSERT(r == -EFAULT,
			    "%s: page %u: write fault on a write-protected page: %s",
			    P.name, pg, r ? strerror(-r) : "succeeded");
		TEST_ASSERT(host_read(pg) == gen,
			    "%s: page %u: a refused DMA write landed", P.name, pg);
		expect_dma(pg, gen, "mprotect(PROT_READ)");
		protect(pg, PROT_READ | PROT_WRITE);

		/* Discarded, then written by the importer first. */
		discard(pg, 1);
		TEST_ASSERT_EQ(dma_write64(GPA(pg), ++gen), 0);
		TEST_ASSERT(host_read(pg) == gen,
			    "%s: page %u: host reads %#lx after DMA write of %#lx to a discarded page",
			    P.name, pg, host_read(pg), gen);
		val[i] = gen;

		/* One DMA across two pages: the end of this, the next's start. */
		if (i + 1 < INTEG_PAGES) {
			TEST_ASSERT_EQ(dma(KTI_DMA_READ, GPA(pg + 1) - 8, two, 16), 0);
			TEST_ASSERT(!two[0] && two[1] == val[i + 1],
				    "%s: pages %u-%u: DMA read %#lx %#lx, expected 0 %#lx",
				    P.name, pg, pg + 1, two[0], two[1], val[i + 1]);
		}
	}
	return NULL;
}

static void set_ro(int pg)
{
	uint64_t changes;

	P.ro_changes++;
	changes = (uint64_t)P.ro_changes << 32;
	store(&P.ro_state, pg < 0 ? changes : changes | (pg + 1));
}

/* Whether @pg was write-protected for all of [@s1, @s2]. */
static bool was_ro(uint64_t s1, uint64_t s2, unsigned int pg)
{
	return s1 == s2 && (uint32_t)s1 == pg + 1;
}

/* Discards pages [@pg, @pg + @n) that the importer reads, counted in P.zaps. */
static void zap(unsigned int pg, unsigned int n)
{
	unsigned int k;

	for (k = 0; k < n; k++)
		__atomic_add_fetch(&P.zaps[pg + k], 1, __ATOMIC_SEQ_CST);
	discard(pg, n);
	for (k = 0; k < n; k++)
		__atomic_add_fetch(&P.zaps[pg + k], 1, __ATOMIC_SEQ_CST);
}

static uint64_t zaps(unsigned int pg)
{
	return load(&P.zaps[pg]);
}

static void *zapper_thread(void *arg)
{
	struct worker *w = arg;
	int ro = -1, ro_rounds = 0;
	unsigned int pg, n;
	uint64_t r;

	for (; !stopping(); w->iters++) {
		if (ro >= 0 && !ro_rounds--) {
			set_ro(-1);
			protect(ro, PROT_READ | PROT_WRITE);
			ro = -1;
		}
		r = rnd(&w->seed);
		pg = CONT_FIRST + (r >> 8) % CONT_PAGES;
		switch (r % 8) {
		case 0:
		case 1:
		case 2:
			zap(pg, 1);
			break;
		case 3:
			n = 1 + (r >> 16) % 8;
			if (pg + n > CONT_FIRST + CONT_PAGES)
				n = CONT_FIRST + CONT_PAGES - pg;
			zap(pg, n);
			break;
		case 4:
		case 5:
			n = 1 + (r >> 16) % 4;
			pg = VCPU_FIRST + (r >> 8) % (VCPU_PAGES - 3);
			zap(pg, n);
			break;
		case 6:
			if (ro < 0) {
				protect(pg, PROT_READ);
				set_ro(pg);
				ro = pg;
				ro_rounds = 1 + (r >> 16) % 4;
			}
			break;
		case 7:
			if ((r >> 16) % 4 == 0)
				zap(CONT_FIRST, CONT_PAGES);
			else
				zap(pg, 1);
			break;
		}
	}
	if (ro >= 0) {
		set_ro(-1);
		protect(ro, PROT_READ | PROT_WRITE);
	}
	return NULL;
}

/*
 * The importer's last DMA write that landed in a word only it writes (word 0
 * of a contended page, HOST_WORD of a vCPU page): the value, and the page's
 * zap count (P.zaps) just before the write began and just after it returned.
 * All zero for a word never written.
 */
struct written {
	uint64_t val;
	uint64_t before;
	uint64_t after;
};

/* Does the DMA write of @x to word @w of @pg, recorded in @wr if it lands. */
static int importer_write_word(unsigned int pg, unsigned int w,
			       struct written *wr, uint64_t x)
{
	uint64_t before = zaps(pg), after;
	int r = dma_write64(GPA(pg) + w * 8, x);

	after = zaps(pg);
	if (!r)
		*wr = (struct written){ .val = x, .before = before, .after = after };
	return r;
}

/*
 * @v was read (by @what: a DMA read, or the host) from the word @wr
 * describes, in page @pg, by a read begun when the page's zap count was @z1
 * and ended when it was @z2.  Nothing but the importer's DMA writes and the
 * zapper's discards changes that word (a refused write copies nothing), so
 * it holds the last value written or, once discarded, zero; which one, the
 * zap counts tell where they can:
 *
 *  - no discard began between the write and the end of the read (@z2 is
 *    the even count seen before the write): the value.  Zero means the
 *    write or the read went through a stale translation (to a page freed
 *    before the write, or the zero page mapped before it);
 *  - a whole discard ran after the write returned and before the read
 *    began (@z1 is at least the end of the first discard to begin after
 *    the write): zero.  The value means a translation to the page the
 *    discard freed: pre-zap, stale data;
 *  - otherwise, a discard overlapped the write or the read: either.
 */
static void check_written(unsigned int pg, const struct written *wr,
			  uint64_t v, uint64_t z1, uint64_t z2, const char *what)
{
	bool kept = !(wr->before & 1) && z2 == wr->before;
	bool zapped = z1 >= ((wr->after + 1) & ~1ULL) + 2;

	if (kept)
		TEST_ASSERT(v == wr->val,
			    "%s: page %u: %s %#lx, DMA wrote %#lx and no discard since: stale translation",
			    P.name, pg, what, v, wr->val);
	else if (zapped)
		TEST_ASSERT(!v,
			    "%s: page %u: %s %#lx, discarded after the DMA write of it: stale data",
			    P.name, pg, what, v);
	else
		TEST_ASSERT(v == wr->val || !v,
			    "%s: page %u: %s %#lx, last DMA write %#lx",
			    P.name, pg, what, v, wr->val);
}

/* A DMA write of @x to contended page @z, whose last write is @wr. */
static void importer_write(unsigned int z, struct written *wr, uint64_t x)
{
	unsigned int pg = CONT_FIRST + z;
	uint64_t s1, s2, z1, z2, v;
	int r;

	s1 = load(&P.ro_state);
	r = importer_write_word(pg, 0, wr, x);
	s2 = load(&P.ro_state);
	if (was_ro(s1, s2, pg))
		TEST_ASSERT(r == -EFAULT,
			    "%s: page %u: DMA write while write-protected: %s",
			    P.name, pg, r ? strerror(-r) : "succeeded");
	raced(r, pg, "DMA write");
	/* The host sees the write (or the discard after it): never stale. */
	z1 = zaps(pg);
	v = host_read(pg);
	z2 = zaps(pg);
	check_written(pg, wr, v, z1, z2,
		      r ? "host reads after a refused DMA write" :
			  "host reads after a DMA write");
}

static void importer_fault(unsigned int z, uint32_t access)
{
	unsigned int pg = CONT_FIRST + z;
	uint64_t s1, s2;
	int r;

	s1 = load(&P.ro_state);
	r = kti_fault(P.iommu, P.id, GPA(pg), access);
	s2 = load(&P.ro_state);
	if ((access & KTI_ACCESS_WRITE) && was_ro(s1, s2, pg))
		TEST_ASSERT(r == -EFAULT,
			    "%s: page %u: write fault while write-protected: %s",
			    P.name, pg, r ? strerror(-r) : "succeeded");
	TEST_ASSERT(!r || (r == -EFAULT && (access & KTI_ACCESS_WRITE)),
		    "%s: page %u: fault %#x: %s", P.name, pg, access,
		    strerror(-r));
}

static void importer_read(unsigned int z, const struct written *wr)
{
	unsigned int pg = CONT_FIRST + z, i;
	uint64_t buf[WORDS], z1, z2;
	int r;

	z1 = zaps(pg);
	r = dma(KTI_DMA_READ, GPA(pg), buf, PAGE_SIZE);
	z2 = zaps(pg);
	if (raced(r, pg, "DMA read"))
		return;
	check_written(pg, wr, buf[0], z1, z2, "DMA read");
	for (i = 1; i < WORDS; i++)
		TEST_ASSERT(!buf[i], "%s: page %u word %u: DMA read %#lx, never written",
			    P.name, pg, i, buf[i]);
}

/*
 * Word @w of vCPU page @i read @v, by a DMA read begun when the guest had
 * completed iteration @lo and ended before it completed @hi: zero
 * (discarded, not written again yet) or this page's tag of an iteration in
 * [@lo, @hi].  The guest publishes an iteration once it has written that
 * iteration's tag to every page, so from then on the page holds that tag,
 * a newer one, or zero (discarded since, and a write after that makes a
 * newer tag).  An older tag can only come from the page a discard freed
 * before the read began: a stale translation.
 */
static void check_tag(unsigned int i, unsigned int w, uint64_t v,
		      uint64_t lo, uint64_t hi)
{
	TEST_ASSERT(!v || (TAG_PAGE(v) == i + 1 && TAG_ITER(v) &&
			   TAG_ITER(v) >= lo && TAG_ITER(v) <= hi),
		    "%s: vCPU page %u word %u: DMA read %#lx, guest at iteration %lu before the read, %lu after%s",
		    P.name, i, w, v, lo, hi - 1,
		    v && TAG_PAGE(v) == i + 1 && TAG_ITER(v) < lo ?
		    ": stale data" : "");
}

static void importer_read_vcpu(unsigned int i, const struct written *host)
{
	unsigned int pg = VCPU_FIRST + i, w;
	uint64_t buf[WORDS], lo, hi, z1, z2;
	int r;

	/* The guest's progress and the page's discards, before the read. */
	lo = load(P.guest_iter);
	z1 = zaps(pg);
	r = dma(KTI_DMA_READ, GPA(pg), buf, PAGE_SIZE);
	z2 = zaps(pg);
	if (raced(r, pg, "DMA read"))
		return;
	/* Whatever the read saw, the guest had got at least one before. */
	hi = load(P.guest_iter) + 1;
	check_tag(i, 0, buf[0], lo, hi);
	check_tag(i, WORDS - 1, buf[WORDS - 1], lo, hi);
	check_written(pg, host, buf[HOST_WORD], z1, z2, "DMA read of HOST_WORD");
	for (w = 1; w < WORDS - 1; w++)
		TEST_ASSERT(w == HOST_WORD || !buf[w],
			    "%s: vCPU page %u word %u: DMA read %#lx, never written",
			    P.name, i, w, buf[w]);
}

static void importer_read_converted(unsigned int c)
{
	unsigned int pg = CONV_FIRST + c;
	uint64_t lo, hi, v = 0;
	int r;

	lo = load(&P.conv_lo[c]);
	r = dma_read64(GPA(pg), &v);
	hi = load(&P.conv_hi[c]);
	TEST_ASSERT(r == -EACCES || raced(r, pg, "DMA read") ||
		    (v >= lo && v <= hi),
		    "%s: converted page %u: DMA read %s %#lx, expected EACCES or [%#lx, %#lx]",
		    P.name, pg, r ? strerror(-r) : "returned", v, lo, hi);
}

static void *importer_thread(void *arg)
{
	struct written cont[CONT_PAGES] = {}, host[VCPU_PAGES] = {};
	uint64_t next = 0, two[2], z1, z2;
	struct worker *w = arg;
	unsigned int z, i, pg;
	uint64_t r, v;
	int e;

	for (; !stopping(); w->iters++) {
		r = rnd(&w->seed);
		z = (r >> 8) % CONT_PAGES;
		i = (r >> 8) % VCPU_PAGES;
		switch (r % 10) {
		case 0:
		case 1:
			importer_write(z, &cont[z], ++next);
			break;
		case 2:
		case 3:
			importer_read(z, &cont[z]);
			break;
		case 4:
			if (z == CONT_PAGES - 1)
				z--;
			/* The end of page z (never written), page z + 1's start. */
			pg = CONT_FIRST + z + 1;
			z1 = zaps(pg);
			e = dma(KTI_DMA_READ, GPA(pg) - 8, two, 16);
			z2 = zaps(pg);
			if (raced(e, CONT_FIRST + z, "DMA read"))
				break;
			TEST_ASSERT(!two[0],
				    "%s: page %u: DMA read %#lx at its end, never written",
				    P.name, pg - 1, two[0]);
			check_written(pg, &cont[z + 1], two[1], z1, z2,
				      "DMA read across pages");
			break;
		case 5:
			importer_fault(z, 1 + (r >> 16) % 7);
			break;
		case 6:
			importer_read_vcpu(i, &host[i]);
			break;
		case 7:
			pg = VCPU_FIRST + i;
			raced(importer_write_word(pg, HOST_WORD, &host[i],
						  HOST_TAG | ++next),
			      pg, "DMA write");
			z1 = zaps(pg);
			e = dma_read64(GPA(pg) + HOST_WORD * 8, &v);
			z2 = zaps(pg);
			if (raced(e, pg, "DMA read"))
				break;
			check_written(pg, &host[i], v, z1, z2,
				      "DMA read of HOST_WORD");
			break;
		default:
			if (P.protected)
				importer_read_converted((r >> 8) % CONV_PAGES);
			else
				importer_read(z, &cont[z]);
			break;
		}
	}
	return NULL;
}

static void *churn_thread(void *arg)
{
	int c = kti_open("/dev/kvm_tdp_importer_c");
	int rust = kti_open("/dev/kvm_tdp_iommu");
	struct worker *w = arg;
	unsigned int k, n, pg;
	__u32 ids[3], flags;
	__u64 before;

	for (; !stopping(); w->iters++) {
		n = 1 + w->iters % 3;
		/*
		 * Each Rust attachment registers ops of its own: a second one,
		 * in either mode, registers and unregisters while reports race.
		 */
		flags = w->iters & 1 ? KTI_ATTACH_HW : 0;
		k = kti_attach(rust, P.tdp, flags);
		TEST_ASSERT(!ioctl(rust, KTI_DETACH, &k),
			    "%s: detaching a second Rust attachment (flags %#x): %s",
			    P.name, flags, strerror(errno));
		for (k = 0; k < n; k++)
			ids[k] = kti_attach(c, P.tdp, 0);
		for (k = 0; k < n; k++) {
			pg = CHURN_FIRST + (w->iters + k) % CHURN_PAGES;
			before = kti_stats(c, ids[k]).invalidations;
			TEST_ASSERT_EQ(kti_fault(c, ids[k], GPA(pg), RW), 0);
			/* Mapped since, or taken away since: either is told. */
			discard(pg, 1);
			TEST_ASSERT(kti_stats(c, ids[k]).invalidations > before,
				    "%s: page %u discarded, C importer %u not told",
				    P.name, pg, ids[k]);
		}
		if (w->iters % 4 == 3) {
			/* The file's release detaches them all. */
			close(c);
			c = kti_open("/dev/kvm_tdp_importer_c");
			continue;
		}
		for (k = 0; k < n; k++)
			TEST_ASSERT(!ioctl(c, KTI_DETACH, &ids[k]), "KTI_DETACH: %s",
				    strerror(errno));
		TEST_ASSERT(ioctl(c, KTI_DETACH, &ids[0]) == -1 && errno == ENOENT,
			    "detached twice: %s", strerror(errno));
	}
	close(rust);
	close(c);
	return NULL;
}

static void *close_thread(void *arg)
{
	struct kvm_create_tdp_fd args = { .mode = KVM_TDP_FD_MODE_SHARED };
	int c = kti_open("/dev/kvm_tdp_importer_c");
	struct worker *w = arg;
	struct kvm_vm *vm;
	__u64 before;
	char *hva;
	int tdp;
	__u32 id;

	for (; !stopping(); w->iters++) {
		vm = P.protected ? vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM)
				 : vm_create_barebones();
		vm_mem_add(vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT, 4,
			   P.protected ? KVM_MEM_GUEST_MEMFD : 0, -1, 0);
		hva = addr_gpa2hva(vm, DATA_GPA);
		tdp = tdp_fd_create(vm);
		id = kti_attach(c, tdp, 0);
		before = kti_stats(c, id).invalidations;
		TEST_ASSERT_EQ(kti_fault(c, id, GPA(0), RW), 0);
		if (P.protected) {
			vm_mem_set_private(vm, GPA(1), PAGE_SIZE);
			TEST_ASSERT_EQ(kti_fault(c, id, GPA(1), KTI_ACCESS_READ), -EACCES);
			vm_mem_set_shared(vm, GPA(1), PAGE_SIZE);
		}

		/* Closed while attached: the attachment keeps the export. */
		close(tdp);
		TEST_ASSERT_EQ(kti_fault(c, id, GPA(2), RW), 0);
		TEST_ASSERT(ioctl(vm->fd, KVM_CREATE_TDP_FD, &args) == -1 &&
			    errno == EEXIST,
			    "%s: a second TDP FD while the first lives: %s",
			    P.name, strerror(errno));
		TEST_ASSERT(!madvise(hva, PAGE_SIZE, MADV_DONTNEED), "madvise");
		TEST_ASSERT(kti_stats(c, id).invalidations > before,
			    "%s: page discarded, C importer not told", P.name);

		switch (w->iters % 3) {
		case 0:
			/* The last reference goes: the VM can export again. */
			TEST_ASSERT(!ioctl(c, KTI_DETACH, &id), "KTI_DETACH: %s",
				    strerror(errno));
			close(tdp_fd_create(vm));
			kvm_vm_free(vm);
			break;
		case 1:
			/* The VM goes first: memslots deleted, fd closed. */
			kvm_vm_free(vm);
			TEST_ASSERT_EQ(kti_fault(c, id, GPA(0), KTI_ACCESS_READ), -ENOENT);
			TEST_ASSERT(!ioctl(c, KTI_DETACH, &id), "KTI_DETACH: %s",
				    strerror(errno));
			break;
		case 2:
			/* The importer's file goes: its release detaches. */
			close(c);
			c = kti_open("/dev/kvm_tdp_importer_c");
			close(tdp_fd_create(vm));
			kvm_vm_free(vm);
			break;
		}
	}
	close(c);
	return NULL;
}

static void *convert_thread(void *arg)
{
	struct worker *w = arg;
	unsigned int c, pg;
	uint64_t g, v;
	int r;

	for (; !stopping(); w->iters++) {
		c = w->iters % CONV_PAGES;
		pg = CONV_FIRST + c;
		g = P.conv_lo[c];

		vm_mem_set_private(P.vm, GPA(pg), PAGE_SIZE);
		/* The shared view never maps a private GFN. */
		r = dma_read64(GPA(pg), &v);
		TEST_ASSERT(r == -EACCES, "%s: private page %u: DMA read %s %#lx",
			    P.name, pg, r ? strerror(-r) : "returned", v);
		r = dma_write64(GPA(pg), ~0ULL);
		TEST_ASSERT(r == -EACCES, "%s: private page %u: DMA write: %s",
			    P.name, pg, r ? strerror(-r) : "succeeded");
		TEST_ASSERT_EQ(kti_fault(P.iommu, P.id, GPA(pg), KTI_ACCESS_READ),
			       -EACCES);
		if (w->iters & 1)
			vm_guest_mem_punch_hole(P.vm, GPA(pg), PAGE_SIZE);

		/* A new shared page, written while private. */
		discard(pg, 1);
		store(&P.conv_hi[c], g + 1);
		host_write(pg, g + 1);
		store(&P.conv_lo[c], g + 1);

		vm_mem_set_shared(P.vm, GPA(pg), PAGE_SIZE);
		expect_dma(pg, g + 1, "private -> shared");
		store(&P.conv_hi[c], g + 2);
		TEST_ASSERT_EQ(dma_write64(GPA(pg), g + 2), 0);
		store(&P.conv_lo[c], g + 2);
		TEST_ASSERT(host_read(pg) == g + 2,
			    "%s: converted page %u: host reads %#lx after DMA write of %#lx",
			    P.name, pg, host_read(pg), g + 2);
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_phase(bool protected, bool hw, unsigned int secs, uint64_t seed)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = protected ? KVM_X86_SW_PROTECTED_VM : VM_TYPE_DEFAULT,
	};
	struct worker workers[] = {
		{ "vcpu", vcpu_thread },
		{ "integrity", integrity_thread },
		{ "zapper", zapper_thread },
		{ "importer", importer_thread },
		{ "churn", churn_thread },
		{ "close", close_thread },
		{ "convert", convert_thread, true },
	};
	uint8_t dmabuf[PAGE_SIZE];
	struct kti_stats s;
	unsigned int i, pg;
	double end;

	memset(&P, 0, sizeof(P));
	if (hw)
		P.name = protected ? "SW-protected VM, HW importer" : "default VM, HW importer";
	else
		P.name = protected ? "SW-protected VM" : "default VM";
	P.protected = protected;
	P.hw = hw;
	P.vm = vm_create_shape_with_one_vcpu(shape, &P.vcpu, guest_code);
	vm_mem_add(P.vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT, DATA_PAGES,
		   protected ? KVM_MEM_GUEST_MEMFD : 0, -1, 0);
	P.hva = addr_gpa2hva(P.vm, DATA_GPA);
	/* 4K host pages: KVM maps 4K, each page is its own. */
	TEST_ASSERT(!madvise(P.hva, DATA_PAGES * PAGE_SIZE, MADV_NOHUGEPAGE),
		    "madvise(NOHUGEPAGE)");
	virt_map(P.vm, DATA_GPA, DATA_GPA, DATA_PAGES);
	P.guest_iter = addr_gva2hva(P.vm, (vm_vaddr_t)&guest_iter);
	for (i = 0; i < CONV_PAGES; i++) {
		P.conv_lo[i] = 1;
		P.conv_hi[i] = 1;
		host_write(CONV_FIRST + i, 1);
	}

	P.tdp = tdp_fd_create(P.vm);
	P.iommu = kti_open("/dev/kvm_tdp_iommu");
	P.id = kti_attach(P.iommu, P.tdp, hw ? KTI_ATTACH_HW : 0);

	for (i = 0; i < ARRAY_SIZE(workers); i++) {
		if (workers[i].protected_only && !protected)
			continue;
		workers[i].seed = seed * (i + 1) ?: 1;
		TEST_ASSERT(!pthread_create(&workers[i].thread, NULL,
					    workers[i].fn, &workers[i]),
			    "pthread_create");
		/* Named, for the kernel's messages about them. */
		pthread_setname_np(workers[i].thread, workers[i].name);
	}
	end = now() + secs;
	while (now() < end)
		usleep(100 * 1000);
	__atomic_store_n(&P.stop, true, __ATOMIC_RELEASE);
	write_guest_global(P.vm, guest_stop, 1);
	for (i = 0; i < ARRAY_SIZE(workers); i++) {
		if (workers[i].protected_only && !protected)
			continue;
		TEST_ASSERT(!pthread_join(workers[i].thread, NULL), "pthread_join");
		TEST_ASSERT(workers[i].iters > 0, "%s: thread %s made no progress",
			    P.name, workers[i].name);
		ksft_print_msg("%s: %s: %lu iterations\n", P.name,
			       workers[i].name, workers[i].iters);
	}

	s = kti_stats(P.iommu, P.id);
	ksft_print_msg("%s: importer: %llu invalidations, %llu IOTLB flushes, %llu hits, %llu misses, %llu faults; %lu DMAs lost a race (EFAULT), %lu transient EFAULTs on owned pages\n",
		       P.name, s.invalidations, s.iotlb_flushes, s.iotlb_hits,
		       s.iotlb_misses, s.faults, P.raced, P.transient);
	TEST_ASSERT(s.invalidations > 0, "no invalidation");
	TEST_ASSERT(s.iotlb_flushes > 0, "no IOTLB flush");
	TEST_ASSERT(s.faults > 0 && s.walk_faults > 0, "no fault");
	if (hw) {
		ksft_print_msg("%s: PSC: %llu hits, %llu misses, %llu fills, %llu flushed\n",
			       P.name, s.psc_hits, s.psc_misses, s.psc_fills,
			       s.psc_flushes);
		TEST_ASSERT(s.psc_hits > 0 && s.psc_fills > 0 && s.psc_flushes > 0,
			    "%s: the PSC was not exercised", P.name);
	} else {
		TEST_ASSERT(!s.psc_hits && !s.psc_misses && !s.psc_fills,
			    "%s: a PSC without KTI_ATTACH_HW", P.name);
	}

	/* At rest, every page reads the same through the table and the host. */
	for (pg = 0; pg < USED_PAGES; pg++) {
		TEST_ASSERT_EQ(dma(KTI_DMA_READ, GPA(pg), dmabuf, PAGE_SIZE), 0);
		TEST_ASSERT(!memcmp(dmabuf, word(pg, 0), PAGE_SIZE),
			    "%s: page %u: DMA and host differ at rest", P.name, pg);
	}

	/* The TDP FD closed first: the attachment still works, then goes. */
	close(P.tdp);
	TEST_ASSERT_EQ(dma(KTI_DMA_READ, GPA(INTEG_FIRST), dmabuf, PAGE_SIZE), 0);
	TEST_ASSERT(!memcmp(dmabuf, word(INTEG_FIRST, 0), PAGE_SIZE),
		    "%s: DMA after the TDP FD was closed", P.name);
	TEST_ASSERT(!ioctl(P.iommu, KTI_DETACH, &P.id), "KTI_DETACH: %s",
		    strerror(errno));
	close(P.iommu);
	kvm_vm_free(P.vm);

	ksft_test_result_pass("%s: %u s of guest writes, zaps,%s DMA, faults, attach/detach and TDP FD close: no stale data\n",
			      P.name, secs, protected ? " conversions," : "");
}

int main(int argc, char *argv[])
{
	unsigned int secs = argc > 1 ? atoi(argv[1]) : PHASE_SECS;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	/* Missing support is a failure here, not a skip. */
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");
	TEST_ASSERT(kvm_check_cap(KVM_CAP_VM_TYPES) &
		    BIT(KVM_X86_SW_PROTECTED_VM), "no KVM_X86_SW_PROTECTED_VM");
	TEST_ASSERT(secs > 0, "usage: %s [seconds per phase]", argv[0]);

	ksft_print_header();
	ksft_set_plan(4);
	ksft_print_msg("%u s per phase, seed %#lx\n", secs, seed);
	run_phase(false, false, secs, seed);
	run_phase(true, false, secs, seed);
	run_phase(false, true, secs, seed);
	run_phase(true, true, secs, seed);
	ksft_finished();
}
