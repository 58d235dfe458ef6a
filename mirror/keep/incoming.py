"""One download's temporary file: written and hashed off the event loop, then committed.

The body arrives on the event loop; everything that touches the disk or the
CPU per byte (writing, hashing, fsync) runs here, in a worker thread, in a
few large blocks. Done on the loop, writing and hashing took a third of a
fetch's time and left the second core idle.

Every method blocks and is meant for ``asyncio.to_thread``. A lock makes a
``discard`` from the loop (Ctrl-C, a refused file) wait for a block still
being written by a thread, so the temporary file is never closed under it.

A full disk or quota is raised as :class:`NoSpace`, which says how much room
the file needed: the fetch stops on it rather than failing every URL after.
"""

from __future__ import annotations

import errno
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from io import BufferedWriter
from pathlib import Path, PurePosixPath
from typing import Final

from mirror.keep.store import AtomicFile, CheckedRoot, DirSync

FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})  # the disk, or the user's quota


class NoSpace(OSError):
    """No room left in ``directory`` for a file of at least ``needed`` bytes
    (its declared size, else what had come of it); an ``OSError`` with the
    cause's errno and text."""

    directory: Path
    needed: int


class Incoming:
    """The temporary file of one download (see :class:`~mirror.keep.store.AtomicFile`),
    written below ``root`` under a name that only says where the temporary
    file lies; :meth:`commit` gives the final name.

    ``relative`` is checked to stay inside the mirror (a shared
    :class:`~mirror.keep.store.CheckedRoot` resolves each directory once) on the
    first write, in the worker thread rather than on the event loop.
    """

    def __init__(
        self,
        root: CheckedRoot,
        relative: PurePosixPath,
        *,
        fsync: bool,
        expected: int | None = None,
    ) -> None:
        self._inside = root
        self._relative = relative
        self._fsync = fsync
        self._expected = expected or 0  # the declared size, where the answer gave one
        self._size = 0  # bytes handed to write so far
        self._atomic: AtomicFile | None = None
        self._file: BufferedWriter | None = None
        self._digest = hashlib.sha256()
        self._lock = threading.Lock()

    @property
    def temp(self) -> Path:
        """The temporary file, complete once :meth:`flush` has returned."""
        assert self._atomic is not None, "nothing written yet"
        return self._atomic.temp

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @contextmanager
    def _room(self) -> Iterator[None]:
        """A full disk raised as :class:`NoSpace`, with the room the file needs."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in FULL:
                raise
            full = NoSpace(exc.errno, exc.strerror, exc.filename)
            full.directory, full.needed = self._inside.root, max(self._expected, self._size)
            raise full from exc

    def write(self, blocks: Sequence[bytes]) -> None:
        with self._lock, self._room():
            self._size += sum(map(len, blocks))  # before writing: a block that does not fit counts
            if self._file is None:
                self._atomic = AtomicFile(self._inside(self._relative), fsync=self._fsync)
                self._file = self._atomic.__enter__()  # left by commit() or discard()
            for block in blocks:
                self._digest.update(block)
                self._file.write(block)

    def flush(self, last: Sequence[bytes]) -> Path:
        """Write the last blocks and flush, so that the file can be read from disk."""
        self.write(last)
        with self._lock, self._room():
            assert self._file is not None
            self._file.flush()
            return self.temp

    def commit(self, relative: PurePosixPath, *, dirs: DirSync | None = None) -> Path:
        """fsync (when configured) and rename to ``relative``; returns the final path.

        With ``dirs``, the directories to fsync are handed there (the caller
        syncs them before it records the file), else they are fsynced now.
        """
        with self._lock, self._room():
            assert self._atomic is not None, "nothing written yet"
            self._atomic.retarget(self._inside(relative), dirs=dirs)
            self._atomic.__exit__(None, None, None)
            return self._atomic.final

    @property
    def committed(self) -> bool:
        """Whether the file was renamed into place (waits for a rename in progress)."""
        with self._lock:
            return self._atomic is not None and self._atomic.committed

    def discard(self) -> None:
        """Remove the temporary file; the final path is left as it was.

        Nothing to do once committed (a failure after the rename, e.g. in the
        directory fsync, must surface as itself, not as a misuse of discard)."""
        with self._lock:
            if self._atomic is not None and not self._atomic.committed:
                self._atomic.discard()
