"""The fetch stage as a whole: plan what is not mirrored yet, download, commit, record.

Each URL goes through three steps, each owning its part: the downloader
(HTTP and validation, a checked temporary file), the commit step (the
layout, kept old versions, the rename), then the thumbnails, made from the
committed file. Order matters for crash safety: leftover temporary files are
removed under the site lock before anything starts; each image is renamed
into place and its directory fsynced before its row is written; so after a
kill at any moment the next run finds every recorded file complete and
fetches what is missing.

A run can also stop itself, and then ends as a whole run does, with its
summary (:class:`Stop`): when its deadline passes (``--max-time``,
``backup.max_time``), and when the mirror's disk is full or cannot be
written. No new download starts, the ones under way are cancelled (each
removes its temporary file), and what finished is recorded.

A URL that failed is tried again on every fetch, and by ``backup`` on a
growing schedule (:func:`next_attempt`): a host dead for good is not asked
every night forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final, Literal

from mirror.config import Config
from mirror.errors import MirrorError
from mirror.keep.commit import Commit
from mirror.keep.incoming import FULL, NoSpace
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.state import State, UrlRecord
from mirror.keep.store import DirSync, Reserve, inside, remove_partials
from mirror.models import HostEvent, ImageRef, Outcome, Probe, ScanResult
from mirror.pixels.spec import ThumbResult, ThumbSpec, ThumbsUnwritable
from mirror.stages import thumbs as thumbnailing
from mirror.stages.thumbs import ThumbsResult
from mirror.wording import counted

# The network (httpx, aiohttp, tenacity) and Pillow are imported where a
# download or a thumbnail starts: together they take longer to import than a
# night with nothing to fetch takes altogether.
if TYPE_CHECKING:
    from mirror.net.downloader import Downloader
    from mirror.pixels.thumbnails import ThumbPool

_BATCH = 64  # state rows per commit
VERSIONS_DIR_NAME = "versions"  # under the state dir: files a refresh replaced
# Under the state dir: room for the rows of a run that fills the disk (a batch
# of them, with the thumbnails' and the checkpoint, takes well under this).
RESERVE_NAME, _RESERVE_BYTES = "reserve", 256 * 1024
RETRY_MAX_DAYS: Final = 30  # the longest backup waits to try a failed URL again
# Errors that mean no file can be written in the mirror at all, not this one only.
_UNWRITABLE: Final = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def next_attempt(record: UrlRecord) -> datetime | None:
    """When ``backup`` tries a failed URL again: 1, 2, 4, 8 ... days after its
    last attempt for 1, 2, 3, 4 ... failed runs in a row, at most
    :data:`RETRY_MAX_DAYS`. None for a URL that is not failed."""
    if record.status != "failed" or record.last_checked is None:
        return None
    days = min(2.0 ** min(max(record.failures, 1) - 1, 30), RETRY_MAX_DAYS)
    return record.last_checked + timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a run stops starting downloads: ``seconds`` after it started."""

    seconds: float  # as asked (--max-time, backup.max_time)
    at: float  # on time.monotonic()'s clock

    @classmethod
    def after(cls, seconds: float | None, started: float) -> Deadline | None:
        """The deadline ``seconds`` after ``started`` (monotonic); None for none or 0."""
        return cls(seconds, started + seconds) if seconds else None


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run stopped before it had tried every URL."""

    kind: Literal["deadline", "disk_full", "unwritable"]
    message: str  # names the directory, and for a full disk the room needed
    directory: str | None = None
    free: int | None = None  # bytes free in ``directory`` once the run ended
    needed: int | None = None  # bytes at least of the file that did not fit


class _Stopped(Exception):
    """Raised by a download to end the run: no other download starts."""

    def __init__(self, stop: Stop) -> None:
        super().__init__(stop.message)
        self.stop = stop


@dataclass(frozen=True, slots=True)
class FetchResult:
    scan: ScanResult
    fetched: tuple[Outcome, ...]  # new files, re-checks and failures of this run
    # URLs mirrored before, file still there with the recorded size, and the
    # mirror's own links to mirrored files (:meth:`OwnLinks.records`)
    already: int
    elapsed: float
    interrupted: bool = False  # Ctrl-C: ``fetched`` is what finished before it
    thumbs: ThumbsResult | None = None  # None when thumbnails are off
    stopped: Stop | None = None  # the run stopped itself: ``fetched`` is what finished before
    not_tried: int = 0  # URLs to fetch that the stop left untried
    # failed before and not due again (backup), by URL: their records
    waiting: Mapping[str, UrlRecord] = field(default_factory=dict)
    # when backup next tries each URL failed now or waiting (see next_attempt)
    next_tries: Mapping[str, datetime] = field(default_factory=dict)
    # recorded source URL -> the scan's own links to its file (OwnLinks.sources)
    via: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def uses(self) -> dict[str, tuple[ImageRef, ...]]:
        """The references by URL (:attr:`ScanResult.uses`), with those of each
        recorded source: its own links' after a rewrite."""
        uses = self.scan.uses
        for url, links in self.via.items():
            uses[url] = (*uses.get(url, ()), *(ref for own in links for ref in uses[own]))
        return uses

    @property
    def mirrored(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.fetched if o.status == "mirrored")

    @property
    def unchanged(self) -> tuple[Outcome, ...]:
        """Refreshed URLs whose mirrored copy is still current."""
        return tuple(o for o in self.fetched if o.status == "unchanged")

    kept: frozenset[str] = frozenset()  # re-checked URLs whose mirrored copy stays

    @property
    def failed(self) -> tuple[Outcome, ...]:
        """URLs left without a mirrored copy: what makes a run exit 1."""
        return tuple(o for o in self.fetched if o.status == "failed" and o.url not in self.kept)

    @property
    def recheck_failed(self) -> tuple[Outcome, ...]:
        """Re-checks that failed (the source is down or gone); the copy is kept."""
        return tuple(o for o in self.fetched if o.status == "failed" and o.url in self.kept)


