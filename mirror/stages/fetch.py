"""The fetch stage as a whole: plan what is not mirrored yet, download, commit, record.

Each URL goes through three steps, each owning its part: the downloader
(HTTP and validation, a checked temporary file), the commit step (the
layout, kept old versions, the rename), then the thumbnails, made from the
committed file. Order matters for crash safety: leftover temporary files are
removed under the site lock before anything starts; each image is renamed
into place and its directory fsynced before its row is written; so after a
kill at any moment the next run finds every recorded file complete and
fetches what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from mirror.config import Config
from mirror.errors import MirrorError
from mirror.keep.commit import Commit
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.state import State, UrlRecord
from mirror.keep.store import DirSync, inside, remove_partials
from mirror.models import HostEvent, Outcome, Probe, ScanResult
from mirror.net.downloader import Conditional, Downloaded, Downloader
from mirror.net.transport import make_client
from mirror.pixels.thumbnails import ThumbPool, ThumbResult, ThumbSpec
from mirror.stages import thumbs as thumbnailing
from mirror.stages.thumbs import ThumbsResult

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
    site: Site,
    scan: ScanResult,
    *,
    refresh_after: float | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_host: Callable[[HostEvent], None] | None = None,
) -> FetchResult:
    """Mirror every URL of ``scan`` that is not mirrored yet.

    With ``refresh_after`` (days; 0 = all), the mirrored URLs last fetched
    longer ago than that are re-validated with conditional requests too.
    ``on_host`` hears of hosts going down or being rate-limited, as it happens.
    """
    started = time.monotonic()
    config, state = site.config, site.state
    root = config.mirror_dir
    spec = thumbnailing.spec_of(config) if config.thumbnails.enabled else None
    with contextlib.ExitStack() as stack:
        remove_partials(root)
        links = OwnLinks(config)
        urls = links.to_fetch(scan)  # never the mirror itself (after a rewrite)
        state.seen(urls)
        records = state.records(urls)
        own = links.mirrored(links.records(scan, state.records))  # counted as already mirrored
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
        thumbs = _Thumbnails(config, spec, stack) if spec is not None and todo else None

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
            asyncio.run(_download(config, todo, stale, record, thumbs, dirs, on_host))
        except KeyboardInterrupt:
            # Every download was cancelled and its temporary file removed; a
            # file renamed but not yet recorded is simply fetched again.
            interrupted = True
        finally:
            flush()  # also after Ctrl-C: what finished is recorded
        made = None
        if spec is not None and not interrupted:  # images mirrored before, settings changed
            made = thumbnailing.catch_up(site, lambda: stack.enter_context(ThumbPool()))
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


class _Thumbnails:
    """The thumbnails of this run's new files, made once each is in place, and
    their rows, written with the files' own."""

    def __init__(self, config: Config, spec: ThumbSpec, stack: contextlib.ExitStack) -> None:
        self._config, self._spec, self._stack = config, spec, stack
        self._pool: ThumbPool | None = None  # started at the first new file
        self._results: dict[str, ThumbResult] = {}  # by the original's path in the mirror
        # By path: with the hash layout, two URLs of the same bytes share one.
        self.made: dict[str, thumbnailing.Made] = {}

    async def make(self, outcome: Outcome, known: UrlRecord | None) -> Outcome:
        """``outcome`` (a file this run placed) once its thumbnails are made: "failed"
        with the reason when the image cannot be decoded."""
        path = outcome.path
        assert path is not None
        if path in self._results or path in self.made:
            return outcome  # the same bytes twice (hash layout): made once
        if self._pool is None:
            self._pool = self._stack.enter_context(ThumbPool())
        result = await thumbnailing.make_one(self._pool, self._config, self._spec, path)
        if result.status == "failed" and result.reason == thumbnailing.WORKER_DIED:
            self._pool = None  # a broken pool: the next image gets a new one
        if result.status != "failed":
            self._results[path] = result
            return outcome
        if known is None and self._config.mirror.layout == "url":
            # Its own URL's name, placed by this run: nothing else uses it.
            inside(self._config.mirror_dir, PurePosixPath(path)).unlink(missing_ok=True)
        return replace(outcome, status="failed", error=result.reason or "cannot decode the image")

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
    thumbs: _Thumbnails | None,
    dirs: DirSync | None,
    on_host: Callable[[HostEvent], None] | None,
) -> None:
    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, staging=config.mirror_dir, on_host=on_host
        )
        commit = Commit(
            downloader.staging, layout=config.mirror.layout,
            versions=config.state_dir / VERSIONS_DIR_NAME, dirs=dirs,
        )  # fmt: skip

        async def one(url: str) -> None:
            outcome = await fetch_one(downloader, commit, url, known.get(url))
            if thumbs is not None and outcome.status == "mirrored":
                try:
                    outcome = await thumbs.make(outcome, known.get(url))
                except (MirrorError, asyncio.CancelledError):
                    # The thumbnails cannot be written, or Ctrl-C: the file is
                    # in place and good, so it is recorded (the next run's
                    # catch-up makes its thumbnails).
                    record(outcome)
                    raise
            record(outcome)

        await downloader.each(urls, one)


async def fetch_one(
    downloader: Downloader, commit: Commit, url: str, known: UrlRecord | None
) -> Outcome:
    """Download ``url`` (refresh it when ``known``) and commit it: its outcome."""
    refresh = None if known is None else Conditional(known.etag, known.last_modified)
    got = await downloader.fetch(url, refresh)
    if isinstance(got, Downloaded):
        placed = await asyncio.to_thread(
            commit, got.file, url=url, extension=got.extension, known=known
        )
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
        downloader = Downloader(client=client, config=config.download, staging=config.mirror_dir)
        probes = await downloader.probe_all(urls)
    return dict(zip(urls, probes, strict=True))
