#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the test kernel under QEMU TCG with virtme-ng and run
# selftests/vm-run.sh MODE inside it.  Results land in out/MODE/ (or
# $KTDP_RESULTS): the guest's
# TAP (tap.txt), its dmesg (dmesg.log), kmemleak report and the full serial
# console (console.log, which also holds the log of a guest that died).
#
# TCG is single-threaded on purpose: multi-threaded TCG with 2 vCPUs races
# on kernel text patching and kills the guest (see PLATFORM notes).
#
# The machine (q35) has QEMU 10's intel-iommu with first-stage translation in
# the x86-64 format (x-flts), the format of AMD NPT, and an edu device (a PCI
# DMA engine; its DMA mask widened from 28 bits to 48) behind it, for
# selftests/iommufd_kvm_tdp_test.c.  The guest kernel runs with 4-level
# paging (no5lvl): KVM's NPT then has 4 levels, all that this IOMMU walks.
# Virtio devices bypass the IOMMU (no iommu_platform), as before.  The
# vIOMMU remaps no interrupts (intremap=off), so MSIs are not isolated and
# iommufd refuses to bind a device (EPERM) unless allowed to
# (iommufd.allow_unsafe_interrupts=1): the test device raises none.
set -euo pipefail
source "$(dirname "$0")/env.sh"

mode=${1:?usage: vm.sh check|demo|bench|trace|detectors|kvm-selftests [args]}
shift
# KTDP_RESULTS: another results directory, for a second VM running at once.
# KTDP_VM_ICOUNT=1 (make bench sets it): QEMU's -icount shift=0,sleep=off,
# so the guest's clock counts executed instructions (1 ns each) and timings
# do not depend on the host's load.  KTDP_VM_GDB=PORT: QEMU's gdbstub on
# 127.0.0.1:PORT (make bench-trace).  KTDP_VM_CPUS: vCPUs (default 2).
res=$(ktdp_results "$mode")
rm -rf "$res"
mkdir -p "$res"

# The tree must not change while the guest uses it (scripts/env.sh).
ktdp_lock -s
bzimage=$KDIR/arch/x86/boot/bzImage
[ -f "$bzimage" ] || ktdp_die "no kernel at $bzimage: run 'make kernel'"
key=$(cat "$KDIR/.ktdp-key" 2>/dev/null) || ktdp_die "the kernel in $KDIR is not built for any key: run 'make kernel'"

: "${KTDP_VM_MEM:=4G}"
: "${KTDP_VM_CPUS:=2}"
KTDP_VIOMMU=intel-iommu,x-scalable-mode=on,x-flts=on,aw-bits=48,intremap=off
: "${KTDP_VM_TIMEOUT:=3000}"

ktdp_log "vm: booting $bzimage (TCG, $KTDP_VM_CPUS vCPUs, $KTDP_VM_MEM) for '$mode'"
set +e
# timeout without --foreground runs vng in a process group of its own and
# signals that whole group: QEMU and virtiofsd (vng's descendants) go too,
# so a hung guest ends here instead of at CI's limit.
timeout -k 10 "$KTDP_VM_TIMEOUT" \
	vng --disable-kvm --verbose -r "$bzimage" --cpus "$KTDP_VM_CPUS" -m "$KTDP_VM_MEM" \
	--qemu-opts=-accel --qemu-opts=tcg,thread=single \
	${KTDP_VM_ICOUNT:+--qemu-opts=-icount --qemu-opts=shift=0,sleep=off} \
	${KTDP_VM_GDB:+--qemu-opts=-gdb --qemu-opts=tcp:127.0.0.1:$KTDP_VM_GDB} \
	--qemu-opts=-device --qemu-opts="$KTDP_VIOMMU" \
	--qemu-opts=-device --qemu-opts=edu,dma_mask=0xffffffffffff \
	--append "panic=-1 no5lvl intel_iommu=on,sm_on iommufd.allow_unsafe_interrupts=1" \
	--rwdir "$res" --cwd "$KTDP_ROOT" \
	-- "KDIR=$KDIR KTDP_KEY=$key KTDP_INJECT=${KTDP_INJECT:-} KTDP_KVM_TEST_TIMEOUT=${KTDP_KVM_TEST_TIMEOUT:-} bash $KTDP_ROOT/selftests/vm-run.sh $mode $res $*" \
	</dev/null 2>&1 | tee "$res/console.log" | grep --line-buffered -v '^\[ *[0-9]*\.[0-9]*\]'
vng_rc=${PIPESTATUS[0]}
set -e
if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
	echo "$KTDP_VM_TIMEOUT" >"$res/vm-timeout"
	ktdp_log "vm: timed out after $KTDP_VM_TIMEOUT s; QEMU ended"
fi
# The guest's own verdict; none means it died (or timed out) before the end.
rc=$(cat "$res/guest-exit-code" 2>/dev/null || echo 255)
echo "vng exit code $vng_rc, guest exit code $rc" >"$res/vm-exit-code"
exit "$rc"
