"""The fetch stage as a whole: plan what is not mirrored yet, download, record.

Order matters for crash safety: leftover temporary files are removed under
the site lock before anything starts; each image is renamed into place by
the downloader before its row is written; so after a kill at any moment the
next run finds every recorded file complete and fetches what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from mirror import fetchpool, thumbnailing
from mirror.config import Config
from mirror.fetch import Downloader, Finish
from mirror.lock import SiteLock
from mirror.models import Outcome, Probe, ScanResult
from mirror.ownlinks import OwnLinks
from mirror.state import STATE_FILE_NAME, State, UrlRecord
from mirror.store import DirSync, holds, remove_partials
from mirror.thumbnailing import ThumbsResult
from mirror.thumbs import ThumbPool, ThumbResult, ThumbSpec, ThumbsUnwritable, thumb_path
from mirror.transport import make_client

_BATCH = 64  # state rows per commit
VERSIONS_DIR_NAME = "versions"  # under the state dir: files a refresh replaced


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
    config: Config,
    scan: ScanResult,
    *,
    refresh_after: float | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    locked: bool = False,
) -> FetchResult:
    """Mirror every URL of ``scan`` that is not mirrored yet.

    With ``refresh_after`` (days; 0 = all), the mirrored URLs last fetched
    longer ago than that are re-validated with conditional requests too.
    ``locked``: the caller holds the site lock (``migrate``, for both steps).
    """
    started = time.monotonic()
    root = config.mirror_dir
    spec = thumbnailing.spec_of(config) if config.thumbnails.enabled else None
    with (
        contextlib.nullcontext() if locked else SiteLock(config.state_dir),
        State.open(config.state_dir / STATE_FILE_NAME) as state,
        contextlib.ExitStack() as stack,
    ):
        remove_partials(root)
        links = OwnLinks(config)
        urls = links.to_fetch(scan)  # never the mirror itself (after a rewrite)
        state.seen(urls)
        records = state.records(urls)
        own = links.mirrored(links.records(scan, state))  # counted as already mirrored
        mirrored = {url for url in urls if still_mirrored(records.get(url), root)}
        stale = _stale(records, mirrored, refresh_after)
        todo = [url for url in urls if url not in mirrored or url in stale]
        if on_plan is not None:
            on_plan(len(todo))

        # Rows are written in batches: one durable commit per image cost more
        # than its download. A kill loses at most a batch of rows, whose files
        # are complete on disk and are simply fetched again by the next run.
        pending: list[Outcome] = []
        done: list[Outcome] = []
        dirs = DirSync()
        pool = _Lazy(lambda: stack.enter_context(ThumbPool()))
        thumbs = _Thumbnails(config, spec, pool) if spec is not None and todo else None
        if thumbs is not None:
            stack.callback(thumbs.sweep)  # runs after the pool (entered later) has stopped

        def flush() -> None:
            dirs.sync()  # the renames first: a row never points at a file a power cut loses
            with state.transaction():
                for outcome in pending:
                    _record(state, outcome)
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
        try:
            workers = (
                1 if thumbs is not None else fetchpool.worker_count(config.download, len(todo))
            )
            if workers > 1:
                fetchpool.run(config, todo, stale, record, _download_in_worker, workers)
            else:
                asyncio.run(_download(config, todo, stale, record, thumbs, dirs))
        except KeyboardInterrupt:
            # Every download was cancelled and its temporary file removed (a
            # fetch worker that had to be killed leaves them to the next run).
            interrupted = True
        finally:
            flush()  # also after Ctrl-C: what finished is recorded
        made = None
        if spec is not None and not interrupted:  # images mirrored before, settings changed
            made = thumbnailing.catch_up(state, config, pool)
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
    already = len(mirrored) - len(stale) + own
    elapsed = time.monotonic() - started
    return FetchResult(scan, tuple(done), already, elapsed, interrupted, made, frozenset(stale))


class _Lazy:
    """Make a value on first use (the thumbnail workers: not started when not needed)."""

    def __init__(self, make: Callable[[], ThumbPool]) -> None:
        self._make = make
        self._value: ThumbPool | None = None

    def __call__(self) -> ThumbPool:
        if self._value is None:
            self._value = self._make()
        return self._value

    def renew(self) -> None:
        """Drop a broken pool: the next call starts a new one."""
        self._value = None


class _Thumbnails:
    """Thumbnails made as the downloads' last check, and their rows once the files are."""

    def __init__(self, config: Config, spec: ThumbSpec, pool: _Lazy) -> None:
        self._config, self._spec, self._pool = config, spec, pool
        self._results: dict[str, ThumbResult] = {}  # by the original's path in the mirror
        self._cancelled: set[str] = set()  # paths whose check Ctrl-C stopped
        # By path: with the hash layout, two URLs of the same bytes share one.
        self.made: dict[str, thumbnailing.Made] = {}

    async def check(self, temp: Path, relative: str) -> str | None:
        root = thumbnailing.thumbs_root(self._config)
        try:
            result = await self._pool().make(
                temp, relative, root, self._spec, fsync=self._config.download.fsync
            )
        except asyncio.CancelledError:
            self._cancelled.add(relative)  # its worker may still write them: see sweep()
            raise
        except BrokenProcessPool:
            # A worker died on this image (killed for memory, a decoder crash):
            # the image is refused, and the next one gets a new pool.
            self._pool.renew()
            return "the thumbnail worker died decoding it (out of memory?)"
        except ThumbsUnwritable as exc:
            raise thumbnailing.unwritable(self._config, exc) from exc
        if result.status == "failed":
            return result.reason or "cannot decode the image"
        self._results[relative] = result
        return None

    def abandon(self, relative: str) -> None:
        result = self._results.pop(relative, None)
        if result is not None:
            self._remove(result.files)

    def sweep(self) -> None:
        """Once the workers have stopped: remove what they wrote for checks that
        Ctrl-C cancelled (their originals were never kept), but not those of
        bytes the hash layout had stored already (the same image, made again)."""
        hash_layout = self._config.mirror.layout == "hash"
        for relative in self._cancelled - self.made.keys():
            if hash_layout and holds(self._config.mirror_dir, PurePosixPath(relative)):
                continue
            self._remove(
                thumb_path(relative, size, self._spec).as_posix() for size in self._spec.sizes
            )

    def _remove(self, names: Iterable[str]) -> None:
        # Called while another error is on its way: that one must not be hidden.
        root = thumbnailing.thumbs_root(self._config)
        for name in names:
            with contextlib.suppress(OSError):
                (root / name).unlink(missing_ok=True)

    def record(self, state: State, outcome: Outcome) -> None:
        result = self._results.pop(outcome.path or "", None)
        if result is not None and outcome.sha256 is not None and outcome.path is not None:
            thumbnailing.record(state, outcome.path, outcome.sha256, self._spec, result)
            self.made[outcome.path] = thumbnailing.Made(outcome.path, result)


