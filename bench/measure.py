"""Run a command and measure it: wall time, CPU seconds, peak RSS."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

_TIME = Path("/usr/bin/time")  # GNU time: CPU and peak RSS of the command and its children
_REAP = Path(__file__).with_name("reap.py")  # ... all of them: see there
_FIELDS = {
    "user": re.compile(r"User time \(seconds\): ([\d.]+)"),
    "system": re.compile(r"System time \(seconds\): ([\d.]+)"),
    "rss": re.compile(r"Maximum resident set size \(kbytes\): (\d+)"),
}


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds, children included
    rss_mb: float  # peak resident set of the largest process, MB (0 if unknown)


class CommandFailed(RuntimeError):
    pass


def run(command: Sequence[str], *, cwd: Path | None = None) -> Sample:
    reaped = [sys.executable, str(_REAP), *command]
    wrapped = [str(_TIME), "-v", *reaped] if _TIME.exists() else reaped
    started = time.perf_counter()
    done = subprocess.run(
        wrapped, cwd=cwd, capture_output=True, text=True, check=False,
        env={**os.environ, "LC_ALL": "C"},
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        own = done.stderr.split("\tCommand being timed:")[0] or done.stdout
        tail = own.strip().splitlines()[-5:]
        raise CommandFailed(f"{command[0]} exited {done.returncode}: {' | '.join(tail)}")
    found = {k: p.search(done.stderr) for k, p in _FIELDS.items()}
    cpu = sum(float(m.group(1)) for k, m in found.items() if m and k != "rss")
    rss = found["rss"]
    return Sample(wall, cpu, int(rss.group(1)) / 1024 if rss else 0.0)


@dataclass(frozen=True, slots=True)
class Timed:
    wall: float  # seconds
    stopped: bool  # still running at its limit, and stopped


def timed(command: Sequence[str], *, limit: float, allowed: Collection[int] = (0,)) -> Timed:
    """The wall time of a command that may fail part of its work (exit codes
    ``allowed``) and must not run past ``limit`` seconds: there it gets
    SIGTERM, as a scheduler stops a job (gallery-mirror then records what it
    has done), and SIGKILL if it is still there 30 s later. Whatever it left
    running in its session is killed when it ends."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "LC_ALL": "C"},
    )  # fmt: skip
    stopped = False
    try:
        try:
            _, errors = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            stopped = True
            process.terminate()
            try:
                _, errors = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                _, errors = process.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    wall = time.perf_counter() - started
    if not stopped and process.returncode not in allowed:
        tail = errors.strip().splitlines()[-5:]
        raise CommandFailed(f"{command[0]} exited {process.returncode}: {' | '.join(tail)}")
    return Timed(wall, stopped)


@dataclass(frozen=True, slots=True)
class Summary:
    wall: float  # median
    wall_min: float
    wall_max: float
    cpu: float  # median
    rss_mb: float  # max over runs


def summarize(samples: Sequence[Sample]) -> Summary:
    walls = [s.wall for s in samples]
    return Summary(
        statistics.median(walls),
        min(walls),
        max(walls),
        statistics.median(s.cpu for s in samples),
        max(s.rss_mb for s in samples),
    )
