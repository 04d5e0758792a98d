// SPDX-License-Identifier: GPL-2.0

#include <linux/io.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>

void rust_helper_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rust_helper_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

/*
 * Whether @pa lies in a page of ordinary RAM, mapped write-back in the
 * direct map: one with a struct page that is neither reserved (firmware
 * ranges, MMIO, what /dev/mem and other VM_PFNMAP/VM_IO mappings expose)
 * nor ZONE_DEVICE.  pfn_valid() alone is not enough: a reserved page has a
 * struct page but need not be in the direct map.  The shared zero page
 * counts: a guest page read before it was ever written is the zero page.
 */
bool rust_helper_kvm_tdp_pa_is_ram(phys_addr_t pa)
{
	unsigned long pfn = PHYS_PFN(pa);
	struct page *page;

	if (!pfn_valid(pfn))
		return false;
	if (is_zero_pfn(pfn))
		return true;
	page = pfn_to_page(pfn);
	return !PageReserved(page) && !is_zone_device_page(page);
}

/* One 64-bit page-table entry at physical address @pa, read once. */
u64 rust_helper_kvm_tdp_read_pte(phys_addr_t pa)
{
	return READ_ONCE(*(u64 *)phys_to_virt(pa));
}

/* Copies @len bytes at physical address @pa to @dst (within one page). */
void rust_helper_kvm_tdp_copy_from_pa(void *dst, phys_addr_t pa, size_t len)
{
	memcpy(dst, phys_to_virt(pa), len);
}

/* Copies @len bytes from @src to physical address @pa (within one page). */
void rust_helper_kvm_tdp_copy_to_pa(phys_addr_t pa, const void *src, size_t len)
{
	memcpy(phys_to_virt(pa), src, len);
}

void rust_helper_mmgrab(struct mm_struct *mm)
{
	mmgrab(mm);
}

void rust_helper_mmdrop(struct mm_struct *mm)
{
	mmdrop(mm);
}
