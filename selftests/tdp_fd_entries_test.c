// SPDX-License-Identifier: GPL-2.0
/*
 * What an importer reads in KVM's table, checked against the platform it
 * runs on: NPT under QEMU (make check), EPT in Bochs (make check-ept).
 *
 *  1. The metadata (KTI_C_META, the C importer's copy of get_metadata()):
 *     the type of the host's vendor; KVM's present bit (bit 11) as the
 *     present mask and value; bits 51:12 as the address; the format's own
 *     bits: EPT execute (bit 2) and, exactly when kvm_intel.eptad is on,
 *     A/D bits 8/9; NPT no-execute (bit 63) and A/D bits 5/6; the
 *     must-be-zero table: bits 51:MAXPHYADDR at every level, the address
 *     bits below a 2M or 1G leaf's alignment; KVM's software bits apart
 *     from every hardware bit; the MMIO value, when KVM caches MMIO
 *     (kvm.mmio_caching), never present (EPT: write+execute with read
 *     clear, a misconfiguration; NPT: present with a reserved bit).
 *  2. Leaves as the Rust importer's walk reads them (KTI_STATS'
 *     last_leaf_entry): 4K and 2M leaves the vCPU faulted and 4K leaves the
 *     importer faulted have the same memory type (EPT: write-back, with the
 *     same ignore-PAT bit; NPT: no cache-control bit), the page-size bit
 *     exactly on 2M leaves; a read-only memslot's leaf is readable and not
 *     writable: DMA reads it, a DMA write is refused with EROFS and leaves
 *     the guest's bytes as they were.
 *  3. MMIO: a guest access to a GPA without a memslot leaves KVM's MMIO
 *     entry in the table (with kvm.mmio_caching); the importer's walk ends
 *     there as MMIO (mmio_walks), never as a page, and the DMA fails with
 *     ENOENT.
 *  4. EPT: with KVM_X86_QUIRK_IGNORE_GUEST_PAT disabled, where the CPU
 *     allows it, the vCPU's and the importer's leaves are write-back
 *     without ignore-PAT alike; where it does not, both ignore PAT.
 *  5. Dirty logging while exported: over three rounds of fetching the log,
 *     every vCPU write and every importer write (through a translation
 *     cached writable before logging started) is in the log: with PML, KVM
 *     write-protects the exported root instead of clearing D bits.
 *  6. PML (kvm_intel.pml): with it, KVM_CREATE_TDP_FD is EBUSY while a
 *     memslot logs dirty pages (writes through an exported root would not
 *     be logged); without it, the export is made.  Either way it is made
 *     once dirty logging is off.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "tdp_fd_util.h"

#define THP_GPA		0x40000000ULL	/* 2M-aligned, THP-backed */
#define THP_SLOT	1
#define SMALL_GPA	0x40200000ULL	/* 4K-backed */
#define SMALL_SLOT	2
#define RO_GPA		0x40400000ULL	/* read-only memslot */
#define RO_SLOT		3
#define SLOT_PAGES	512
#define RO_PAGES	16
#define MMIO_GPA	0x7f000000ULL	/* no memslot */
#define WRITTEN		8
#define UNTOUCHED	(SMALL_GPA + 100 * 4096)
#define PATTERN		0x656e747269657321ULL
#define RO_PATTERN	0x726561646f6e6c79ULL

#define BIT_ULL_(n)	(1ULL << (n))
#define BITS(hi, lo)	((~0ULL >> (63 - (hi))) & ~(BIT_ULL_(lo) - 1))

