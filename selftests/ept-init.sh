#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the initramfs that make check-ept (scripts/ept.sh) boots in Bochs,
# whose CPU has VMX with EPT.  busybox sh, nothing else: the image holds
# busybox, KVM's modules from the patched tree, the project's modules and the
# static selftests that selftests/manifest.ept lists.
#
# It runs the manifest's lines in order: "step NAME" calls the function NAME
# below, "test NAME" runs the selftest /ktdp/tests/NAME.  Each is one TAP
# line, its output as "# " lines, all on the second serial port (ttyS1):
# the kernel keeps the first (ttyS0) to itself, at full log level, so that
# no report can be lost to a full log buffer or torn into a TAP line.  The
# host (scripts/ept.sh) compares the TAP with the manifest and scans the
# kernel's console.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc none /proc
mount -t sysfs none /sys
mount -t devtmpfs none /dev 2>/dev/null
mount -t debugfs none /sys/kernel/debug
mount -t tmpfs none /tmp
# The tests' own temporary files and memfds live here.
mkdir -p /dev/shm && mount -t tmpfs none /dev/shm
exec 3>/dev/ttyS1 || exec 3>/dev/console

T=/ktdp
# The project's modules, for tdp_fd_unload_test (which unloads and reloads them).
export KTDP_KO_TDP_FD=$T/kvm_tdp_fd.ko KTDP_KO_IMPORTER_C=$T/kvm_tdp_importer_c.ko KTDP_KO_IOMMU=$T/kvm_tdp_iommu.ko
n=0
failed=0
tap() { # ok|not-ok name
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "ok $n $2" >&3; else
		echo "not ok $n $2" >&3
		failed=$((failed + 1))
	fi
}

step() { # name command...
	name=$1
	shift
	"$@" >/tmp/step.log 2>&1
	rc=$?
	sed 's/^/# /' /tmp/step.log >&3
	if [ $rc = 0 ]; then tap ok "$name"; else
		echo "# exit code $rc" >&3
		tap not-ok "$name"
	fi
}

param() { # module name
	cat "/sys/module/$1/parameters/$2" 2>/dev/null
}

# Prints each "module.param=want" and whether it holds; fails unless all do.
expect_params() {
	ok=0
	for p in "$@"; do
		m=${p%%.*}
		rest=${p#*.}
		have=$(param "$m" "${rest%%=*}")
		echo "$m.${rest%%=*}=$have (want ${rest#*=})"
		[ "$have" = "${rest#*=}" ] || ok=1
	done
	return $ok
}

# --- steps (the names selftests/manifest.ept uses) ---

# The image's kernel, KVM modules and project modules came from one build.
build_key() {
	echo "expected key: $(cat $T/key)"
	echo "kernel: $(uname -v)"
	case "$(uname -v)" in *"ktdp-$(cat $T/key)"*) ;; *) return 1 ;; esac
	echo "project modules: $(cat $T/modules.key)"
	[ "$(cat $T/modules.key)" = "$(cat $T/key)" ]
}

insmod_kvm_intel() { # kvm-intel parameters...
	insmod $T/kmod/kvm.ko || return 1
	insmod $T/kmod/kvm-intel.ko "$@" || return 1
	grep -qw ss /proc/cpuinfo && echo "CPU self-snoop: yes" || echo "CPU self-snoop: no"
}

# EPT with A/D bits and PML, the TDP MMU, MMIO caching: what the suite's
# EPT-only tests must see, asserted rather than adapted to.
load_kvm_intel() {
	insmod_kvm_intel || return 1
	expect_params kvm_intel.ept=Y kvm_intel.eptad=Y kvm_intel.pml=Y \
		kvm_intel.vpid=Y kvm_intel.unrestricted_guest=Y kvm.tdp_mmu=Y \
		kvm.mmio_caching=Y
}

# EPT without A/D bits (which also turns PML off): KVM tracks accesses by
# clearing R/W/X and dirty pages by write-protection.
load_kvm_intel_no_ad() {
	insmod_kvm_intel eptad=0 || return 1
	expect_params kvm_intel.ept=Y kvm_intel.eptad=N kvm_intel.pml=N \
		kvm.tdp_mmu=Y kvm.mmio_caching=Y
}

unload_kvm_intel() {
	rmmod kvm_intel && rmmod kvm
}

tdp_fd_uapi_test_no_provider() {
	timeout "$timeout" $T/tests/tdp_fd_uapi_test --no-provider
}

load_kvm_tdp_fd() { insmod $T/kvm_tdp_fd.ko; }
load_kvm_tdp_importer_c() { insmod $T/kvm_tdp_importer_c.ko; }
load_kvm_tdp_iommu() { insmod $T/kvm_tdp_iommu.ko; }
unload_kvm_tdp_iommu() { rmmod kvm_tdp_iommu; }
unload_kvm_tdp_importer_c() { rmmod kvm_tdp_importer_c; }
unload_kvm_tdp_fd() { rmmod kvm_tdp_fd; }
debugfs_dir_gone() { test ! -e /sys/kernel/debug/kvm_tdp_fd; }

kmemleak_clean() {
	f=/sys/kernel/debug/kmemleak
	[ -w $f ] || { echo "kmemleak is not available"; return 1; }
	sleep 6
	echo scan >$f || { echo "kmemleak scan failed: kmemleak is off"; return 1; }
	sleep 1
	echo scan >$f || { echo "kmemleak scan failed: kmemleak is off"; return 1; }
	cat $f >/tmp/kmemleak.log || return 1
	if [ -s /tmp/kmemleak.log ]; then
		head -40 /tmp/kmemleak.log
		return 1
	fi
	echo "kmemleak: two scans, no suspect"
}

# --- the run ---

# Leak suspects from boot do not count (vm-run.sh does the same).
[ -w /sys/kernel/debug/kmemleak ] &&
	echo scan >/sys/kernel/debug/kmemleak && echo clear >/sys/kernel/debug/kmemleak

timeout=$(cat $T/test-timeout)
echo "ktdp-ept-begin" >&3
echo "TAP version 13" >&3
while read -r kind name; do
	case "$kind" in
	step)
		if type "$name" >/dev/null 2>&1; then
			step "$name" "$name"
		else
			echo "# no step $name in ept-init.sh" >&3
			tap not-ok "$name"
		fi
		;;
	test)
		if [ -x "$T/tests/$name" ]; then
			step "$name" timeout "$timeout" "$T/tests/$name"
		else
			echo "# $name is not in the image" >&3
			tap not-ok "$name"
		fi
		;;
	esac
done <$T/manifest
echo "1..$n" >&3
echo "ktdp-ept-exit $failed" >&3
exec 3>&-
sync
poweroff -f
