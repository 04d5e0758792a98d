// SPDX-License-Identifier: GPL-2.0
/*
 * Races of issue 12: an export's lifetime, and what an importer reads,
 * while KVM zaps roots and memslots change under it.  Each scenario races
 * threads for a bounded time (SCENARIO_SECS, or argv[1] seconds), counts
 * what each thread did and fails unless every thread made real progress,
 * so that none can pass by doing nothing.
 *
 * Every scenario runs in a child process of its own: a scenario that
 * leaves its VM bugged, dies or hangs (it is killed after its time plus
 * GRACE_SECS) is reported as failed and the others still run.  A KVM ioctl
 * that fails with EIO means KVM_BUG_ON() marked the VM dead, and fails the
 * scenario with that said.  After the race each VM must still work: a
 * KVM_RUN reaches the guest's next GUEST_SYNC, a new TDP FD is created and
 * a DMA read of every page of a slot that never changed returns its bytes,
 * and once all is closed no TDP FD object is left in debugfs.  The parent
 * also reads the kernel log (/dev/kmsg) after each scenario and fails it
 * for any kernel report printed meanwhile (WARNING, BUG, refcount_t, ...;
 * make check scans the whole log again), printing the report's first line.
 * It re-arms WARN_ONCE (debugfs clear_warn_once) before each scenario:
 * KVM_BUG_ON and refcount_t warn once, and a scenario must not pass
 * because an earlier one has used that warning up.
 *
 * The scenarios, in the order they run (the least destructive first: a
 * use-after-free can take the kernel down with the scenarios after it):
 *
 *  stale translations across memslot changes (issue 12.4), on a default
 *  VM, then on a KVM_X86_SW_PROTECTED_VM (whose export is a shared-view
 *  root of its own; the slot is alternately in guest_memfd and plain, its
 *  memory shared either way).  One thread changes the "churn" slot in a
 *  loop: deletes it; re-creates it at CHURN_GPA or MOVED_GPA backed by
 *  another of NR_BACKINGS buffers, filled beforehand with a new
 *  generation; deletes and re-creates it at once; or moves it
 *  (KVM_SET_USER_MEMORY_REGION2 with a new guest_phys_addr; never a
 *  guest_memfd slot, which cannot move).  On a default VM each delete and
 *  move is a fast zap of all roots (KVM_X86_QUIRK_SLOT_ZAP_ALL; once
 *  issue 12 is fixed, only while nothing is exported).  Every word of a
 *  backing holds (generation, page, word).  The thread publishes
 *  what is installed, (GPA or none, generation), as a sequence number:
 *  odd from before its first ioctl of a change, even (the new state) once
 *  the last has returned.  Two threads DMA-read random ranges of both GPA
 *  ranges through the IOTLB-caching Rust importer, reading the sequence
 *  before and after each read.  A fourth thread moves the importer to a
 *  new TDP FD every 50 ms or so (detach, close, create, attach), so that
 *  exports created while memslots change are read through too (a root
 *  exported while a fast zap invalidates it is skipped by every later
 *  fast zap, and keeps the old backing's translations).  A fifth thread
 *  faults a page of the data slot in with a DMA read (which must return
 *  its bytes, or EFAULT) and discards it, so that the mmu notifier's
 *  reports run concurrently with the memslot changes' (a report skipped
 *  because another was being delivered let a change's ioctl return before
 *  the importer had flushed).  A read that overlaps one state only (same
 *  even number before and after) must return exactly that backing's bytes
 *  at that GPA, or fail with EFAULT (a fault that lost to zaps) if the
 *  slot is there, with ENOENT or EFAULT if it is not.  A read overlapping a change may fail with
 *  ENOENT, EFAULT or EAGAIN, and each of its pages must hold the bytes of
 *  a state published during the read, at that GPA.  A buffer is
 *  refilled only while not installed, so a stale translation shows a
 *  generation that is not installed at that GPA.  Proves: the importer
 *  never sees bytes of memory that is not the slot's at that time.
 *
 *  export lifetime vs fast zaps (issue 12.1), default VM: one thread
 *  deletes and re-adds the churn slot (a fast zap each time, or each time
 *  nothing is exported); another
 *  creates a TDP FD, attaches the Rust importer, DMA-reads pages of the
 *  data slot (its bytes, or EFAULT) and of the churn slot (its bytes, or
 *  ENOENT/EFAULT/EAGAIN), detaches and closes, in a loop.  Proves: an
 *  export created and released at any point of a fast zap neither trips
 *  KVM_BUG_ON in kvm_tdp_mmu_zap_invalidated_roots() nor leaks a root.
 *
 *  create racing fast zaps (issue 12.3): TDP FDs created and closed in a
 *  tight loop (the importer attached and one page read every 8th time) vs
 *  deleting and re-adding a memslot (default VM), and vs toggling the kvm
 *  module's nx_huge_pages parameter, which fast-zaps every VM (default VM,
 *  then SW-protected VM, where memslot changes do not fast-zap).  The
 *  parameter is restored afterwards.  Proves: a root found or made by
 *  KVM_CREATE_TDP_FD while a fast zap runs is exported valid, and all of
 *  them are freed with the VM.
 *
 *  re-creation racing teardown (issue 12.2), SW-protected VM: two threads
 *  each create a TDP FD (EEXIST while the other's lives), every 4th time
 *  attach and read a page, and close it.  Proves: an export created while
 *  the previous one's shared-view root is being torn down gets a root of
 *  its own (no refcount underflow, no use after free).
 *
 * Usage: tdp_fd_race_test [seconds per scenario [scenario...]]
 * (scenarios by number, from 1 in the order above; all by default).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define SCENARIO_SECS	5
/* A scenario's time beyond its race: VM setup, checks, teardown. */
#define GRACE_SECS	120
/* Loops each racing thread must at least complete. */
#define MIN_ITERS	10

