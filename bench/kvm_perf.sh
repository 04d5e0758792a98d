#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench, in the VM: the price of the KVM series when nothing is
# exported.  KVM's own performance selftests run on the patched KVM modules
# and on unpatched ones built from the same source and config, loaded in
# turn in this same VM, alternating the order each round so that drift hits
# both alike; and so does the part of bench/tdp_fd_bench.c that needs no
# TDP FD (zaps and vCPU faults, "tdp_fd_bench base").  Round 0 is a warm-up
# that bench/report.py leaves out; after ROUNDS rounds, more are run (up to
# 2 x ROUNDS) while any judged figure's max - min exceeds 1% of its median
# (phases of KVM's tests shorter than 10 ms are not judged).
# Prints CSV rows "kvmperf,<test>:<metric>:<variant>,<round>,<value>,<unit>".
#
# One vCPU (-v 1): under QEMU icount the instructions a phase runs repeat,
# but how the threads of several vCPUs interleave does not.
#
# Usage: kvm_perf.sh BIN PATCHED_MODDIR BASE_MODDIR ROUNDS LOGDIR TDP_FD_BENCH
set -u
bin=$1 patched=$2 base=$3 rounds=$4 logs=$5 tdp_fd_bench=$6

# Small guests: under TCG, populating 1 GiB takes minutes.
declare -A args=(
	[dirty_log_perf_test]="-v 1 -b 64M -i 3"
	[demand_paging_test]="-v 1 -b 64M"
	[access_tracking_perf_test]="-v 1 -b 64M"
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

one_round() { # round
	local round=$1 order variant dir t log
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
			# A metric printed twice per run (access tracking marks
			# memory idle twice) is two figures: "name", "name-2".
			metrics "$t" "$log" |
				awk -F, -v OFS=, '{ if (++k[$1] > 1) $1 = $1 "-" k[$1] } 1' |
				while IFS=, read -r m v; do
					[ -n "$m" ] && echo "kvmperf,$t:$m:$variant,$round,$v,s"
				done
		done
		log=$logs/tdp_fd_bench-$variant-$round.log
		if ! "$tdp_fd_bench" base >"$log.csv" 2>"$log"; then
			echo "kvm_perf: tdp_fd_bench base failed on $variant KVM, see $log" >&2
			exit 1
		fi
		# The medians only: "inval,no-export,512,31.9,us".
		awk -F, -v v="$variant" -v r="$round" \
			'($1 == "inval" || $1 == "fault") && NF == 5 {
				printf "kvmperf,tdp_fd_bench:%s-%s-%s:%s,%s,%s,%s\n", $1, $2, $3, v, r, $4, $5
			}' "$log.csv"
		modprobe -r -d "$dir" kvm_amd || exit 1
	done
}

# Whether some judged figure of rounds 1.. still spreads over 1% of its
# median.  Phases of KVM's tests shorter than 10 ms are not judged
# (bench/report.py, JUDGED_MIN_S): waiting for them to settle would always
# run 2 x ROUNDS.
spread() {
	sort -t, -k2,2 -k4,4g "$rows" | awk -F, '$3 > 0 {
		if ($2 != k) { flush(); k = $2; n = 0; u = $5 }
		v[n++] = $4
	}
	function flush(  med) {
		if (!n) return
		med = n % 2 ? v[int(n / 2)] : (v[n / 2 - 1] + v[n / 2]) / 2
		if (u == "s" && med < 0.01) return
		if (med > 0 && (v[n - 1] - v[0]) / med > 0.01) wide = 1
	}
	END { flush(); exit !wide }'
}

# Round 0 is the warm-up; then $rounds rounds, and more, up to twice as
# many, while a judged figure spreads over 1%.
rows=$logs/rows.csv
: >"$rows"
round=0
while :; do
	one_round "$round" | tee -a "$rows"
	[ "${PIPESTATUS[0]}" = 0 ] || exit 1
	round=$((round + 1))
	[ "$round" -le "$rounds" ] && continue
	[ "$round" -le $((rounds * 2)) ] && spread && continue
	break
done
