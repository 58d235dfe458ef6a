"""The downloads spread over worker processes, one per core.

One event loop fetching, hashing and writing keeps one core busy at ~6 ms of
CPU per image, and the loop itself (HTTP parsing, the layers of httpx and
aiohttp) cannot use a second core. So the fetch stage forks a worker per
core, each with its own event loop and HTTP client, and the parent only
records: each worker sends an ``Outcome`` per URL as it finishes, and the
parent alone writes the state, so crash safety is the single process's (a
file is renamed into place, and its directory fsynced, before its outcome
is sent; the row is written after).

Limits stay exact: the workers share ``concurrency`` and ``per_host`` out
between them (each gets its part, the parts sum to the configured value),
so however the URLs fall, no host ever sees more than ``per_host``
requests at once, nor the run more than ``concurrency``. Each host's URLs
are dealt in proportion to the workers' parts of the limit that binds, so
no worker is left with more URLs per connection than another.

A worker that fails, is killed, or is stopped by anyone but the parent
fails the URLs it had not finished ("its download worker ..."); the others
go on, and the summary says what happened to each URL.

Stopping: Ctrl-C and SIGTERM reach the parent (the workers ignore SIGINT),
which sends each worker SIGTERM; a worker cancels its downloads (each
removes its temporary file) and exits, and the parent records what was
sent before. The parent takes the interrupt only while it waits for the
workers, never in the middle of recording. A worker whose parent dies
(SIGKILL) notices within ``_WATCH`` seconds and stops the same way, so it
neither keeps downloading nor keeps the site locked (it shares the parent's
lock, see ``mirror.lock``).

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
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from mirror.config import Config, DownloadConfig
from mirror.models import Outcome
from mirror.state import UrlRecord

if TYPE_CHECKING:
    from multiprocessing.context import ForkProcess

_MIN_URLS = 8  # per worker: below that, forking costs more than it gains
_WATCH = 0.1  # seconds between a worker's checks that its parent is alive
_STOP_WAIT = 1.5  # seconds the parent gives stopping workers, in all, before SIGKILL
_DONE = "done"  # a worker's last message when it fetched its whole share
_STOPS = {signal.SIGINT, signal.SIGTERM}

Download = Callable[
    [Config, Sequence[str], dict[str, UrlRecord], Callable[[Outcome], None]], Awaitable[None]
]


def worker_count(download: DownloadConfig, urls: int) -> int:
    """How many processes to fetch ``urls`` URLs with (1: this one, no fork)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return fitting(download, urls, cores or 1)