#define IOMMU_DEV	"/dev/kvm_tdp_iommu"
#define NX_PARAM	"/sys/module/kvm/parameters/nx_huge_pages"

#define DATA_GPA	0x40000000ULL	/* a slot that never changes */
#define DATA_SLOT	1
#define CHURN_GPA	0x80000000ULL	/* the slot that changes ... */
#define MOVED_GPA	0xc0000000ULL	/* ... and its other place */
#define CHURN_SLOT	2
#define PAGES		16
#define SLOT_SIZE	(PAGES * PAGE_SIZE)
#define WORDS		(PAGE_SIZE / 8)
#define NR_BACKINGS	3

/* Word @w of page @pg of memory holding generation @gen. */
#define TAG(gen, pg, w)	((uint64_t)(gen) << 32 | (uint64_t)(pg) << 16 | (w))
#define TAG_GEN(v)	((v) >> 32)
#define DATA_GEN	0xda7aULL	/* the data slot's */
#define CHURN_GEN	1ULL		/* the churn slot's first */

/* The scenario's VM (each scenario runs in a process of its own). */
static struct {
	const char *name;
	bool protected;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	char *data;			/* the data slot's memory */
	char *backing[NR_BACKINGS];	/* the churn slot's, in turn */
	int gmem;			/* SW-protected: the churn slot's guest_memfd */
} V;

struct worker {
	const char *name;
	void *(*fn)(void *arg);
	pthread_t thread;
	uint64_t seed;
	uint64_t iters;		/* loops completed */
	uint64_t ok;		/* DMA reads that returned checked bytes */
	uint64_t failed;	/* DMA reads that failed as allowed */
	uint64_t other;		/* the scenario's own count */
	unsigned int every;	/* exporter: attach and read every N TDP FDs */
	bool may_exist;		/* exporter: another thread exports too */
};

static bool stop;

static bool stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_ACQUIRE);
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

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A KVM ioctl's result @r must be success; EIO means KVM_BUG_ON().  @r is
 * evaluated first: errno is the ioctl's.
 */
#define KVM_OK(r, fmt, ...) do {					\
	int __failed = (r), __e = errno;				\
									\
	TEST_ASSERT(!__failed, "%s: " fmt ": %s%s", V.name,		\
		    ##__VA_ARGS__, strerror(__e), __e == EIO ?		\
		    " (the VM is bugged: KVM_BUG_ON)" : "");		\
} while (0)

static void guest_code(void)
{
	for (;;)
		GUEST_SYNC(0);
}

static void fill_page(char *mem, unsigned int pg, uint64_t gen)
{
	uint64_t *p = (uint64_t *)(mem + pg * PAGE_SIZE);
	unsigned int w;

	for (w = 0; w < WORDS; w++)
		WRITE_ONCE(p[w], TAG(gen, pg, w));
}

static void fill(char *mem, uint64_t gen)
{
	unsigned int pg;

	for (pg = 0; pg < PAGES; pg++)
		fill_page(mem, pg, gen);
}

/* Whether @n words read from word @w of page @pg are all of @gen. */
static bool words_are(const uint64_t *v, unsigned int n, uint64_t gen,
		      unsigned int pg, unsigned int w)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (v[i] != TAG(gen, pg, w + i))
			return false;
	return true;
}

/*
 * KVM_SET_USER_MEMORY_REGION2 of the churn slot: created, moved or
 * (@size 0) deleted.  Raw, to keep the loop tight; must work.
 */
static void churn_set(uint32_t flags, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = CHURN_SLOT,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
		.guest_memfd = flags & KVM_MEM_GUEST_MEMFD ? V.gmem : 0,
	};

	KVM_OK(ioctl(V.vm->fd, KVM_SET_USER_MEMORY_REGION2, &r),
	       "KVM_SET_USER_MEMORY_REGION2 slot %d at %#lx, size %#lx",
	       CHURN_SLOT, gpa, size);
}

