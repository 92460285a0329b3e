#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The ordered-data crash test's two halves, run in the guest (harness/crash-test.sh).

  crash.py write MNT SECONDS SEED   write files until SECONDS have passed, then reboot
                                    the guest at once, without syncing or unmounting
  crash.py verify MNT               check every file against what the writer wrote

Each file's bytes are a function of its name and offset, so any byte the verifier
reads is right, zero (a hole, or data the crash lost), or wrong: a block that was
allocated but never written (the disk was filled with a marker before mkfs) shows
up as wrong bytes. The writer appends and fills holes, so that blocks get
allocated inside sizes already on the disk.
"""

import ctypes
import os
import random
import sys
import time

MARKER = b"STALE-BLOCK!"


def content(name, off, n):
    """n bytes of file `name` from offset `off`: a 4-byte counter salted by the name."""
    salt = sum(name.encode()) & 0xFF
    first, skip = divmod(off, 4)
    words = (first + i for i in range((skip + n + 3) // 4))
    data = b"".join(((w * 2654435761 + salt) & 0xFFFFFFFF).to_bytes(4, "little") for w in words)
    return data[skip:skip + n]


def write(mnt, seconds, seed):
    rnd = random.Random(seed)
    # Frequent background writeback, so that the crash lands amid it.
    for knob, value in (("dirty_writeback_centisecs", "20"), ("dirty_expire_centisecs", "20")):
        with open(f"/proc/sys/vm/{knob}", "w") as f:
            f.write(value)
    end = time.monotonic() + seconds
    files = {}
    while time.monotonic() < end:
        name = f"f{rnd.randrange(24):02d}"
        path = os.path.join(mnt, name)
        size = files.get(name, 0)
        n = rnd.choice((1, 100, 4096, 5000, 65536, 200000))
        # Append, or fill part of a hole inside the file (or leave a new one): the
        # latter allocates blocks that an older size on the disk already covers.
        off = size if rnd.random() < 0.5 else rnd.randrange(size + 512 * 1024)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.pwrite(fd, content(name, off, n), off)
        if rnd.random() < 0.1:
            os.fsync(fd)
        os.close(fd)
        files[name] = max(size, off + n)
    print(f"wrote {len(files)} files, {sum(files.values())} bytes; rebooting now", flush=True)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.reboot(0x01234567)  # RB_AUTOBOOT: no sync, no unmount
    sys.exit("reboot() returned")


def verify(mnt):
    bad_files = 0
    total = 0
    for name in sorted(os.listdir(mnt)):
        with open(os.path.join(mnt, name), "rb") as f:
            data = f.read()
        total += len(data)
        want = content(name, 0, len(data))
        # Every byte is the one written there, or zero: a hole, or data lost in the
        # crash before it was recorded. Never anything else.
        wrong = [i for i in range(len(data)) if data[i] != want[i] and data[i] != 0]
        if wrong:
            bad_files += 1
            first = wrong[0]
            stale = MARKER in data
            print(f"not ok - {name}: {len(data)} bytes, first wrong byte at {first}"
                  f"{' (stale marker found: a block allocated but never written)' if stale else ''}")
        else:
            print(f"ok - {name}: {len(data)} bytes")
    print(f"verified {total} bytes; {bad_files} file(s) wrong")
    return 1 if bad_files else 0


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    sys.exit(verify(sys.argv[2]))