def fetch(
    site: Site,
    scan: ScanResult,
    *,
    refresh_after: float | None = None,
    retry_failed: bool = True,
    deadline: Deadline | None = None,
    clock: Clock = utc_now,
    skip: Collection[str] = (),
    every_record: Mapping[str, UrlRecord] | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_host: Callable[[HostEvent], None] | None = None,
) -> FetchResult:
    """Mirror every URL of ``scan`` that is not mirrored yet.

    With ``refresh_after`` (days; 0 = all), the mirrored URLs last fetched
    longer ago than that are re-validated with conditional requests too.
    Without ``retry_failed``, a URL that failed before waits for its
    :func:`next_attempt`. No download starts after ``deadline``. ``clock``
    is the time the schedule and the state go by. ``on_host`` hears of hosts
    going down or being rate-limited, as it happens. The URLs of ``skip`` were
    asked for already in this run (backup's repairs): not again.
    ``every_record``: every record, as the caller read it just now (not read again).
    """
    started = time.monotonic()
    config, state = site.config, site.state
    root = config.mirror_dir
    spec = thumbnailing.spec_of(config) if config.thumbnails.enabled else None
    now = clock()
    with contextlib.ExitStack() as stack:
        remove_partials(root)
        reserve = Reserve(config.state_dir / RESERVE_NAME, _RESERVE_BYTES)
        reserve.hold()
        links = OwnLinks(config)
        remote = links.to_fetch(scan)  # never the mirror itself (after a rewrite)
        # The recorded sources of the files rewritten posts name: re-checked and
        # retried as if the posts still named them.
        # All rows, read once and only if there are own links; or the caller's,
        # read just now.
        every = functools.cache(
            state.records if every_record is None else lambda: dict(every_record)
        )
        via = links.sources(scan, every)
        named = set(remote)
        urls = (*remote, *(url for url in via if url not in named))
        own = links.mirrored(links.records(scan, every))  # counted as already mirrored
        # With own links, or from the caller, every row is at hand: the URLs' are among them.
        records = (
            {url: found for url in urls if (found := every().get(url)) is not None}
            if via or every_record is not None else state.records(urls)
        )  # fmt: skip
        state.seen(urls, now=now, known=records)
        if new := [url for url in urls if url not in records]:
            records.update(state.records(new))  # pending now
        mirrored = {url for url in urls if still_mirrored(records.get(url), root)}
        stale = _stale(records, mirrored, refresh_after, now)
        if config.mirror.layout == "hash":
            # A content-addressed file that rewritten posts name never changes:
            # new bytes would go to another path, and the posts keep this one.
            in_posts = links.in_use(scan)
            stale = {url: r for url, r in stale.items() if r.path not in in_posts}
        # Recorded as mirrored, but the file is gone or not its size: put back
        # at its recorded path, which rewritten posts may name.
        repairs = {
            url: found for url in urls
            if url not in mirrored and (found := records.get(url)) is not None
            and found.status == "mirrored" and found.path
        }  # fmt: skip
        waiting = {} if retry_failed else _waiting(records, mirrored, now)
        todo = [
            url for url in urls
            if (url not in mirrored or url in stale) and url not in waiting and url not in skip
        ]  # fmt: skip
        if on_plan is not None:
            on_plan(len(todo))

        # Rows are written in batches: one durable commit per image cost more
        # than its download. A kill loses at most a batch of rows, whose files
        # are complete on disk and are simply fetched again by the next run.
        pending: list[Outcome] = []
        done: list[Outcome] = []
        dirs = DirSync()
        thumbs = _Thumbnails(config, spec, stack) if spec is not None and todo else None

        def flush() -> None:
            dirs.sync()  # the renames first: a row never points at a file a power cut loses
            with state.transaction():
                for outcome in pending:
                    record_outcome(state, outcome, clock(), root)
                    if thumbs is not None:
                        thumbs.record(state, outcome)
            pending.clear()

        def record(outcome: Outcome) -> None:
            done.append(outcome)
            pending.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if len(pending) >= _BATCH:
                flush()

        interrupted = False
        stopped = None
        try:
            # Nothing to ask for: no HTTP client, whose TLS set-up alone is a
            # good part of a night with nothing to do.
            if todo:
                stopped = asyncio.run(
                    _download(config, todo, stale, repairs, record, thumbs, dirs, deadline, on_host)
                )
        except KeyboardInterrupt:
            # Every download was cancelled and its temporary file removed; a
            # file renamed but not yet recorded is simply fetched again.
            interrupted = True
        finally:
            if stopped is not None and stopped.kind == "disk_full":
                reserve.release()  # the room to record what fit
            flush()  # also after Ctrl-C or a stop: what finished is recorded
        made = None
        if spec is not None and not interrupted and stopped is None:
            # Images mirrored before whose thumbnails are due (settings changed).
            made = thumbnailing.catch_up(site, lambda: stack.enter_context(thumbnailing.pool()))
            if thumbs is not None:
                # The catch-up found this run's own thumbnails current: they
                # count as made, not also as up to date; and they were made
                # over the whole fetch, not in the catch-up's fraction of it.
                made = replace(
                    made,
                    done=(*thumbs.made.values(), *made.done),
                    up_to_date=made.up_to_date - len(thumbs.made),
                    elapsed=time.monotonic() - started,
                )
            interrupted = made.interrupted
    # An own link is counted once: as already mirrored, or by its source's re-check.
    asked = set(todo)
    rechecked = {link for url, links_of in via.items() if url in asked for link in links_of}
    already = len((mirrored - set(stale)) & set(remote)) + own - len(rechecked)
    failed = [o.url for o in done if o.status == "failed" and o.url not in stale]
    tries = {url: next_attempt(r) for url, r in [*state.records(failed).items(), *waiting.items()]}
    return FetchResult(
        scan, tuple(done), already, time.monotonic() - started, interrupted, made,
        kept=frozenset(stale), stopped=stopped, waiting=waiting,
        not_tried=len(todo) - len(done) if stopped else 0,
        next_tries={url: when for url, when in tries.items() if when is not None}, via=via,
    )  # fmt: skip