def _stale(
    records: dict[str, UrlRecord], mirrored: set[str], refresh_after: float | None
) -> dict[str, UrlRecord]:
    """The mirrored URLs due for a conditional re-check."""
    if refresh_after is None:
        return {}
    due = datetime.now(UTC) - timedelta(days=refresh_after)
    stale = {}
    for url in mirrored:
        record = records[url]
        if record.source == "wayback":
            continue  # an archived copy does not change, and its source is gone
        checked = record.last_checked or record.last_fetched
        if checked is None or checked <= due:
            stale[url] = record
    return stale


def still_mirrored(record: UrlRecord | None, root: Path) -> bool:
    """Mirrored, and the file is still there with the recorded size: no request needed."""
    if record is None or record.status != "mirrored" or record.path is None:
        return False
    try:
        return (root / record.path).stat().st_size == record.size
    except OSError:
        return False


async def _download(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
    finish: Finish | None,
    dirs: DirSync | None,
) -> None:
    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, mirror_root=config.mirror_dir,
            layout=config.mirror.layout, versions=config.state_dir / VERSIONS_DIR_NAME,
            finish=finish, dirs=dirs,
        )  # fmt: skip
        await downloader.fetch_all(urls, known=known, on_outcome=record)


async def _download_in_worker(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    send: Callable[[Outcome], None],
) -> None:
    """A fetch worker's share: its own renames are made durable before it sends
    their outcomes (no thumbnails: workers run only without them)."""
    await _download(config, urls, known, send, None, None)


def _record(state: State, outcome: Outcome) -> None:
    if outcome.status != "failed" and outcome.path and outcome.sha256:
        state.mark_mirrored(
            outcome.url, path=outcome.path, size=outcome.size, sha256=outcome.sha256,
            content_type=outcome.content_type or "", final_url=outcome.final_url or outcome.url,
            etag=outcome.etag, last_modified=outcome.last_modified, source=outcome.source,
            attempts=outcome.attempts,
        )  # fmt: skip
    else:  # a failed re-check leaves a mirrored copy as it was (see State.mark_failed)
        state.mark_failed(outcome.url, error=outcome.error or "failed", attempts=outcome.attempts)


async def probe_all(config: Config, urls: Sequence[str]) -> dict[str, Probe]:
    """:meth:`Downloader.probe` for each URL, under the download settings."""
    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, mirror_root=config.mirror_dir
        )
        probes = await downloader.probe_all(urls)
    return dict(zip(urls, probes, strict=True))
