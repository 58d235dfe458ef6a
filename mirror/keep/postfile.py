"""Reading and replacing one post on disk, for rewrite and revert.

A post is replaced the way the mirror's files are written: a temporary file
in the same directory, fsynced, renamed over the post. The new file gets the
old one's permission bits (and owner, where allowed), and the real file is
replaced, not a symbolic link that points at it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mirror.keep.store import AtomicFile

__all__ = ["Stamp", "Unreadable", "read_post", "stamp_of", "write_post"]


# What a stat says of a post, to tell that it changed without reading it (as
# git's index and make do): any write changes one of these. The size, the
# mtime; the ctime, which changes with every write and rename, even one that
# restores the mtime; the inode, which a file replaced by another has (an
# editor's save, a checkout). A plain tuple: a run makes one per post.
Stamp = tuple[int, int, int, int]


def stamp_of(info: os.stat_result) -> Stamp:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why a post cannot be read (``reason`` is shown as is)."""

    reason: str


def read_post(path: Path) -> bytes | Unreadable:
    """The post's bytes, or why it cannot be read."""
    try:
        # A named pipe or a device would block the read, or never end.
        if not stat.S_ISREG(path.stat().st_mode):
            return Unreadable("cannot be read: not a regular file")
        return path.read_bytes()
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        return Unreadable(f"cannot be read: {reason}")


def write_post(path: Path, expected: bytes, data: bytes) -> str | None:
    """Replace the post at ``path``, which must still hold ``expected``; why not, or None."""
    real = Path(os.path.realpath(path))
    try:
        info = real.stat()
        # Renaming over a read-only file would succeed (only the directory's
        # permission counts), so its mode bits are asked explicitly.
        if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            return "the file is read-only: not written"
        if not os.access(real, os.W_OK):
            return "no permission to write the file: not written"
        atomic = AtomicFile(real, fsync=True)
        with atomic as out:
            out.write(data)
            os.chmod(atomic.temp, stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
                with contextlib.suppress(OSError):  # only root may give files away
                    os.chown(atomic.temp, info.st_uid, info.st_gid)
            # Last look before the rename: an editor may have saved meanwhile.
            if real.read_bytes() != expected:
                atomic.discard()
                return "the file changed while it was being rewritten: not written"
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}"
    return None