/* enum kvm_exported_tdp_type (include/linux/kvm_tdp_fd.h) */
#define TYPE_NPT	1
#define TYPE_EPT	2
#define KVM_PRESENT	BIT_ULL_(11)
/* EPT */
#define EPT_R		BIT_ULL_(0)
#define EPT_W		BIT_ULL_(1)
#define EPT_X		BIT_ULL_(2)
#define EPT_MT(e)	(((e) >> 3) & 7)
#define EPT_MT_WB	6
#define EPT_IPAT	BIT_ULL_(6)
/* NPT */
#define NPT_P		BIT_ULL_(0)
#define NPT_RW		BIT_ULL_(1)
#define NPT_US		BIT_ULL_(2)
#define NPT_PWT		BIT_ULL_(3)
#define NPT_PCD		BIT_ULL_(4)
#define NPT_PAT4K	BIT_ULL_(7)
#define NPT_NX		BIT_ULL_(63)
#define PS		BIT_ULL_(7)

static void guest_code(void)
{
	int i;

	for (i = 0; i < WRITTEN; i++) {
		*(volatile uint64_t *)(THP_GPA + i * 4096) = PATTERN ^ i;
		*(volatile uint64_t *)(SMALL_GPA + i * 4096) = PATTERN ^ i;
	}
	/* Reads map the read-only slot (userspace filled it). */
	GUEST_ASSERT_EQ(*(volatile uint64_t *)RO_GPA, RO_PATTERN);
	GUEST_SYNC(1);
	/* Emulated MMIO, twice: KVM caches the first miss as an MMIO entry. */
	GUEST_ASSERT_EQ(*(volatile uint64_t *)MMIO_GPA, 1);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)MMIO_GPA, 2);
	GUEST_SYNC(2);
	GUEST_DONE();
}

static struct kti_c_meta get_meta(int dev, __u32 id)
{
	struct kti_c_meta m = { .id = id };

	TEST_ASSERT(!ioctl(dev, KTI_C_META, &m), "KTI_C_META: %s", strerror(errno));
	return m;
}

