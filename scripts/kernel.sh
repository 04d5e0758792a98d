#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the test kernel: Debian's linux-source-6.12 + patches/ + the rust/ and
# include/ overlays + config/kvm-tdp-fd.config, in $KDIR (outside the clone).
#
# The tree is a git repository whose first commit is the pristine source.
# Every input of the build is hashed into a key.  For a new key the desired
# tree is composed in a scratch index (pristine + patches + overlay) and
# checked out with `git checkout -f`, which rewrites exactly the files whose
# content differs: the tree is never stale, and make rebuilds only what those
# files feed.  An unchanged key runs no make at all.
set -euo pipefail
source "$(dirname "$0")/env.sh"

cd "$KTDP_ROOT"
mapfile -t PATCHES < <(ktdp_series)
# Fixes to the 6.12 tree that the test platform needs, apart from the KVM
# series (patches/platform/README): applied to every variant, first.
mapfile -t PLATFORM < <(ls patches/platform/[0-9]*.patch 2>/dev/null | sort)
mapfile -t OVERLAY < <(find rust include -type f 2>/dev/null | LC_ALL=C sort)
FRAGMENT=config/kvm-tdp-fd.config

# KTDP_KASAN=1 (the default): config/kasan.config merged in, in its own
# tree (scripts/env.sh points KDIR there).
if [ "${KTDP_KASAN:-1}" = 1 ] && [ -z "${KTDP_VARIANT:-}" ]; then
	mkdir -p "$KTDP_CACHE"
	cat "$FRAGMENT" config/kasan.config >"$KTDP_CACHE/kasan-fragment.config"
	FRAGMENT=$KTDP_CACHE/kasan-fragment.config
fi

# The variants, each in its own tree beside $KDIR's:
#   base       the same source and config without the series and the
#              overlays: the baseline for KVM's selftests (linux-base).
#   lint       config/lint.config merged in: the options the Rust code must
#              also build without.  Only what modules are built against is
#              made (modules_prepare: the Rust crates and the build tools);
#              make lint compiles the modules against it (linux-lint).
#   prod       config/prod.config merged in: no debugging options, for the
#              figures make bench judges the series by (linux-prod).
#   prod-base  prod's config without the series and overlays (linux-prod-base).
STAMP=arch/x86/boot/bzImage
unpatched=0 merge=
case "${KTDP_VARIANT:-}" in
"") ;;
base) unpatched=1 ;;
lint) merge=config/lint.config STAMP=rust/kernel.o ;;
prod) merge=config/prod.config ;;
prod-base) merge=config/prod.config unpatched=1 ;;
*) ktdp_die "unknown KTDP_VARIANT=$KTDP_VARIANT" ;;
esac
if [ -n "${KTDP_VARIANT:-}" ]; then
	KDIR=$KTDP_CACHE/linux-$KTDP_VARIANT
	mkdir -p "$KTDP_CACHE"
	frag=$KTDP_CACHE/$KTDP_VARIANT-fragment.config
	cp "$FRAGMENT" "$frag"
	if [ -n "$merge" ]; then
		# The merged file's values replace the fragment's, and so do
		# those of the fragment's symbols they prefix
		# (CONFIG_DEBUG_KMEMLEAK_*).
		syms=$(sed -n 's/^\(CONFIG_[A-Z0-9_]*\)=.*/\1/p' "$merge" | paste -sd'|')
		{ grep -Ev "^($syms)(_[A-Z0-9_]*)?=" "$FRAGMENT"; cat "$merge"; } >"$frag"
	fi
	if [ $unpatched = 1 ]; then
		PATCHES=()
		OVERLAY=()
		grep -v KVM_TDP_EXPORT "$frag" >"$frag.tmp" && mv "$frag.tmp" "$frag"
	fi
	FRAGMENT=$frag
fi

# Exclusive for the whole build: no other clone composes, builds or boots
# this tree meanwhile (scripts/env.sh, ktdp_lock).
ktdp_lock -x

key=$(
	{
		ktdp_tool_versions
		sha256sum scripts/kernel.sh scripts/env.sh "$FRAGMENT" \
			${PLATFORM[@]+"${PLATFORM[@]}"} ${PATCHES[@]+"${PATCHES[@]}"} \
			${OVERLAY[@]+"${OVERLAY[@]}"}
	} | sha256sum | cut -c1-16
)

if [ "$(cat "$KDIR/.ktdp-key" 2>/dev/null)" = "$key" ] &&
	[ -f "$KDIR/$STAMP" ]; then
	ktdp_log "kernel: up to date ($KDIR, key $key)"
	exit 0
fi

# gc.auto=0: an automatic gc runs detached, inheriting (and so holding) the
# cache lock for minutes after the build ends.
git_k() { git -C "$KDIR" -c user.name=ktdp -c user.email=ktdp@localhost -c gc.auto=0 "$@"; }

