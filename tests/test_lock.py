"""SiteLock: one run per site, across real processes, surviving SIGKILL."""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.errors import MirrorError
from mirror.keep.lock import LOCK_FILE_NAME, LockHeld, SiteLock

# Takes the lock, says so, then holds it until stdin closes (or it is killed).
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mirror.keep.lock import SiteLock
    with SiteLock(Path(sys.argv[1])):
        sys.stdout.write("locked\\n")
        sys.stdout.flush()
        sys.stdin.read()
    sys.stdout.write("released\\n")
    """
)


class Holder:
    """A child process holding the lock on ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the lock is taken
        assert line == "locked\n", self.proc.stderr.read() if self.proc.stderr else ""

    def finish(self) -> str:
        """Let it leave the ``with`` and exit; return the rest of its output."""
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return out

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "site" / ".gallery-mirror"


@pytest.fixture
def holder(state_dir: Path) -> Iterator[Holder]:
    h = Holder(state_dir)
    try:
        yield h
    finally:
        h.stop()


def try_lock_in_subprocess(state_dir: Path) -> subprocess.CompletedProcess[str]:
    """Take and release the lock in a fresh process; exit 3 with the message if held."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from mirror.keep.lock import LockHeld, SiteLock
        try:
            with SiteLock(Path(sys.argv[1])):
                print("got it")
        except LockHeld as exc:
            print(exc)
            sys.exit(exc.exit_code)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_lock_creates_dir_and_records_holder(state_dir: Path) -> None:
    with SiteLock(state_dir) as lock:
        assert lock.held
        assert lock.path == state_dir / LOCK_FILE_NAME
        content = lock.path.read_text()
        assert f"pid={os.getpid()}\n" in content
        assert "started=" in content and "host=" in content
    assert not lock.held
    assert lock.path.exists()  # never deleted: see the module docstring
    assert lock.path.read_text() == ""  # no stale PID left behind


def test_second_process_gets_lock_held_naming_file_and_pid(state_dir: Path, holder: Holder) -> None:
    with pytest.raises(LockHeld) as caught, SiteLock(state_dir):
        pytest.fail("took a lock another process holds")
    exc = caught.value
    message = str(exc)
    assert str(state_dir / LOCK_FILE_NAME) in message
    assert f"process {holder.proc.pid}" in message
    assert "started 20" in message
    assert exc.pid == holder.proc.pid
    assert exc.started is not None and exc.started.endswith("Z")
    assert exc.path == state_dir / LOCK_FILE_NAME
    assert exc.exit_code == 3 and isinstance(exc, MirrorError)

    # The same from an unrelated process, as the CLI would see it.
    result = try_lock_in_subprocess(state_dir)
    assert result.returncode == 3, result.stderr
    assert str(holder.proc.pid) in result.stdout


def test_lock_can_be_taken_after_holder_exits(state_dir: Path, holder: Holder) -> None:
    assert holder.finish() == "released\n"
    with SiteLock(state_dir) as lock:
        assert f"pid={os.getpid()}\n" in lock.path.read_text()


def test_lock_of_a_sigkilled_holder_does_not_block(state_dir: Path, holder: Holder) -> None:
    holder.kill()
    lock_file = state_dir / LOCK_FILE_NAME
    assert f"pid={holder.proc.pid}\n" in lock_file.read_text()  # stale note left behind ...
    result = try_lock_in_subprocess(state_dir)  # ... but no stale lock
    assert (result.returncode, result.stdout) == (0, "got it\n"), result.stderr
    with SiteLock(state_dir) as lock:
        assert f"pid={os.getpid()}\n" in lock.path.read_text()
        assert str(holder.proc.pid) not in lock.path.read_text()


def test_released_on_exception(state_dir: Path) -> None:
    lock = SiteLock(state_dir)
    with pytest.raises(RuntimeError, match="boom"), lock:
        raise RuntimeError("boom")
    assert not lock.held
    result = try_lock_in_subprocess(state_dir)
    assert (result.returncode, result.stdout) == (0, "got it\n"), result.stderr


def test_not_reentrant_even_in_one_process(state_dir: Path) -> None:
    with SiteLock(state_dir) as lock:
        with pytest.raises(LockHeld, match=f"process {os.getpid()}"), SiteLock(state_dir):
            pass
        with pytest.raises(RuntimeError, match="already held"):
            lock.acquire()
        assert lock.held  # the failed attempts did not release it
        result = try_lock_in_subprocess(state_dir)
        assert result.returncode == 3


def test_holder_that_wrote_nothing_yet(state_dir: Path) -> None:
    # A holder between flock() and writing its note: the message still helps.
    state_dir.mkdir(parents=True)
    fd = os.open(state_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(LockHeld, match="just starting") as caught:
            SiteLock(state_dir).acquire()
        assert caught.value.pid is None
    finally:
        os.close(fd)


def test_unusable_state_dir_is_a_mirror_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(MirrorError, match="cannot create the lock file") as caught:
        SiteLock(blocker / ".gallery-mirror").acquire()
    assert not isinstance(caught.value, LockHeld)


def test_release_without_acquire_is_harmless(state_dir: Path) -> None:
    lock = SiteLock(state_dir)
    lock.release()
    with lock:
        pass
    lock.release()


def test_lock_held_survives_pickling() -> None:
    exc = LockHeld("held", pid=1)
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, LockHeld) and str(again) == "held"
