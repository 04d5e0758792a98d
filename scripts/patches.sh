#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Work on the KVM series in a git worktree of the kernel tree:
#   patches.sh dev      create $KTDP_CACHE/linux-dev (branch tdp-fd) from
#                       pristine + patches/ (git am), unless it exists
#   patches.sh export   regenerate patches/ from the tdp-fd branch, with the
#                       cover letter taken from patches/cover-letter.txt
#                       (first line: subject; the rest: body)
#   patches.sh build-each  compile arch/x86/kvm at every patch of the series
#                       (in the worktree, with the test kernel's config), so
#                       that each patch builds on its own
set -euo pipefail
source "$(dirname "$0")/env.sh"
DEV=$KTDP_CACHE/linux-dev
cd "$KTDP_ROOT"

case "${1:-}" in
dev)
	[ -d "$DEV" ] && { echo "$DEV exists"; exit 0; }
	[ -d "$KDIR/.git" ] || ktdp_die "run 'make kernel' first"
	git -C "$KDIR" worktree add -q -B tdp-fd "$DEV" pristine
	mapfile -t series < <(ktdp_series)
	[ ${#series[@]} = 0 ] || git -C "$DEV" am -q "${series[@]/#/$KTDP_ROOT/}"
	echo "$DEV: branch tdp-fd, $(git -C "$DEV" rev-list --count pristine..tdp-fd) patches"
	;;
export)
	git -C "$DEV" config branch.tdp-fd.description "$(cat patches/cover-letter.txt)"
	rm -f patches/[0-9]*.patch
	git -C "$DEV" -c user.name="kvm-tdp-fd developers" \
		-c user.email="dev@kvm-tdp-fd.invalid" format-patch -q --cover-letter --cover-from-description=subject \
		-o "$KTDP_ROOT/patches" pristine..tdp-fd
	ls patches
	;;
build-each)
	[ -d "$DEV" ] || ktdp_die "run '$0 dev' first"
	head=$(git -C "$DEV" rev-parse tdp-fd)
	[ -z "$(git -C "$DEV" status --porcelain --untracked-files=no)" ] ||
		ktdp_die "$DEV has uncommitted changes"
	cp "$KDIR/.config" "$DEV/.config"
	rc=0
	for c in $(git -C "$DEV" rev-list --reverse pristine..tdp-fd); do
		git -C "$DEV" checkout -q "$c"
		if KDIR=$DEV ktdp_kmake olddefconfig >/dev/null &&
			KDIR=$DEV ktdp_kmake prepare >/dev/null &&
			KDIR=$DEV ktdp_kmake arch/x86/kvm/ >"$DEV/.build-each.log" 2>&1; then
			echo "builds: $(git -C "$DEV" log --format=%s -1 "$c")"
		else
			echo "FAILS:  $(git -C "$DEV" log --format=%s -1 "$c")"
			tail -20 "$DEV/.build-each.log"
			rc=1
		fi
	done
	git -C "$DEV" checkout -q tdp-fd
	[ "$(git -C "$DEV" rev-parse HEAD)" = "$head" ]
	exit $rc
	;;
*)
	echo "usage: $0 dev|export|build-each" >&2
	exit 2
	;;
esac