static void test_metadata(const struct kti_c_meta *m)
{
	uint64_t phys = this_cpu_property(X86_PROPERTY_MAX_PHY_ADDR);
	bool ept = host_cpu_is_intel;
	uint64_t hw, sw, above = BITS(51, phys);
	int l;

	TEST_ASSERT_EQ(m->type, ept ? TYPE_EPT : TYPE_NPT);
	TEST_ASSERT(m->levels == 4 || m->levels == 5, "levels %u", m->levels);
	TEST_ASSERT(m->max_huge_page_level >= 2 && m->max_huge_page_level <= 3,
		    "max_huge_page_level %u", m->max_huge_page_level);
	TEST_ASSERT_EQ(m->present_mask, KVM_PRESENT);
	TEST_ASSERT_EQ(m->present_value, KVM_PRESENT);
	TEST_ASSERT_EQ(m->pfn_mask, BITS(51, 12));
	if (ept) {
		bool ad = param_is_yes("/sys/module/kvm_intel/parameters/eptad");

		TEST_ASSERT_EQ(m->fmt_mask, EPT_X);
		TEST_ASSERT_EQ(m->accessed_mask, ad ? BIT_ULL_(8) : 0);
		TEST_ASSERT_EQ(m->dirty_mask, ad ? BIT_ULL_(9) : 0);
		/* ... and bit 10 (user execute), bit 63 (suppress #VE). */
		hw = EPT_R | EPT_W | EPT_X | BITS(5, 3) | EPT_IPAT | PS |
		     BITS(10, 8) | BIT_ULL_(63);
	} else {
		TEST_ASSERT_EQ(m->fmt_mask, NPT_NX);
		TEST_ASSERT_EQ(m->accessed_mask, BIT_ULL_(5));
		TEST_ASSERT_EQ(m->dirty_mask, BIT_ULL_(6));
		hw = NPT_P | NPT_RW | NPT_US | NPT_PWT | NPT_PCD | BITS(6, 5) |
		     PS | NPT_NX;
	}
	/*
	 * Bits the CPU reads are never KVM's own.  KVM's are: the present bit,
	 * the A/D-disabled field (bits 53:52), host- and MMU-writable (EPT:
	 * 57, 58; NPT: 9, 10).
	 */
	sw = KVM_PRESENT | BITS(53, 52) | (ept ? BITS(58, 57) : BITS(10, 9));
	TEST_ASSERT((m->kvm_sw_mask & sw) == sw, "kvm_sw_mask %#llx lacks %#lx",
		    m->kvm_sw_mask, sw);
	TEST_ASSERT(!(m->kvm_sw_mask & (hw | m->pfn_mask)),
		    "kvm_sw_mask %#llx has hardware bits", m->kvm_sw_mask);

	/* Must-be-zero: above MAXPHYADDR everywhere, below a leaf's size. */
	for (l = 0; l < (int)m->levels; l++)
		TEST_ASSERT((m->rsvd_bits_mask[0][l] & above) == above,
			    "rsvd[0][%d] %#llx lacks bits 51:%lu", l,
			    m->rsvd_bits_mask[0][l], phys);
	TEST_ASSERT((m->rsvd_bits_mask[1][1] & BITS(20, 13)) == BITS(20, 13),
		    "2M leaf: rsvd %#llx", m->rsvd_bits_mask[1][1]);
	if (m->max_huge_page_level >= 3)
		TEST_ASSERT((m->rsvd_bits_mask[1][2] & BITS(29, 13)) == BITS(29, 13),
			    "1G leaf: rsvd %#llx", m->rsvd_bits_mask[1][2]);
	if (ept) {
		/*
		 * EPT's own (SDM 29.3.2): a table entry of level 4 or 5 has no
		 * memory type, ignore-PAT or page size (bits 7:3), one of level
		 * 2 or 3 no memory type or ignore-PAT (6:3); a 2M or 1G leaf has
		 * no PAT bit (12) below its address.
		 */
		for (l = 3; l < (int)m->levels; l++)
			TEST_ASSERT((m->rsvd_bits_mask[0][l] & BITS(7, 3)) == BITS(7, 3),
				    "EPT level %d: rsvd %#llx", l + 1,
				    m->rsvd_bits_mask[0][l]);
		for (l = 1; l < 3; l++)
			TEST_ASSERT((m->rsvd_bits_mask[0][l] & BITS(6, 3)) == BITS(6, 3),
				    "EPT level %d: rsvd %#llx", l + 1,
				    m->rsvd_bits_mask[0][l]);
		TEST_ASSERT(m->rsvd_bits_mask[1][1] & BIT_ULL_(12),
			    "EPT 2M leaf: rsvd %#llx", m->rsvd_bits_mask[1][1]);
	}

	/* KVM's MMIO entries are never present, by either test. */
	if (param_is_yes("/sys/module/kvm/parameters/mmio_caching")) {
		TEST_ASSERT(m->mmio_value, "MMIO caching on, no MMIO value");
		TEST_ASSERT((m->mmio_value & m->mmio_mask) == m->mmio_value,
			    "MMIO value %#llx outside its mask %#llx",
			    m->mmio_value, m->mmio_mask);
		TEST_ASSERT((m->mmio_value & m->present_mask) != m->present_value,
			    "MMIO value %#llx looks present", m->mmio_value);
		/* EPT: KVM's misconfiguration, W|X with R clear (vmx.c). */
		if (ept) {
			TEST_ASSERT_EQ(m->mmio_value, EPT_W | EPT_X);
			TEST_ASSERT_EQ(m->mmio_mask, EPT_R | EPT_W | EPT_X | BIT_ULL_(63));
		}
		else
			TEST_ASSERT((m->mmio_value & NPT_P) &&
				    (m->mmio_value & m->rsvd_bits_mask[0][0]),
				    "NPT MMIO value %#llx", m->mmio_value);
	} else {
		TEST_ASSERT_EQ(m->mmio_value, 0);
	}
	ksft_test_result_pass("metadata: %s, %u levels, A/D %#llx/%#llx, rsvd 51:%lu, sw %#llx, mmio %#llx/%#llx\n",
			      ept ? "EPT" : "NPT", m->levels, m->accessed_mask,
			      m->dirty_mask, phys, m->kvm_sw_mask,
			      m->mmio_value, m->mmio_mask);
}