def fitting(download: DownloadConfig, urls: int, cores: int) -> int:
    """Workers worth forking for ``urls`` URLs on ``cores`` cores: every part of
    each limit at least one, and at least ``_MIN_URLS`` URLs each."""
    return max(1, min(cores, download.per_host, download.concurrency, urls // _MIN_URLS))


class Share(NamedTuple):
    """One worker's part: its limits (in ``config``), its URLs, their stored records."""

    config: Config
    urls: list[str]
    known: dict[str, UrlRecord]


def shard(
    config: Config, urls: Sequence[str], known: dict[str, UrlRecord], workers: int
) -> list[Share]:
    """Each worker's share: ``concurrency`` and ``per_host`` split so that the
    parts sum to the whole, and each host's URLs dealt in turn, a worker as
    often as its part of the limit that binds (parts 2, 1, 1 deal 0, 1, 2, 0)."""
    download = config.download
    per_host = [_part(download.per_host, workers, worker) for worker in range(workers)]
    concurrency = [_part(download.concurrency, workers, worker) for worker in range(workers)]
    by_host: dict[str, list[int]] = defaultdict(list)
    for index, url in enumerate(urls):
        by_host[(urlsplit(url).hostname or "").lower()].append(index)
    # Dealt by the limit that binds: per_host for a few hosts, concurrency for many.
    few = len(by_host) * download.per_host <= download.concurrency
    turns = _turns(per_host if few else concurrency)
    owner = [0] * len(urls)
    turn = 0
    for indexes in by_host.values():
        for index in indexes:
            owner[index] = turns[turn % len(turns)]
            turn += 1
    shares = []
    for worker in range(workers):
        limits = replace(download, concurrency=concurrency[worker], per_host=per_host[worker])
        mine = [url for url, of in zip(urls, owner, strict=True) if of == worker]
        records = {url: known[url] for url in mine if url in known}
        shares.append(Share(replace(config, download=limits), mine, records))
    return shares


def _part(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _turns(weights: list[int]) -> list[int]:
    """A cycle of worker indexes, each as often as its weight, spread out evenly."""
    slots = [
        ((step + 0.5) / weight, worker)
        for worker, weight in enumerate(weights)
        for step in range(weight)
    ]
    return [worker for _, worker in sorted(slots)]


@dataclass
class _Worker:
    process: ForkProcess
    receiver: Connection
    left: dict[str, None]  # its URLs not reported yet, in order


def run(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
    download: Download,
    workers: int,
) -> None:
    """Fetch ``urls`` in ``workers`` forked processes; ``record`` each outcome here.

    Raises KeyboardInterrupt (Ctrl-C, or SIGTERM where a handler turns it into
    one, as the CLI's does) once the workers have stopped and what they
    finished is recorded.
    """
    context = multiprocessing.get_context("fork")
    for stream in (sys.stdout, sys.stderr):  # a child must not print the parent's buffer again
        with contextlib.suppress(Exception):
            stream.flush()
    parent = os.getpid()
    started: list[_Worker] = []
    stopped: float | None = None  # when the workers were told to stop
    with _deferred_interrupts() as interrupts:
        try:
            for share in shard(config, urls, known, workers):
                receiver, sender = context.Pipe(duplex=False)
                # The child closes the parent's end of every pipe, its own
                # included: a write to a parent that died must fail, not block.
                ends = [*(worker.receiver for worker in started), receiver]
                process = context.Process(
                    target=_worker, args=(share, download, sender, parent, ends),
                    name="gallery-mirror fetch", daemon=True,
                )  # fmt: skip
                # Blocked across the fork: a stop must not reach the child while
                # it still runs the parent's handlers (it would be ignored there).
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
                try:
                    process.start()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                sender.close()
                started.append(_Worker(process, receiver, dict.fromkeys(share.urls)))
            _collect(started, record, interrupts)
            interrupts.check()  # one that came during the last records
        except BaseException:
            stopped = time.monotonic()
            _stop(started)
            # What finished before the stop was sent is still recorded.
            _collect(started, record, None, deadline=stopped + _STOP_WAIT)
            raise
        finally:
            _reap(started, (stopped or time.monotonic()) + _STOP_WAIT)


class _Interrupts:
    """SIGINT and SIGTERM in the parent, taken only where they cannot cut a
    state write in half: while it waits for the workers."""

    def __init__(self, previous: dict[int, Callable[[int, FrameType | None], object]]) -> None:
        self.previous = previous
        self.pending: tuple[int, FrameType | None] | None = None
        self.waiting = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.pending = (signum, frame)
        if self.waiting:
            self.check()

    def check(self) -> None:
        """Take a pending interrupt now: as its own handler would (the CLI
        notes a SIGTERM for its exit code), which raises KeyboardInterrupt."""
        if self.pending is None:
            return
        signum, frame = self.pending
        self.pending = None
        self.previous[signum](signum, frame)
        raise KeyboardInterrupt  # a handler that returned: still a stop


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[_Interrupts]:
    previous: dict[int, Callable[[int, FrameType | None], object]] = {}
    interrupts = _Interrupts(previous)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if callable(handler):  # a Python handler; SIGTERM's default stays a kill
                previous[signum] = handler
                signal.signal(signum, interrupts.handle)
    try:
        yield interrupts
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if interrupts.pending is not None:  # came while the workers were stopped: not lost
            signal.raise_signal(interrupts.pending[0])


def _collect(
    workers: list[_Worker],
    record: Callable[[Outcome], None],
    interrupts: _Interrupts | None,
    *,
    deadline: float | None = None,
) -> None:
    """Record outcomes until every worker has ended (or ``deadline``: stopping).

    A worker that ends without its whole share done, when not stopping, fails
    the URLs it left, with why.
    """
    open_ = {worker.receiver: worker for worker in workers if not worker.receiver.closed}
    while open_:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return  # out of time: the caller kills what is left
        if interrupts is not None:
            interrupts.waiting = True
            interrupts.check()
        try:
            ready = wait(list(open_), timeout)
        finally:
            if interrupts is not None:
                interrupts.waiting = False
        for receiver in ready:
            assert isinstance(receiver, Connection)
            worker = open_[receiver]
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                message = "exited without finishing (killed?)"
            if isinstance(message, Outcome):
                worker.left.pop(message.url, None)
                record(message)
                continue
            del open_[receiver]
            receiver.close()
            if message != _DONE and deadline is None:
                for url in worker.left:
                    record(Outcome(url, "failed", error=f"its download worker {message}"))
                worker.left.clear()


def _stop(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.process.is_alive() and worker.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.process.pid, signal.SIGTERM)


def _reap(workers: list[_Worker], deadline: float) -> None:
    """Join every worker by ``deadline``; kill what is left.

    A killed worker's temporary files are removed by the next run."""
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.receiver.close()


def _worker(
    share: Share, download: Download, sender: Connection, parent: int, ends: list[Connection]
) -> None:
    """A worker process: fetch, send each outcome, then ``_DONE`` (or why not)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the loop handles it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)  # blocked by the parent for the fork
    for end in ends:
        end.close()  # the parent's: only the parent may hold them open
    try:
        finished = asyncio.run(_worker_main(share, download, sender, parent))
        sender.send(_DONE if finished else "was stopped before it finished (SIGTERM)")
    except BaseException as exc:
        with contextlib.suppress(OSError):
            sender.send(f"failed: {_describe(exc)}")
    finally:
        sender.close()


def _describe(exc: BaseException) -> str:
    """What the parent tells the user: a file and its error, as the CLI would."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return traceback.format_exception_only(exc)[-1].strip()


async def _worker_main(share: Share, download: Download, sender: Connection, parent: int) -> bool:
    """Fetch the share; False when stopped first (SIGTERM, or the parent died)."""
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
    return not stopping
