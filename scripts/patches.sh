#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Work on the two series in a git worktree of the kernel tree,
# $KTDP_CACHE/linux-dev: the KVM series on branch tdp-fd (on pristine), and
# the IOMMU series on branch iommufd-kvm (on tdp-fd).
#   patches.sh dev      create the worktree and both branches from pristine +
#                       patches/ + patches/iommufd/ (git am), unless it exists
#   patches.sh export   regenerate patches/ from tdp-fd and patches/iommufd/
#                       from iommufd-kvm, each cover letter taken from the
#                       directory's cover-letter.txt (first line: subject;
#                       the rest: body)
#   patches.sh build-each  compile arch/x86/kvm and drivers/iommu at every
#                       patch of both series (in the worktree, with the test
#                       kernel's config), so that each patch builds on its own
set -euo pipefail
source "$(dirname "$0")/env.sh"
DEV=$KTDP_CACHE/linux-dev
cd "$KTDP_ROOT"

# branch base directory, one line per series, in order.
SERIES="tdp-fd pristine patches
iommufd-kvm tdp-fd patches/iommufd"

git_dev() {
	git -C "$DEV" -c user.name="kvm-tdp-fd developers" \
		-c user.email="dev@kvm-tdp-fd.invalid" "$@"
}

case "${1:-}" in
dev)
	[ -d "$DEV" ] && { echo "$DEV exists"; exit 0; }
	[ -d "$KDIR/.git" ] || ktdp_die "run 'make kernel' first"
	git -C "$KDIR" worktree add -q -B tdp-fd "$DEV" pristine
	while read -r branch base dir; do
		git_dev checkout -q -B "$branch" "$base"
		mapfile -t series < <(ls "$dir"/[0-9]*.patch | grep -v '/0000-' | sort)
		[ ${#series[@]} = 0 ] || git_dev am -q "${series[@]/#/$KTDP_ROOT/}"
		echo "$DEV: branch $branch, $(git -C "$DEV" rev-list --count "$base..$branch") patches"
	done <<<"$SERIES"
	# The IOMMU series includes the provider's header, an overlay file.
	cp include/linux/kvm_tdp_fd.h "$DEV/include/linux/"
	;;
export)
	while read -r branch base dir; do
		git -C "$DEV" config "branch.$branch.description" "$(cat "$dir/cover-letter.txt")"
		rm -f "$dir"/[0-9]*.patch
		git_dev format-patch -q --cover-letter --cover-from-description=subject \
			-o "$KTDP_ROOT/$dir" "$base..$branch"
		ls "$dir"
	done <<<"$SERIES"
	;;
build-each)
	[ -d "$DEV" ] || ktdp_die "run '$0 dev' first"
	head=$(git -C "$DEV" symbolic-ref -q --short HEAD || git -C "$DEV" rev-parse HEAD)
	[ -z "$(git -C "$DEV" status --porcelain --untracked-files=no)" ] ||
		ktdp_die "$DEV has uncommitted changes"
	cp "$KDIR/.config" "$DEV/.config"
	cp include/linux/kvm_tdp_fd.h "$DEV/include/linux/"
	rc=0
	for c in $(git -C "$DEV" rev-list --reverse pristine..iommufd-kvm); do
		git -C "$DEV" checkout -q "$c"
		if KDIR=$DEV ktdp_kmake olddefconfig >/dev/null &&
			KDIR=$DEV ktdp_kmake prepare >/dev/null &&
			KDIR=$DEV ktdp_kmake arch/x86/kvm/ drivers/iommu/ >"$DEV/.build-each.log" 2>&1; then
			echo "builds: $(git -C "$DEV" log --format=%s -1 "$c")"
		else
			echo "FAILS:  $(git -C "$DEV" log --format=%s -1 "$c")"
			tail -20 "$DEV/.build-each.log"
			rc=1
		fi
	done
	git -C "$DEV" checkout -q "$head"
	exit $rc
	;;
*)
	echo "usage: $0 dev|export|build-each" >&2
	exit 2
	;;
esac
