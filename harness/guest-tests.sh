#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Runs in the guest (see harness/check.sh): keeps the boot log with the KUnit
# results, then runs the tinyfs kselftests, once with the in-tree module next
# to them and once with the out-of-tree build of the same module.
# Usage: guest-tests.sh KSELFTEST_DIR OOT_MODULE OUT_DIR
set -u
ksft=$1 oot_ko=$2 out=$3

# The KUnit suites, the kernel crate's Rust doctests among them, ran at boot.
dmesg >"$out/boot-dmesg.log"

mkdir -p "$out/kselftest"
rc=0
echo "# kselftests, in-tree tinyfs.ko"
(cd "$ksft" && ./run_kselftest.sh --per-test-log "$out/kselftest") || rc=1

echo "# kselftests, tinyfs.ko built out of tree"
TINYFS_MODULE=$oot_ko "$ksft/filesystems/tinyfs/tinyfs_module_test" \
	>"$out/kselftest/oot-tinyfs_module_test" 2>&1 || rc=1
cat "$out/kselftest/oot-tinyfs_module_test"
exit $rc
