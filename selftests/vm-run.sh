#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the test VM (as root), started by scripts/vm.sh.
#   vm-run.sh check RESULTS [TEST...]
#                             load the modules, run every selftest (or only
#                             the TESTs named), unload, scan kmemleak; TAP on
#                             stdout and RESULTS/tap.txt
#   vm-run.sh demo RESULTS    load the modules and run the demo
#   vm-run.sh detectors RESULTS FAULT...
#                             commit each deliberate bug of
#                             selftests/detectors/ktdp_faults.ko
#   vm-run.sh bench RESULTS quick|full [PERF_BIN BASE_MODULES ROUNDS]
#                             the benchmark (bench/)
#   vm-run.sh trace RESULTS BASE_MODULES
#                             operations for bench/trace.py to single-step
#
# Every step is a TAP test point: a module that fails to load or unload is a
# failure, never a skip.  The host (scripts/check.sh) adds the verdict on the
# guest's kernel log.
set -u
mode=$1
res=$2
shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/out
# The project's modules, for tdp_fd_unload_test (which unloads and reloads them).
export KTDP_KO_TDP_FD=$ROOT/drivers/kvm_tdp_fd/kvm_tdp_fd.ko
export KTDP_KO_IMPORTER_C=$ROOT/samples/kvm_tdp_importer_c/kvm_tdp_importer_c.ko
export KTDP_KO_IOMMU=$ROOT/samples/kvm_tdp_iommu/kvm_tdp_iommu.ko
: "${KDIR:?}"
TEST_TIMEOUT=${KTDP_TEST_TIMEOUT:-600}

n=0
tap() { # ok|not-ok name
	n=$((n + 1))
	local line
	if [ "$1" = ok ]; then line="ok $n $2"; else line="not ok $n $2"; fi
	echo "$line"
	echo "$line" >>"$res/tap.txt"
}

step() { # name command...  (output indented as TAP diagnostics)
	local name=$1 rc
	shift
	"$@" >"$res/$name.log" 2>&1
	rc=$?
	sed 's/^/# /' "$res/$name.log"
	if [ $rc = 0 ]; then tap ok "$name"; else
		echo "# exit code $rc"
		tap not-ok "$name"
	fi
	return $rc
}

mount -t debugfs none /sys/kernel/debug 2>/dev/null
# Forget leak suspects from boot: only what the suite leaks counts.  "clear"
# only forgets what a scan has reported, so scan first.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak && echo clear >/sys/kernel/debug/kmemleak
fi

# The kernel that booted, the tree's modules and the project's modules must
# all come from the build of one key (scripts/kernel.sh writes it into the
# kernel's version string and beside the modules; make modules beside ours):
# another clone's build of the shared cache is never tested by accident.
build_key() {
	local k
	echo "expected key: ${KTDP_KEY:-none}"
	[ -n "${KTDP_KEY:-}" ] || return 1
	echo "kernel: $(uname -v)"
	case "$(uname -v)" in *"ktdp-$KTDP_KEY"*) ;; *) echo "kernel built for another key"; return 1 ;; esac
	k=$(cat "$KDIR/_modinst/ktdp-key" 2>/dev/null)
	echo "tree modules: ${k:-none}"
	[ "$k" = "$KTDP_KEY" ] || return 1
	k=$(cat "$OUT/modules.key" 2>/dev/null)
	echo "project modules: ${k:-none}"
	[ "$k" = "$KTDP_KEY" ]
}

load_modules() {
	step build_key build_key || return 1
	# make bench(-trace) boots the production config: no KUnit runs.
	case $mode in bench | trace) ;; *) step rust_doctests rust_doctests ;; esac
	# The patched KVM, from the tree's private modules_install.
	step load_kvm_amd modprobe -d "$KDIR/_modinst" kvm_amd || return 1
	# What KVM does while no provider is loaded, checked before it is.
	[ "$mode" = check ] &&
		step tdp_fd_uapi_test_no_provider \
			"$OUT/selftests/tdp_fd_uapi_test" --no-provider
	step load_kvm_tdp_fd insmod "$ROOT/drivers/kvm_tdp_fd/kvm_tdp_fd.ko"
	# The sample importers, C and Rust (both link kvm_tdp_fd_get()).
	step load_kvm_tdp_importer_c \
		insmod "$ROOT/samples/kvm_tdp_importer_c/kvm_tdp_importer_c.ko"
	step load_kvm_tdp_iommu \
		insmod "$ROOT/samples/kvm_tdp_iommu/kvm_tdp_iommu.ko"
}

unload_modules() {
	step unload_kvm_tdp_iommu rmmod kvm_tdp_iommu
	step unload_kvm_tdp_importer_c rmmod kvm_tdp_importer_c
	# Clean after every TDP FD and importer is gone.
	step unload_kvm_tdp_fd rmmod kvm_tdp_fd
	step debugfs_dir_gone test ! -e /sys/kernel/debug/kvm_tdp_fd
	step unload_kvm_amd modprobe -r -d "$KDIR/_modinst" kvm_amd
}

