#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (from harness/demo.sh): the race of Linux 2.6.27-rc1, made
# deterministic. With debug_writeback_hold_ms, a background fsync() holds the
# buffers of a dirty folio after writing it; an O_DIRECT write over that folio
# then cannot invalidate it, falls back to a buffered write, and succeeds.
# Usage: demo-race.sh KO DEV MNT
set -eu
KO=$1 DEV=$2 MNT=$3
stats=/sys/kernel/debug/tinyfs/${DEV##*/}
run() { echo "\$ $*"; "$@"; }
run insmod "$KO" debug_writeback_hold_ms=2000
run mount -t tinyfs "$DEV" "$MNT"
[ -d "$stats" ] || mount -t debugfs debugfs /sys/kernel/debug
run dd if=/dev/urandom of="$MNT/race" bs=4k count=1 status=none
run sync
echo "# dirty the page again, and fsync it in the background: writeback holds its buffers"
run dd if=/dev/zero of="$MNT/race" bs=4k count=1 conv=notrunc status=none
holds=$(cat "$stats/writeback_holds")
python3 -c "import os, sys; os.fsync(os.open(sys.argv[1], os.O_RDONLY))" "$MNT/race" &
for _ in $(seq 100); do
	[ "$(cat "$stats/writeback_holds")" != "$holds" ] && break
	sleep 0.1
done
run grep . "$stats/writeback_holds"
echo "# an O_DIRECT write over the held page: invalidation fails with -EBUSY"
run dd if=/tmp/random of="$MNT/race" bs=4k count=1 oflag=direct conv=notrunc status=none
wait
run cmp -n 4096 /tmp/random "$MNT/race"
run grep . "$stats"/direct_writes "$stats"/buffered_fallbacks "$stats"/direct_reads
[ "$(cat "$stats/buffered_fallbacks")" = 1 ] || { echo "error: the write did not fall back"; exit 1; }
run umount "$MNT"
run rmmod tinyfs