/* KVM_CREATE_TDP_FD: the fd, or -EEXIST if @may_exist; else must work. */
static int tdp_create(bool may_exist)
{
	struct kvm_create_tdp_fd args = { .mode = KVM_TDP_FD_MODE_SHARED };
	int fd = ioctl(V.vm->fd, KVM_CREATE_TDP_FD, &args);

	if (fd < 0 && errno == EEXIST && may_exist)
		return -EEXIST;
	KVM_OK(fd < 0, "KVM_CREATE_TDP_FD");
	return fd;
}

static void detach(int dev, __u32 id)
{
	TEST_ASSERT(!ioctl(dev, KTI_DETACH, &id), "KTI_DETACH: %s",
		    strerror(errno));
}

/*
 * A DMA read of page @pg of the data slot, which never changes: 1 if it
 * returned the slot's bytes, 0 if it failed with EFAULT (its I/O page
 * faults lost to zaps, as a device's retried page request can).
 */
static int read_data_page(int dev, __u32 id, unsigned int pg)
{
	uint64_t buf[WORDS];
	int r;

	r = kti_dma(dev, KTI_DMA_READ, id, DATA_GPA + pg * PAGE_SIZE, buf,
		    PAGE_SIZE);
	if (r == -EFAULT)
		return 0;
	TEST_ASSERT(!r, "%s: DMA read of data page %u: %s", V.name, pg,
		    strerror(-r));
	TEST_ASSERT(words_are(buf, WORDS, DATA_GEN, pg, 0),
		    "%s: DMA read of data page %u: %#lx..., not its bytes",
		    V.name, pg, buf[0]);
	return 1;
}

/*
 * A DMA read of page @pg of the churn slot while another thread deletes
 * and re-adds it, always backed by backing 0 (generation CHURN_GEN): 1 if
 * it returned those bytes, 0 if it failed as a read racing a memslot
 * change may.
 */
static int read_churn_page(int dev, __u32 id, unsigned int pg)
{
	uint64_t buf[WORDS];
	int r;

	r = kti_dma(dev, KTI_DMA_READ, id, CHURN_GPA + pg * PAGE_SIZE, buf,
		    PAGE_SIZE);
	if (r == -ENOENT || r == -EFAULT || r == -EAGAIN)
		return 0;
	TEST_ASSERT(!r, "%s: DMA read of churn page %u: %s", V.name, pg,
		    strerror(-r));
	TEST_ASSERT(words_are(buf, WORDS, CHURN_GEN, pg, 0),
		    "%s: DMA read of churn page %u: %#lx..., not its bytes",
		    V.name, pg, buf[0]);
	return 1;
}

/* The scenario's VM: a vCPU, the data slot, the churn slot at CHURN_GPA. */
static void vm_setup(bool protected)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = protected ? KVM_X86_SW_PROTECTED_VM : VM_TYPE_DEFAULT,
	};
	unsigned int i;

	V.name = protected ? "SW-protected VM" : "default VM";
	V.protected = protected;
	V.vm = vm_create_shape_with_one_vcpu(shape, &V.vcpu, guest_code);
	vm_mem_add(V.vm, VM_MEM_SRC_ANONYMOUS, DATA_GPA, DATA_SLOT, PAGES,
		   protected ? KVM_MEM_GUEST_MEMFD : 0, -1, 0);
	V.data = addr_gpa2hva(V.vm, DATA_GPA);
	fill(V.data, DATA_GEN);
	for (i = 0; i < NR_BACKINGS; i++) {
		V.backing[i] = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TEST_ASSERT(V.backing[i] != MAP_FAILED, "mmap");
		/* 4K pages: each page its own translation. */
		TEST_ASSERT(!madvise(V.backing[i], SLOT_SIZE, MADV_NOHUGEPAGE),
			    "madvise(MADV_NOHUGEPAGE)");
	}
	if (protected)
		V.gmem = vm_create_guest_memfd(V.vm, SLOT_SIZE, 0);
	fill(V.backing[0], CHURN_GEN);
	churn_set(0, CHURN_GPA, SLOT_SIZE, V.backing[0]);
}

/*
 * After the race, the VM must still work: KVM_RUN reaches the guest's next
 * GUEST_SYNC (a bugged VM fails it with EIO), a new TDP FD can be created
 * and every page of the data slot reads right through it.  Then the VM is
 * freed, and no TDP FD object may be left.
 */
static void vm_check_and_free(void)
{
	unsigned int pg;
	int dev, tdp;
	__u32 id;

	KVM_OK(__vcpu_run(V.vcpu), "KVM_RUN after the race");
	expect_ucall(V.vcpu, 0);
	tdp = tdp_create(false);
	dev = kti_open(IOMMU_DEV);
	id = kti_attach(dev, tdp, 0);
	for (pg = 0; pg < PAGES; pg++)
		TEST_ASSERT(read_data_page(dev, id, pg),
			    "%s: data page %u: EFAULT with nothing racing",
			    V.name, pg);
	detach(dev, id);
	close(tdp);
	close(dev);
	kvm_vm_free(V.vm);
	if (V.gmem > 0)
		close(V.gmem);
	TEST_ASSERT_EQ(tdp_fd_debugfs_dirs(NULL, 0), 0);
}

