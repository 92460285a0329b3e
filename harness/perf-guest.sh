#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (from harness/perf.sh): on the scratch disk DEV, the fio
# job that mixes direct and buffered writers on one tinyfs file with
# verify=crc32c, then sequential 1 MiB I/O of SIZE MiB with fio on the raw
# disk, ext4 and tinyfs: O_DIRECT write, O_DIRECT read, and buffered write
# ending with fsync. Prints one 'perf: TARGET TEST BYTES_PER_SECOND' line per
# measurement and KTAP-like 'ok'/'not ok' lines for what must work.
# Usage: perf-guest.sh KO MKFS FSCK DEV SIZE_MIB
set -u
KO=$1 MKFS=$2 FSCK=$3 DEV=$4 SIZE=$5
MNT=/run/tinyfs-perf
mkdir -p "$MNT"
status=0

check() {	# check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then
		echo "ok - $what"
	else
		echo "not ok - $what"
		status=1
	fi
}

# measure TARGET TEST FILE RW DIRECT [FIO OPTIONS...]: runs one sequential job
# and prints its bandwidth.
measure() {
	local target=$1 test=$2 file=$3 rw=$4 direct=$5 json bw
	shift 5
	json=$(fio --output-format=json --name="$target-$test" --filename="$file" --rw="$rw" \
		--bs=1m --size="${SIZE}m" --direct="$direct" --ioengine=psync --thread "$@") || {
		echo "not ok - perf: $target $test: fio failed"
		status=1
		return
	}
	bw=$(printf '%s' "$json" | jq ".jobs[0].$([ "$rw" = read ] && echo read || echo write).bw_bytes")
	echo "perf: $target $test $bw"
}

suite() {	# suite TARGET FILE
	measure "$1" direct-write "$2" write 1
	measure "$1" direct-read "$2" read 1
	measure "$1" buffered-write-fsync "$2" write 0 --end_fsync=1
}

check "insmod tinyfs" insmod "$KO"
# The mixed fio job with verification, on tinyfs.
check "mkfs.tinyfs" "$MKFS" -q "$DEV"
check "mount tinyfs" mount -t tinyfs "$DEV" "$MNT"
check "fio: direct and buffered writers on one file, verify=crc32c" \
	env TINYFS_FIO_FILE="$MNT/mixed" fio --output=/dev/null "$(dirname "$0")/fio/mixed-verify.fio"
cat /sys/kernel/debug/tinyfs/"${DEV##*/}"/{direct_writes,buffered_fallbacks} 2>/dev/null |
	paste -sd' ' | sed 's/^/# tinyfs counters: direct_writes buffered_fallbacks: /'
check "umount tinyfs" umount "$MNT"
check "fsck.tinyfs after fio" "$FSCK" -n "$DEV"

# Sequential throughput: raw disk, ext4, tinyfs, in this one boot.
suite raw "$DEV"
check "mkfs.ext4" mkfs.ext4 -q -F "$DEV"
check "mount ext4" mount -t ext4 "$DEV" "$MNT"
suite ext4 "$MNT/seq"
check "umount ext4" umount "$MNT"
check "mkfs.tinyfs" "$MKFS" -q "$DEV"
check "mount tinyfs" mount -t tinyfs "$DEV" "$MNT"
suite tinyfs "$MNT/seq"
check "umount tinyfs" umount "$MNT"
check "fsck.tinyfs after the measurements" "$FSCK" -n "$DEV"
exit $status
