// SPDX-License-Identifier: GPL-2.0

#include <linux/io.h>
#include <linux/mm.h>

/* The physical address of @page, which is not a highmem page. */
phys_addr_t rust_helper_table_page_page_pa(struct page *page)
{
	return page_to_phys(page);
}

/* Entry @index of the page table in @page, read once. */
u64 rust_helper_table_page_get(struct page *page, size_t index)
{
	return READ_ONCE(((u64 *)page_address(page))[index]);
}

/* Sets entry @index of the page table in @page, in one store. */
void rust_helper_table_page_set(struct page *page, size_t index, u64 entry)
{
	WRITE_ONCE(((u64 *)page_address(page))[index], entry);
}

unsigned long rust_helper_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}
