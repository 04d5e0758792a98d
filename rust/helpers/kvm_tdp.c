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

/* Whether @pa is the address of a page of RAM with a direct mapping. */
bool rust_helper_kvm_tdp_pa_is_ram(phys_addr_t pa)
{
	return pfn_valid(PHYS_PFN(pa)) && !PageReserved(pfn_to_page(PHYS_PFN(pa)));
}

/* One 64-bit page-table entry at physical address @pa, read once. */
u64 rust_helper_kvm_tdp_read_pte(phys_addr_t pa)
{
	return READ_ONCE(*(u64 *)phys_to_virt(pa));
}
