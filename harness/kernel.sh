#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prepare the kernel tree and build it, incrementally:
#   1. unpack the pristine Linux 7.3.y source into the cache, once;
#   2. apply the overlay (rust/, samples/, Documentation/, tools/) and the patch
#      series (patches/series), touching only files whose contents changed;
#   3. configure: tinyconfig + harness/tinyfs.config, redone when either changes;
#   4. build bzImage and modules (in-tree tinyfs.ko), then tinyfs.ko out of tree
#      through the top-level Kbuild, then the kselftests and the userspace tools.
# Usage: kernel.sh [prepare|config|build|tools|export DIR]   (default: build)
. "$(dirname "$0")/lib.sh"

OVERLAY_DIRS=(rust samples Documentation tools)

# --- 1. pristine source ------------------------------------------------------
unpack() {
	[ -f "$SRC/.tinyfs-origin" ] && return
	local from=${LINUX_SRC:-/usr/src/linux-source-$KERNEL_SERIES.tar.xz} tmp
	[ -e "$from" ] || die "no kernel source at $from: run 'make setup', or set LINUX_SRC to a Linux $KERNEL_SERIES.y tree or tarball"
	say "unpacking $from into $SRC"
	rm -rf "$SRC" "$ORIG" "$SRC.tmp"
	mkdir -p "$SRC.tmp"
	if [ -d "$from" ]; then
		tar -C "$from" --exclude=.git -cf - . | tar -C "$SRC.tmp" -xf -
	else
		tar -C "$SRC.tmp" -xf "$from"
	fi
	# A tarball holds one top directory; a tree was copied as it is.
	tmp=$SRC.tmp
	[ -f "$tmp/Makefile" ] || tmp=$(find "$SRC.tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	[ -f "$tmp/Makefile" ] || die "$from does not look like a kernel source tree"
	local ver
	ver=$(make -s -C "$tmp" kernelversion 2>/dev/null)
	case $ver in
	"$KERNEL_SERIES".*|"$KERNEL_SERIES") ;;
	*) die "$from is Linux $ver, need $KERNEL_SERIES.y" ;;
	esac
	[ -f "$tmp/.config" ] || [ ! -d "$tmp/include/config" ] ||
		die "$from has been built in place; give a clean tree (make mrproper)"
	mv "$tmp" "$SRC"
	rm -rf "$SRC.tmp"
	echo "$from $ver" >"$SRC/.tinyfs-origin"
}

# --- 2. overlay and patch series -------------------------------------------------
overlay_files() {
	git -C "$TINYFS_ROOT" ls-files --cached --others --exclude-standard -- "${OVERLAY_DIRS[@]}" |
		while read -r f; do [ -f "$TINYFS_ROOT/$f" ] && echo "$f"; done | sort -u
}

series() {
	grep -v '^[[:space:]]*\(#\|$\)' "$TINYFS_ROOT/patches/series"
}

patched_files() {
	local p
	for p in $(series); do
		sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$TINYFS_ROOT/patches/$p"
	done | sort -u
}

# Copy $1 to $2 unless they are identical (so make sees no change).
sync_file() {
	cmp -s "$1" "$2" && return
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2"
	echo "  updated $3" >&2
}

