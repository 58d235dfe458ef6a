"""One run at a time per site: an exclusive ``flock`` on ``<state dir>/lock``.

Two runs on one site (a cron ``backup`` overlapping a manual ``migrate``)
would download the same files and race on the state, so every writing
command holds :class:`SiteLock` for its whole run; a second one fails at
once with :class:`LockHeld` (exit code 3) instead of waiting.

Why ``flock`` and not "the lock file exists": the kernel drops a ``flock``
when its holder dies, however it dies, so a run killed by SIGKILL, the OOM
killer or a power cut leaves no stale lock to clean up by hand. The file's
contents (PID, host, start time) are only there for the message; they are
never trusted to decide anything. The file is never deleted: unlinking a
lock file lets a waiter lock the old inode while a newcomer locks a new one,
and both would "hold" the lock.

POSIX only (``fcntl``). A process forked while the lock is held (not
exec'ed: the descriptor is close-on-exec) shares it, so a worker that
outlives a killed parent keeps the site locked until it exits too.
"""

from __future__ import annotations

import errno
import fcntl
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final

from mirror.errors import LockHeld, MirrorError

__all__ = ["LOCK_FILE_NAME", "LockHeld", "SiteLock"]

LOCK_FILE_NAME: Final = "lock"


def _read_holder(fd: int) -> dict[str, str]:
    """The ``key=value`` lines the holder wrote; empty if it has not written yet."""
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return {}
    holder: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            holder[key.strip()] = value.strip()
    return holder


def _held_error(path: Path, holder: dict[str, str]) -> LockHeld:
    """The LockHeld for ``path``, saying as much about the holder as it wrote."""
    pid_text = holder.get("pid", "")
    pid = int(pid_text) if pid_text.isdigit() else None
    started = holder.get("started") or None
    if pid is None:
        who = "another process (it has not written its PID yet: it is just starting)"
    else:
        who = f"process {pid}"
        if holder.get("host"):
            who += f" on {holder['host']}"
        if started:
            who += f", started {started}"
    return LockHeld(
        f"another gallery-mirror run holds the lock on this site: {path} is locked by "
        f"{who}. Wait for it to finish, or stop it, and run again.",
        path=path,
        pid=pid,
        started=started,
    )


class SiteLock:
    """Exclusive, non-blocking lock on ``<state_dir>/lock``, held inside ``with``.

    Not reentrant: taking it again, even in the same process, raises
    :class:`LockHeld`, since two runs in one process are as unsafe as two
    processes.
    """

    def __init__(self, state_dir: Path) -> None:
        """Prepare to lock ``state_dir/lock``; nothing happens until ``with``."""
        self.path = Path(state_dir) / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeld` at once; never waits."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this SiteLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise MirrorError(f"{self.path}: cannot create the lock file: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise _held_error(self.path, _read_holder(fd)) from None
                raise MirrorError(f"{self.path}: cannot lock: {exc}") from exc
            finally:
                os.close(fd)
        self._fd = fd
        try:
            started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            # uname's node name is socket.gethostname()'s, without importing socket.
            info = f"pid={os.getpid()}\nhost={os.uname().nodename}\nstarted={started}\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        except OSError:
            # The lock is what matters; the note is only for the message.
            pass

    def release(self) -> None:
        """Release the lock (no-op if not held); the file stays, emptied."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Emptied while still held, so nobody reads our PID as a live holder.
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> SiteLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
