#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Style checks of the series, each printed as one KTAP-like result line:
#   checkpatch   scripts/checkpatch.pl --strict on the exported series
#   rustfmt      the kernel's rustfmt settings on every .rs file of the series
#   tools-fmt    cargo fmt --check on tools/tinyfs
#   tools-clippy cargo clippy -D warnings on tools/tinyfs
#   no-unsafe-in-tinyfs  no unsafe block, fn, impl or trait in samples/rust/tinyfs
# (Kernel-side clippy runs in harness/kernel.sh: the out-of-tree module is
# built with CLIPPY=1 and any warning fails the build.)
# Prints 'lint: N passed, N failed' last; exits non-zero on any failure.
. "$(dirname "$0")/lib.sh"

LINT=$TINYFS_CACHE/lint
rm -rf "$LINT"
mkdir -p "$LINT"
pass=0 fail=0
result() { # name status log
	if [ "$2" = 0 ]; then
		echo "ok - lint: $1"
		pass=$((pass + 1))
	else
		echo "not ok - lint: $1 (log: $3)"
		sed 's/^/#   /' "$3" | head -n 40
		fail=$((fail + 1))
	fi
}

"$TINYFS_ROOT/harness/kernel.sh" export "$LINT/series" >/dev/null 2>"$LINT/export.log" ||
	{ cat "$LINT/export.log" >&2; die "exporting the series failed"; }
rc=0
for p in "$LINT"/series/*.patch; do
	perl "$SRC/scripts/checkpatch.pl" --strict --no-tree --no-signoff --quiet \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG "$p" >>"$LINT/checkpatch.log" 2>&1 || rc=1
	grep -q '^Signed-off-by: ' "$p" || { echo "$p: no Signed-off-by" >>"$LINT/checkpatch.log"; rc=1; }
done
result checkpatch $rc "$LINT/checkpatch.log"

rc=0
mapfile -t rs < <(git -C "$TINYFS_ROOT" ls-files --cached --others --exclude-standard -- rust samples | grep '\.rs$' | grep -v '^tools/')
if [ ${#rs[@]} -gt 0 ]; then
	(cd "$TINYFS_ROOT" && /usr/bin/rustfmt --check --edition 2021 --config-path "$SRC/.rustfmt.toml" "${rs[@]}") \
		>"$LINT/rustfmt.log" 2>&1 || rc=1
fi
result rustfmt $rc "$LINT/rustfmt.log"

# The module itself has no unsafe code: what it needs belongs in kernel::fs.
rc=0
grep -nE '(^|[^[:alnum:]_])unsafe[[:space:]]*(\{|fn|impl|extern|trait)' \
	"$TINYFS_ROOT"/samples/rust/tinyfs/*.rs >"$LINT/no-unsafe.log" 2>&1 && rc=1
result no-unsafe-in-tinyfs $rc "$LINT/no-unsafe.log"

rc=0
(cd "$TINYFS_ROOT/tools/tinyfs" && cargo fmt --check) >"$LINT/tools-fmt.log" 2>&1 || rc=1
result tools-fmt $rc "$LINT/tools-fmt.log"

rc=0
(cd "$TINYFS_ROOT/tools/tinyfs" && CARGO_TARGET_DIR=$TINYFS_CACHE/cargo \
	cargo clippy --locked --all-targets -- -D warnings) >"$LINT/tools-clippy.log" 2>&1 || rc=1
result tools-clippy $rc "$LINT/tools-clippy.log"

echo "lint: $pass passed, $fail failed"
[ $fail = 0 ]