# 1. Pristine source, once per machine (or per Debian source version).
srcver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
if [ "$(git_k tag -l pristine 2>/dev/null)" != pristine ] ||
	[ "$(cat "$KDIR/.ktdp-srcver" 2>/dev/null)" != "$srcver" ]; then
	ktdp_log "kernel: unpacking $KTDP_SRC_TARBALL ($srcver)"
	rm -rf "$KDIR" "$KDIR.tmp"
	mkdir -p "$KDIR.tmp"
	tar -C "$KDIR.tmp" -xf "$KTDP_SRC_TARBALL"
	mv "$KDIR.tmp"/linux-source-* "$KDIR"
	rmdir "$KDIR.tmp"
	git_k init -q
	# Debian's .gitignore ignores the whole top level, hence add -f; build
	# outputs never reach the index because only this one add is done, and
	# our stamps are excluded too.
	printf '/.ktdp-*\n' >>"$KDIR/.git/info/exclude"
	git_k add -A -f
	git_k commit -q -m "linux-source-6.12 $srcver"
	git_k tag pristine
	echo "$srcver" >"$KDIR/.ktdp-srcver"
fi

# 2. Compose pristine + patches + overlay in a scratch index, check it out.
# From here on the tree no longer matches any key: drop the stamps first, so
# that a failure anywhere below leaves a tree that is rebuilt next time.
rm -f "$KDIR/.ktdp-key" "$KDIR/_modinst/ktdp-key"
ktdp_log "kernel: composing tree for key $key"
export GIT_INDEX_FILE=$KDIR/.git/ktdp-index
git_k read-tree pristine
for p in ${PLATFORM[@]+"${PLATFORM[@]}"} ${PATCHES[@]+"${PATCHES[@]}"}; do
	git_k apply --cached --whitespace=nowarn "$KTDP_ROOT/$p" ||
		ktdp_die "patch does not apply: $p"
done
for f in ${OVERLAY[@]+"${OVERLAY[@]}"}; do
	blob=$(git_k hash-object -w "$KTDP_ROOT/$f")
	git_k update-index --add --cacheinfo "100644,$blob,$f"
done
commit=$(git_k commit-tree "$(git_k write-tree)" -p pristine -m "ktdp $key")
unset GIT_INDEX_FILE
git_k checkout -q -f --detach "$commit"

# 3. Configuration: virtme-ng's minimal guest config plus our fragment.
base=$KTDP_CACHE/base-$srcver-vng$KTDP_VIRTME_NG.config
if [ ! -f "$base" ]; then
	ktdp_log "kernel: generating the base guest config"
	(cd "$KDIR" && vng --kconfig >"$KTDP_CACHE/vng-kconfig.log" 2>&1)
	cp "$KDIR/.config" "$base.tmp" && mv "$base.tmp" "$base"
fi
"$KDIR/scripts/kconfig/merge_config.sh" -m -O "$KDIR" "$base" \
	"$(realpath "$FRAGMENT")" >/dev/null
ktdp_kmake olddefconfig

bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) sym=${line%=n}
		grep -q "^$sym=" "$KDIR/.config" && { echo "config: $sym is set, wanted n" >&2; bad=1; } ;;
	CONFIG_*=*) grep -qx "$line" "$KDIR/.config" || { echo "config: wanted $line, got: $(grep "^${line%%=*}=" "$KDIR/.config" || echo unset)" >&2; bad=1; } ;;
	esac
done <"$(realpath "$FRAGMENT")"
[ $bad = 0 ] || ktdp_die "the config fragment was not honoured (see above)"

# 4. Build.  The key is written last, so an interrupted build is redone.
if [ "${KTDP_VARIANT:-}" = lint ]; then
	ktdp_log "kernel: building what modules need in $KDIR"
	ktdp_kmake CLIPPY=1 modules_prepare
	echo "$key" >"$KDIR/.ktdp-key"
	ktdp_log "kernel: done (key $key)"
	exit 0
fi
ktdp_log "kernel: building bzImage and modules in $KDIR"
# CLIPPY=1: the overlaid kernel crate code is linted as it is built (with
# CONFIG_WERROR, a clippy warning fails the build).  The key goes into the
# kernel's version string (uname -v; only init/version-timestamp.o depends on
# it), so the guest can check that the kernel it booted and the modules it
# loads come from one build (selftests/vm-run.sh).
ktdp_kmake CLIPPY=1 KBUILD_BUILD_VERSION_TIMESTAMP="ktdp-$key" bzImage modules
ktdp_kmake headers_install
# A private module root for the guest: modprobe -d $KDIR/_modinst kvm_amd.
rm -rf "$KDIR/_modinst"
ktdp_kmake modules_install INSTALL_MOD_PATH="$KDIR/_modinst" >/dev/null
echo "$key" >"$KDIR/_modinst/ktdp-key"
echo "$key" >"$KDIR/.ktdp-key"
ktdp_log "kernel: done (key $key)"