class _Thumbnails:
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


def _stale(
    records: dict[str, UrlRecord], mirrored: set[str], refresh_after: float | None, now: datetime
) -> dict[str, UrlRecord]:
    """The mirrored URLs due for a conditional re-check."""
    if refresh_after is None:
        return {}
    due = now - timedelta(days=refresh_after)
    stale = {}
    for url in mirrored:
        record = records[url]
        if record.source == "wayback":
            continue  # an archived copy does not change, and its source is gone
        checked = record.last_checked or record.last_fetched
        if checked is None or checked <= due:
            stale[url] = record
    return stale


def _waiting(
    records: dict[str, UrlRecord], mirrored: set[str], now: datetime
) -> dict[str, UrlRecord]:
    """The failed URLs whose next attempt is still to come."""
    waiting = {}
    for url, record in records.items():
        when = next_attempt(record)
        if url not in mirrored and when is not None and when > now:
            waiting[url] = record
    return waiting


def still_mirrored(record: UrlRecord | None, root: Path) -> bool:
    """Mirrored, and the file is still there with the recorded size: no request needed."""
    if record is None or record.status != "mirrored" or record.path is None:
        return False
    try:
        return os.stat(os.path.join(root, record.path)).st_size == record.size
    except OSError:
        return False


@contextlib.asynccontextmanager
async def downloading(
    config: Config,
    dirs: DirSync | None,
    on_host: Callable[[HostEvent], None] | None = None,
) -> AsyncIterator[tuple[Downloader, Commit]]:
    """The downloader and the commit step of one run, over one HTTP client."""
    from mirror.net.downloader import Downloader
    from mirror.net.transport import make_client

    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, staging=config.mirror_dir, on_host=on_host
        )
        yield downloader, Commit(
            downloader.staging, layout=config.mirror.layout,
            versions=config.state_dir / VERSIONS_DIR_NAME, dirs=dirs,
        )  # fmt: skip


