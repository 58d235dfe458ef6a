"""The downloads spread over worker processes, one per core.

One event loop fetching, hashing and writing keeps one core busy at ~6 ms of
CPU per image, and the loop itself (HTTP parsing, the layers of httpx and
aiohttp) cannot use a second core. So the fetch stage forks a worker per
core, each with its own event loop and HTTP client, and the parent only
records: each worker sends an ``Outcome`` per URL as it finishes, and the
parent alone writes the state, so crash safety is the single process's (a
file is renamed into place before its outcome is sent; the row is written
after).

Limits stay exact: the workers share ``concurrency`` and ``per_host`` out
between them (each gets its part, the parts sum to the configured value),
so however the URLs fall, no host ever sees more than ``per_host``
requests at once, nor the run more than ``concurrency``. The URLs of each
host are dealt round-robin, so every worker has its share of every host.

Stopping: Ctrl-C reaches the parent (the workers ignore SIGINT), which sends
each worker SIGTERM; a worker cancels its downloads (each removes its
temporary file) and exits, and the parent records what was sent before.
A worker whose parent dies (SIGKILL) notices within ``_WATCH`` seconds and
stops the same way, so it neither keeps downloading nor keeps the site
locked (it shares the parent's lock, see ``mirror.lock``).

Forking needs a parent without threads (a thread holding a lock at the fork
would leave it held in the child): with any running, or where ``fork`` does
not exist, the fetch stays in this process. So does a fetch that makes
thumbnails: their decoding pool already keeps every core busy, and each
download waits for its own thumbnails before it is renamed into place.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from mirror.config import Config, DownloadConfig
from mirror.errors import MirrorError
from mirror.models import Outcome
from mirror.state import UrlRecord

if TYPE_CHECKING:
    from multiprocessing.context import ForkProcess

_MIN_URLS = 8  # per worker: below that, forking costs more than it gains
_WATCH = 0.1  # seconds between a worker's checks that its parent is alive
_STOP_WAIT = 1.5  # seconds the parent gives stopping workers before SIGKILL

Download = Callable[
    [Config, Sequence[str], dict[str, UrlRecord], Callable[[Outcome], None]], Awaitable[None]
]


class WorkerFailed(MirrorError):
    """A worker process raised or died: what it said, or how it ended."""


def worker_count(download: DownloadConfig, urls: int) -> int:
    """How many processes to fetch ``urls`` URLs with (1: this one, no fork)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, download.per_host, download.concurrency, urls // _MIN_URLS))


def shard(
    urls: Sequence[str], download: DownloadConfig, workers: int
) -> list[tuple[list[str], DownloadConfig]]:
    """Each worker's URLs and limits: every host's URLs dealt round-robin,
    ``concurrency`` and ``per_host`` split so that the parts sum to the whole."""
    by_host: dict[str, list[int]] = defaultdict(list)
    for index, url in enumerate(urls):
        by_host[(urlsplit(url).hostname or "").lower()].append(index)
    owner = [0] * len(urls)
    turn = 0
    for indexes in by_host.values():
        for index in indexes:
            owner[index] = turn % workers
            turn += 1
    shards: list[tuple[list[str], DownloadConfig]] = []
    for worker in range(workers):
        limits = replace(
            download,
            concurrency=_part(download.concurrency, workers, worker),
            per_host=_part(download.per_host, workers, worker),
        )
        shards.append(([u for u, o in zip(urls, owner, strict=True) if o == worker], limits))
    return shards


