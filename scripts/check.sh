#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: host unit tests, then every selftest in the VM (KTDP_TESTS="a_test
# b_test" runs only those in the VM, for development), and the EPT suite in
# Bochs beside them (scripts/ept.sh).  Prints TAP and
# ends with one line "N passed, N failed".  Exits non-zero on any failed test,
# any module that fails to load or unload, or any kernel report (WARN, BUG,
# Oops, lockdep, KASAN, kmemleak, ...) in the guest's log.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"
mkdir -p out
# The whole check, build to verdict, holds the kernel cache (scripts/env.sh):
# nobody rebuilds the tree between our build and our boot.
ktdp_lock -x
res=$(ktdp_results check)

passed=0
failed=0
count() { # ok|fail name [detail]
	if [ "$1" = ok ]; then passed=$((passed + 1)); else
		failed=$((failed + 1))
		echo "FAILED: $2${3:+ ($3)}"
	fi
}

# 1. Build.  A build failure is a failure of the whole check.
if ! make -s kernel modules selftests; then
	echo "FAILED: build"
	echo "0 passed, 1 failed"
	exit 1
fi

# 1b. The EPT suite (scripts/ept.sh) runs in Bochs beside everything below:
# Bochs is one host thread, as QEMU's TCG is.  It copies this build into its
# ISO before lint rebuilds the modules, so lint waits for Bochs to start.
# By default it runs with the whole suite and not with KTDP_TESTS (a
# development run); KTDP_EPT=1 or 0 says otherwise.
ept_pid=
# Beside, not inside, a KTDP_RESULTS directory: vm.sh empties that one.
ept_res=${KTDP_RESULTS:+$KTDP_RESULTS-ept}
ept_res=${ept_res:-$(ktdp_results ept)}
run_ept=${KTDP_EPT:-$([ -z "${KTDP_TESTS:-}" ] && echo 1 || echo 0)}
case $run_ept in
0 | 1) ;;
*) count fail "KTDP_EPT" "'$run_ept' is neither 0 nor 1"; run_ept=0 ;;
esac
if [ "$run_ept" = 1 ]; then
	ktdp_log "check: the EPT suite in Bochs, in the background (out/ept.log)"
	rm -f "$ept_res/booting"
	KTDP_RESULTS=$ept_res bash scripts/ept.sh >out/ept.log 2>&1 &
	ept_pid=$!
	while kill -0 "$ept_pid" 2>/dev/null && [ ! -e "$ept_res/booting" ]; do
		sleep 1
	done
fi

# 2. Style: rustfmt, clippy (rebuilds the modules with CLIPPY=1), checkpatch.
ktdp_log "check: lint"
if bash scripts/lint.sh >out/lint.log 2>&1; then count ok "lint"; else
	sed 's/^/# /' out/lint.log | tail -40
	count fail "lint" "see out/lint.log"
fi

# 3. Host-side unit tests of the pure logic (cargo test).
ktdp_log "check: host unit tests (cargo test)"
(cd logic && CARGO_TARGET_DIR=$KTDP_CARGO_TARGET cargo test --locked 2>&1) |
	tee out/host-test.log | grep -E '^test |test result|error|panicked'
host_rc=${PIPESTATUS[0]}
while read -r p f; do
	passed=$((passed + p))
	failed=$((failed + f))
done < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' out/host-test.log)
[ "$host_rc" = 0 ] || count fail "cargo test" "exit $host_rc, see out/host-test.log"

# 4. The VM: modules, selftests, kmemleak.  What it must report comes from
# selftests/manifest (KTDP_TESTS keeps only the tests named, each of which
# must be listed); every selftest source must be listed.
manifest=selftests/manifest
for t in ${KTDP_TESTS:-}; do
	grep -qx "test $t" "$manifest" || count fail "KTDP_TESTS" "$t is not a test in $manifest"
done
for c in selftests/*_test.c; do
	t=$(basename "$c" .c)
	grep -qx "test $t" "$manifest" || count fail "manifest" "$c is not in $manifest"
done
expected=$(while read -r kind t; do
	case "$kind" in
	step) echo "$t" ;;
	test) [ -z "${KTDP_TESTS:-}" ] || [[ " $KTDP_TESTS " == *" $t "* ]] && echo "$t" ;;
	esac
done <"$manifest")

ktdp_log "check: selftests in the VM"
bash scripts/vm.sh check ${KTDP_TESTS:-}
vm_rc=$?
while read -r line; do
	case "$line" in
	"ok "*) count ok "${line#ok }" ;;
	"not ok "*) count fail "${line#not ok }" "see $res/" ;;
	esac
done < <(cat "$res/tap.txt" 2>/dev/null)
# Every expected TAP line, in order; nothing else.
got=$(sed -n 's/^\(not \)\{0,1\}ok [0-9]* \([^ ]*\).*/\2/p' "$res/tap.txt" 2>/dev/null)
if [ "$got" != "$expected" ]; then
	diff <(echo "$expected") <(echo "$got") | sed -n 's/^\([<>]\)/# \1/p' | head -20
	count fail "manifest" "the guest ran other steps than $manifest lists ('<' expected, '>' ran)"
fi
if [ -f "$res/vm-timeout" ]; then
	count fail "vm timeout" "the guest ran past KTDP_VM_TIMEOUT=$(cat "$res/vm-timeout") s and was killed"
fi
if [ ! -s "$res/dmesg.log" ]; then
	count fail "vm" "the guest did not finish (exit $vm_rc); its console is in $res/console.log"
	cp "$res/console.log" "$res/dmesg.log" 2>/dev/null
fi

# 5. The guest's kernel log must be free of any report (the console too: it
# holds what a guest that died printed last).
if grep -Eq -f <(grep -v '^#' scripts/kernel-reports.txt) "$res/dmesg.log" "$res/console.log" 2>/dev/null; then
	grep -Ehn -f <(grep -v '^#' scripts/kernel-reports.txt) "$res/dmesg.log" "$res/console.log" |
		head -20 | sed 's/^/# /'
	count fail "guest kernel log clean" "report in $res/dmesg.log or console.log"
else
	count ok "guest kernel log clean"
fi
[ "$vm_rc" = 0 ] || [ "$failed" -gt 0 ] || count fail "vm exit code" "$vm_rc"

# 6. The EPT suite's own verdict, every line of it counted.
if [ -n "$ept_pid" ]; then
	ktdp_log "check: waiting for the EPT suite (Bochs)"
	wait "$ept_pid"
	ept_rc=$?
	echo "# EPT suite in Bochs (make check-ept; results in $ept_res):"
	grep -E '^(not )?ok |^FAILED|^# [<>]' out/ept.log | sed 's/^/# ept: /'
	verdict=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' out/ept.log | tail -1)
	if [ -n "$verdict" ]; then
		passed=$((passed + ${verdict% *}))
		failed=$((failed + ${verdict#* }))
		[ "$ept_rc" = 0 ] || [ "${verdict#* }" -gt 0 ] ||
			count fail "check-ept" "exit $ept_rc, see out/ept.log"
	else
		tail -20 out/ept.log | sed 's/^/# /'
		count fail "check-ept" "no verdict (exit $ept_rc), see out/ept.log"
	fi
else
	echo "# EPT suite not run (KTDP_TESTS or KTDP_EPT=0): make check-ept runs it"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
