// SPDX-License-Identifier: GPL-2.0

//! Kernel file systems.
//!
//! Follows upstream Rust-for-Linux `kernel::fs` (v6.13), of which this tree
//! has only [`file`].
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h)

pub mod file;
