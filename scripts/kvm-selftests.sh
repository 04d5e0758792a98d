#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make kvm-selftests: build the tree's own KVM selftests (x86) and run them
# in the VM on the patched KVM; with KTDP_VARIANT=base, on the unpatched
# baseline kernel built from the same source and config.  Writes
# out/kvm-selftests[-base]/results.txt ("name ok|fail|skip") and, when both
# exist, compares them: a test that passes on the baseline and not on the
# patched kernel is a regression, and fails this command.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"

# Patched and baseline kernels are compared without KASAN: the baseline is
# built from the fragment alone.
KTDP_KASAN=0
KDIR=$KTDP_CACHE/linux
suffix=
if [ "${KTDP_VARIANT:-}" = base ]; then
	suffix=-base
	export KDIR=$KTDP_CACHE/linux-base
fi
mode=kvm-selftests$suffix
bin=$KTDP_ROOT/out/kvm-st-bin$suffix
st=$KDIR/tools/testing/selftests/kvm

ktdp_log "kvm-selftests: building in $bin"
make -s -C "$st" OUTPUT="$bin" EXTRA_CFLAGS=-static -j"$(nproc)" >/dev/null
sed -n 's/^TEST_\(GEN_\)\?PROGS_x86_64 += //p' "$st/Makefile" >"$bin/list.txt"
# TEST_PROGS are scripts in the source tree that run their binary from
# their own directory: put them beside the binaries.
for t in $(sed -n 's/^TEST_PROGS_x86_64 += //p' "$st/Makefile"); do
	cp "$st/$t" "$bin/$t"
done

# KTDP_KVM_TESTS="a b": run only these, and merge their results into the
# previous full run's.
res=$(ktdp_results "$mode")
prev=
if [ -n "${KTDP_KVM_TESTS:-}" ]; then
	printf '%s\n' $KTDP_KVM_TESTS >"$bin/list.txt"
	prev=$(cat "$res/results.txt" 2>/dev/null || true)
fi

KTDP_VM_TIMEOUT=${KTDP_VM_TIMEOUT:-5400} bash scripts/vm.sh "$mode" "$bin" || true
[ -f "$res/results.txt" ] || ktdp_die "no results; see $res/console.log"
if [ -n "$prev" ]; then
	{
		awk 'NR == FNR { rerun[$1] = 1; next } !($1 in rerun)' \
			"$res/results.txt" <(echo "$prev")
		cat "$res/results.txt"
	} | sort >"$res/results.merged"
	mv "$res/results.merged" "$res/results.txt"
fi
printf '%s: %s passed, %s failed, %s skipped\n' "$mode" \
	"$(grep -c ' ok$' "$res/results.txt")" \
	"$(grep -c ' fail$' "$res/results.txt")" \
	"$(grep -c ' skip$' "$res/results.txt")"

base=out/kvm-selftests-base/results.txt
patched=out/kvm-selftests/results.txt
if [ -f "$base" ] && [ -f "$patched" ]; then
	regressions=$(join <(sort "$base") <(sort "$patched") |
		awk '$2 == "ok" && $3 != "ok" { print $1 }')
	if [ -n "$regressions" ]; then
		echo "regressions (pass on the baseline, not patched):"
		echo "$regressions" | sed 's/^/  /'
		exit 1
	fi
	echo "no regression against the baseline"
fi
