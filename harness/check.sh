#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run every test from whatever state the machine is in: set up, build, then
#   - host: cargo test of the userspace tools (tools/tinyfs);
#   - lint: checkpatch, rustfmt and clippy (harness/lint.sh), one result each;
#   - guest: the KUnit suites with the kernel crate's Rust doctests (at boot),
#     and the tinyfs kselftests with the in-tree and the out-of-tree module;
#   - guest: the ordered-data crash test (harness/crash-test.sh), one result per
#     block size;
#   - guest: fio with verification, and throughput against the raw disk and ext4
#     (harness/perf.sh).
# A guest whose kernel log holds an error report counts as a failed test.
# Ends with the line 'N passed, N failed, N skipped'; exits non-zero on any
# failure.
. "$(dirname "$0")/lib.sh"

RESULTS=$TINYFS_CACHE/results
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
passed=0 failed=0 skipped=0
fail() { printf 'FAILED: %s\n' "$*"; failed=$((failed + 1)); }

"$TINYFS_ROOT/harness/setup.sh"
"$TINYFS_ROOT/harness/kernel.sh" build

say "host: cargo test (tools/tinyfs)"
set +e
(cd "$TINYFS_ROOT/tools/tinyfs" && CARGO_TARGET_DIR=$TINYFS_CACHE/cargo cargo test --locked 2>&1) |
	tee "$RESULTS/cargo-test.log"
cargo_rc=${PIPESTATUS[0]}
set -e
read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$RESULTS/cargo-test.log")
passed=$((passed + p)) failed=$((failed + f))
if [ "$cargo_rc" != 0 ]; then
	[ "$f" != 0 ] || fail "cargo test exited $cargo_rc"
elif [ $((p + f)) = 0 ]; then
	fail "cargo test ran no test"
fi

# Runs a suite that ends with the line 'NAME: N passed, N failed' and counts it.
suite() {
	local name=$1 p f
	shift
	set +e
	"$@" | tee "$RESULTS/$name.log"
	set -e
	read -r p f < <(sed -n "s/^$name: \([0-9]*\) passed, \([0-9]*\) failed\$/\1 \2/p" "$RESULTS/$name.log") || true
	[ -n "${p:-}" ] || { p=0 f=1; echo "FAILED: $name did not finish"; }
	passed=$((passed + p)) failed=$((failed + f))
}

say "lint: checkpatch, rustfmt, clippy"
suite lint "$TINYFS_ROOT/harness/lint.sh"

say "guest: KUnit and kselftests"
G=$RESULTS/guest
# The scratch disk the kselftests format and mount (/dev/vda in the guest).
truncate -s 0 "$RESULTS/scratch.img"
truncate -s 64M "$RESULTS/scratch.img"
"$TINYFS_ROOT/harness/guest.sh" --out "$G" --timeout 1200 --disk "$RESULTS/scratch.img" -- \
	harness/guest-tests.sh "$KSFT" "$OOT/samples/rust/tinyfs/tinyfs.ko" \
	"$TOOLS_BIN/mkfs.tinyfs" /dev/vda "$G" ||
	fail "guest run (see above)"

say "guest: ordered data across crashes (harness/crash-test.sh)"
suite crash "$TINYFS_ROOT/harness/crash-test.sh"

say "guest: fio and performance (harness/perf.sh)"
suite perf "$TINYFS_ROOT/harness/perf.sh"

say "results"
# Every installed kselftest must have left a log, with the in-tree and the
# out-of-tree module: a missing one counts as failed.
logs=("kunit=$G/boot-dmesg.log")
for t in $(sed -n 's|^filesystems/tinyfs:||p' "$KSFT/kselftest-list.txt"); do
	logs+=("$t=$G/kselftest/$t" "$t-oot=$G/kselftest/oot-$t")
done
[ ${#logs[@]} -gt 1 ] || fail "no kselftest is installed ($KSFT/kselftest-list.txt)"
py "$TINYFS_ROOT/harness/ktap.py" "$SRC" "${logs[@]}" | tee "$RESULTS/ktap.log"
p= f= s=
read -r p f s < <(tail -n 1 "$RESULTS/ktap.log" |
	py -c 'import json, sys; d = json.load(sys.stdin); print(d["passed"], d["failed"], d["skipped"])') || true
[ -n "$p" ] || { p=0 f=1 s=0; echo "FAILED: the KTAP results could not be counted"; }
passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))

# Every test can run here: a skipped one means a missing device, tool or module.
[ "$skipped" = 0 ] || fail "$skipped test(s) skipped"

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