/* DMA-reads 8 bytes at @gpa; returns the leaf entry the walk found. */
static uint64_t leaf_of(int dev, __u32 id, uint64_t gpa, uint64_t expect)
{
	uint64_t v = 0;
	struct kti_stats s0 = kti_stats(dev, id), s;

	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, gpa, &v, 8), 0);
	TEST_ASSERT(v == expect, "gpa %#lx: read %#lx, expected %#lx", gpa, v,
		    expect);
	s = kti_stats(dev, id);
	/* A walk, not the IOTLB (one more walk after a fault). */
	TEST_ASSERT(s.iotlb_misses > s0.iotlb_misses, "no walk for %#lx", gpa);
	return s.last_leaf_entry;
}

static void test_leaves(int dev, __u32 id, struct kvm_vm *vm)
{
	uint64_t vcpu4k, vcpu2m, imp4k, ro, v;
	uint64_t *ro_hva = addr_gpa2hva(vm, RO_GPA);

	vcpu4k = leaf_of(dev, id, SMALL_GPA + 4096, PATTERN ^ 1);
	TEST_ASSERT_EQ(kti_stats(dev, id).last_leaf_level, 1);
	vcpu2m = leaf_of(dev, id, THP_GPA + 4096, PATTERN ^ 1);
	TEST_ASSERT_EQ(kti_stats(dev, id).last_leaf_level, 2);
	/* A page only the importer ever asked for: its own fault maps it. */
	imp4k = leaf_of(dev, id, UNTOUCHED, 0);
	TEST_ASSERT_EQ(kti_stats(dev, id).walk_faults, 1);
	ro = leaf_of(dev, id, RO_GPA, RO_PATTERN);

	TEST_ASSERT(!(vcpu4k & PS) && (vcpu2m & PS) && !(imp4k & PS),
		    "page-size bits: 4K %#lx, 2M %#lx, importer's %#lx",
		    vcpu4k, vcpu2m, imp4k);
	if (host_cpu_is_intel) {
		uint64_t e[] = { vcpu4k, vcpu2m, imp4k, ro };
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(e); i++) {
			TEST_ASSERT(e[i] & EPT_R, "leaf %u: %#lx not readable", i, e[i]);
			TEST_ASSERT(EPT_MT(e[i]) == EPT_MT_WB,
				    "leaf %u: %#lx memory type %lu, not WB", i,
				    e[i], EPT_MT(e[i]));
			TEST_ASSERT((e[i] & EPT_IPAT) == (vcpu4k & EPT_IPAT),
				    "leaf %u: %#lx ignore-PAT differs from the vCPU's %#lx",
				    i, e[i], vcpu4k);
		}
		TEST_ASSERT(vcpu4k & EPT_W, "written page's leaf %#lx", vcpu4k);
		TEST_ASSERT(!(ro & EPT_W), "read-only slot's leaf %#lx", ro);
	} else {
		uint64_t cache = NPT_PWT | NPT_PCD;

		TEST_ASSERT(!(vcpu4k & (cache | NPT_PAT4K)) && !(imp4k & (cache | NPT_PAT4K)) &&
			    !(vcpu2m & cache) && !(ro & (cache | NPT_PAT4K)),
			    "cache-control bits: %#lx %#lx %#lx %#lx", vcpu4k,
			    vcpu2m, imp4k, ro);
		TEST_ASSERT((vcpu4k & (NPT_P | NPT_US | NPT_RW)) == (NPT_P | NPT_US | NPT_RW),
			    "written page's leaf %#lx", vcpu4k);
		TEST_ASSERT((ro & (NPT_P | NPT_US)) == (NPT_P | NPT_US) && !(ro & NPT_RW),
			    "read-only slot's leaf %#lx", ro);
	}

	/* The read-only leaf: a DMA write is refused, the bytes stay. */
	v = ~RO_PATTERN;
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_WRITE, id, RO_GPA, &v, 8), -EROFS);
	TEST_ASSERT_EQ(*ro_hva, RO_PATTERN);
	v = 0;
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, RO_GPA, &v, 8), 0);
	TEST_ASSERT_EQ(v, RO_PATTERN);
	ksft_test_result_pass("leaves: vCPU 4K %#lx, 2M %#lx, importer 4K %#lx: same memory type; read-only %#lx: read, write EROFS\n",
			      vcpu4k, vcpu2m, imp4k, ro);
}