/* Runs @n workers for @secs seconds, then stops and joins them. */
static void race(struct worker *w, unsigned int n, unsigned int secs)
{
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	double end = now() + secs;
	unsigned int i;

	for (i = 0; i < n; i++) {
		w[i].seed = seed * (i + 1) ?: 1;
		TEST_ASSERT(!pthread_create(&w[i].thread, NULL, w[i].fn, &w[i]),
			    "pthread_create");
		/* Named, for the kernel's messages about them. */
		pthread_setname_np(w[i].thread, w[i].name);
	}
	while (now() < end)
		usleep(50 * 1000);
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	for (i = 0; i < n; i++) {
		TEST_ASSERT(!pthread_join(w[i].thread, NULL), "pthread_join");
		ksft_print_msg("%s: %s: %lu iterations, %lu DMA reads checked, %lu failed as allowed, %lu other\n",
			       V.name, w[i].name, w[i].iters, w[i].ok,
			       w[i].failed, w[i].other);
	}
	for (i = 0; i < n; i++)
		TEST_ASSERT(w[i].iters >= MIN_ITERS,
			    "%s: %s: %lu iterations, fewer than %d: too little happened",
			    V.name, w[i].name, w[i].iters, MIN_ITERS);
}

/* Deletes and re-adds the churn slot: on a default VM, a fast zap each time. */
static void *slot_zapper_thread(void *arg)
{
	struct worker *w = arg;

	for (; !stopping(); w->iters++) {
		churn_set(0, CHURN_GPA, 0, NULL);
		churn_set(0, CHURN_GPA, SLOT_SIZE, V.backing[0]);
	}
	return NULL;
}

static void nx_write(const char *val)
{
	int fd = open(NX_PARAM, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open(%s): %s", NX_PARAM, strerror(errno));
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val),
		    "write %s to %s: %s", val, NX_PARAM, strerror(errno));
	close(fd);
}

/* The nx_huge_pages parameter, as read; "" if it cannot be read. */
static void nx_read(char *val, size_t len)
{
	FILE *f = fopen(NX_PARAM, "r");

	val[0] = 0;
	if (f && fgets(val, len, f))
		val[strcspn(val, "\n")] = 0;
	if (f)
		fclose(f);
}

/* Toggles nx_huge_pages: each change fast-zaps every VM. */
static void *nx_toggler_thread(void *arg)
{
	struct worker *w = arg;

	for (; !stopping(); w->iters++)
		nx_write(w->iters & 1 ? "N" : "Y");
	return NULL;
}

/*
 * Creates and closes TDP FDs; every w->every-th one, attaches the Rust
 * importer and DMA-reads pages of the data and churn slots in between.
 * With w->may_exist another thread exports too: EEXIST counts as "other".
 */
static void *exporter_thread(void *arg)
{
	struct worker *w = arg;
	int dev = kti_open(IOMMU_DEV);
	unsigned int k;
	int tdp;
	__u32 id;

	while (!stopping()) {
		tdp = tdp_create(w->may_exist);
		if (tdp < 0) {
			w->other++;
			continue;
		}
		if (!(w->iters % w->every)) {
			id = kti_attach(dev, tdp, 0);
			for (k = 0; k < (w->every > 1 ? 1 : 3); k++) {
				if (read_data_page(dev, id, rnd(&w->seed) % PAGES))
					w->ok++;
				else
					w->failed++;
				if (read_churn_page(dev, id, rnd(&w->seed) % PAGES))
					w->ok++;
				else
					w->failed++;
			}
			detach(dev, id);
		}
		close(tdp);
		w->iters++;
	}
	close(dev);
	return NULL;
}

static void assert_reads(struct worker *w, unsigned int n)
{
	uint64_t ok = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		ok += w[i].ok;
	TEST_ASSERT(ok > 0, "%s: no DMA read succeeded", V.name);
}

/* Issue 12.1: a TDP FD's whole life, in a loop, vs memslot fast zaps. */
static void scenario_lifetime(unsigned int secs)
{
	struct worker w[] = {
		{ "slot zapper", slot_zapper_thread },
		{ "exporter", exporter_thread, .every = 1 },
	};

	vm_setup(false);
	race(w, ARRAY_SIZE(w), secs);
	assert_reads(w, ARRAY_SIZE(w));
	vm_check_and_free();
}

/* Issue 12.3: KVM_CREATE_TDP_FD vs memslot fast zaps (default VM). */
static void scenario_create_slot(unsigned int secs)
{
	struct worker w[] = {
		{ "slot zapper", slot_zapper_thread },
		{ "exporter", exporter_thread, .every = 8 },
	};

	vm_setup(false);
	race(w, ARRAY_SIZE(w), secs);
	assert_reads(w, ARRAY_SIZE(w));
	vm_check_and_free();
}

