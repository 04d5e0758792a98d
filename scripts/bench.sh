#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: the cost of sharing the TDP, measured in the test VM (see
# bench/tdp_fd_bench.c and bench/kvm_perf.sh), reported by bench/report.py
# into bench/results/ (bench.md, bench.csv, bench.png).
#
# KTDP_BENCH=quick: fewer repetitions and sizes, no KVM perf comparison (a
# smoke run of the whole pipeline, a few minutes).  KTDP_BENCH=perf: only
# the KVM perf comparison (KTDP_BENCH_ROUNDS rounds, default 3), reported
# with the last full run's other results.  KTDP_BENCH=trace (make
# bench-trace): each judged operation single-stepped, its instructions
# counted function by function (bench/trace.py -> bench/results/trace.md).
# Except in quick mode it also builds the unpatched production kernel
# (cached like the patched one; a fresh machine pays for it once).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"

mode=${KTDP_BENCH:-full}
case $mode in
quick | full | perf | trace) ;;
*) ktdp_die "KTDP_BENCH=$mode: expected quick, full, perf or trace" ;;
esac
# Instruction time (scripts/vm.sh): figures that repeat to well under 1%
# where host time differs by tens of percent.  KTDP_VM_ICOUNT= (empty) for
# host time.
export KTDP_VM_ICOUNT=${KTDP_VM_ICOUNT-1}
rounds=${KTDP_BENCH_ROUNDS:-3}
make -s kernel modules selftests
res=$(ktdp_results bench)
args=("$mode")
[ "$mode" = quick ] || KTDP_VARIANT=prod-base bash scripts/kernel.sh
if [ "$mode" != quick ] && [ "$mode" != trace ]; then
	bin=$KTDP_ROOT/out/kvm-perf-bin
	st=$KDIR/tools/testing/selftests/kvm
	ktdp_log "bench: building KVM's perf selftests"
	make -s -C "$st" OUTPUT="$bin" EXTRA_CFLAGS=-static -j"$(nproc)" \
		"$bin/dirty_log_perf_test" "$bin/demand_paging_test" \
		"$bin/access_tracking_perf_test" >/dev/null
	args+=("$bin" "$KTDP_CACHE/linux-prod-base/_modinst" "$rounds")
fi

if [ "$mode" = trace ]; then
	# make bench-trace (bench/trace.py): host time is enough, and one
	# vCPU keeps the single-stepped CPU from waiting for another.
	port=$((20000 + RANDOM % 20000))
	res=$(ktdp_results trace)
	# No stale "current" or results for bench/trace.py to read first.
	rm -rf "$res"
	ktdp_log "bench: single-stepping operations through QEMU's gdbstub (port $port)"
	KTDP_VM_GDB=$port KTDP_VM_CPUS=1 KTDP_VM_ICOUNT= KTDP_VM_MEM=${KTDP_VM_MEM:-4G} \
		KTDP_VM_TIMEOUT=${KTDP_VM_TIMEOUT:-7200} \
		bash scripts/vm.sh trace "$KTDP_CACHE/linux-prod-base/_modinst" |
		grep -E '^(ok|not ok)' &
	vm=$!
	if ! "$KTDP_VENV/bin/python3" bench/trace.py "$port" "$res" bench/results/trace.md; then
		# Let the guest run through its remaining cases untraced, so
		# that the VM ends now rather than at its timeout.
		while kill -0 "$vm" 2>/dev/null; do
			{ read -r v c _ <"$res/trace/current" &&
				touch "$res/trace/$v-$c.done"; } 2>/dev/null || true
			sleep 1
		done
		ktdp_die "bench: trace failed, see $res/"
	fi
	wait "$vm" || true
	grep -q '^not ok' "$res/tap.txt" 2>/dev/null && ktdp_die "bench: a step failed, see $res/"
	echo "bench: results in bench/results/trace.md"
	exit 0
fi

# One vCPU: under icount the one virtual clock advances with the
# instructions of every vCPU (round-robin TCG), so with two, whatever the
# other runs meanwhile lands in a measured window, and how a test's
# threads interleave across them is not deterministic.
export KTDP_VM_CPUS=${KTDP_VM_CPUS:-1}
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
machine="$clock; host $cpu, $(nproc) cores, $mem; test VM: QEMU TCG -cpu max, $KTDP_VM_CPUS vCPU(s), \
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
