#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job, for now: boot the built kernel in a guest, load tinyfs, show
# it in /proc/modules and the kernel log, and unload it.
. "$(dirname "$0")/lib.sh"

KO=$KBUILD/samples/rust/tinyfs/tinyfs.ko
[ -f "$KO" ] || die "no $KO: run 'make build'"
"$TINYFS_ROOT/harness/guest.sh" --timeout 600 -- sh -c "
	set -e
	echo '\$ uname -r'; uname -r
	echo '\$ insmod tinyfs.ko'; insmod $KO
	echo '\$ grep tinyfs /proc/modules'; grep tinyfs /proc/modules
	echo '\$ dmesg | grep tinyfs'; dmesg | grep tinyfs
	echo '\$ rmmod tinyfs'; rmmod tinyfs
	dmesg | grep 'tinyfs: module unloaded'
"
