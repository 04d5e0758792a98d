#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-ept: the TDP FD suite on Intel VMX with EPT, in Bochs (QEMU TCG has
# no VMX; Debian's Bochs is built with VMX and EPT, see PLATFORM notes).
#
# Boots the same kernel make check boots ($KDIR, cached and keyed by
# scripts/kernel.sh) from a grub ISO with a busybox initramfs that holds
# KVM's modules from the patched tree, the project's modules and the static
# selftests listed in selftests/manifest.ept; selftests/ept-init.sh runs them
# on one vCPU.  Prints TAP and a last line "N passed, N failed"; exits non-zero
# on any failed step, a missing or extra TAP line, a guest that does not finish
# (panics, reboots, or runs past KTDP_EPT_TIMEOUT) and any kernel report on the
# guest's console (scripts/kernel-reports.txt), except the two warnings Bochs'
# CPU model causes at boot (bochs_warnings below).
#
# Results in out/ept/ (or $KTDP_RESULTS): console.log (the kernel's console,
# first serial port), tap-full.txt (the runner's, second serial port: TAP
# with each step's output), tap.txt, scanned.log, bochs.log.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"
mkdir -p out
# From our build to the verdict the tree must not change (as make check).
ktdp_lock -x
res=$(ktdp_results ept)
rm -rf "$res"
mkdir -p "$res"

: "${KTDP_EPT_TIMEOUT:=1500}"	# Bochs' whole run, seconds of host time
: "${KTDP_EPT_TEST_TIMEOUT:=600}"	# each selftest, seconds of guest time
: "${KTDP_EPT_MEM:=1024}"		# guest memory, MiB

passed=0
failed=0
count() { # ok|fail name [detail]
	if [ "$1" = ok ]; then passed=$((passed + 1)); else
		failed=$((failed + 1))
		echo "FAILED: $2${3:+ ($3)}"
	fi
}

if ! make -s kernel modules selftests; then
	echo "FAILED: build"
	echo "0 passed, 1 failed"
	exit 1
