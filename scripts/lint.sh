#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make lint: rustfmt --check on every Rust file of the project, clippy through
# the kernel build (CLIPPY=1), the modules built again against a tree without
# debugfs and 32-bit compat (config/lint.config), and checkpatch --strict on
# the patch series.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$KTDP_ROOT"
rc=0

# Overlay files (rust/) are checked as the copies in the tree, where the
# modules a file like lib.rs declares can be resolved.
mapfile -t rs < <(git ls-files '*.rs' | sed "s|^rust/|$KDIR/rust/|")
if [ ${#rs[@]} -gt 0 ]; then
	rustfmt --check --color never --edition 2021 --config-path "$KDIR/.rustfmt.toml" "${rs[@]}" || rc=1
fi

# Clippy runs as part of a forced rebuild of the out-of-tree modules.
ktdp_kmake M="$KTDP_ROOT" clean >/dev/null
ktdp_kmake M="$KTDP_ROOT" CLIPPY=1 modules 2>&1 | tee out/clippy.log
grep -q 'warning\|error' out/clippy.log && rc=1

# The same modules against the tree configured with config/lint.config (no
# debugfs, no 32-bit compat), from a copy of their sources, so that the
# modules built for the tests stay as they are.  modpost cannot resolve the
# kernel's symbols there (no vmlinux is built): its warnings are not lint's.
KTDP_VARIANT=lint bash scripts/kernel.sh
src=$KTDP_ROOT/out/lint-src
rm -rf "$src" && mkdir -p "$src"
git ls-files Kbuild drivers samples include | tar -cf - -T - | tar -C "$src" -xf -
make -s -C "$KTDP_CACHE/linux-lint" LLVM=-19 -j"${KTDP_JOBS:-$(nproc)}" \
	M="$src" CLIPPY=1 KBUILD_MODPOST_WARN=1 modules 2>&1 |
	sed '/^WARNING: Module.symvers is missing/,/proceed at your own risk/d' |
	{ grep -v '^WARNING: modpost: \|^ERROR: modpost: ' || true; } | tee out/clippy-lint.log
grep -q 'warning\|error' out/clippy-lint.log && rc=1
ls "$src"/drivers/kvm_tdp_fd/kvm_tdp_fd.o "$src"/samples/kvm_tdp_iommu/kvm_tdp_iommu.o \
	>/dev/null || rc=1

for p in $(ktdp_series) patches/platform/[0-9]*.patch; do
	# Run outside any git tree: in one, checkpatch checks git diffs instead.
	(cd /tmp && "$KDIR/scripts/checkpatch.pl" --strict --quiet --no-tree \
		"$KTDP_ROOT/$p") || rc=1
done

# The project's own kernel C sources, as files (the userspace tests, bench
# and demo follow the KVM selftests' style instead).  exports.c exports
# symbols defined in Rust, which checkpatch cannot see, hence its one
# ignored type.
for f in $(git ls-files '*.c' '*.h' | grep -v '^selftests/\|^bench/\|^samples/demo.c$'); do
	ignore=
	[ "$f" = drivers/kvm_tdp_fd/exports.c ] && ignore="--ignore EXPORT_SYMBOL"
	(cd /tmp && "$KDIR/scripts/checkpatch.pl" --strict --quiet --no-tree \
		$ignore -f "$KTDP_ROOT/$f") || rc=1
done

[ $rc = 0 ] && echo "lint: clean"
exit $rc
