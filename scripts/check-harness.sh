#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-harness: the test harness sees every failure it claims to.  Each
# case runs make check (or one of its parts) with a fault put in its way and
# asserts the verdict: a failure where one is due, with the summary line
# printed, and a pass where the fault must not matter.  One short selftest
# (platform_smoke_test) keeps each VM run brief.  Prints TAP and a last line
# "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"
mkdir -p out/harness
T=platform_smoke_test
n=0
passed=0
failed=0
result() { # 0|1 name
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n $2"; passed=$((passed + 1)); else
		echo "not ok $n $2"; failed=$((failed + 1)); fi
}
# run NAME CMD...: make check's output in out/harness/NAME.log, exit code in $rc
run() {
	local name=$1
	shift
	"$@" >"out/harness/$name.log" 2>&1
	rc=$?
	last=$(tail -1 "out/harness/$name.log")
}
summary_ok() { [[ "$last" =~ ^[0-9]+\ passed,\ [0-9]+\ failed$ ]]; }
says() { grep -q -- "$1" "out/harness/$2.log"; }

make -s kernel modules selftests >/dev/null || ktdp_die "build failed"

# 0. The baseline: the short run passes.
run baseline env KTDP_TESTS=$T bash scripts/check.sh
[ $rc = 0 ] && summary_ok
result $? "baseline: KTDP_TESTS=$T make check passes"

# 1. kmemleak switched off during the run: kmemleak_clean must fail.
run kmemleak-off env KTDP_TESTS=$T KTDP_INJECT=kmemleak-off bash scripts/check.sh
[ $rc != 0 ] && summary_ok && says "not ok .* kmemleak_clean" kmemleak-off
result $? "kmemleak off during the run: make check fails at kmemleak_clean"

# 2. KTDP_RESULTS: judged on this run's files, not out/check's.
mkdir -p out/check && printf 'not ok 1 stale\n' >out/check/tap.txt
tmp=$(mktemp -d)
run results env KTDP_TESTS=$T KTDP_RESULTS="$tmp" bash scripts/check.sh
[ $rc = 0 ] && summary_ok && [ -s "$tmp/tap.txt" ] && ! says "not ok 1 stale" results
result $? "KTDP_RESULTS: check.sh reads where vm.sh wrote"
rm -rf "$tmp" out/check/tap.txt

# 3. A misspelt test name runs nothing: a failure, not a pass.
run misspelt env KTDP_TESTS=platform_smoke_tset bash scripts/check.sh
[ $rc != 0 ] && summary_ok && says "is not a test in selftests/manifest" misspelt
result $? "KTDP_TESTS naming no listed test fails"

# 4. A selftest source missing from the manifest fails; a stale binary of an
# unlisted test is never run.
printf 'int main(void) { return 1; }\n' >selftests/zz_unlisted_test.c
cp out/selftests/$T out/selftests/zz_stale_test
run unlisted env KTDP_TESTS=$T bash scripts/check.sh
rm -f selftests/zz_unlisted_test.c out/selftests/zz_unlisted_test out/selftests/zz_stale_test
[ $rc != 0 ] && summary_ok && says "zz_unlisted_test.c is not in selftests/manifest" unlisted &&
	! says "zz_stale_test" unlisted
result $? "a selftest missing from the manifest fails; a stale binary is not run"

# 5. A guest past KTDP_VM_TIMEOUT: a failure with a summary, and no QEMU left.
tmp=$(mktemp -d)
run timeout env KTDP_TESTS=$T KTDP_VM_TIMEOUT=20 KTDP_RESULTS="$tmp" bash scripts/check.sh
sleep 2
left=$(pgrep -f "qemu-system.*$tmp" || true)
[ $rc != 0 ] && summary_ok && says "FAILED: vm timeout" timeout && [ -z "$left" ]
result $? "VM timeout: counted as a failure, summary printed, QEMU ended${left:+ (left: $left)}"
rm -rf "$tmp"

# 6a. Modules of another build: the guest refuses to test them.
good=$(cat out/modules.key)
echo 0000000000000000 >out/modules.key
run key bash scripts/vm.sh check $T
echo "$good" >out/modules.key
[ $rc != 0 ] && grep -q "^not ok 1 build_key" out/check/tap.txt
result $? "modules built for another key: build_key fails"

# 6b. The cache lock: a build waits for the holder.
( flock -x 9; sleep 8 ) 9>>"$KTDP_CACHE/.lock" &
holder=$!
sleep 1
run lock bash scripts/kernel.sh
wait $holder
[ $rc = 0 ] && says "waiting for the kernel cache lock" lock
result $? "make kernel waits for the cache lock's holder"

# 6c. A build that fails after the tree changed leaves no key: reverting its
# input rebuilds instead of reporting "up to date".  A config line Kconfig
# refuses fails after the new tree is checked out and configured.
cp config/kvm-tdp-fd.config out/harness/fragment.orig
echo CONFIG_KTDP_HARNESS_NO_SUCH_OPTION=y >>config/kvm-tdp-fd.config
run broken bash scripts/kernel.sh
brc=$rc
cp out/harness/fragment.orig config/kvm-tdp-fd.config
nokey=1
[ -f "$KDIR/.ktdp-key" ] || nokey=0
run reverted bash scripts/kernel.sh
[ $brc != 0 ] && [ $nokey = 0 ] && ! says "up to date" reverted && says "kernel: done" reverted
result $? "a build that failed leaves no key; the reverted input is rebuilt, not 'up to date'"

echo "1..$n"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
