"""python bench/reap.py COMMAND...: run COMMAND, then wait for every process it left.

GNU time counts the CPU of the descendants that were waited for. A process
whose parent exits without waiting for it (multiprocessing's fork server,
and with it the thumbnail workers it reaped) is handed to init, and its CPU
goes uncounted. As a child subreaper this wrapper inherits those processes
and waits for them, so that their CPU reaches the table.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    code = subprocess.call(sys.argv[1:])
    while True:
        try:
            os.wait()
        except ChildProcessError:  # none left
            return code


if __name__ == "__main__":
    sys.exit(main())
