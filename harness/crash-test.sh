#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The ordered-data guarantee, tested by crashing: for each block size, fill a
# disk with a marker, mkfs it, boot a guest that writes files (with frequent
# background writeback and some fsyncs) and reboots at once, without syncing or
# unmounting, after a few seconds; then boot again and check that every byte of
# every file is what was written: no block allocated but never written (it
# would hold the marker) may appear in a file. Prints one KTAP-like line per
# block size and 'crash: N passed, N failed'.
. "$(dirname "$0")/lib.sh"

OUT=$TINYFS_CACHE/results/crash
rm -rf "$OUT"
mkdir -p "$OUT"
KO=$KBUILD/samples/rust/tinyfs/tinyfs.ko
# Module parameters for the writing boot: ordered_data=0 is the negative control.
PARAMS=${TINYFS_CRASH_PARAMS:-}
pass=0 fail=0
for bs in 1024 2048 4096; do
	img=$OUT/disk-$bs.img
	py -c "import sys; sys.stdout.buffer.write(b'STALE-BLOCK!' * (64 * 1024 * 1024 // 12 + 1))" |
		head -c $((64 * 1024 * 1024)) >"$img"
	"$TOOLS_BIN/mkfs.tinyfs" -q -b "$bs" "$img"
	mnt=/run/tinyfs-crash
	"$TINYFS_ROOT/harness/guest.sh" --expect-reboot --out "$OUT/write-$bs" --timeout 300 --disk "$img" -- \
		sh -c "insmod $KO $PARAMS && mkdir -p $mnt && mount -t tinyfs /dev/vda $mnt &&
			python3 harness/crash.py write $mnt 6 $bs" >/dev/null 2>&1 || true
	ok=0
	if grep -q "rebooting now" "$OUT/write-$bs/output.log" 2>/dev/null &&
		"$TINYFS_ROOT/harness/guest.sh" --out "$OUT/verify-$bs" --timeout 300 --disk "$img" -- \
			sh -c "insmod $KO && $TOOLS_BIN/fsck.tinyfs -n /dev/vda; mkdir -p $mnt &&
				mount -t tinyfs /dev/vda $mnt && python3 harness/crash.py verify $mnt &&
				umount $mnt" >"$OUT/verify-$bs.log" 2>&1; then
		ok=1
	fi
	if [ $ok = 1 ]; then
		echo "ok - crash: ordered data at block size $bs ($(grep -m1 'rebooting now' "$OUT/write-$bs/output.log"); $(grep 'verified' "$OUT/verify-$bs.log"))"
		pass=$((pass + 1))
	else
		echo "not ok - crash: ordered data at block size $bs"
		sed 's/^/#   /' "$OUT/write-$bs/output.log" "$OUT/verify-$bs.log" 2>/dev/null | grep -v '^#   ok - ' | tail -n 30
		fail=$((fail + 1))
	fi
done
echo "crash: $pass passed, $fail failed"
[ $fail = 0 ]
