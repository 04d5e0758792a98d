#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the project needs, from Debian's packages, crates.io and
# PyPI only, at pinned versions.  Idempotent: when everything is present it
# only checks stamps and versions and returns in well under ten seconds.
set -euo pipefail
source "$(dirname "$0")/env.sh"

APT_PKGS=(
	"linux-source-6.12=$KTDP_SRC_DEB"
	build-essential bc rsync kmod cpio bison flex libelf-dev libssl-dev
	dwarves python3 python3-venv xz-utils zstd git
	clang-19 lld-19 llvm-19 libclang-19-dev
	qemu-system-x86
	libseccomp-dev libcap-ng-dev pkg-config
	"rustc-web=$KTDP_RUST_DEB" "cargo-web=$KTDP_RUST_DEB"
	"rust-web-src=$KTDP_RUST_DEB" "libstd-rust-web-dev=$KTDP_RUST_DEB"
	"libstd-rust-web-${KTDP_RUST_DEB%.*+*}=$KTDP_RUST_DEB" "rustfmt-web=$KTDP_RUST_DEB"
	"rust-web-clippy=$KTDP_RUST_DEB"
)

apt_missing() {
	local p name want have
	for p in "${APT_PKGS[@]}"; do
		name=${p%%=*}
		want=${p#*=}
		have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
		case "$have" in
		"install ok installed "*)
			[ "$name" = "$p" ] || [ "${have##* }" = "$want" ] || echo "$p"
			;;
		*) echo "$p" ;;
		esac
	done
}

# A pinned version the archive no longer serves (bookworm's point releases
# drop superseded versions) must say so, not fail inside apt.
apt_check_pins() {
	local p name want
	for p in "$@"; do
		name=${p%%=*}
		want=${p#*=}
		[ "$name" = "$p" ] && continue
		apt-cache madison "$name" | awk -F' [|] ' '{print $2}' |
			grep -qxF "$want" && continue
		echo "error: the archive no longer has $name=$want." >&2
		echo "  It offers: $(apt-cache madison "$name" | awk -F' [|] ' '{print $2}' | tr '\n' ' ')" >&2
		case $name in
		rustc-web | cargo-web | rust-web-* | libstd-rust-web* | rustfmt-web)
			echo "  The kernel's Rust is pinned to $KTDP_RUST_DEB (scripts/env.sh)." >&2
			echo "  Set KTDP_RUST_DEB to a version listed above and check that" >&2
			echo "  'make kernel' builds with it (see README, 'Toolchain')." >&2 ;;
		linux-source-6.12)
			echo "  The kernel source is pinned in scripts/env.sh (KTDP_SRC_DEB)." >&2 ;;
		esac
		return 1
	done
}

missing=$(apt_missing)
if [ -n "$missing" ]; then
	ktdp_log "apt: installing $(echo $missing)"
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt_check_pins $missing || exit 1
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends --allow-downgrades $missing >/dev/null
fi

mkdir -p "$KTDP_TOOLS/bin"

# Host tools are built with whichever cargo is newest on the machine; the
# kernel itself always uses Debian's rustc-web (see env.sh).
host_cargo=/usr/bin/cargo
[ -x "$HOME/.cargo/bin/cargo" ] && host_cargo=$HOME/.cargo/bin/cargo

cargo_tool() { # crate version binary [extra args]
	local crate=$1 ver=$2 bin=$3 stamp
	shift 3
	stamp=$KTDP_TOOLS/.$crate-$ver
	[ -f "$stamp" ] && [ -x "$KTDP_TOOLS/bin/$bin" ] && return 0
	ktdp_log "cargo: installing $crate $ver"
	"$host_cargo" install --quiet --locked "$crate" --version "$ver" \
		--root "$KTDP_TOOLS" "$@"
	touch "$stamp"
}

cargo_tool bindgen-cli "$KTDP_BINDGEN" bindgen
cargo_tool virtiofsd "$KTDP_VIRTIOFSD" virtiofsd

stamp=$KTDP_TOOLS/.virtme-ng-$KTDP_VIRTME_NG
if [ ! -f "$stamp" ] || [ ! -x "$KTDP_VENV/bin/vng" ]; then
	ktdp_log "pip: installing virtme-ng $KTDP_VIRTME_NG"
	python3 -m venv "$KTDP_VENV"
	"$KTDP_VENV/bin/pip" install -q "virtme-ng==$KTDP_VIRTME_NG"
	touch "$stamp"
fi

# make bench plots with matplotlib, in the same venv.
stamp=$KTDP_TOOLS/.matplotlib-$KTDP_MATPLOTLIB
if [ ! -f "$stamp" ]; then
	ktdp_log "pip: installing matplotlib $KTDP_MATPLOTLIB"
	"$KTDP_VENV/bin/pip" install -q "matplotlib==$KTDP_MATPLOTLIB"
	touch "$stamp"
fi

# A kernel build wants these exact tools; fail here rather than half-way in.
rustc --version | grep -qF "rustc ${KTDP_RUST_DEB%%+*}" ||
	ktdp_die "rustc is not ${KTDP_RUST_DEB%%+*}: $(command -v rustc)"
bindgen --version | grep -q "$KTDP_BINDGEN" || ktdp_die "bindgen is not $KTDP_BINDGEN"
[ -f "$KTDP_SRC_TARBALL" ] || ktdp_die "missing $KTDP_SRC_TARBALL"