prepare() {
	unpack
	local stage f p manifest=$SRC/.tinyfs-manifest
	stage=$(mktemp -d)
	mkdir -p "$ORIG"

	# Upstream files the series edits: start from their pristine copies.
	for f in $(patched_files); do
		if [ ! -f "$ORIG/$f" ]; then
			grep -qxF "$f" "$manifest" 2>/dev/null &&
				die "$SRC/$f was changed by an earlier run but its pristine copy is gone: delete $SRC and run again"
			[ -f "$SRC/$f" ] || die "the patch series edits $f, which this kernel does not have"
			mkdir -p "$(dirname "$ORIG/$f")"
			cp -p "$SRC/$f" "$ORIG/$f"
		fi
		mkdir -p "$(dirname "$stage/$f")"
		cp "$ORIG/$f" "$stage/$f"
	done
	for p in $(series); do
		[ -f "$TINYFS_ROOT/patches/$p" ] || die "patches/series names $p, which does not exist"
		patch -d "$stage" -p1 --batch --forward --no-backup-if-mismatch -s \
			<"$TINYFS_ROOT/patches/$p" >"$stage/.patch.log" 2>&1 ||
			{ cat "$stage/.patch.log" >&2; die "patch $p does not apply to Linux $(cut -d' ' -f2 "$SRC/.tinyfs-origin")"; }
	done
	rm -f "$stage/.patch.log"
	find "$stage" -name '*.orig' -o -name '*.rej' | grep -q . && die "the patch series left .orig/.rej files"

	# New files of the series.
	for f in $(overlay_files); do
		[ -f "$ORIG/$f" ] && die "overlay file $f also exists upstream: change it with a patch in patches/"
		[ -f "$SRC/$f" ] && ! grep -qxF "$f" "$manifest" 2>/dev/null &&
			die "overlay file $f also exists upstream: change it with a patch in patches/"
		mkdir -p "$(dirname "$stage/$f")"
		cp "$TINYFS_ROOT/$f" "$stage/$f"
	done

	(cd "$stage" && find . -type f | sed 's|^\./||' | sort) >"$manifest.new"
	while read -r f; do sync_file "$stage/$f" "$SRC/$f" "$f"; done <"$manifest.new"
	# Files the series no longer carries: restore upstream's or remove ours.
	if [ -f "$manifest" ]; then
		comm -23 "$manifest" "$manifest.new" | while read -r f; do
			if [ -f "$ORIG/$f" ]; then
				sync_file "$ORIG/$f" "$SRC/$f" "$f (restored)"
				rm -f "$ORIG/$f"
			else
				rm -f "$SRC/$f"
				echo "  removed $f" >&2
			fi
		done
	fi
	mv "$manifest.new" "$manifest"
	rm -rf "$stage"
}

# --- 3. configuration ----------------------------------------------------------
FRAGMENT=$TINYFS_ROOT/harness/tinyfs.config