run_selftests() { # [only these tests...]
	local kind t
	# Exactly the manifest's tests: a stale binary of a test that is no
	# longer listed is not run, a listed one that was not built fails.
	while read -r kind t; do
		[ "$kind" = test ] || continue
		[ $# = 0 ] || [[ " $* " == *" $t "* ]] || continue
		if [ -x "$OUT/selftests/$t" ]; then
			step "$t" timeout -k 5 "$TEST_TIMEOUT" "$OUT/selftests/$t"
		else
			echo "# $OUT/selftests/$t was not built"
			tap not-ok "$t"
		fi
	done <"$ROOT/selftests/manifest"
}

# The kernel crate's examples (rust/, `# Examples`), run by KUnit at boot
# (CONFIG_RUST_KERNEL_DOCTESTS): every one passed, and the project's own are
# among them.
rust_doctests() {
	local f=/sys/kernel/debug/kunit/rust_doctests_kernel/results ours
	[ -r $f ] || { echo "no KUnit results at $f"; return 1; }
	grep -E '^ *(not )?ok ' $f | grep -E 'kvm_tdp|rcu|file|table_page|pinned_pages|debugfs'
	ours=$(grep -cE '^ +ok [0-9]+ rust_doctest_kernel_(kvm_tdp|sync_rcu|fs_file|table_page|pinned_pages|debugfs)' $f)
	echo "$(grep -cE '^ +ok ' $f) examples passed, $ours of them this project's"
	if grep -E '^ *not ok ' $f; then return 1; fi
	grep -qE '^ok [0-9]+ rust_doctests_kernel' $f || { echo "suite did not pass"; return 1; }
	[ "$ours" -ge 8 ] || { echo "expected at least 8 of this project's examples"; return 1; }
}

kmemleak_scan() {
	local f=/sys/kernel/debug/kmemleak
	[ -w $f ] || { echo "kmemleak is not available"; return 1; }
	# kmemleak reports nothing younger than 5 s (MSECS_MIN_AGE) and an
	# object freed late can look unreferenced once: let everything the
	# suite allocated age, then scan twice.  A write that fails means
	# kmemleak is off (it disables itself on an internal error): a failure,
	# never an empty, clean-looking report.
	sleep 6
	# make check-harness: kmemleak switched off behind the suite's back.
	[ "${KTDP_INJECT:-}" = kmemleak-off ] && echo off >$f
	for pass in 1 2; do
		[ $pass = 1 ] || sleep 1
		echo scan >$f || { echo "kmemleak scan failed: kmemleak is off"; return 1; }
	done
	cat $f >"$res/kmemleak.log" || { echo "kmemleak report unreadable"; return 1; }
	if [ -s "$res/kmemleak.log" ]; then
		head -40 "$res/kmemleak.log"
		return 1
	fi
	echo "kmemleak: two scans, no suspect"
}

case "$mode" in
check)
	echo "TAP version 13"
	if load_modules; then
		run_selftests "$@"
		unload_modules
	fi
	step kmemleak_clean kmemleak_scan
	;;
demo)
	if load_modules; then
		# Its report on the console as is; its verdict as a TAP line.
		if "$OUT/samples/demo" "$@"; then tap ok demo; else tap not-ok demo; fi
		# The same table walked by a real (emulated) IOMMU: each line
		# the test passes is one step of the story.
		echo
		echo "-- a real IOMMU: QEMU's intel-iommu walks KVM's NPT for the DMA of its edu device --"
		echo "   (VFIO cdev + iommufd, IOMMU_HWPT_ALLOC from the TDP FD; patches/iommufd/)"
		"$OUT/selftests/iommufd_kvm_tdp_test" >"$res/iommu_demo.log" 2>&1
		rc=$?
		sed -n 's/^ok [0-9]* /  /p; s/^not ok [0-9]* /  FAILED: /p' "$res/iommu_demo.log"
		if [ $rc = 0 ]; then tap ok iommu_demo; else
			cat "$res/iommu_demo.log"
			tap not-ok iommu_demo
		fi
		unload_modules
	fi
	;;
bench)
	# make bench: $1 quick|full|perf (only the KVM perf comparison),
	# $2 KVM's perf selftests, $3 the unpatched
	# KVM's module tree, $4 rounds.  CSV in RESULTS/*.csv.
	echo "TAP version 13"
	if [ "$1" != perf ] && load_modules; then
		step tdp_fd_bench sh -c "'$OUT/bench-bin/tdp_fd_bench' $1 >'$res/tdp_fd_bench.csv'"
		unload_modules
	fi
	if [ -n "${2:-}" ]; then
		mkdir -p "$res/kvmperf"
		step kvm_perf sh -c "bash '$ROOT/bench/kvm_perf.sh' '$2' '$KDIR/_modinst' '$3' '$4' '$res/kvmperf' '$OUT/bench-bin/tdp_fd_bench' >'$res/kvmperf.csv'"
	fi
	;;
