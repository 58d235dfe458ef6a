"""The files a user names for output (``report --json FILE``, ``--html FILE``,
``backup --json FILE``): written *to* what the name points at, never over it.

- ``-``, or a name for this process's own standard output (``/dev/stdout``,
  ``/proc/self/fd/1``), is standard output: written there, in place (opening
  ``/dev/stdout`` anew would truncate a file the shell redirected it to).
- A FIFO, a character device or any other file that is not a regular file
  is opened and written as it is: renaming over it would replace the pipe a
  reader waits on, or ``/dev/null``, with a regular file.
- A regular file, or a name not taken yet, is replaced atomically (a reader
  never sees half a report); through a symlink, at the symlink's target, so
  the link stays a link.
- A missing directory is an error naming it: it is never created, as a typo
  in a path should not leave a tree of folders behind.

Errors name the path the user gave, never the temporary ``.part`` file.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from mirror.errors import ConfigError
from mirror.keep.store import AtomicFile

STDOUT = "-"


def is_stdout(path: Path) -> bool:
    """Whether writing ``path`` writes this process's standard output."""
    if str(path) == STDOUT:
        return True
    try:
        named, ours, null = os.stat(path), os.fstat(1), os.stat(os.devnull)
    except OSError:  # no such file, or no standard output at all
        return False
    # /dev/null with standard output sent there too: a sink, not a stream the
    # file would have to itself (what is printed stays on standard output).
    return _same(named, ours) and not _same(named, null)


def _same(one: os.stat_result, other: os.stat_result) -> bool:
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


def check(path: Path) -> None:
    """Raise ConfigError now, before a long run, when ``path``'s directory is missing."""
    if str(path) == STDOUT or _special(path):
        return
    directory = _target(path).parent
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigError(f"cannot write {path}: the directory {directory} {problem}")


def write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as the module docstring says."""
    if is_stdout(path):
        sys.stdout.flush()  # what was printed before comes first
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    check(path)
    try:
        if _special(path):
            with open(path, "wb") as out:
                out.write(data)
        else:
            with AtomicFile(_target(path)) as out:
                out.write(data)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def _special(path: Path) -> bool:
    """An existing file (symlinks followed) that is not a regular file."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:  # missing (a dangling symlink too): to be created
        return False


def _target(path: Path) -> Path:
    """Where the atomic replace happens: the end of ``path``'s symlinks."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path