fi
key=$(cat "$KDIR/.ktdp-key")
# The manifest's steps and tests; KTDP_TESTS keeps only the tests named
# (each must be listed), as in make check.  Every selftest must be listed.
# A test that cannot run here is listed as "exclude NAME REASON", said in
# the output and never counted.
for c in selftests/*_test.c; do
	t=$(basename "$c" .c)
	grep -qx "test $t" selftests/manifest.ept ||
		grep -q "^exclude $t " selftests/manifest.ept ||
		count fail "manifest" "$c is not in selftests/manifest.ept"
done
sed -n 's/^exclude \([^ ]*\) \(.*\)/# not run on EPT: \1: \2/p' selftests/manifest.ept
for t in ${KTDP_TESTS:-}; do
	grep -qx "test $t" selftests/manifest.ept ||
		count fail "KTDP_TESTS" "$t is not a test in selftests/manifest.ept"
done
manifest=$res/manifest
while read -r kind t; do
	case "$kind" in
	step) echo "step $t" ;;
	test) [ -z "${KTDP_TESTS:-}" ] || [[ " $KTDP_TESTS " == *" $t "* ]] && echo "test $t" ;;
	esac
done <selftests/manifest.ept >"$manifest"

# The ISO.  Built in a few seconds; rebuilt only when one of its inputs
# (kernel, modules, selftests, init, manifest) changed.
ktdp_log "ept: building the initramfs and the ISO"
img=$KTDP_CACHE/ept
mkdir -p "$img"
modtree=$(echo "$KDIR"/_modinst/lib/modules/*)
# The tests the manifest runs, and the one its no-provider step runs.
tests=$({ sed -n 's/^test //p' "$manifest"; echo tdp_fd_uapi_test; } | sort -u)
# irqbypass is built in: VFIO_PCI (config/kvm-tdp-fd.config) selects it.
inputs=("$KDIR/arch/x86/boot/bzImage"
	"$modtree/kernel/arch/x86/kvm/kvm.ko" "$modtree/kernel/arch/x86/kvm/kvm-intel.ko"
	drivers/kvm_tdp_fd/kvm_tdp_fd.ko samples/kvm_tdp_importer_c/kvm_tdp_importer_c.ko
	samples/kvm_tdp_iommu/kvm_tdp_iommu.ko out/modules.key
	selftests/ept-init.sh "$manifest" /bin/busybox scripts/ept.sh)
for t in $tests; do inputs+=("out/selftests/$t"); done
digest=$( (sha256sum "${inputs[@]}" 2>&1; echo "$KTDP_EPT_TEST_TIMEOUT") | sha256sum | cut -c1-16)
iso=$img/ktdp-$digest.iso
if [ ! -f "$iso" ]; then
	rm -rf "$img"/root "$img"/iso "$img"/*.iso
	r=$img/root
	mkdir -p "$r"/{bin,proc,sys,dev,tmp,ktdp/kmod,ktdp/tests}
	cp /bin/busybox "$r/bin/busybox"
	ln -s busybox "$r/bin/sh"
	install -m 755 selftests/ept-init.sh "$r/init"
	cp "${inputs[@]:1:2}" "$r/ktdp/kmod/"
	cp "${inputs[@]:3:3}" "$r/ktdp/"
	for t in $tests; do
		[ -x "out/selftests/$t" ] && cp "out/selftests/$t" "$r/ktdp/tests/"
	done
	cp "$manifest" "$r/ktdp/manifest"
	echo "$key" >"$r/ktdp/key"
	cp out/modules.key "$r/ktdp/modules.key"
	echo "$KTDP_EPT_TEST_TIMEOUT" >"$r/ktdp/test-timeout"
	mkdir -p "$img/iso/boot/grub"
	cp "$KDIR/arch/x86/boot/bzImage" "$img/iso/boot/vmlinuz"
	(cd "$r" && find . | cpio -o -H newc --quiet | zstd -q -9 -T0) >"$img/iso/boot/initrd"
	# nolapic_timer: the tick comes from the HPET.  With Bochs' local
	# APIC timer the KASAN kernel never leaves its first tick handlers
	# (the kernel without KASAN boots either way).  panic=-1 reboots,
	# which the watcher below sees and ends.
	cat >"$img/iso/boot/grub/grub.cfg" <<-EOF
		serial --unit=0 --speed=115200
		terminal_input serial console
		terminal_output serial console
		set timeout=0
		menuentry ktdp {
			linux /boot/vmlinuz console=ttyS0,115200 panic=-1 mitigations=off nolapic_timer
			initrd /boot/initrd
		}
	EOF
	grub-mkrescue -o "$iso.tmp" "$img/iso" >"$img/grub-mkrescue.log" 2>&1 ||
		{ cat "$img/grub-mkrescue.log"; ktdp_die "grub-mkrescue failed"; }
	mv "$iso.tmp" "$iso"
fi

# Bochs: one CPU with VMX and EPT, headless (rfb without a client), its
# built-in debugger told to continue at once; the guest's power-off ends it.
cat >"$res/bochsrc" <<EOF
cpu: model=corei7_skylake_x, count=1, ips=100000000, reset_on_triple_fault=1, ignore_bad_msrs=1
memory: guest=$KTDP_EPT_MEM, host=$KTDP_EPT_MEM
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
pci: enabled=1, chipset=i440fx
ata0-master: type=cdrom, path=$iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$res/serial.log
com2: enabled=1, mode=file, dev=$res/tap-serial.log
clock: sync=none
display_library: rfb, options="timeout=0"
panic: action=fatal
error: action=ignore
sound: driver=dummy
log: $res/bochs.log
EOF
echo c >"$res/bochs.dbg"
ktdp_log "ept: booting $KDIR in Bochs (VMX+EPT, 1 CPU, $KTDP_EPT_MEM MiB); console in $res/serial.log"
start=$SECONDS
# scripts/check.sh waits for this before it rebuilds the modules (lint).
touch "$res/booting"
timeout -k 10 "$KTDP_EPT_TIMEOUT" bochs-bin -q -f "$res/bochsrc" -rc "$res/bochs.dbg" \
	</dev/null >"$res/bochs.out" 2>&1 &
bochs=$!
# A guest that panics reboots (panic=-1) and would run the suite again, or
# a second time to the timeout: end Bochs at the first sign of either.
watch_rc=
while kill -0 "$bochs" 2>/dev/null; do
	sleep 5
	if grep -aq 'Kernel panic - not syncing' "$res/serial.log" 2>/dev/null ||
		[ "$(cat "$res/serial.log" 2>/dev/null | grep -ac 'Linux version')" -gt 1 ]; then
		watch_rc=panic
		pkill -P "$bochs" 2>/dev/null
		kill "$bochs" 2>/dev/null
		break
	fi
done
wait "$bochs"
brc=$?
ktdp_log "ept: Bochs ended after $((SECONDS - start)) s (exit $brc)"
[ "$watch_rc" = panic ] &&
	count fail "guest panicked or rebooted" "see $res/console.log; Bochs was ended"
{ [ "$brc" = 124 ] || [ "$brc" = 137 ]; } &&
	count fail "bochs timeout" "the guest ran past KTDP_EPT_TIMEOUT=$KTDP_EPT_TIMEOUT s"

tr -d '\r' <"$res/serial.log" >"$res/console.log" 2>/dev/null
tr -d '\r' <"$res/tap-serial.log" 2>/dev/null |
	sed -n '/^ktdp-ept-begin$/,$p' | grep -av '^ktdp-ept-' >"$res/tap-full.txt"
grep -aE '^(not )?ok |^1\.\.' "$res/tap-full.txt" >"$res/tap.txt"
grep -aE '^#|^(not )?ok |^1\.\.' "$res/tap-full.txt"
while read -r line; do
	case "$line" in
	"ok "*) count ok "${line#ok }" ;;
	"not ok "*) count fail "${line#not ok }" "see $res/tap-full.txt" ;;
	esac
done <"$res/tap.txt"
expected=$(sed -n 's/^\(step\|test\) //p' "$manifest")
got=$(sed -n 's/^\(not \)\{0,1\}ok [0-9]* \([^ ]*\).*/\2/p' "$res/tap.txt")
if [ "$got" != "$expected" ]; then
	diff <(echo "$expected") <(echo "$got") | sed -n 's/^\([<>]\)/# \1/p' | head -20
	count fail "manifest" "the guest ran other steps than selftests/manifest.ept lists ('<' expected, '>' ran)"
