"""The fetch's network half: the HTTP client, the downloader and the commit step,
each download put in place and its thumbnails made, until the deadline or a
stop (:mod:`mirror.stages.fetch` plans and records; ``backup``'s guard repairs
through it too).

Apart from the plan because a night with nothing to download never imports
it: with asyncio, httpx, aiohttp and Pillow it takes longer to import than
such a night takes altogether.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from mirror.config import Config
from mirror.errors import MirrorError
from mirror.keep.commit import Commit
from mirror.keep.incoming import FULL, NoSpace
from mirror.keep.state import State, UrlRecord
from mirror.keep.store import DirSync
from mirror.models import Deadline, HostEvent, Outcome, Probe, Stop
from mirror.net.downloader import Conditional, Downloaded, Downloader
from mirror.net.transport import make_client
from mirror.pixels.spec import ThumbResult, ThumbSpec, ThumbsUnwritable
from mirror.pixels.thumbnails import ThumbPool
from mirror.stages import thumbs as thumbnailing
from mirror.wording import counted

VERSIONS_DIR_NAME: Final = "versions"  # under the state dir: files a refresh replaced
# Errors that mean no file can be written in the mirror at all, not this one only.
_UNWRITABLE: Final = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class _Stopped(Exception):
    """Raised by a download to end the run: no other download starts."""

    def __init__(self, stop: Stop) -> None:
        super().__init__(stop.message)
        self.stop = stop


class Thumbnails:
    """The thumbnails of this run's new files, made once each is in place, and
    their rows, written with the files' own."""

    def __init__(self, config: Config, spec: ThumbSpec, stack: contextlib.ExitStack) -> None:
        self._config, self._spec, self._stack = config, spec, stack
        self._pool: ThumbPool | None = None  # started at the first new file
        self._results: dict[str, ThumbResult] = {}  # by the original's path in the mirror
        # By path: with the hash layout, two URLs of the same bytes share one.
        self.made: dict[str, thumbnailing.Made] = {}

    async def make(self, outcome: Outcome, known: UrlRecord | None, commit: Commit) -> Outcome:
        """``outcome`` (a file this run placed) once its thumbnails are made: "failed"
        with the reason when the image cannot be decoded (``commit`` then takes the
        file back: a refresh's older file returns, which the record still names)."""
        path = outcome.path
        assert path is not None
        if path in self._results or path in self.made:
            return outcome  # the same bytes twice (hash layout): made once
        if self._pool is None:
            self._pool = self._stack.enter_context(thumbnailing.pool())
        result = await thumbnailing.make_one(self._pool, self._config, self._spec, path)
        if result.status == "failed" and result.reason == thumbnailing.WORKER_DIED:
            self._pool = None  # a broken pool: the next image gets a new one
        if result.status != "failed":
            self._results[path] = result
            return outcome
        if known is not None or self._config.mirror.layout == "url":
            # A hash-layout file may be another URL's too: it is left to prune.
            await asyncio.to_thread(commit.undo, path)
        return replace(outcome, status="failed", error=result.reason or "cannot decode the image")

    def record(self, state: State, outcome: Outcome) -> None:
        result = self._results.pop(outcome.path or "", None)
        if result is not None and outcome.sha256 is not None and outcome.path is not None:
            thumbnailing.record(state, outcome.path, outcome.sha256, self._spec, result)
            self.made[outcome.path] = thumbnailing.Made(outcome.path, result)


@contextlib.asynccontextmanager
async def downloading(
    config: Config,
    dirs: DirSync | None,
    on_host: Callable[[HostEvent], None] | None = None,
) -> AsyncIterator[tuple[Downloader, Commit]]:
    """The downloader and the commit step of one run, over one HTTP client."""
    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, staging=config.mirror_dir, on_host=on_host
        )
        yield downloader, Commit(
            downloader.staging, layout=config.mirror.layout,
            versions=config.state_dir / VERSIONS_DIR_NAME, dirs=dirs,
        )  # fmt: skip


async def download(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    repairs: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
    thumbs: Thumbnails | None,
    dirs: DirSync | None,
    deadline: Deadline | None,
    on_host: Callable[[HostEvent], None] | None,
) -> Stop | None:
    """Fetch ``urls`` (refresh those in ``known``, put back those in ``repairs``),
    handing each outcome to ``record``; why it stopped early, if it did."""
    async with downloading(config, dirs, on_host) as (downloader, commit):

        async def one(url: str) -> None:
            outcome = await fetch_one(
                downloader,
                commit,
                url,
                known.get(url) or repairs.get(url),
                repair=url in repairs,
                late=record,  # in place and good: its thumbnails come next run
            )
            if thumbs is not None and outcome.status == "mirrored":
                try:
                    outcome = await thumbs.make(outcome, known.get(url), commit)
                except (MirrorError, asyncio.CancelledError) as exc:
                    # The thumbnails cannot be written, Ctrl-C or a stop: the
                    # file is in place and good, so it is recorded (the next
                    # run's catch-up makes its thumbnails).
                    record(outcome)
                    cause = exc.__cause__  # a full disk stops the run as for an image
                    if isinstance(cause, ThumbsUnwritable):
                        stop = _stop_for(config, cause, url, str(exc))
                        if stop is not None:
                            raise _Stopped(stop) from exc
                    raise
            record(outcome)

        return await each_until_stopped(config, downloader, urls, one, deadline)


