#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Count the results of KTAP logs with the kernel's own KTAP parser.

Usage: ktap.py KERNEL_SRC NAME=LOG [NAME=LOG]...

Each LOG is parsed with tools/testing/kunit/kunit.py (so the KUnit boot log
and plain kselftest output are read the same way); its tree of results is
printed, then one line per log and the totals as JSON on the last line:
{"passed": N, "failed": N, "skipped": N}. Crashed tests, tests missing from
a plan and unparsable logs count as failed.
"""

import json
import os
import subprocess
import sys
import tempfile


def count(src, name, log):
    kunit = os.path.join(src, "tools/testing/kunit/kunit.py")
    with tempfile.NamedTemporaryFile(suffix=".json") as js:
        res = subprocess.run(
            [sys.executable, kunit, "parse", f"--json={js.name}", log],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(res.stdout, end="")
        try:
            with open(js.name) as f:
                misc = json.load(f)["misc"]
        except (OSError, ValueError, KeyError):
            print(f"{name}: no KTAP results could be parsed from {log}")
            return 0, 1, 0
    failed = misc["failed"] + misc["crashed"] + misc["errors"]
    passed, skipped = misc["passed"], misc["skipped"]
    if passed + failed + skipped == 0:
        print(f"{name}: {log} holds no test results")
        failed = 1
    elif res.returncode != 0 and failed == 0:
        print(f"{name}: kunit.py parse found errors in {log}")
        failed = 1
    print(f"{name}: {passed} passed, {failed} failed, {skipped} skipped")
    return passed, failed, skipped


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src = os.path.abspath(sys.argv[1])
    total = [0, 0, 0]
    for arg in sys.argv[2:]:
        name, _, log = arg.partition("=")
        log = os.path.abspath(log)
        for i, n in enumerate(count(src, name, log)):
            total[i] += n
    print(json.dumps(dict(zip(("passed", "failed", "skipped"), total))))


if __name__ == "__main__":
    main()