/* Issue 12.3: KVM_CREATE_TDP_FD vs nx_huge_pages fast zaps. */
static void scenario_create_nx(unsigned int secs, bool protected)
{
	struct worker w[] = {
		{ "nx_huge_pages toggler", nx_toggler_thread },
		{ "exporter", exporter_thread, .every = 8 },
	};

	vm_setup(protected);
	race(w, ARRAY_SIZE(w), secs);
	assert_reads(w, ARRAY_SIZE(w));
	vm_check_and_free();
}

static void scenario_create_nx_default(unsigned int secs)
{
	scenario_create_nx(secs, false);
}

static void scenario_create_nx_protected(unsigned int secs)
{
	scenario_create_nx(secs, true);
}

/* Issue 12.2: two threads creating and closing TDP FDs, SW-protected VM. */
static void scenario_recreate(unsigned int secs)
{
	struct worker w[] = {
		{ "exporter 1", exporter_thread, .every = 4, .may_exist = true },
		{ "exporter 2", exporter_thread, .every = 4, .may_exist = true },
	};

	vm_setup(true);
	race(w, ARRAY_SIZE(w), secs);
	assert_reads(w, ARRAY_SIZE(w));
	vm_check_and_free();
}

/*
 * Issue 12.4.  The churn slot's states: even sequence number k means
 * states[k % RING] is installed, odd means it is changing from the state
 * before to the state after, which is written before the odd number is
 * published.
 */
#define RING		1024
#define SHOWN		8	/* violations printed; all are counted */

struct slot_state {
	uint64_t gpa;		/* CHURN_GPA, MOVED_GPA, or 0: no slot */
	uint64_t gen;		/* the generation its backing holds */
};

static struct {
	uint64_t seq;
	struct slot_state states[RING];
	/*
	 * The Rust importer's attachment to the VM's TDP FD, which the
	 * re-exporter replaces now and then (holding the lock for write).
	 */
	pthread_rwlock_t lock;
	int dev;
	int tdp;
	__u32 id;
	uint64_t stale;		/* reads that returned bytes not installed */
	uint64_t unchecked;	/* reads that outlived RING / 4 changes */
	uint64_t overlapping;	/* reads that returned the state before a change */
} S;

static void stale(uint64_t gpa, uint64_t len, uint64_t s1, uint64_t s2,
		  const char *what, uint64_t v)
{
	uint64_t n = __atomic_add_fetch(&S.stale, 1, __ATOMIC_SEQ_CST);
	struct slot_state st = S.states[(s1 & ~1ULL) % RING];

	if (n <= SHOWN)
		ksft_print_msg("%s: STALE: DMA read [%#lx, +%#lx) during states %lu-%lu (slot at %#lx, generation %lu when it began): %s (word %#lx, generation %lu)\n",
			       V.name, gpa, len, s1, s2, st.gpa, st.gen, what,
			       v, TAG_GEN(v));
}

/* Checks one DMA read (see the header comment for the rules). */
static void check_read(struct worker *w, uint64_t base, uint64_t off,
		       uint64_t len, const uint64_t *buf, int r, uint64_t s1,
		       uint64_t s2)
{
	struct slot_state c[RING / 4 + 1];
	uint64_t lo = s1 & ~1ULL, hi = (s2 + 1) & ~1ULL, k, at, n, s3;
	unsigned int i, nc = 0, pg, wd;
	bool stable = s1 == s2 && !(s1 & 1), match;

	if (hi - lo > RING / 2) {
		__atomic_add_fetch(&S.unchecked, 1, __ATOMIC_RELAXED);
		return;
	}
	for (k = lo; k <= hi; k += 2)
		c[nc++] = S.states[k % RING];
	s3 = load(&S.seq);
	if (s3 + 2 >= lo + RING) {
		__atomic_add_fetch(&S.unchecked, 1, __ATOMIC_RELAXED);
		return;
	}

	if (r) {
		if (stable && c[0].gpa == base) {
			/* The slot was there all along: only a lost fault. */
			TEST_ASSERT(r == -EFAULT,
				    "%s: DMA read [%#lx, +%#lx) with the slot installed there throughout (state %lu): %s",
				    V.name, base + off, len, s1, strerror(-r));
		} else {
			TEST_ASSERT(r == -ENOENT || r == -EFAULT ||
				    (!stable && r == -EAGAIN),
				    "%s: DMA read [%#lx, +%#lx) during states %lu-%lu: %s",
				    V.name, base + off, len, s1, s2, strerror(-r));
		}
		w->failed++;
		return;
	}

	/* Succeeded: page by page, the bytes of a state at this GPA. */
	for (at = off; at < off + len; at += n) {
		pg = at / PAGE_SIZE;
		wd = (at % PAGE_SIZE) / 8;
		n = PAGE_SIZE - at % PAGE_SIZE;
		if (n > off + len - at)
			n = off + len - at;
		match = false;
		for (i = 0; i < nc && !match; i++)
			match = c[i].gpa == base &&
				words_are(buf + (at - off) / 8, n / 8, c[i].gen,
					  pg, wd);
		if (!match) {
			stale(base + off, len, s1, s2,
			      stable && c[0].gpa != base ?
			      "succeeded where no slot was installed" :
			      "bytes of no backing installed there",
			      buf[(at - off) / 8]);
			return;
		}
	}
	if (stable)
		w->ok++;
	else
		w->other++;
	/*
	 * The bytes of the state the read began in, though a later one was
	 * installed by the time it returned: right, but what a check that
	 * only looks at the state after the read would call stale.
	 */
	n = min(len, (uint64_t)(PAGE_SIZE - off % PAGE_SIZE));
	if (!stable && c[0].gpa == base &&
	    (c[nc - 1].gpa != base || c[nc - 1].gen != c[0].gen) &&
	    words_are(buf, n / 8, c[0].gen, off / PAGE_SIZE,
		      (off % PAGE_SIZE) / 8))
		__atomic_add_fetch(&S.overlapping, 1, __ATOMIC_RELAXED);
}

