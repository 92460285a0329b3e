#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (see harness/check.sh): keeps the boot log with the KUnit
# results, then runs the tinyfs kselftests, once with the in-tree module next
# to them and once with the out-of-tree build of the same module.
# Usage: guest-tests.sh KSELFTEST_DIR OOT_MODULE MKFS SCRATCH_DEV OUT_DIR
set -u
ksft=$1 oot_ko=$2 mkfs=$3 dev=$4 out=$5

# The KUnit suites, the kernel crate's Rust doctests among them, ran at boot.
dmesg >"$out/boot-dmesg.log"

export TINYFS_MKFS="$mkfs" TINYFS_FSCK="$(dirname "$mkfs")/fsck.tinyfs" TINYFS_DEV="$dev"
mkdir -p "$out/kselftest"
rc=0
echo "# kselftests, in-tree tinyfs.ko"
(cd "$ksft" && ./run_kselftest.sh --per-test-log "$out/kselftest") || rc=1

echo "# kselftests, tinyfs.ko built out of tree"
for t in $(sed -n 's|^filesystems/tinyfs:||p' "$ksft/kselftest-list.txt"); do
	TINYFS_MODULE=$oot_ko "$ksft/filesystems/tinyfs/$t" >"$out/kselftest/oot-$t" 2>&1 || rc=1
	cat "$out/kselftest/oot-$t"
done
exit $rc
