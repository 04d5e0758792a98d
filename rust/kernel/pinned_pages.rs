// SPDX-License-Identifier: GPL-2.0

//! User pages pinned for DMA.
//!
//! What VFIO's type1 IOMMU driver does with the guest memory of a VM:
//! `pin_user_pages_fast()` with `FOLL_LONGTERM` takes a pin on each page of
//! a range of the caller's address space, so that it can be mapped for a
//! device and is neither freed, migrated nor swapped until unpinned.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::{
    alloc::{flags::GFP_KERNEL, KVVec},
    bindings,
    error::{code::*, Error, Result},
};

use crate::page::PAGE_SIZE;

/// Pages pinned at most per `pin_user_pages_fast()` call.
const CHUNK: usize = 1 << 16;

/// A range of the current task's user pages, pinned until dropped.
pub struct PinnedPages {
    /// The pinned pages; `pages[i]` backs the `i`th page of the range.
    pages: KVVec<*mut bindings::page>,
    /// Pinned for writing: unpinning marks them dirty.
    writable: bool,
}

// SAFETY: `PinnedPages` only holds pins, which any task may drop, and reads
// the pages' PFNs, which do not change while pinned.
unsafe impl Send for PinnedPages {}

// SAFETY: `&PinnedPages` allows reading PFNs, and copying to and from the
// pinned pages, which any task may do concurrently (as devices' DMA does).
unsafe impl Sync for PinnedPages {}

impl PinnedPages {
    /// Pins `npages` pages of the current task's memory from user address
    /// `addr` (page aligned), for writing too if `writable`.
    ///
    /// # Errors
    ///
    /// `EINVAL` for an unaligned, empty or too large range, `EFAULT` for a
    /// task with no address space (a kernel thread, or a task past
    /// `exit_mm()`), `ENOMEM`, or the error of the first page that cannot
    /// be pinned (e.g. `EFAULT`).
    ///
    /// # Examples
    ///
    /// ```
    /// use kernel::pinned_pages::PinnedPages;
    ///
    /// assert_eq!(PinnedPages::pin(0x1001, 1, false).err(), Some(EINVAL));
    /// assert_eq!(PinnedPages::pin(0x1000, 0, false).err(), Some(EINVAL));
    /// ```
    pub fn pin(addr: usize, npages: usize, writable: bool) -> Result<Self> {
        if addr % PAGE_SIZE != 0 || npages == 0 || npages > i32::MAX as usize {
            return Err(EINVAL);
        }
        addr.checked_add(npages * PAGE_SIZE).ok_or(EINVAL)?;
        // SAFETY: `current` is always a valid task, and only the task itself
        // changes its `mm` (`exit_mm()`, `kthread_use_mm()`).
        if unsafe { (*bindings::get_current()).mm }.is_null() {
            // `pin_user_pages_fast()` would dereference the null mm.
            return Err(EFAULT);
        }
        let mut this = Self {
            pages: KVVec::with_capacity(npages, GFP_KERNEL)?,
            writable,
        };
        let mut flags = bindings::FOLL_LONGTERM;
        if writable {
            flags |= bindings::FOLL_WRITE;
        }
        while this.pages.len() < npages {
            let done = this.pages.len();
            let n = core::cmp::min(npages - done, CHUNK);
            let spare = this.pages.spare_capacity_mut();
            // SAFETY: `spare` has room for at least `n` page pointers, and
            // the range starting at `addr + done * PAGE_SIZE` is a user
            // range of the current task (pinning checks the rest).
            let ret = unsafe {
                bindings::pin_user_pages_fast(
                    addr + done * PAGE_SIZE,
                    n as i32,
                    flags,
                    spare.as_mut_ptr().cast(),
                )
            };
            if ret <= 0 {
                // Dropping `this` unpins what was pinned so far.
                return Err(if ret < 0 {
                    Error::from_errno(ret)
                } else {
                    EFAULT
                });
            }
            // SAFETY: `pin_user_pages_fast()` stored `ret` (at most `n`)
            // pinned page pointers at the start of `spare`.
            unsafe { this.pages.set_len(done + ret as usize) };
        }
        Ok(this)
    }

    /// The number of pages pinned.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether no page is pinned (never, for a successful `pin`).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The page frame number of the `i`th page, if `i` is in range.
    pub fn pfn(&self, i: usize) -> Option<u64> {
        let page = *self.pages.get(i)?;
        // SAFETY: `page` is pinned, hence a valid struct page.
        Some(unsafe { bindings::page_to_pfn(page) } as u64)
    }
}

impl PinnedPages {
    /// The `i`th page, if the `len` bytes at `offset` lie within it.
    fn page(&self, i: usize, offset: usize, len: usize) -> Result<*mut bindings::page> {
        let page = *self.pages.get(i).ok_or(EINVAL)?;
        match offset.checked_add(len) {
            Some(end) if len > 0 && end <= PAGE_SIZE => Ok(page),
            _ => Err(EINVAL),
        }
    }

    /// Copies `dst.len()` bytes at `offset` of the `i`th page to `dst`.
    ///
    /// # Errors
    ///
    /// `EINVAL` if `i` is out of range or the bytes do not lie within one
    /// page.
    pub fn copy_from(&self, i: usize, offset: usize, dst: &mut [u8]) -> Result {
        let page = self.page(i, offset, dst.len())?;
        // SAFETY: `page` is pinned, hence a valid page that stays allocated
        // while `self` lives, and the span lies within it; `dst` is valid
        // for its length.  The page's owner may write it concurrently: the
        // bytes are copied as they are, as a device's DMA would.
        unsafe { bindings::memcpy_from_page(dst.as_mut_ptr().cast(), page, offset, dst.len()) };
        Ok(())
    }

    /// Copies `src` to `offset` of the `i`th page.
    ///
    /// # Errors
    ///
    /// `EINVAL` as for [`PinnedPages::copy_from`], `EACCES` if the pages were
    /// not pinned for writing.
    pub fn copy_to(&self, i: usize, offset: usize, src: &[u8]) -> Result {
        if !self.writable {
            return Err(EACCES);
        }
        let page = self.page(i, offset, src.len())?;
        // SAFETY: as in `copy_from`; pinned with `FOLL_WRITE`, the page is
        // the owner's own, writable one (copy-on-write was broken).
        unsafe { bindings::memcpy_to_page(page, offset, src.as_ptr().cast(), src.len()) };
        Ok(())
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        if self.pages.is_empty() {
            return;
        }
        // SAFETY: every pointer in `pages` holds one pin taken by
        // `pin_user_pages_fast()`, dropped here exactly once.
        unsafe {
            bindings::unpin_user_pages_dirty_lock(
                self.pages.as_mut_ptr(),
                self.pages.len() as _,
                self.writable,
            )
        };
    }
}