static void *reader_thread(void *arg)
{
	uint64_t buf[2 * WORDS], base, off, len, s1, s2, r;
	struct worker *w = arg;
	int err;

	for (; !stopping(); w->iters++) {
		r = rnd(&w->seed);
		base = r & 1 ? MOVED_GPA : CHURN_GPA;
		off = ((r >> 1) % (PAGES * WORDS)) * 8;
		len = 8 * (1 + (r >> 20) % (2 * WORDS));
		if (len > SLOT_SIZE - off)
			len = SLOT_SIZE - off;
		pthread_rwlock_rdlock(&S.lock);
		s1 = load(&S.seq);
		err = kti_dma(S.dev, KTI_DMA_READ, S.id, base + off, buf, len);
		s2 = load(&S.seq);
		pthread_rwlock_unlock(&S.lock);
		check_read(w, base, off, len, buf, err, s1, s2);
	}
	return NULL;
}

/* Publishes state @st as the next one: odd number first, then even. */
static uint64_t begin_change(struct slot_state st)
{
	uint64_t k = load(&S.seq);

	S.states[(k + 2) % RING] = st;
	store(&S.seq, k + 1);
	return k + 2;
}

static void *churn_thread(void *arg)
{
	struct slot_state cur = S.states[0], next;
	unsigned int b = 0, nb;
	struct worker *w = arg;
	bool gmem = false;
	uint32_t flags;
	uint64_t r, k;

	for (; !stopping(); w->iters++) {
		r = rnd(&w->seed);
		/* A stable window for the readers. */
		usleep((r >> 8) % 2000);

		if (cur.gpa && r % 4 == 0) {
			/* Deleted. */
			next = (struct slot_state){ 0, cur.gen };
			k = begin_change(next);
			churn_set(0, cur.gpa, 0, NULL);
		} else if (cur.gpa && r % 4 == 1 && !gmem) {
			/* Moved: same backing, same bytes, the other GPA. */
			next = (struct slot_state){
				cur.gpa == CHURN_GPA ? MOVED_GPA : CHURN_GPA,
				cur.gen
			};
			k = begin_change(next);
			churn_set(0, next.gpa, SLOT_SIZE, V.backing[b]);
			w->other++;
		} else {
			/*
			 * (Deleted and) re-created on the next backing, which
			 * no slot has mapped since it was last deleted: fill
			 * it with a new generation first.
			 */
			nb = (b + 1) % NR_BACKINGS;
			fill(V.backing[nb], cur.gen + 1);
			next = (struct slot_state){
				(r >> 4) & 1 ? MOVED_GPA : CHURN_GPA,
				cur.gen + 1
			};
			flags = V.protected && (r >> 5) & 1 ?
				KVM_MEM_GUEST_MEMFD : 0;
			k = begin_change(next);
			if (cur.gpa)
				churn_set(0, cur.gpa, 0, NULL);
			churn_set(flags, next.gpa, SLOT_SIZE, V.backing[nb]);
			gmem = flags;
			b = nb;
		}
		store(&S.seq, k);
		cur = next;
	}
	return NULL;
}

/*
 * Now and then, the importer moves to a new TDP FD: detached, the TDP FD
 * closed, a new one created and attached, as a VMM re-plugging a device
 * would, so that exports created while memslots change are read through
 * too.
 */
static void *reexporter_thread(void *arg)
{
	struct worker *w = arg;

	for (; !stopping(); w->iters++) {
		usleep(rnd(&w->seed) % (100 * 1000));
		pthread_rwlock_wrlock(&S.lock);
		detach(S.dev, S.id);
		close(S.tdp);
		S.tdp = tdp_create(false);
		S.id = kti_attach(S.dev, S.tdp, 0);
		pthread_rwlock_unlock(&S.lock);
	}
	return NULL;
}

/*
 * Other zaps report meanwhile: the mmu notifier's, for a page of the data
 * slot that a DMA read has just faulted in and that is then discarded (and
 * written again).  A memslot change's report must reach the importer
 * before its ioctl returns even while another report is being delivered.
 */
