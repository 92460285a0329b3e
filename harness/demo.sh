#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job: boot the built kernel in a guest with a scratch disk, format it
# with mkfs.tinyfs, load tinyfs, mount the disk and look at it, then unmount
# and unload. (Writing is not implemented yet: the mount is read-only.)
. "$(dirname "$0")/lib.sh"

KO=$KBUILD/samples/rust/tinyfs/tinyfs.ko
[ -f "$KO" ] || die "no $KO: run 'make build'"
DISK=$TINYFS_CACHE/demo.img
rm -f "$DISK"
truncate -s 64M "$DISK"
"$TINYFS_ROOT/harness/guest.sh" --timeout 600 --disk "$DISK" -- sh -c "
	set -e
	run() { echo \"\\\$ \$*\"; \"\$@\"; }
	run uname -r
	run $TOOLS_BIN/mkfs.tinyfs -L demo /dev/vda
	run insmod $KO
	run grep tinyfs /proc/filesystems
	run mkdir -p /run/tinyfs
	run mount -t tinyfs /dev/vda /run/tinyfs
	run grep tinyfs /proc/mounts
	run ls -lia /run/tinyfs
	run stat -f /run/tinyfs
	run touch /run/tinyfs/file || true
	run umount /run/tinyfs
	run rmmod tinyfs
	run dmesg | grep tinyfs
"
