#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Performance and fio, in one guest boot (harness/perf-guest.sh): the mixed
# direct/buffered fio job with verify=crc32c, and sequential throughput of
# tinyfs against the raw disk and ext4, reported as ratios. The throughput is
# reported, not judged: the guest is emulated (TCG) on a shared machine.
# Prints 'perf: N passed, N failed'.
# Environment: TINYFS_PERF_MIB (default 256), the size of each measurement.
. "$(dirname "$0")/lib.sh"

OUT=$TINYFS_CACHE/results/perf
rm -rf "$OUT"
mkdir -p "$OUT"
MIB=${TINYFS_PERF_MIB:-256}
img=$OUT/disk.img
truncate -s $((MIB + 128))M "$img"
pass=0 fail=0
"$TINYFS_ROOT/harness/guest.sh" --out "$OUT/guest" --timeout 1500 --disk "$img" -- \
	harness/perf-guest.sh "$KBUILD/samples/rust/tinyfs/tinyfs.ko" "$TOOLS_BIN/mkfs.tinyfs" \
	"$TOOLS_BIN/fsck.tinyfs" /dev/vda "$MIB" >"$OUT/run.log" 2>&1 || {
	echo "not ok - perf: the guest run failed"
	tail -n 30 "$OUT/run.log" | sed 's/^/#   /'
	fail=$((fail + 1))
}
log=$OUT/guest/output.log
[ -f "$log" ] || log=/dev/null
grep -E '^(ok|not ok) - ' "$log" || true
pass=$((pass + $(grep -c '^ok - ' "$log" || true)))
fail=$((fail + $(grep -c '^not ok - ' "$log" || true)))
py - "$log" "$MIB" <<'PY'
import sys
bw = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 4 and p[0] == "perf:":
        bw[(p[1], p[2])] = int(p[3])
print(f"# sequential, {sys.argv[2]} MiB, 1 MiB requests (MB/s; ratio of tinyfs to the others):")
for test in ("direct-write", "direct-read", "buffered-write-fsync"):
    row = {t: bw.get((t, test)) for t in ("raw", "ext4", "tinyfs")}
    cells = "  ".join(f"{t} {v / 1e6:8.1f}" if v else f"{t}      n/a" for t, v in row.items())
    ratios = "  ".join(
        f"tinyfs/{t} {row['tinyfs'] / row[t]:.2f}" for t in ("raw", "ext4")
        if row["tinyfs"] and row[t] and not (t == "raw" and test.startswith("buffered")))
    print(f"# {test:22s} {cells}  {ratios}")
PY
echo "perf: $pass passed, $fail failed"
[ $fail = 0 ]
