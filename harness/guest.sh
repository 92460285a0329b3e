#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the built kernel in a QEMU guest with virtme-ng, run a command in it as
# root and bring back its output and exit status.
#
# Usage: guest.sh [--disk IMG]... [--timeout SECONDS] [--out DIR] [--expect-reboot] -- COMMAND...
#
# The guest's root is the host's, shared read-only; DIR (default: a new
# directory under the cache) is shared read-write and holds, afterwards:
#   output.log   what COMMAND printed (also shown on stdout)
#   status       COMMAND's exit status
#   dmesg.log    the guest's kernel log after COMMAND
#   console.log  the whole serial console
# Each --disk IMG is attached as a virtio disk (/dev/vda, /dev/vdb, ...).
#
# Fails when COMMAND fails, when the guest does not finish in time (showing
# the last console lines), or when the kernel log has a BUG, WARNING, Oops,
# lockdep, KFENCE or other kernel error report, even if COMMAND passed.
. "$(dirname "$0")/lib.sh"

disks=()
timeout=900
out=
expect_reboot=0
while [ $# -gt 0 ]; do
	case $1 in
	--disk) disks+=(--disk "$(realpath "$2")"); shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--expect-reboot) expect_reboot=1; shift ;;
	--) shift; break ;;
	*) die "usage: guest.sh [--disk IMG]... [--timeout SECONDS] [--out DIR] -- COMMAND..." ;;
	esac
done
[ $# -gt 0 ] || die "guest.sh: no command given"
KERNEL=$KBUILD/arch/x86/boot/bzImage
[ -f "$KERNEL" ] || die "no kernel at $KERNEL: run 'make build'"
command -v vng >/dev/null || die "vng is missing: run 'make setup'"

[ -n "$out" ] || out=$TINYFS_CACHE/guest/run-$$
rm -rf "$out"
mkdir -p "$out"
out=$(realpath "$out")

# KVM where it really runs a guest; TCG otherwise. /dev/kvm may exist and yet
# not run one, so boot the kernel once with it and look for the panic that
# ends a boot without a root filesystem. The answer is kept per host boot.
kvm_works() {
	local stamp=$TINYFS_CACHE/kvm-probe boot
	boot=$(cat /proc/sys/kernel/random/boot_id)
	if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$boot" ]; then
		[ "$(tail -n 1 "$stamp")" = yes ]
		return
	fi
	local ans=no
	if [ -w /dev/kvm ] && timeout 30 qemu-system-x86_64 -accel kvm -cpu host -m 256 \
		-display none -nodefaults -no-reboot -serial stdio -kernel "$KERNEL" \
		-append "console=ttyS0 panic=-1" 2>/dev/null | grep -q 'Kernel panic'; then
		ans=yes
	fi
	printf '%s\n%s\n' "$boot" "$ans" >"$stamp"
	say "KVM probe: $ans"
	[ $ans = yes ]
}
accel=(--disable-kvm)
if [ "${TINYFS_KVM:-auto}" != no ] && kvm_works; then accel=(); fi

# The command goes into a bash script in the shared directory (bash, because
# printf %q quotes for bash), run from the repository's top directory.
{
	echo "cd $(printf %q "$TINYFS_ROOT") || exit 1"
	printf '%q ' "$@"
	echo
} >"$out/command.sh"
guest_script="bash $out/command.sh >$out/output.log 2>&1; echo \$? >$out/status; dmesg >$out/dmesg.log"

say "booting $KERNEL in a guest (${accel[*]:-KVM}, timeout ${timeout}s)"
set +e
timeout --kill-after=10 "$timeout" vng --run "$KERNEL" "${accel[@]}" --user root \
	--cpus 2 --memory 2G --verbose --rwdir "$out" "${disks[@]}" \
	--append "log_buf_len=4M panic=-1 oops=panic" \
	--exec "$guest_script" </dev/null >"$out/console.log" 2>&1
vng_rc=$?
set -e

KERNEL_ERRORS='BUG:|WARNING:|Oops|KFENCE|UBSAN|Kernel panic|general protection fault|kernel BUG|DEBUG_LOCKS_WARN_ON|INFO: task .* blocked|INFO: trying to register|soft lockup|hard LOCKUP|rcu_.*self-detected|detected stall|panicked at'

[ -f "$out/output.log" ] && cat "$out/output.log"

if [ $expect_reboot = 1 ]; then
	# The command reboots the guest itself (a simulated crash): it leaves no status, and
	# the kernel log is the console's.
	[ ! -f "$out/status" ] || die "the command did not reboot the guest"
	[ $vng_rc != 124 ] && [ $vng_rc != 137 ] || die "the guest did not finish within ${timeout}s"
	if grep -E "$KERNEL_ERRORS" "$out/console.log" >"$out/kernel-errors.log"; then
		grep -E -A 20 "$KERNEL_ERRORS" "$out/console.log" | head -n 80 >&2
		die "the guest's kernel log has error reports"
	fi
	exit 0
fi

if [ ! -f "$out/status" ]; then
	echo "---- last console lines ($out/console.log) ----" >&2
	tail -n 40 "$out/console.log" >&2
	[ $vng_rc = 124 ] || [ $vng_rc = 137 ] && die "the guest did not finish within ${timeout}s"
	die "the guest stopped before the command finished (vng exit $vng_rc)"
fi

# Kernel error reports, from the guest's dmesg or, if it crashed, its console.
log=$out/dmesg.log
[ -s "$log" ] || log=$out/console.log
if grep -E "$KERNEL_ERRORS" "$log" >"$out/kernel-errors.log"; then
	echo "---- kernel error reports in the guest ($log) ----" >&2
	grep -E -A 20 "$KERNEL_ERRORS" "$log" | head -n 80 >&2
	die "the guest's kernel log has $(wc -l <"$out/kernel-errors.log") error report line(s)"
fi

status=$(cat "$out/status")
[ "$status" = 0 ] || die "the command failed in the guest (exit $status)"
