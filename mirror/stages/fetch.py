"""The fetch stage as a whole: plan what is not mirrored yet, download, commit, record
(the downloading and committing are :mod:`mirror.stages.download`'s).

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

import contextlib
import functools
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final

from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.state import State, UrlRecord
from mirror.keep.store import DirSync, Reserve, inside, remove_partials
from mirror.models import Deadline, HostEvent, ImageRef, Outcome, ScanResult, Stop
from mirror.stages import thumbs as thumbnailing
from mirror.stages.thumbs import ThumbsResult

if TYPE_CHECKING:  # imported where a download starts (see the module)
    from mirror.stages.download import Thumbnails

_BATCH = 64  # state rows per commit
# Under the state dir: room for the rows of a run that fills the disk (a batch
# of them, with the thumbnails' and the checkpoint, takes well under this).
RESERVE_NAME, _RESERVE_BYTES = "reserve", 256 * 1024
RETRY_MAX_DAYS: Final = 30  # the longest backup waits to try a failed URL again

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
    checked: Collection[str] = (),
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
    ``checked``: the paths the caller found as recorded just now (backup's
    guard): not looked at again.
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
        mirrored = {url for url in urls if still_mirrored(records.get(url), root, checked)}
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
        thumbs: Thumbnails | None = None

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
            if todo:
                # The network half is imported here: a night with nothing to
                # ask for never does (:mod:`mirror.stages.download`).
                import asyncio

                from mirror.stages import download

                if spec is not None:
                    thumbs = download.Thumbnails(config, spec, stack)
                args = (config, todo, stale, repairs, record, thumbs, dirs, deadline, on_host)
                stopped = asyncio.run(download.download(*args))
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


def still_mirrored(record: UrlRecord | None, root: Path, checked: Collection[str] = ()) -> bool:
    """Mirrored, and the file is still there with the recorded size (or its path
    is among those ``checked`` just now): no request needed."""
    if record is None or record.status != "mirrored" or record.path is None:
        return False
    if record.path in checked:
        return True
    try:
        return os.stat(os.path.join(root, record.path)).st_size == record.size
    except OSError:
        return False


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
