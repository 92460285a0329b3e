#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what building and testing tinyfs needs on Debian 12 (bookworm), as
# root. Idempotent: every step checks first and skips what is already there.
# A failing step says which one failed.
. "$(dirname "$0")/lib.sh"

step() { STEP=$*; say "setup: $*"; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "error: setup step failed: %s\n" "${STEP:-?}" >&2' EXIT

mkdir -p "$TINYFS_CACHE"
[ "$(id -u)" = 0 ] || die "setup installs packages: run it as root"
. /etc/os-release
[ "${VERSION_CODENAME:-}" = bookworm ] ||
	say "setup: this is ${PRETTY_NAME:-an unknown system}, not Debian 12; trying anyway"

APT_PACKAGES=(
	# kernel build
	bc bison flex make gcc libc6-dev libelf-dev libssl-dev cpio kmod xz-utils patch python3 rsync
	# Rust for Linux: a matched rustc/rust-src pair
	rustc-web rust-web-src rust-web-clippy rustfmt-web
	# guest and tests
	qemu-system-x86 busybox-static fio libaio-dev
)

have_pkg() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

# The mirror the system already uses: the first 'deb' URI of Debian's main archive.
apt_mirror() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		case $f in
		*.sources) uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f") ;;
		*) uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\// && $i !~ /security/) { print $i; exit } }' "$f") ;;
		esac
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	return 1
}

step "apt sources for bookworm-backports and trixie-backports"
SOURCES=/etc/apt/sources.list.d/tinyfs-backports.sources
PREFS=/etc/apt/preferences.d/tinyfs-backports
if [ ! -f "$SOURCES" ]; then
	mirror=$(apt_mirror) || die "no Debian mirror found in /etc/apt/sources.list*"
	say "setup: using the system's mirror $mirror"
	cat >"$SOURCES" <<EOT
# Added by tinyfs harness/setup.sh: linux-source-$KERNEL_SERIES (trixie-backports)
# and a QEMU that matches the machine's qemu-utils (bookworm-backports).
Types: deb
URIs: $mirror
Suites: bookworm-backports trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	# Nothing is upgraded from the backports unless asked for by name.
	cat >"$PREFS" <<EOT
Package: *
Pin: release n=trixie-backports
Pin-Priority: 100

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
EOT
	rm -f "$TINYFS_CACHE/.apt-updated"
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do have_pkg "$p" || missing+=("$p"); done
need_src=1
[ -n "${LINUX_SRC:-}" ] && need_src=0
[ $need_src = 1 ] && ! have_pkg "linux-source-$KERNEL_SERIES" && missing+=("linux-source-$KERNEL_SERIES")

if [ ${#missing[@]} -gt 0 ]; then
	step "apt-get update"
	mkdir -p "$TINYFS_CACHE"
	apt-get update -q >"$TINYFS_CACHE/apt-update.log" 2>&1 ||
		{ tail -n 20 "$TINYFS_CACHE/apt-update.log" >&2; die "apt-get update failed"; }
	args=()
	for p in "${missing[@]}"; do
		case $p in
		qemu-system-x86)
			# qemu-utils on these machines comes from bookworm-backports: take the
			# same QEMU version, or apt refuses the mix.
			if have_pkg qemu-utils; then
				args+=("qemu-system-x86=$(pkg_version qemu-utils)")
			else
				args+=(qemu-system-x86)
			fi ;;
		*) args+=("$p") ;;
		esac
	done
	step "apt-get install ${missing[*]}"
	if [ $need_src = 1 ] && ! apt-cache show "linux-source-$KERNEL_SERIES" >/dev/null 2>&1; then
		die "Debian no longer offers linux-source-$KERNEL_SERIES. Download a Linux $KERNEL_SERIES.y source tree or tarball yourself and run again with LINUX_SRC=/path/to/it"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-t bookworm-backports "${args[@]}" >"$TINYFS_CACHE/apt-install.log" 2>&1 ||
		{ tail -n 20 "$TINYFS_CACHE/apt-install.log" >&2; die "apt-get install failed (log: $TINYFS_CACHE/apt-install.log)"; }
fi

step "rustc-web $RUSTC_SERIES"
case $(/usr/bin/rustc --version) in
"rustc $RUSTC_SERIES".*) ;;
*) die "/usr/bin/rustc is $(/usr/bin/rustc --version), need $RUSTC_SERIES.x (Debian rustc-web)" ;;
esac
[ "$(pkg_version rustc-web)" = "$(pkg_version rust-web-src)" ] ||
	die "rustc-web $(pkg_version rustc-web) and rust-web-src $(pkg_version rust-web-src) differ"

step "bindgen-cli $BINDGEN_VERSION"
if [ "$(bindgen --version 2>/dev/null)" != "bindgen $BINDGEN_VERSION" ]; then
	command -v cargo >/dev/null || die "cargo is missing (the machine's rustup toolchain)"
	cargo install --locked "bindgen-cli@$BINDGEN_VERSION" >"$TINYFS_CACHE/bindgen-install.log" 2>&1 ||
		{ tail -n 20 "$TINYFS_CACHE/bindgen-install.log" >&2; die "cargo install bindgen-cli failed"; }
fi

step "PyPI libclang $LIBCLANG_VERSION and virtme-ng $VIRTME_NG_VERSION"
pyver() { py -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null; }
if [ "$(pyver libclang)" != "$LIBCLANG_VERSION" ] || [ "$(pyver virtme-ng)" != "$VIRTME_NG_VERSION" ]; then
	py -m pip install -q --disable-pip-version-check \
		"libclang==$LIBCLANG_VERSION" "virtme-ng==$VIRTME_NG_VERSION" >"$TINYFS_CACHE/pip-install.log" 2>&1 ||
		{ tail -n 20 "$TINYFS_CACHE/pip-install.log" >&2; die "pip install failed"; }
fi
command -v vng >/dev/null || die "vng is not on PATH after installing virtme-ng"

STEP=
say "setup: done"