/* Runs the guest through its two MMIO reads, answering 1 then 2. */
static void run_mmio(struct kvm_vcpu *vcpu)
{
	uint64_t answer;

	for (answer = 1; answer <= 2; answer++) {
		vcpu_run(vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_MMIO);
		TEST_ASSERT_EQ(vcpu->run->mmio.phys_addr, MMIO_GPA);
		TEST_ASSERT(!vcpu->run->mmio.is_write && vcpu->run->mmio.len == 8,
			    "MMIO exit: write %u len %u", vcpu->run->mmio.is_write,
			    vcpu->run->mmio.len);
		memcpy(vcpu->run->mmio.data, &answer, 8);
	}
	vcpu_run_expect(vcpu, 2);
}

static void test_mmio(int dev, __u32 id, struct kvm_vcpu *vcpu)
{
	bool cached = param_is_yes("/sys/module/kvm/parameters/mmio_caching");
	struct kti_stats s0, s;
	uint64_t v = 0xdead;

	run_mmio(vcpu);
	s0 = kti_stats(dev, id);
	TEST_ASSERT_EQ(kti_dma(dev, KTI_DMA_READ, id, MMIO_GPA, &v, 8), -ENOENT);
	TEST_ASSERT_EQ(v, 0xdead);
	s = kti_stats(dev, id);
	/* Every walk (one per fault retry) met the MMIO entry, if cached. */
	if (cached)
		TEST_ASSERT(s.mmio_walks > s0.mmio_walks,
			    "the walk did not meet KVM's MMIO entry");
	else
		TEST_ASSERT_EQ(s.mmio_walks, s0.mmio_walks);
	TEST_ASSERT_EQ(s.iotlb_hits, s0.iotlb_hits);
	ksft_test_result_pass("MMIO: %s; DMA ENOENT, nothing read\n",
			      cached ? "the walk ends at KVM's MMIO entry" :
			      "KVM caches no MMIO (kvm.mmio_caching off)");
}

/*
 * A VM whose one vCPU runs @guest to GUEST_SYNC(1), with the 4K-backed slot
 * at SMALL_GPA mapped; KVM quirks in @disable_quirks disabled first.
 */
static struct kvm_vm *small_vm(void *guest, struct kvm_vcpu **vcpu,
			       uint64_t disable_quirks)
{
	struct kvm_vm *vm = vm_create_with_one_vcpu(vcpu, guest);

	if (disable_quirks)
		vm_enable_cap(vm, KVM_CAP_DISABLE_QUIRKS2, disable_quirks);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SMALL_GPA,
				    SMALL_SLOT, SLOT_PAGES, 0);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, SMALL_GPA), SLOT_PAGES * 4096,
			     MADV_NOHUGEPAGE), "madvise(NOHUGEPAGE)");
	virt_map(vm, SMALL_GPA, SMALL_GPA, SLOT_PAGES);
	vcpu_run_expect(*vcpu, 1);
	return vm;
}

static void guest_pat_code(void)
{
	*(volatile uint64_t *)SMALL_GPA = PATTERN;
	GUEST_SYNC(1);
	GUEST_DONE();
}