def _part(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def run(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
    download: Download,
    workers: int,
) -> None:
    """Fetch ``urls`` in ``workers`` forked processes; ``record`` each outcome here.

    Raises KeyboardInterrupt after the workers have stopped (Ctrl-C), and
    WorkerFailed if one of them failed.
    """
    context = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):  # a child must not print the parent's buffer again
        with contextlib.suppress(Exception):
            stream.flush()
    parent = os.getpid()
    started: list[tuple[ForkProcess, Connection]] = []
    try:
        for urls_part, limits in shard(urls, config.download, workers):
            receiver, sender = context.Pipe(duplex=False)
            share = _Share(
                replace(config, download=limits), urls_part,
                {url: known[url] for url in urls_part if url in known},
            )  # fmt: skip
            process = context.Process(
                target=_worker, args=(share, download, sender, parent),
                name="gallery-mirror fetch", daemon=True,
            )  # fmt: skip
            process.start()
            sender.close()
            started.append((process, receiver))
        with _deferred_interrupt() as check:
            _collect([receiver for _, receiver in started], record, check=check)
    except BaseException:
        _stop([process for process, _ in started])
        # What finished before the stop was sent is still recorded.
        with contextlib.suppress(WorkerFailed):
            _collect([receiver for _, receiver in started], record, deadline=_STOP_WAIT)
        raise
    finally:
        for process, receiver in started:
            process.join(_STOP_WAIT)
            if process.is_alive():
                process.kill()  # its temporary files are removed by the next run
                process.join()
            receiver.close()


class _Interrupts:
    """Ctrl-C in the parent, raised only where it cannot cut a state write in half."""

    def __init__(self) -> None:
        self.requested = False
        self.waiting = False

    def handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.waiting:
            raise KeyboardInterrupt

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[_Interrupts]:
    interrupts = _Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield interrupts
        return
    previous = signal.signal(signal.SIGINT, interrupts.handle)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGINT, previous)


def _collect(
    receivers: list[Connection],
    record: Callable[[Outcome], None],
    *,
    deadline: float | None = None,
    check: _Interrupts | None = None,
) -> None:
    """Record outcomes until every worker has said it is done (or closed its pipe)."""
    until = None if deadline is None else time.monotonic() + deadline
    open_ = [r for r in receivers if not r.closed]
    failure: str | None = None
    while open_:
        timeout = None if until is None else max(0.0, until - time.monotonic())
        if check is not None:
            check.check()
            check.waiting = True
        try:
            ready = wait(open_, timeout)
        finally:
            if check is not None:
                check.waiting = False
        if not ready:
            return  # out of time: the caller kills what is left
        for receiver in ready:
            assert isinstance(receiver, Connection)
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                open_.remove(receiver)
                receiver.close()
                failure = failure or "a download worker exited without finishing"
                continue
            if isinstance(message, Outcome):
                record(message)
                continue
            open_.remove(receiver)
            receiver.close()
            if message != "done":
                failure = failure or str(message)
    if failure is not None:
        raise WorkerFailed(failure)


def _stop(processes: list[ForkProcess]) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)


class _Share(NamedTuple):
    """One worker's part: its limits (in ``config``), its URLs, their stored records."""

    config: Config
    urls: list[str]
    known: dict[str, UrlRecord]


def _worker(share: _Share, download: Download, sender: Connection, parent: int) -> None:
    """A worker process: fetch, send each outcome, then "done" (or why not)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        asyncio.run(_worker_main(share, download, sender, parent))
        sender.send("done")
    except BaseException as exc:
        with contextlib.suppress(OSError):
            sender.send(_describe(exc))
    finally:
        sender.close()


def _describe(exc: BaseException) -> str:
    """What the parent tells the user: a file and its error, as the CLI would."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return traceback.format_exception_only(exc)[-1].strip()


async def _worker_main(share: _Share, download: Download, sender: Connection, parent: int) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stopping = False

    def stop() -> None:
        nonlocal stopping
        stopping = True
        main.cancel()

    loop.add_signal_handler(signal.SIGTERM, stop)

    async def watch() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(_WATCH)
        stop()  # the parent is gone: nobody records what we would fetch

    watcher = asyncio.create_task(watch())
    try:
        await download(share.config, share.urls, share.known, sender.send)
    except asyncio.CancelledError:
        if not stopping:
            raise
    finally:
        watcher.cancel()