static void *discarder_thread(void *arg)
{
	struct worker *w = arg;
	unsigned int pg;

	for (; !stopping(); w->iters++) {
		pg = rnd(&w->seed) % PAGES;
		pthread_rwlock_rdlock(&S.lock);
		if (read_data_page(S.dev, S.id, pg))
			w->ok++;
		else
			w->failed++;
		pthread_rwlock_unlock(&S.lock);
		TEST_ASSERT(!madvise(V.data + pg * PAGE_SIZE, PAGE_SIZE,
				     MADV_DONTNEED), "madvise(MADV_DONTNEED)");
		fill_page(V.data, pg, DATA_GEN);
	}
	return NULL;
}

/* Issue 12.4: stale translations across memslot delete, re-create, move. */
static void scenario_stale(unsigned int secs, bool protected)
{
	struct worker w[] = {
		{ "re-exporter", reexporter_thread },
		{ "discarder", discarder_thread },
		{ "slot churn", churn_thread },
		{ "reader 1", reader_thread },
		{ "reader 2", reader_thread },
	};
	uint64_t ok = 0, total = 0, buf[WORDS];
	pthread_rwlockattr_t attr;
	struct slot_state st;
	unsigned int i, pg;
	int r;

	vm_setup(protected);
	S.states[0] = (struct slot_state){ CHURN_GPA, CHURN_GEN };
	/* Readers never stop: the re-exporter must not wait for a gap. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&S.lock, &attr);
	S.tdp = tdp_create(false);
	S.dev = kti_open(IOMMU_DEV);
	S.id = kti_attach(S.dev, S.tdp, 0);

	race(w, ARRAY_SIZE(w), secs);

	for (i = 3; i < ARRAY_SIZE(w); i++) {
		ok += w[i].ok;
		total += w[i].iters;
	}
	ksft_print_msg("%s: %lu slot changes (%lu moves), %lu of %lu DMA reads returned stale bytes, %lu unchecked; %lu overlapped a change and returned the state before it\n",
		       V.name, w[2].iters, w[2].other, S.stale, total,
		       S.unchecked, S.overlapping);
	TEST_ASSERT(!S.stale,
		    "%s: %lu of %lu DMA reads returned bytes of memory not installed at that GPA",
		    V.name, S.stale, total);
	TEST_ASSERT(ok > 0, "%s: no DMA read succeeded in a stable state",
		    V.name);

	/* At rest: the whole slot, where it is, and nothing where it is not. */
	st = S.states[load(&S.seq) % RING];
	for (pg = 0; pg < PAGES; pg++) {
		r = kti_dma(S.dev, KTI_DMA_READ, S.id, CHURN_GPA + pg * PAGE_SIZE,
			    buf, PAGE_SIZE);
		if (st.gpa == CHURN_GPA) {
			TEST_ASSERT(!r && words_are(buf, WORDS, st.gen, pg, 0),
				    "%s: churn page %u at rest: %s %#lx",
				    V.name, pg, strerror(-r), buf[0]);
		} else {
			TEST_ASSERT(r == -ENOENT,
				    "%s: churn page %u at rest, no slot there: %s",
				    V.name, pg, r ? strerror(-r) : "read");
		}
	}
	detach(S.dev, S.id);
	close(S.dev);
	close(S.tdp);
	vm_check_and_free();
}

static void scenario_stale_default(unsigned int secs)
{
	scenario_stale(secs, false);
}

static void scenario_stale_protected(unsigned int secs)
{
	scenario_stale(secs, true);
}

static const struct scenario {
	const char *name;
	void (*fn)(unsigned int secs);
	bool nx;	/* changes nx_huge_pages: restored after */
} scenarios[] = {
	{ "12.4 default VM: DMA reads vs memslot delete, re-create, move: no stale bytes",
	  scenario_stale_default },
	{ "12.4 SW-protected VM: DMA reads vs memslot delete, re-create, move: no stale bytes",
	  scenario_stale_protected },
	{ "12.1 default VM: TDP FD create, attach, DMA, detach, close vs memslot fast zaps",
	  scenario_lifetime },
	{ "12.3 default VM: TDP FD create, close vs memslot fast zaps",
	  scenario_create_slot },
	{ "12.3 default VM: TDP FD create, close vs nx_huge_pages fast zaps",
	  scenario_create_nx_default, true },
	{ "12.3 SW-protected VM: TDP FD create, close vs nx_huge_pages fast zaps",
	  scenario_create_nx_protected, true },
	{ "12.2 SW-protected VM: two threads creating and closing TDP FDs",
	  scenario_recreate },
};