/*
 * EPT only: with KVM_X86_QUIRK_IGNORE_GUEST_PAT disabled (possible on a CPU
 * with self-snoop), vCPUs map RAM write-back without ignore-PAT, so that the
 * guest's PAT decides; a leaf the importer faults must be the same, or the
 * vCPUs sharing the root would see a different memory type for that page.
 * Where the quirk cannot be disabled, both leaves ignore the guest's PAT.
 */
static void test_guest_pat_quirk(void)
{
	bool can = kvm_check_cap(KVM_CAP_DISABLE_QUIRKS2) &
		   KVM_X86_QUIRK_IGNORE_GUEST_PAT;
	uint64_t vcpu4k, imp4k, ipat = can ? 0 : EPT_IPAT;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int rust, tdp;
	__u32 id;

	vm = small_vm(guest_pat_code, &vcpu,
		      can ? KVM_X86_QUIRK_IGNORE_GUEST_PAT : 0);

	tdp = tdp_fd_create(vm);
	rust = kti_open("/dev/kvm_tdp_iommu");
	id = kti_attach(rust, tdp, 0);
	vcpu4k = leaf_of(rust, id, SMALL_GPA, PATTERN);
	imp4k = leaf_of(rust, id, UNTOUCHED, 0);
	TEST_ASSERT_EQ(kti_stats(rust, id).walk_faults, 1);
	TEST_ASSERT(EPT_MT(vcpu4k) == EPT_MT_WB && (vcpu4k & EPT_IPAT) == ipat,
		    "vCPU's leaf %#lx, quirk %s", vcpu4k, can ? "off" : "on");
	TEST_ASSERT(EPT_MT(imp4k) == EPT_MT_WB && (imp4k & EPT_IPAT) == ipat,
		    "importer's leaf %#lx differs from the vCPU's %#lx",
		    imp4k, vcpu4k);
	vcpu_run_expect(vcpu, -1);
	close(rust);
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("IGNORE_GUEST_PAT %s: vCPU's leaf %#lx, importer's %#lx: WB, ignore-PAT %s\n",
			      can ? "disabled" : "cannot be disabled (no self-snoop)",
			      vcpu4k, imp4k, ipat ? "set" : "clear");
}

static void guest_dirty_code(void)
{
	uint64_t i;

	for (i = 1;; i++) {
		*(volatile uint64_t *)SMALL_GPA = i;
		GUEST_SYNC(i);
	}
}

/*
 * Every write reaches the dirty log while the TDP is exported: the vCPU's
 * to page 0 (PML on Intel, write protection on AMD) and the importer's to
 * page 1 through a translation it cached writable before logging started.
 * With PML, dirty logging clears D bits and leaves leaves writable; for the
 * exported root KVM write-protects instead (and reports it), so the
 * importer's next write faults and is logged.  Three rounds: each fetch of
 * the log must leave both pages to be logged again.
 */
static void test_dirty_writes(void)
{
	unsigned long bitmap[SLOT_PAGES / 64];
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int rust, tdp, round;
	uint64_t v;
	__u32 id;

	vm = small_vm(guest_dirty_code, &vcpu, 0);

	tdp = tdp_fd_create(vm);
	rust = kti_open("/dev/kvm_tdp_iommu");
	id = kti_attach(rust, tdp, 0);
	v = 0;
	TEST_ASSERT_EQ(kti_dma(rust, KTI_DMA_WRITE, id, SMALL_GPA + 4096, &v, 8), 0);
	vm_mem_region_set_flags(vm, SMALL_SLOT, KVM_MEM_LOG_DIRTY_PAGES);
	kvm_vm_get_dirty_log(vm, SMALL_SLOT, bitmap);
	for (round = 0; round < 3; round++) {
		vcpu_run_expect(vcpu, 2 + round);
		v = round + 1;
		TEST_ASSERT_EQ(kti_dma(rust, KTI_DMA_WRITE, id, SMALL_GPA + 4096, &v, 8), 0);
		kvm_vm_get_dirty_log(vm, SMALL_SLOT, bitmap);
		TEST_ASSERT((bitmap[0] & 3) == 3,
			    "round %d: dirty log %#lx: page 0 (vCPU) %s, page 1 (importer) %s",
			    round, bitmap[0], bitmap[0] & 1 ? "logged" : "MISSING",
			    bitmap[0] & 2 ? "logged" : "MISSING");
	}
	TEST_ASSERT_EQ(*(uint64_t *)addr_gpa2hva(vm, SMALL_GPA + 4096), 3);
	vm_mem_region_set_flags(vm, SMALL_SLOT, 0);
	close(rust);
	close(tdp);
	kvm_vm_free(vm);
	ksft_test_result_pass("dirty logging %s while exported: 3 rounds, the vCPU's and the importer's writes logged\n",
			      param_is_yes("/sys/module/kvm_intel/parameters/pml") ?
			      "with PML" : "by write protection");
}