fi
tr -d '\r' <"$res/tap-serial.log" 2>/dev/null | grep -aq '^ktdp-ept-exit ' ||
	count fail "guest" "the guest did not finish; its console is in $res/console.log"

# Bochs' CPU model makes two boot-time warnings (Debian's own 6.12 shows them
# too, PLATFORM notes): the legacy topology parser's (CPUID leaf 4 without
# leaf 0xb) and the XSAVE size check's.  Each WARNING block at exactly those
# lines of those functions is dropped, and nothing else: every other report
# fails the run.
bochs_warnings='at arch/x86/kernel/cpu/topology_common\.c:57 parse_legacy\+|at arch/x86/kernel/fpu/xstate\.c:606 paranoid_xstate_size_valid\+'
# A block is at most 60 lines: a torn end-of-trace line cannot hide more.
awk -v allow="$bochs_warnings" '
	/WARNING: / { skip = ($0 ~ allow) ? 60 : 0 }
	skip && /---\[ end trace/ { skip = 0; next }
	skip { skip--; next }
	{ print }' "$res/console.log" >"$res/scanned.log"
allowed=$(grep -cE "WARNING: .*($bochs_warnings)" "$res/console.log")
if grep -Eq -f <(grep -v '^#' scripts/kernel-reports.txt) "$res/scanned.log"; then
	grep -Ehn -f <(grep -v '^#' scripts/kernel-reports.txt) "$res/scanned.log" |
		head -20 | sed 's/^/# /'
	count fail "guest kernel log clean" "report in $res/console.log"
else
	echo "# guest kernel log: no report ($allowed known Bochs CPU-model warnings at boot)"
	count ok "guest kernel log clean"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
