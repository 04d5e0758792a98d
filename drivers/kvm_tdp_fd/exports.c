// SPDX-License-Identifier: GPL-2.0
/*
 * The C symbols of the kvm_tdp_fd module.
 *
 * kvm_tdp_fd_get() and kvm_tdp_fd_put() are defined in Rust
 * (kvm_tdp_fd_main.rs, by kernel::kvm_tdp_fd_c_abi!); Rust cannot export a
 * symbol to other modules itself, so it is done here.
 */
#include <linux/export.h>
#include <linux/kvm_tdp_fd.h>

EXPORT_SYMBOL_GPL(kvm_tdp_fd_get);
EXPORT_SYMBOL_GPL(kvm_tdp_fd_put);