async def each_until_stopped(
    config: Config,
    downloader: Downloader,
    urls: Sequence[str],
    one: Callable[[str], Awaitable[None]],
    deadline: Deadline | None,
) -> Stop | None:
    """``one`` for each URL on ``downloader``'s schedule, until ``deadline`` or a
    file system error every next file would meet too (a full disk, an
    unwritable directory); why it stopped early, if it did."""

    async def stopping(url: str) -> None:
        try:
            await one(url)
        except OSError as exc:
            if (stop := _stop_for(config, exc, url)) is None:
                raise
            raise _Stopped(stop) from exc

    # The deadline cancels every download under way (each removes its
    # temporary file), and so does a stop raised by one of them.
    timer = asyncio.timeout(None if deadline is None else deadline.at - time.monotonic())
    try:
        async with timer:
            await downloader.each(urls, stopping)
    except _Stopped as stopped:
        return _measured(stopped.stop)
    except TimeoutError:
        if deadline is None or not timer.expired():
            raise
        return Stop("deadline", f"the deadline passed ({deadline.seconds:g} s after the start)")
    return None


def _stop_for(config: Config, exc: OSError, url: str, message: str = "") -> Stop | None:
    """The stop for a file system error every next file would meet too (a full
    disk, an unwritable directory); None for one of this file only."""
    if exc.errno in FULL:
        needed = exc.needed if isinstance(exc, NoSpace) else None
        where = exc.directory if isinstance(exc, NoSpace) else _directory_of(exc, config)
        text = message or f"no space left in {where}"
        return Stop("disk_full", f"{text} (writing {url})", str(where), None, needed)
    if exc.errno in _UNWRITABLE:
        where = _directory_of(exc, config)
        text = message or f"cannot write in {where}: {exc.strerror or exc}"
        text += f" (writing {url}; mirror.dir is {config.mirror_dir})"
        return Stop("unwritable", text, str(where))
    return None


def _directory_of(exc: OSError, config: Config) -> Path:
    """The directory of the file ``exc`` names (a rename's target), else the mirror dir."""
    named = exc.filename2 or exc.filename
    return Path(named).parent if named else config.mirror_dir


def _measured(stop: Stop) -> Stop:
    """``stop`` with the free space of its directory, now that the downloads under
    way have removed their temporary files: what is free for the next run."""
    if stop.kind != "disk_full" or stop.directory is None:
        return stop
    try:
        free = shutil.disk_usage(_existing(Path(stop.directory))).free
    except OSError:
        return stop
    needed = (
        f"; the file that did not fit needs at least {_size(stop.needed)}" if stop.needed else ""
    )
    message = f"{stop.message}: {_size(free)} free{needed}"
    return replace(stop, message=message, free=free)


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _size(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return counted(size, "byte")


async def fetch_one(
    downloader: Downloader,
    commit: Commit,
    url: str,
    known: UrlRecord | None,
    *,
    repair: bool = False,
    late: Callable[[Outcome], None] | None = None,
) -> Outcome:
    """Download ``url`` (refresh it when ``known``) and commit it: its outcome.

    ``repair``: ``known``'s file is missing or corrupt; the bytes are asked for
    without a condition (origins, then Wayback when enabled) and put back at
    its recorded path (:class:`Commit`). ``late`` is given the outcome of a
    file that was being put in place when the download was cancelled."""
    conditional = known is not None and not repair
    refresh = Conditional(known.etag, known.last_modified) if conditional and known else None
    got = await downloader.fetch(url, refresh)
    if isinstance(got, Downloaded):
        placing = asyncio.ensure_future(
            asyncio.to_thread(
                commit, got.file, url=url, extension=got.extension, known=known, repair=repair
            )
        )
        try:
            placed = await asyncio.shield(placing)
        except asyncio.CancelledError:
            # A stop or Ctrl-C: the rename goes on in its thread all the same.
            # Once it is done the file is kept (``late``) or taken back, so that
            # no file is in place that no row records.
            if (done := await placing) is not None and late is not None:
                late(replace(got.outcome, path=done.path, replaced=done.replaced))
            elif done is not None:
                await asyncio.to_thread(commit.undo, done.path)
            raise
        if placed is not None:
            return replace(got.outcome, path=placed.path, replaced=placed.replaced)
        got = replace(got.outcome, status="unchanged")  # the very same bytes again
    if got.status != "unchanged":
        return got
    assert known is not None  # only a refresh is unchanged
    return replace(
        got, path=known.path, size=known.size or 0, sha256=known.sha256,
        content_type=known.content_type, etag=got.etag or known.etag,
        last_modified=got.last_modified or known.last_modified,
    )  # fmt: skip


def probe_all(config: Config, urls: Sequence[str]) -> dict[str, Probe]:
    """:meth:`Downloader.probe` for each URL, under the download settings."""
    return asyncio.run(_probe_all(config, urls))


async def _probe_all(config: Config, urls: Sequence[str]) -> dict[str, Probe]:
    async with make_client(config.download) as client:
        downloader = Downloader(client=client, config=config.download, staging=config.mirror_dir)
        probes = await downloader.probe_all(urls)
    return dict(zip(urls, probes, strict=True))


async def repair(
    config: Config,
    bad: Mapping[str, list[UrlRecord]],
    dirs: DirSync,
    done: dict[str, Outcome | str],
    deadline: Deadline | None,
) -> Stop | None:
    """``backup``'s repairs (:mod:`mirror.stages.guard`): each bad path fetched again
    from its URLs' sources, the first that gives it, into ``done``: the outcome,
    or why none did; why the repairs stopped early, if they did."""
    by_url = {group[0].url: path for path, group in bad.items()}
    async with downloading(config, dirs) as (downloader, commit):

        async def one(url: str) -> None:
            path, errors = by_url[url], []
            for record in bad[path]:
                got = await fetch_one(downloader, commit, record.url, record, repair=True)
                if got.status == "mirrored":
                    done[path] = got
                    return
                errors.append(f"{record.url}: {got.error or 'failed'}")
            done[path] = "no source gives it back (" + "; ".join(errors) + ")"

        return await each_until_stopped(config, downloader, list(by_url), one, deadline)
