#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make lint: rustfmt --check on every Rust file of the project, clippy through
# the kernel build (CLIPPY=1), and checkpatch --strict on the patch series.
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