/* What the kernel log holds that is a report (scripts/kernel-reports.txt). */
static const char *const kernel_reports[] = {
	"WARNING:", "BUG:", "Oops", "general protection", "kernel BUG at",
	"refcount_t:", "KASAN", "KFENCE", "UBSAN", "possible circular locking",
	"possible recursive locking", "inconsistent lock state",
	"suspicious RCU usage", "list_add corruption", "list_del corruption",
	"Bad page state", "Bad page map", "soft lockup", "hard LOCKUP",
	"detected stall", "INFO: task", "scheduling while atomic",
	"sleeping function called from invalid context",
};

/* /dev/kmsg, at the end of the log; -1 if it cannot be read. */
static int kmsg_open(void)
{
	int fd = kmsg_open_at_end();

	if (fd < 0)
		ksft_print_msg("/dev/kmsg: %s: kernel reports left to make check\n",
			       strerror(errno));
	return fd;
}

/* The kernel reports logged since the last call, each printed; how many. */
static int kmsg_reports(int fd)
{
	char rec[8192];
	unsigned int i;
	int n = 0;

	if (fd < 0)
		return 0;
	while (kmsg_next(fd, rec, sizeof(rec))) {
		for (i = 0; i < ARRAY_SIZE(kernel_reports); i++) {
			if (strstr(rec, kernel_reports[i])) {
				ksft_print_msg("kernel: %s\n", rec);
				n++;
				break;
			}
		}
	}
	return n;
}

/*
 * Re-arms every WARN_ONCE (KVM_BUG_ON's, refcount_t's, ...): a scenario's
 * report must not be hidden because an earlier one triggered it first.
 */
static void rearm_warn_once(void)
{
	int fd = open("/sys/kernel/debug/clear_warn_once", O_WRONLY);

	if (fd < 0 || write(fd, "1", 1) != 1)
		ksft_print_msg("clear_warn_once: %s: a report already made is not repeated\n",
			       strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * Runs @s in a child process, killed if it outlives its time; the
 * scenario's verdict: its exit status and the kernel's log meanwhile.
 */
static void run_scenario(const struct scenario *s, unsigned int secs, int kmsg)
{
	double start = now(), deadline = start + secs + GRACE_SECS;
	bool killed = false;
	char nx[16] = "";
	int status, reports;
	pid_t pid;

	if (s->nx)
		nx_read(nx, sizeof(nx));
	ksft_print_msg("%s\n", s->name);
	rearm_warn_once();
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (!pid) {
		s->fn(secs);
		exit(0);
	}
	while (!waitpid(pid, &status, WNOHANG)) {
		if (now() > deadline && !killed) {
			ksft_print_msg("still running after %u s: killed\n",
				       secs + GRACE_SECS);
			kill(pid, SIGKILL);
			killed = true;
		}
		usleep(50 * 1000);
	}
	if (s->nx && nx[0] && strcmp(nx, "never"))
		nx_write(nx);
	/* Reports from the VM's destruction at the child's exit, too. */
	usleep(200 * 1000);
	reports = kmsg_reports(kmsg);

	if (WIFSIGNALED(status))
		ksft_print_msg("died of signal %d\n", WTERMSIG(status));
	else if (WEXITSTATUS(status))
		ksft_print_msg("failed: exit code %d\n", WEXITSTATUS(status));
	if (reports)
		ksft_print_msg("%d kernel reports while it ran\n", reports);
	ksft_print_msg("%.1f s\n", now() - start);
	ksft_test_result(!killed && WIFEXITED(status) && !WEXITSTATUS(status) &&
			 !reports, "%s\n", s->name);
}

/* Whether scenario @i (from 1) is among the numbers in @argv[2...]. */
static bool selected(int argc, char *argv[], unsigned int i)
{
	int a;

	for (a = 2; a < argc; a++)
		if ((unsigned int)atoi(argv[a]) == i)
			return true;
	return argc <= 2;
}

int main(int argc, char *argv[])
{
	unsigned int secs = argc > 1 ? atoi(argv[1]) : SCENARIO_SECS;
	unsigned int i;
	int kmsg;

	/* Missing support is a failure here, not a skip. */
	TEST_ASSERT(secs > 0, "usage: %s [seconds per scenario [scenario...]]",
		    argv[0]);
	TEST_ASSERT(kvm_has_cap(KVM_CAP_TDP_FD), "KVM_CAP_TDP_FD missing");
	TEST_ASSERT(kvm_check_cap(KVM_CAP_VM_TYPES) &
		    BIT(KVM_X86_SW_PROTECTED_VM), "no KVM_X86_SW_PROTECTED_VM");
	TEST_ASSERT(kvm_check_cap(KVM_CAP_DISABLE_QUIRKS2) &
		    KVM_X86_QUIRK_SLOT_ZAP_ALL,
		    "no KVM_X86_QUIRK_SLOT_ZAP_ALL: memslot changes are no fast zaps");

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(scenarios));
	ksft_print_msg("%u s per scenario\n", secs);
	kmsg = kmsg_open();
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		if (selected(argc, argv, i + 1))
			run_scenario(&scenarios[i], secs, kmsg);
		else
			ksft_test_result_skip("%s\n", scenarios[i].name);
	}
	ksft_finished();
}
