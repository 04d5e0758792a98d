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
KTDP_SRC_TARBALL=/usr/src/linux-source-$KTDP_SRC_VERSION.tar.xz
: "${KDIR:=$KTDP_CACHE/linux}"

# Pinned tool versions.
KTDP_RUST_DEB=1.85.0+dfsg3-1~deb12u3
KTDP_BINDGEN=0.69.5
KTDP_VIRTIOFSD=1.14.0
KTDP_VIRTME_NG=1.42
KTDP_MATPLOTLIB=3.9.2

# Debian's rustc-web and its rust-src must win over rustup's toolchain, which
# has no rust-src and cannot build the kernel's Rust code.
export PATH=/usr/bin:$KTDP_TOOLS/bin:$KTDP_VENV/bin:$PATH
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
export KTDP_CACHE KTDP_ROOT KDIR

# Kernel make invocation shared by every script: clang/LLVM for C and Rust.
ktdp_kmake() {
	make -s -C "$KDIR" LLVM=-19 -j"${KTDP_JOBS:-$(nproc)}" "$@"
}

# The KVM series in order, relative to KTDP_ROOT (the cwd of every script);
# the cover letter (0000-*) carries no diff and is left out.
ktdp_series() {
	ls patches/[0-9]*.patch 2>/dev/null | grep -v '/0000-' | sort
}

ktdp_log() {
	printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2
}

ktdp_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}
