# SPDX-License-Identifier: GPL-2.0
# Shared settings for the project's scripts.  Source it; do not run it.
#
# Every path that lives outside the clone is derived from KTDP_CACHE so that
# CI, later sessions and a developer's shell all find the same kernel build.

KTDP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${KTDP_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/kvm-tdp-fd}"
KTDP_TOOLS=$KTDP_CACHE/tools
KTDP_VENV=$KTDP_TOOLS/venv
KTDP_SRC_VERSION=6.12
# The Debian source package is pinned: bookworm-security carries several 6.12
# releases at once, and every machine must test the same kernel.
KTDP_SRC_DEB=6.12.117-1~deb12u1
KTDP_SRC_TARBALL=/usr/src/linux-source-$KTDP_SRC_VERSION.tar.xz
# The test kernel has KASAN (config/kasan.config) unless KTDP_KASAN=0, in a
# tree of its own, so that switching rebuilds nothing.
: "${KTDP_KASAN:=1}"
: "${KDIR:=$KTDP_CACHE/linux$([ "$KTDP_KASAN" = 1 ] && echo -kasan)}"

# Pinned tool versions.
# rustc-web for the kernel's Rust, in order of preference: the pin, then a
# version checked to build the 6.12 tree's Rust and the project's modules
# warning-free (CLIPPY=1), for when the archive drops the pin at a point
# release (scripts/deps.sh picks the first it can have, and says so).
KTDP_RUST_DEBS=${KTDP_RUST_DEBS:-1.85.0+dfsg3-1~deb12u3 1.96.0+dfsg1-1~deb12u2}
KTDP_LLVM_DEB=1:19.1.7-3~deb12u1
# QEMU from bookworm-backports: its intel-iommu walks first-stage tables in
# the x86-64 format (x-flts), the format of AMD NPT; bookworm's 7.2 cannot.
KTDP_QEMU_DEB=1:10.0.2+ds-2+deb13u1~bpo12+1
KTDP_SEABIOS_DEB=1.16.3-2~bpo12+1
# make check-ept (scripts/ept.sh): Bochs is built by Debian with VMX and EPT.
KTDP_BOCHS_DEB=2.7+dfsg-4+deb12u1
KTDP_VGABIOS_DEB=0.8a+ds-2
KTDP_GRUB_DEB=2.06-13+deb12u2
KTDP_XORRISO_DEB=1.5.4-4
KTDP_MTOOLS_DEB=4.0.33-1+really4.0.32-1
KTDP_BUSYBOX_DEB=1:1.35.0-4+deb12u1+b1
KTDP_BINDGEN=0.69.5
KTDP_VIRTIOFSD=1.14.0
KTDP_VIRTME_NG=1.42

# Debian's rustc-web and its rust-src must win over rustup's toolchain, which
# has no rust-src and cannot build the kernel's Rust code.
export PATH=/usr/bin:$KTDP_TOOLS/bin:$KTDP_VENV/bin:$PATH
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export KTDP_CACHE KTDP_ROOT KDIR KTDP_KASAN
# cargo's artifacts of this clone's logic/ crate.  Per clone: two clones'
# crates have one name and version, so in one target directory each would
# take the other's build of the modules' shared sources as up to date.
KTDP_CARGO_TARGET=$KTDP_CACHE/cargo-target/$(echo "$KTDP_ROOT" | sha256sum | cut -c1-12)

# Kernel make invocation shared by every script: clang/LLVM for C and Rust.
ktdp_kmake() {
	make -s -C "$KDIR" LLVM=-19 -j"${KTDP_JOBS:-$(nproc)}" "$@"
}

# The two series in order, relative to KTDP_ROOT (the cwd of every script):
# the KVM series (patches/), then the IOMMU series built on it
# (patches/iommufd/).  Cover letters (0000-*) carry no diff and are left out.
ktdp_series() {
	ls patches/[0-9]*.patch 2>/dev/null | grep -v '/0000-' | sort
	ls patches/iommufd/[0-9]*.patch 2>/dev/null | grep -v '/0000-' | sort
}

# The kernel cache ($KDIR and its _modinst) is shared by every clone on the
# machine.  ktdp_lock -x (build) or -s (use: boot it, build modules against
# it) holds $KTDP_CACHE/.lock on fd 9 until the calling process exits.  The fd
# and KTDP_LOCKED are inherited, so a child of a holder converts the holder's
# lock instead of waiting for it (flock on one open file description).
ktdp_lock() { # -x|-s
	# A child of a holder keeps the holder's lock as it is: converting it
	# would not be atomic (flock(2)), another builder could slip in.
	if [ -n "${KTDP_LOCKED:-}" ] && { true >&9; } 2>/dev/null; then
		return 0
	fi
	mkdir -p "$KTDP_CACHE"
	exec 9>>"$KTDP_CACHE/.lock"
	if ! flock -n "$1" 9; then
		ktdp_log "waiting for the kernel cache lock ($KTDP_CACHE/.lock)"
		flock "$1" 9
	fi
	export KTDP_LOCKED=1
}

# Everything that can change what the kernel build produces, one line each:
# the pinned source, the tool packages and the tools built from crates.io.
ktdp_tool_versions() {
	dpkg-query -W -f='${Package} ${Version}\n' linux-source-6.12 \
		clang-19 lld-19 llvm-19 libclang-19-dev rustc-web rust-web-src \
		rust-web-clippy libstd-rust-web-dev dwarves libelf-dev libssl-dev \
		make bison flex bc 2>&1
	echo "bindgen $KTDP_BINDGEN"
	# The digest only: the clone's path must not change the key.
	sha256sum <"$KTDP_ROOT/scripts/requirements.txt"
}

# Where a VM run of MODE leaves its results.  KTDP_RESULTS moves them (a second
# VM running at once); scripts/vm.sh writes there and scripts/check.sh reads
# from the same place.
ktdp_results() { # MODE
	echo "${KTDP_RESULTS:-$KTDP_ROOT/out/$1}"
}

ktdp_log() {
	printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2
}

ktdp_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}
