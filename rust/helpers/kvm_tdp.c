// SPDX-License-Identifier: GPL-2.0

#include <linux/io.h>
#include <linux/mm.h>
#include <linux/rcupdate.h>

void rust_helper_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rust_helper_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

/*
 * Whether @pa is the address of a page with a struct page, hence in the
 * direct map.  Reserved pages count: a guest page read before it was ever
 * written is the shared zero page.
 */
bool rust_helper_kvm_tdp_pa_is_ram(phys_addr_t pa)
{
	return pfn_valid(PHYS_PFN(pa));
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