trace)
	# make bench-trace: $1 the unpatched KVM's module tree.  Each case of
	# "tdp_fd_bench trace" repeats until bench/trace.py on the host, told
	# the case and the function to trace in RESULTS/trace/current, has
	# single-stepped it through QEMU's gdbstub and created its done file
	# (it waits for the case's ready file, created once it is set up).
	echo "TAP version 13"
	mkdir -p "$res/trace"
	trace_cases() { # variant case:function...
		local v=$1 c
		shift
		cat /proc/kallsyms >"$res/trace/kallsyms-$v"
		for c in "$@"; do
			echo "$v ${c%%:*} ${c#*:}" >"$res/trace/current.tmp"
			mv "$res/trace/current.tmp" "$res/trace/current"
			step "trace-$v-${c%%:*}" timeout 1200 \
				"$OUT/bench-bin/tdp_fd_bench" trace "${c%%:*}" \
				"$res/trace/$v-${c%%:*}.ready" \
				"$res/trace/$v-${c%%:*}.done"
		done
	}
	common="zap1:__x64_sys_madvise zap8:__x64_sys_madvise
		fault4k:kvm_arch_vcpu_pre_fault_memory clear64:kvm_vm_ioctl"
	if step load_base_kvm_amd modprobe -d "$1" kvm_amd; then
		# shellcheck disable=SC2086
		trace_cases base $common
		step unload_base_kvm_amd modprobe -r -d "$1" kvm_amd
	fi
	if load_modules; then
		# shellcheck disable=SC2086
		trace_cases patched $common zap1-e0:__x64_sys_madvise \
			zap1-e1:__x64_sys_madvise zap8-e0:__x64_sys_madvise \
			zap8-e1:__x64_sys_madvise
		unload_modules
	fi
	echo "end" >"$res/trace/current"
	;;
detectors)
	# make check-detectors: each deliberate bug of ktdp_faults.ko between
	# two markers in the kernel log; scripts/detectors.sh judges each part.
	echo "TAP version 13"
	mod=$ROOT/selftests/detectors/ktdp_faults.ko
	# Shorter limits, so that a hang is reported within the run; the
	# soft-lockup limit only around its own fault (it would fire first
	# in the RCU stall's 8 s reader).
	echo 3 >/proc/sys/kernel/hung_task_timeout_secs
	echo 3 >/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
	for f in "$@"; do
		thresh=10
		[ "$f" = soft_lockup ] && thresh=1
		echo $thresh >/proc/sys/kernel/watchdog_thresh
		echo "ktdp-detector-begin $f" >/dev/kmsg
		insmod "$mod" fault="$f" >"$res/$f.log" 2>&1
		case $f in
		kmemleak)
			sleep 6
			echo scan >/sys/kernel/debug/kmemleak
			echo scan >/sys/kernel/debug/kmemleak ;;
		hung_task) sleep 10; rmmod ktdp_faults ;;
		*) sleep 1 ;;
		esac
		echo "ktdp-detector-end $f" >/dev/kmsg
		tap ok "$f committed"
	done
	;;
kvm-selftests*)
	# KVM's own selftests: $1 is the directory with the binaries and
	# list.txt.  Each gets KTDP_KVM_TEST_TIMEOUT seconds; kselftest's exit
	# code 4 is a skip.
	echo "TAP version 13"
	bin=$1
	: >"$res/results.txt"
	if step load_kvm_amd modprobe -d "$KDIR/_modinst" kvm_amd; then
		while read -r t; do
			name=${t//\//_}
			(cd "$bin/$(dirname "$t")" &&
				timeout -k 5 "${KTDP_KVM_TEST_TIMEOUT:-120}" \
					"./$(basename "$t")") >"$res/$name.log" 2>&1
			rc=$?
			case $rc in
			0) echo "$t ok" >>"$res/results.txt"; tap ok "$t" ;;
			4) echo "$t skip" >>"$res/results.txt"; tap ok "$t # SKIP" ;;
			*) echo "$t fail" >>"$res/results.txt"
			   echo "# exit code $rc"; tap not-ok "$t" ;;
			esac
		done <"$bin/list.txt"
	fi
	;;
*)
	echo "unknown mode $mode" >&2
	exit 2
	;;
esac

echo "1..$n" | tee -a "$res/tap.txt"
dmesg >"$res/dmesg.log"
rc=0
grep -q '^not ok' "$res/tap.txt" && rc=1
# virtme-ng's own exit-code channel (a virtio serial port) sometimes loses
# the code under TCG; the host reads this file instead.
echo $rc >"$res/guest-exit-code"
sync
exit $rc
