#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench, in the VM: the price of the KVM series when nothing is
# exported.  KVM's own performance selftests run on the patched KVM modules
# and on unpatched ones built from the same source and config, loaded in
# turn in this same VM, alternating the order each round so that drift hits
# both alike.  Prints CSV rows "kvmperf,<test>:<metric>:<variant>,<round>,
# <seconds>,s".
#
# Usage: kvm_perf.sh BIN PATCHED_MODDIR BASE_MODDIR ROUNDS LOGDIR
set -u
bin=$1 patched=$2 base=$3 rounds=$4 logs=$5

# Small guests: under TCG, populating 1 GiB takes minutes.
declare -A args=(
	[dirty_log_perf_test]="-b 64M -i 3"
	[demand_paging_test]="-b 64M"
	[access_tracking_perf_test]="-b 64M"
)

# Lines "name : 1.23s" or "name: 1.23s" -> "name,1.23", per test.
metrics() { # test log
	case $1 in
	dirty_log_perf_test)
		sed -n -e 's/^Populate memory time: \([0-9.]*\)s/populate,\1/p' \
			-e 's/^Enabling dirty logging time: \([0-9.]*\)s/enable-logging,\1/p' \
			-e 's/^Get dirty log over [0-9]* iterations took \([0-9.]*\)s.*/get-dirty-log,\1/p' \
			-e 's/^Clear dirty log over [0-9]* iterations took \([0-9.]*\)s.*/clear-dirty-log,\1/p' \
			-e 's/^Disabling dirty logging time: \([0-9.]*\)s/disable-logging,\1/p' "$2"
		awk '/^Iteration [0-9]+ dirty memory time:/ { sub("s$", "", $6); t += $6 }
		     END { if (t) printf "dirty-memory,%s\n", t }' "$2"
		;;
	demand_paging_test)
		sed -n 's/^Total guest execution time:[[:space:]]*\([0-9.]*\)s/guest-execution,\1/p' "$2"
		;;
	access_tracking_perf_test)
		sed -n 's/^\([A-Za-z][A-Za-z ]*[a-z]\) *: \([0-9.]*\)s$/\1,\2/p' "$2" |
			tr 'A-Z ' 'a-z-'
		;;
	esac
}

for round in $(seq 1 "$rounds"); do
	if [ $((round % 2)) = 1 ]; then order="patched base"; else order="base patched"; fi
	for variant in $order; do
		if [ "$variant" = patched ]; then dir=$patched; else dir=$base; fi
		modprobe -d "$dir" kvm_amd || { echo "kvm_perf: cannot load $variant KVM" >&2; exit 1; }
		for t in dirty_log_perf_test demand_paging_test access_tracking_perf_test; do
			log=$logs/$t-$variant-$round.log
			# shellcheck disable=SC2086
			if ! (cd "$bin" && timeout 600 "./$t" ${args[$t]}) >"$log" 2>&1; then
				echo "kvm_perf: $t failed on $variant KVM, see $log" >&2
				exit 1
			fi
			metrics "$t" "$log" | while IFS=, read -r m v; do
				[ -n "$m" ] && echo "kvmperf,$t:$m:$variant,$round,$v,s"
			done
		done
		modprobe -r -d "$dir" kvm_amd || exit 1
	done
done