async def _download(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    repairs: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
    thumbs: _Thumbnails | None,
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
    from mirror.net.downloader import Conditional, Downloaded

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


def record_outcome(state: State, outcome: Outcome, now: datetime, root: Path) -> None:
    """Write ``outcome`` to the state: a file placed now with the mtime the next
    runs check it against (:func:`placed_mtime`)."""
    if outcome.status != "failed" and outcome.path and outcome.sha256:
        state.mark_mirrored(
            outcome.url, path=outcome.path, size=outcome.size, sha256=outcome.sha256,
            content_type=outcome.content_type or "", final_url=outcome.final_url or outcome.url,
            etag=outcome.etag, last_modified=outcome.last_modified, source=outcome.source,
            attempts=outcome.attempts, mtime_ns=placed_mtime(outcome, root), now=now,
        )  # fmt: skip
    else:  # a failed re-check leaves a mirrored copy as it was (see State.mark_failed)
        error = outcome.error or "failed"
        state.mark_failed(outcome.url, error=error, attempts=outcome.attempts, now=now)


def placed_mtime(outcome: Outcome, root: Path) -> int | None:
    """The mtime of the file ``outcome`` placed (None: it placed none, an unchanged refresh)."""
    if outcome.status != "mirrored" or outcome.path is None:
        return None
    try:
        return inside(root, PurePosixPath(outcome.path)).stat().st_mtime_ns
    except (OSError, ValueError):
        return None


async def probe_all(config: Config, urls: Sequence[str]) -> dict[str, Probe]:
    """:meth:`Downloader.probe` for each URL, under the download settings."""
    from mirror.net.downloader import Downloader
    from mirror.net.transport import make_client

    async with make_client(config.download) as client:
        downloader = Downloader(client=client, config=config.download, staging=config.mirror_dir)
        probes = await downloader.probe_all(urls)
    return dict(zip(urls, probes, strict=True))
