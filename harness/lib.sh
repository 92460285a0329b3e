# SPDX-License-Identifier: GPL-2.0
# Common settings for the tinyfs harness scripts. Sourced, not run.
#
# Variables a user may set (see README.md):
#   TINYFS_CACHE  downloads and build output (default: <repo>/.cache)
#   LINUX_SRC     a Linux 7.3.y source tree or tarball to use instead of
#                 Debian's linux-source-7.3 package
#   JOBS          parallel build jobs (default: nproc)

set -euo pipefail

TINYFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TINYFS_CACHE=${TINYFS_CACHE:-$TINYFS_ROOT/.cache}
JOBS=${JOBS:-$(nproc)}

# Pinned tool versions (README.md, "Requirements").
KERNEL_SERIES=7.3
RUSTC_SERIES=1.96
BINDGEN_VERSION=0.72.1
LIBCLANG_VERSION=18.1.1
VIRTME_NG_VERSION=1.42

SRC=$TINYFS_CACHE/linux          # pristine source + overlay + patch series
ORIG=$TINYFS_CACHE/orig          # pristine copies of upstream files the series edits
KBUILD=$TINYFS_CACHE/kbuild      # O= output of the kernel build
OOT=$TINYFS_CACHE/oot            # MO= output of the out-of-tree module build
KSFT=$TINYFS_CACHE/kselftest     # installed kselftests
LOGS=$TINYFS_CACHE/logs
TOOLS_BIN=$TINYFS_CACHE/bin         # mkfs.tinyfs, under its real name

export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The Python that has the pinned libclang and virtme-ng.
py() { command -v python3 >/dev/null || die "python3 is missing: run 'make setup'"; python3 "$@"; }

libclang_path() {
	py -c 'import clang, os; print(os.path.join(os.path.dirname(clang.__file__), "native"))' 2>/dev/null ||
		die "PyPI libclang $LIBCLANG_VERSION is missing: run 'make setup'"
}

# Arguments every kernel make invocation gets: Debian's rustc-web, not the
# rustup toolchain (it has no rust-src), the pinned bindgen and libclang.
kmake_args() {
	printf '%s\n' "O=$KBUILD" "-j$JOBS" \
		RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc \
		CLIPPY_DRIVER=/usr/bin/clippy-driver RUSTFMT=/usr/bin/rustfmt \
		"BINDGEN=$(command -v bindgen)" "LIBCLANG_PATH=$(libclang_path)"
}
