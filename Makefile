# SPDX-License-Identifier: GPL-2.0
#
# kvm-tdp-fd: top-level entry points.  See README.md.
#
#   make run         build what is missing, run the demo in a VM
#   make check       host unit tests + every selftest in a VM (CI runs this)
#   make check-ept   the TDP FD suite on Intel EPT, in Bochs (make check runs it)
#   make check-detectors  prove each kernel bug detector fires and is caught
#   make check-harness    prove make check fails where it must (faults injected)
#   make deps        install the pinned toolchain and tools (idempotent)
#   make kernel      build the patched 6.12 kernel in $(KDIR) (cached, keyed)
#   make modules     build drivers/kvm_tdp_fd and samples/ out of tree
#   make selftests   build selftests/ statically against the tree's headers
#   make host-test   cargo test of the pure-logic Rust on the host
#   make lint        rustfmt --check, clippy (CLIPPY=1), checkpatch --strict
#   make fmt         rustfmt every Rust file in place
#   make bench       the cost of sharing the TDP, in the VM: bench/results/
#   make bench-trace each judged operation single-stepped, instructions
#                    counted per function: bench/results/trace.md
#   make kvm-selftests       the tree's KVM selftests on the patched kernel,
#                            compared with make kvm-selftests-base

# When invoked by Kbuild (make -C $KDIR M=$PWD) only the Kbuild file matters.
ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

SHELL := /bin/bash
ENV := source scripts/env.sh &&
KTDP_CACHE ?= $(HOME)/.cache/kvm-tdp-fd
# The test kernel has KASAN unless KTDP_KASAN=0 (see README, "KASAN").
KTDP_KASAN ?= 1
ifeq ($(KTDP_KASAN),1)
KDIR ?= $(KTDP_CACHE)/linux-kasan
else
KDIR ?= $(KTDP_CACHE)/linux
endif
export KTDP_CACHE KDIR KTDP_KASAN

# The comparison with the unpatched kernel uses the kernel without KASAN
# (the baseline is built from the same fragment); make bench, the
# production-config kernel (config/prod.config, scripts/kernel.sh).
bench bench-trace kvm-selftests kvm-selftests-base: export KTDP_KASAN := 0
kvm-selftests kvm-selftests-base: export KDIR := $(KTDP_CACHE)/linux
bench bench-trace: export KDIR := $(KTDP_CACHE)/linux-prod
bench bench-trace: export KTDP_VARIANT := prod

.PHONY: all deps kernel modules selftests host-test check run lint fmt clean kvm-selftests \
	kvm-selftests-base bench bench-trace check-ept check-detectors check-harness

all: modules selftests

deps:
	@bash scripts/deps.sh

kernel: deps
	@bash scripts/kernel.sh

modules: kernel
	@$(ENV) ktdp_lock -s && ktdp_kmake M=$(CURDIR) modules && mkdir -p out && \
		cp $(KDIR)/.ktdp-key out/modules.key

selftests: kernel
	@$(ENV) ktdp_lock -s && $(MAKE) -s -C selftests

host-test: deps
	@$(ENV) cd logic && CARGO_TARGET_DIR=$$KTDP_CARGO_TARGET cargo test --locked

check:
	@bash scripts/check.sh

check-ept:
	@bash scripts/ept.sh

check-detectors:
	@bash scripts/detectors.sh

check-harness:
	@bash scripts/check-harness.sh

run: modules selftests
	@bash scripts/vm.sh demo

bench: deps
	@bash scripts/bench.sh

bench-trace: deps
	@KTDP_BENCH=trace bash scripts/bench.sh

lint: kernel
	@mkdir -p out && bash scripts/lint.sh

kvm-selftests: kernel
	@bash scripts/kvm-selftests.sh

kvm-selftests-base: deps
	@KTDP_VARIANT=base bash scripts/kernel.sh
	@KTDP_VARIANT=base bash scripts/kvm-selftests.sh

fmt: deps
	@$(ENV) rustfmt --edition 2021 --config-path $(KDIR)/.rustfmt.toml \
		$$(git ls-files '*.rs' | grep -v '^rust/kernel/lib.rs$$')

clean:
	rm -rf out
	@$(ENV) ktdp_kmake M=$(CURDIR) clean 2>/dev/null || true
	@$(MAKE) -s -C selftests clean

endif
