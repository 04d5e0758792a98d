#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: the cost of sharing the TDP, measured in the test VM (see
# bench/tdp_fd_bench.c and bench/kvm_perf.sh), reported by bench/report.py
# into bench/results/ (bench.md, bench.csv, bench.png).
#
# KTDP_BENCH=quick: fewer repetitions and sizes, no KVM perf comparison (a
# smoke run of the whole pipeline, a minute or two).  KTDP_BENCH=perf: only
# the KVM perf comparison (KTDP_BENCH_ROUNDS rounds, default 3), reported
# with the last full run's other results.  Otherwise it also builds the
# unpatched kernel for the comparison (cached like the patched one; a
# fresh machine pays a second kernel build once).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"

mode=${KTDP_BENCH:-full}
# Instruction time (scripts/vm.sh): figures that repeat to well under 1%
# where host time differs by tens of percent.  KTDP_VM_ICOUNT= (empty) for
# host time.
export KTDP_VM_ICOUNT=${KTDP_VM_ICOUNT-1}
rounds=${KTDP_BENCH_ROUNDS:-3}
make -s kernel modules selftests
res=$(ktdp_results bench)
args=("$mode")
if [ "$mode" != quick ]; then
	KTDP_VARIANT=prod-base bash scripts/kernel.sh
	bin=$KTDP_ROOT/out/kvm-perf-bin
	st=$KDIR/tools/testing/selftests/kvm
	ktdp_log "bench: building KVM's perf selftests"
	make -s -C "$st" OUTPUT="$bin" EXTRA_CFLAGS=-static -j"$(nproc)" \
		"$bin/dirty_log_perf_test" "$bin/demand_paging_test" \
		"$bin/access_tracking_perf_test" >/dev/null
	args+=("$bin" "$KTDP_CACHE/linux-prod-base/_modinst" "$rounds")
fi

ktdp_log "bench: running in the VM ($mode)"
KTDP_VM_MEM=${KTDP_VM_MEM:-8G} KTDP_VM_TIMEOUT=${KTDP_VM_TIMEOUT:-7200} \
	bash scripts/vm.sh bench "${args[@]}" | grep -E '^(ok|not ok|# bench|# kvm_perf)' || true
grep -q '^not ok' "$res/tap.txt" 2>/dev/null && ktdp_die "bench: a step failed, see $res/"
tdp_csv=$res/tdp_fd_bench.csv
[ "$mode" = perf ] && tdp_csv=bench/results/tdp_fd_bench.csv
[ -s "$tdp_csv" ] || ktdp_die "bench: no results, see $res/console.log"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
clock="host time"
[ -n "$KTDP_VM_ICOUNT" ] && clock="instruction time (QEMU -icount shift=0,sleep=off: 1 ns per guest instruction)"
machine="$clock; host $cpu, $(nproc) cores, $mem; test VM: QEMU TCG -cpu max, 2 vCPUs, \
${KTDP_VM_MEM:-8G}, Linux $(make -s -C "$KDIR" kernelversion 2>/dev/null) in its \
production config (config/prod.config: no lockdep, KVM_PROVE_MMU, kmemleak, KFENCE, UBSAN), nested kvm_amd; $(date -u +%Y-%m-%d), $mode run"
out=bench/results
[ "$mode" = quick ] && out=$res/report
"$KTDP_VENV/bin/python3" bench/report.py "$out" "$machine" \
	"$tdp_csv" "$res/kvmperf.csv"
# The raw rows of each part, for a later partial run to report with.
if [ "$mode" != quick ]; then
	[ "$mode" = perf ] || cp "$res/tdp_fd_bench.csv" "$out/tdp_fd_bench.csv"
	cp "$res/kvmperf.csv" "$out/kvmperf.csv"
fi
echo "bench: results in $out/"
