#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-detectors: prove that every detector the test kernel claims is
# compiled in, fires, and is caught by the log scan of `make check`.  The
# guest loads selftests/detectors/ktdp_faults.ko once per deliberate bug; for
# each, the part of the kernel log between its markers must (1) match
# scripts/kernel-reports.txt, the scan scripts/check.sh fails on, and (2) carry
# that detector's own signature (not just any report).  Prints TAP and a last
# line "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"

# fault  signature (grep -E) of the detector that must report it
SIGS=(
	# Any taint but a warning's turns lockdep off (add_taint()), and the
	# sleep-in-atomic check with it: these two first.
	"lockdep|possible circular locking dependency detected"
	"atomic_sleep|BUG: sleeping function called from invalid context"
	"kasan|BUG: KASAN: slab-use-after-free"
	"kfence|BUG: KFENCE: use-after-free"
	"ubsan_bounds|UBSAN: array-index-out-of-bounds"
	"ubsan_shift|UBSAN: shift-out-of-bounds"
	"debug_list|list_del corruption"
	"debug_vm|page dumped because: VM_WARN_ON_ONCE_PAGE"
	"kmemleak|kmemleak: [0-9]+ new suspected memory leaks"
	"hung_task|INFO: task ktdp_hung:[0-9]+ blocked for more than"
	"soft_lockup|watchdog: BUG: soft lockup"
	"rcu_stall|rcu: INFO: rcu_(preempt|sched) (self-)?detected stall"
)

ktdp_lock -x
make -s kernel || ktdp_die "kernel build failed"
ktdp_kmake M="$KTDP_ROOT/selftests/detectors" modules ||
	ktdp_die "ktdp_faults.ko did not build"
faults=()
for s in "${SIGS[@]}"; do faults+=("${s%%|*}"); done

res=$(ktdp_results detectors)
bash scripts/vm.sh detectors "${faults[@]}"
log=$res/dmesg.log
[ -s "$log" ] || log=$res/console.log

passed=0
failed=0
skipped=0
n=0
echo "TAP version 13"
for s in "${SIGS[@]}"; do
	f=${s%%|*}
	sig=${s#*|}
	n=$((n + 1))
	part=$(sed -n "/ktdp-detector-begin $f\$/,/ktdp-detector-end $f\$/p" "$log")
	if [ "$f" = kasan ] && ! grep -q '^CONFIG_KASAN=y' "$KDIR/.config"; then
		# Not a pass: a skip, counted apart.
		echo "ok $n $f # SKIP KASAN is not in this kernel (KTDP_KASAN=0 was given)"
		skipped=$((skipped + 1))
		continue
	elif ! grep -q "ktdp-detector-end $f" <<<"$part"; then
		why="the guest never finished this fault"
	elif ! grep -Eq "$sig" <<<"$part"; then
		why="no '$sig' in the kernel log"
	elif ! grep -Eq -f <(grep -v '^#' scripts/kernel-reports.txt) <<<"$part"; then
		why="the detector reported, but the make check scan misses it"
	else
		echo "ok $n $f: $(grep -Em1 "$sig" <<<"$part" | sed 's/^\[ *[0-9.]*\] //')"
		passed=$((passed + 1))
		continue
	fi
	echo "not ok $n $f: $why"
	failed=$((failed + 1))
done
echo "1..$n"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
