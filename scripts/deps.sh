#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the project needs, from Debian's packages, crates.io and
# PyPI only, at pinned versions.  Idempotent: when everything is present it
# only checks stamps and versions and returns in well under ten seconds.
set -euo pipefail
source "$(dirname "$0")/env.sh"

# The first of KTDP_RUST_DEBS that is installed or that the archive has.
pick_rust() {
	local v have first=
	have=$(dpkg-query -W -f='${Version}' rustc-web 2>/dev/null || true)
	for v in $KTDP_RUST_DEBS; do
		: "${first:=$v}"
		if [ "$have" = "$v" ] ||
			apt-cache madison rustc-web | grep -qF " $v "; then
			[ "$v" = "$first" ] || ktdp_log "warning: rustc-web $first is no longer" \
				"in the archive; using $v (see README, 'Toolchain')"
			echo "$v"
			return 0
		fi
	done
	echo "error: the archive has none of rustc-web $KTDP_RUST_DEBS" >&2
	echo "  It offers: $(apt-cache madison rustc-web | awk -F' [|] ' '{print $2}' | tr '\n' ' ')" >&2
	echo "  Add a version to KTDP_RUST_DEBS (scripts/env.sh) once 'make kernel'" >&2
	echo "  and 'make check' pass with it (see README, 'Toolchain')." >&2
	return 1
}
# QEMU 10 comes from bookworm-backports (scripts/env.sh).  Its default
# priority (100) keeps every other package on bookworm: only the pinned
# versions below are taken from it.
bpo=/etc/apt/sources.list.d/ktdp-bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
	ktdp_log "apt: adding bookworm-backports ($bpo)"
	printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
		'Suites: bookworm-backports' 'Components: main' \
		'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$bpo"
	apt-get update -q >/dev/null
fi
# The archive's lists may be missing on a fresh machine.
[ -n "$(ls /var/lib/apt/lists/*_Packages 2>/dev/null | head -1)" ] ||
	apt-get update -q >/dev/null
KTDP_RUST_DEB=$(pick_rust) || exit 1

APT_PKGS=(
	"linux-source-6.12=$KTDP_SRC_DEB"
	build-essential bc rsync kmod cpio bison flex libelf-dev libssl-dev
	dwarves python3 python3-venv xz-utils zstd git
	"clang-19=$KTDP_LLVM_DEB" "lld-19=$KTDP_LLVM_DEB" "llvm-19=$KTDP_LLVM_DEB"
	"libclang-19-dev=$KTDP_LLVM_DEB"
	"qemu-system-x86=$KTDP_QEMU_DEB" "qemu-system-common=$KTDP_QEMU_DEB"
	"qemu-system-data=$KTDP_QEMU_DEB" "seabios=$KTDP_SEABIOS_DEB"
	libseccomp-dev libcap-ng-dev pkg-config
	"rustc-web=$KTDP_RUST_DEB" "cargo-web=$KTDP_RUST_DEB"
	"rust-web-src=$KTDP_RUST_DEB" "libstd-rust-web-dev=$KTDP_RUST_DEB"
	"libstd-rust-web-${KTDP_RUST_DEB%.*+*}=$KTDP_RUST_DEB" "rustfmt-web=$KTDP_RUST_DEB"
	"rust-web-clippy=$KTDP_RUST_DEB"
	# make check-ept: Bochs (VMX with EPT), a grub ISO, a busybox initramfs.
	"bochs=$KTDP_BOCHS_DEB" "bochsbios=$KTDP_BOCHS_DEB" "vgabios=$KTDP_VGABIOS_DEB"
	"grub-pc-bin=$KTDP_GRUB_DEB" "grub-common=$KTDP_GRUB_DEB"
	"xorriso=$KTDP_XORRISO_DEB" "mtools=$KTDP_MTOOLS_DEB"
	"busybox-static=$KTDP_BUSYBOX_DEB"
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
		apt-cache madison "$name" | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
			grep -qxF "$want" && continue
		echo "error: the archive no longer has $name=$want." >&2
		echo "  It offers: $(apt-cache madison "$name" | awk -F' [|] ' '{print $2}' | tr '\n' ' ')" >&2
		case $name in
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

# virtme-ng and matplotlib, every Python dependency pinned.
req=$KTDP_ROOT/scripts/requirements.txt
stamp=$KTDP_TOOLS/.requirements-$(sha256sum "$req" | cut -c1-16)
if [ ! -f "$stamp" ] || [ ! -x "$KTDP_VENV/bin/vng" ]; then
	ktdp_log "pip: installing scripts/requirements.txt (virtme-ng $KTDP_VIRTME_NG)"
	[ -x "$KTDP_VENV/bin/pip" ] || python3 -m venv "$KTDP_VENV"
	"$KTDP_VENV/bin/pip" install -q -r "$req"
	touch "$stamp"
fi
grep -qx "virtme-ng==$KTDP_VIRTME_NG" "$req" ||
	ktdp_die "scripts/requirements.txt does not pin virtme-ng $KTDP_VIRTME_NG"

# A kernel build wants these exact tools; fail here rather than half-way in.
rustc --version | grep -qF "rustc ${KTDP_RUST_DEB%%+*}" ||
	ktdp_die "rustc is not ${KTDP_RUST_DEB%%+*}: $(command -v rustc)"
bindgen --version | grep -q "$KTDP_BINDGEN" || ktdp_die "bindgen is not $KTDP_BINDGEN"
[ -f "$KTDP_SRC_TARBALL" ] || ktdp_die "missing $KTDP_SRC_TARBALL"
