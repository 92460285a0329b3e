#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job: boot the built kernel in a guest with a scratch disk, format it
# with mkfs.tinyfs, load tinyfs, mount the disk, write files and read them back,
# remount and check them again, then unmount and unload; then the O_DIRECT
# race of 2.6.27-rc1, made deterministic, and the counters that show its
# buffered fallback (harness/demo-race.sh).
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
	run sh -c 'echo hello, tinyfs > /run/tinyfs/hello'
	run dd if=/dev/urandom of=/tmp/random bs=64k count=64 status=none
	run cp /tmp/random /run/tinyfs/random
	run sync
	run ls -li /run/tinyfs
	run stat -f /run/tinyfs
	run umount /run/tinyfs
	run mount -t tinyfs /dev/vda /run/tinyfs
	run cat /run/tinyfs/hello
	run cmp /tmp/random /run/tinyfs/random
	run rm /run/tinyfs/random
	run stat -f -c 'free blocks after rm: %f of %b' /run/tinyfs
	run umount /run/tinyfs
	run rmmod tinyfs
	harness/demo-race.sh $KO /dev/vda /run/tinyfs
	run dmesg | grep tinyfs
"