config() {
	prepare
	local stamp want
	want=$(cat "$FRAGMENT" "$SRC/.tinyfs-origin" "$TINYFS_ROOT"/patches/* | sha256sum | cut -d' ' -f1)
	stamp=$KBUILD/.tinyfs-config-stamp
	if [ -f "$KBUILD/.config" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return
	fi
	say "configuring: tinyconfig + harness/tinyfs.config"
	mkdir -p "$KBUILD" "$LOGS"
	mapfile -t args < <(kmake_args)
	{
		make -C "$SRC" "${args[@]}" tinyconfig &&
			"$SRC/scripts/kconfig/merge_config.sh" -m -O "$KBUILD" "$KBUILD/.config" "$FRAGMENT" &&
			make -C "$SRC" "${args[@]}" olddefconfig
	} >"$LOGS/config.log" 2>&1 || { tail -n 30 "$LOGS/config.log" >&2; die "kernel configuration failed (log: $LOGS/config.log)"; }
	make -C "$SRC" "${args[@]}" rustavailable >>"$LOGS/config.log" 2>&1 ||
		{ tail -n 30 "$LOGS/config.log" >&2; die "the Rust toolchain is not usable for this kernel (make rustavailable)"; }
	# Every option of the fragment must have survived olddefconfig.
	local line sym val bad=0
	while read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*}; val=${line#*=}
			grep -qxF "$sym=$val" "$KBUILD/.config" || { echo "  $sym=$val was dropped" >&2; bad=1; } ;;
		"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}
			grep -q "^$sym=" "$KBUILD/.config" && { echo "  $sym is set" >&2; bad=1; } ;;
		esac
	done <"$FRAGMENT"
	[ $bad = 0 ] || die "harness/tinyfs.config asks for options Kconfig did not keep (missing dependencies?)"
	echo "$want" >"$stamp"
}

# --- 4. build --------------------------------------------------------------------
# Warnings from the compilers, the linker, objtool, modpost or Kconfig.
check_warnings() {
	local log=$1 what=$2
	if grep -E '(^|[[:space:]])(warning|WARNING)(:|\[)' "$log" | grep -v '^make' >"$log.warnings"; then
		cat "$log.warnings" >&2
		die "$what printed build warnings (log: $log)"
	fi
}

build() {
	config
	mkdir -p "$LOGS"
	mapfile -t args < <(kmake_args)
	say "building the kernel and in-tree modules (log: $LOGS/build.log)"
	make -C "$SRC" "${args[@]}" bzImage modules >"$LOGS/build.log" 2>&1 ||
		{ grep -E 'error|Error' "$LOGS/build.log" | tail -n 30 >&2; die "kernel build failed (log: $LOGS/build.log)"; }
	check_warnings "$LOGS/build.log" "the kernel build"
	[ -f "$KBUILD/samples/rust/tinyfs/tinyfs.ko" ] || die "the in-tree build made no samples/rust/tinyfs/tinyfs.ko"

	# The out-of-tree build doubles as the clippy run on the module (CLIPPY=1).
	say "building tinyfs.ko out of tree through ./Kbuild, with clippy (log: $LOGS/oot.log)"
	mkdir -p "$OOT"
	make -C "$KBUILD" -j"$JOBS" RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc \
		CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver \
		M="$TINYFS_ROOT" MO="$OOT" modules >"$LOGS/oot.log" 2>&1 ||
		{ tail -n 30 "$LOGS/oot.log" >&2; die "out-of-tree module build failed (log: $LOGS/oot.log)"; }
	check_warnings "$LOGS/oot.log" "the out-of-tree module build"
	[ -f "$OOT/samples/rust/tinyfs/tinyfs.ko" ] || die "the out-of-tree build made no tinyfs.ko"

	say "building the kselftests (log: $LOGS/kselftest.log)"
	rm -rf "$KSFT"
	make -C "$SRC/tools/testing/selftests" O="$KBUILD/kselftest" TARGETS=filesystems/tinyfs \
		KHDR_INCLUDES="-isystem $KBUILD/usr/include" INSTALL_PATH="$KSFT" \
		install >"$LOGS/kselftest.log" 2>&1 ||
		{ tail -n 30 "$LOGS/kselftest.log" >&2; die "kselftest build failed (log: $LOGS/kselftest.log)"; }
	check_warnings "$LOGS/kselftest.log" "the kselftest build"
	# The tests load tinyfs.ko from their own directory by default.
	cp "$KBUILD/samples/rust/tinyfs/tinyfs.ko" "$KSFT/filesystems/tinyfs/"
	tools
	say "built $KBUILD/arch/x86/boot/bzImage"
}

# The userspace tools, installed under their real names in $TINYFS_CACHE/bin.
tools() {
	say "building the userspace tools (log: $LOGS/tools.log)"
	(cd "$TINYFS_ROOT/tools/tinyfs" &&
		CARGO_TARGET_DIR=$TINYFS_CACHE/cargo cargo build --locked --release) >"$LOGS/tools.log" 2>&1 ||
		{ tail -n 30 "$LOGS/tools.log" >&2; die "building tools/tinyfs failed (log: $LOGS/tools.log)"; }
	check_warnings "$LOGS/tools.log" "the userspace tools build"
	install -D -m 755 "$TINYFS_CACHE/cargo/release/mkfs-tinyfs" "$TOOLS_BIN/mkfs.tinyfs"
	install -D -m 755 "$TINYFS_CACHE/cargo/release/fsck-tinyfs" "$TOOLS_BIN/fsck.tinyfs"
}

# --- export -------------------------------------------------------------------------
# The whole series as 'git format-patch' output against the pristine tree: the
# patches of patches/series, then one patch adding the overlay's new files.
export_series() {
	local out=${1:?usage: kernel.sh export DIR} tmp f
	prepare
	tmp=$(mktemp -d)
	git -C "$tmp" init -q
	git -C "$tmp" config user.name "tinyfs developers"
	git -C "$tmp" config user.email "tinyfs@example.invalid"
	for f in $(patched_files); do mkdir -p "$tmp/$(dirname "$f")"; cp "$ORIG/$f" "$tmp/$f"; done
	git -C "$tmp" add -A
	git -C "$tmp" commit -q -m "pristine Linux $(cut -d' ' -f2 "$SRC/.tinyfs-origin") (files the series edits)"
	local base
	base=$(git -C "$tmp" rev-parse HEAD)
	for f in $(series); do
		git -C "$tmp" am -q --keep-cr "$TINYFS_ROOT/patches/$f" || die "git am $f failed"
	done
	for f in $(overlay_files); do mkdir -p "$tmp/$(dirname "$f")"; cp "$TINYFS_ROOT/$f" "$tmp/$f"; done
	git -C "$tmp" add -A
	git -C "$tmp" commit -q -F - <<EOT
tinyfs: add the module, its documentation, tests and tools

Add the new files of the tinyfs series: see
Documentation/filesystems/tinyfs.rst.

Signed-off-by: tinyfs developers <tinyfs@example.invalid>
EOT
	mkdir -p "$out"
	git -C "$tmp" format-patch -q -o "$(realpath "$out")" "$base"
	rm -rf "$tmp"
	ls "$out"
}

case ${1:-build} in
prepare) prepare ;;
config) config ;;
build) build ;;
tools) mkdir -p "$LOGS"; tools ;;
export) export_series "${2:-}" ;;
*) die "usage: kernel.sh [prepare|config|build|tools|export DIR]" ;;
esac