static void test_pml(void)
{
	bool pml = param_is_yes("/sys/module/kvm_intel/parameters/pml");
	struct kvm_create_tdp_fd args = { .mode = KVM_TDP_FD_MODE_SHARED };
	struct kvm_vm *vm = vm_create_barebones();
	int fd;

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SMALL_GPA,
				    SMALL_SLOT, 16, KVM_MEM_LOG_DIRTY_PAGES);
	fd = ioctl(vm->fd, KVM_CREATE_TDP_FD, &args);
	if (pml)
		TEST_ASSERT(fd == -1 && errno == EBUSY,
			    "export while logging with PML: fd %d errno %d", fd, errno);
	else
		TEST_ASSERT(fd >= 0, "export while logging: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	vm_mem_region_set_flags(vm, SMALL_SLOT, 0);
	close(tdp_fd_create(vm));
	kvm_vm_free(vm);
	ksft_test_result_pass("dirty logging %s PML: export %s, then made once logging is off\n",
			      pml ? "with" : "without", pml ? "EBUSY" : "made");
}

int main(void)
{
	struct kti_c_meta meta;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int c, rust, tdp;
	__u32 cid, rid;

	ksft_print_header();
	/* The guest-PAT quirk only changes EPT entries. */
	ksft_set_plan(5 + host_cpu_is_intel);

	vm = vm_create_with_one_vcpu(&vcpu, guest_code);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS_THP, THP_GPA,
				    THP_SLOT, SLOT_PAGES, 0);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, SMALL_GPA,
				    SMALL_SLOT, SLOT_PAGES, 0);
	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, RO_GPA,
				    RO_SLOT, RO_PAGES, KVM_MEM_READONLY);
	TEST_ASSERT(!madvise(addr_gpa2hva(vm, SMALL_GPA), SLOT_PAGES * 4096,
			     MADV_NOHUGEPAGE), "madvise(NOHUGEPAGE)");
	*(uint64_t *)addr_gpa2hva(vm, RO_GPA) = RO_PATTERN;
	virt_map(vm, THP_GPA, THP_GPA, SLOT_PAGES);
	virt_map(vm, SMALL_GPA, SMALL_GPA, SLOT_PAGES);
	virt_map(vm, RO_GPA, RO_GPA, RO_PAGES);
	virt_map(vm, MMIO_GPA, MMIO_GPA, 1);
	vcpu_run_expect(vcpu, 1);

	tdp = tdp_fd_create(vm);
	c = kti_open("/dev/kvm_tdp_importer_c");
	cid = kti_attach(c, tdp, 0);
	meta = get_meta(c, cid);
	test_metadata(&meta);

	rust = kti_open("/dev/kvm_tdp_iommu");
	rid = kti_attach(rust, tdp, 0);
	test_leaves(rust, rid, vm);
	test_mmio(rust, rid, vcpu);
	vcpu_run_expect(vcpu, -1);

	close(rust);
	close(c);
	close(tdp);
	kvm_vm_free(vm);

	if (host_cpu_is_intel)
		test_guest_pat_quirk();
	test_dirty_writes();
	test_pml();
	ksft_finished();
}
