"""``backup``: the unattended job. Check and repair the mirror (:mod:`mirror.stages.guard`),
scan, fetch what is new (with thumbnails), re-check what is due, notice sources
that died, prune what no post uses any more, and (with ``publish.remote`` set)
publish what is new. The CLI's session holds the site lock from the first of
these to the last.

A URL that failed before is tried again 1, 2, 4 ... days (at most 30) after
its last attempt, not every night (``retry_failed``: all of them now); a
deadline (``backup.max_time``) stops the run as it stops a fetch.

It never rewrites a post. What it reports is made for a log read the next
morning: one event per notable thing (a new image, a changed one, a failure,
a source that was fine before and is gone now, a pruned file) and a summary.

Pruning moves files, never deletes them: to ``.gallery-mirror/trash/``,
keeping their path in the mirror, and only for URLs no post has referenced
for ``backup.prune_after`` days. It is skipped on a run whose scan could not
read every post (a post that failed to parse would otherwise look like
images nobody uses), and on a run that found no posts at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Literal

from mirror.errors import MirrorError
from mirror.keep import thumbrows
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.state import REFERENCED_TO, UrlRecord
from mirror.keep.store import TRASH_DIR_NAME, inside, to_trash
from mirror.models import Deadline, HostEvent, ImageRef, Outcome, ScanResult
from mirror.stages import fetch as fetching
from mirror.stages import guard as guarding
from mirror.stages import publish as publishing
from mirror.stages.guard import GuardResult
from mirror.stages.thumbs import thumbs_root
from mirror.wording import counted

EventKind = Literal[
    "new", "changed", "failed", "gone", "pruned", "published", "publish-failed",
    "missing", "changed on disk", "repaired", "unrepairable",  # the guard's
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    url: str
    detail: str  # the path, the reason, ...
    refs: tuple[ImageRef, ...] = ()  # the references using it, when the event names them


@dataclass(frozen=True, slots=True)
class Pruned:
    path: str  # relative to mirror.dir; now under trash/ when ``moved``
    urls: tuple[str, ...]  # the URLs that had it
    moved: bool  # False: the file was already gone, only its rows were forgotten


@dataclass(frozen=True, slots=True)
class BackupResult:
    fetched: fetching.FetchResult
    gone: tuple[Outcome, ...]  # mirrored before, now 404/410 or no longer resolving
    pruned: tuple[Pruned, ...]
    prune_skipped: str | None  # why --prune did nothing this run
    guarded: GuardResult  # the mirror's files checked, and repaired
    published: publishing.PublishResult | None = None  # with publish.remote set
    publish_error: str | None = None  # why nothing could be published this run


def backup(
    site: Site,
    scan_posts: Callable[[], ScanResult],
    *,
    refresh: bool = False,
    prune: bool = False,
    verify: bool = False,
    retry_failed: bool = False,
    deadline: Deadline | None = None,
    clock: fetching.Clock = fetching.utc_now,
    on_plan: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_host: Callable[[HostEvent], None] | None = None,
) -> BackupResult:
    config = site.config
    before = site.records()  # who was mirrored, and fine, until now
    gone: list[Outcome] = []

    def tell(kind: EventKind, url: str, detail: str, refs: tuple[ImageRef, ...] = ()) -> None:
        if on_event is not None:
            on_event(Event(kind, url, detail, refs))

    # The mirror's files are looked at (and the night's share hashed) beside the scan.
    with guarding.Looks(site, before, verify_all=verify, now=clock()) as looks:
        scan = scan_posts()
        guarded = guarding.guard(
            site, scan, before, looks, clock=clock, deadline=deadline, tell=tell
        )

    def outcome(done: Outcome) -> None:
        if on_outcome is not None:
            on_outcome(done)
        if done.status == "mirrored" and done.replaced is not None:
            tell("changed", done.url, f"{done.path} (the old file is kept in versions/)")
        elif done.status == "mirrored":
            note = f"; {done.note}" if done.note else ""  # kept though its type said otherwise
            tell("new", done.url, f"{done.path} ({done.size / 1e3:.0f} kB){note}")
        elif done.status == "failed" and _newly_gone(done, before.get(done.url)):
            gone.append(done)
            tell("gone", done.url, f"{done.error}; the mirrored copy is kept")
        elif done.status == "failed" and done.url in before and before[done.url].path:
            tell("failed", done.url, f"{done.error}; the mirrored copy is kept")
        elif done.status == "failed":
            tell("failed", done.url, done.error or "failed")

    refresh_after = config.backup.refresh_after if refresh else None
    fetched = fetching.fetch(
        site, scan, refresh_after=refresh_after, retry_failed=retry_failed, deadline=deadline,
        clock=clock, skip={u for p in guarded.problems for u in p.urls},
        # What the guard wrote of files it found fine (their mtime, when they
        # were hashed) is nothing the fetch reads: its rows stand, but after a repair.
        every_record=None if guarded.problems else before, checked=guarded.fine,
        on_plan=on_plan, on_outcome=outcome, on_host=on_host,
    )  # fmt: skip
    pruned: tuple[Pruned, ...] = ()
    skipped = None
    if prune and (fetched.stopped is not None or guarded.stopped is not None):
        skipped = "not pruned: the run stopped early"
    elif prune and not fetched.interrupted:
        skipped = _why_not_prune(scan)
        if skipped is None:
            pruned = _prune(site, scan)
            for item in pruned:
                detail = (
                    f"{item.path} moved to .gallery-mirror/{TRASH_DIR_NAME}/" if item.moved
                    else f"{item.path} was already missing; its record is forgotten"
                )  # fmt: skip
                for url in item.urls:
                    tell("pruned", url, detail)
    uploads, publish_error = None, None
    if config.publish.remote and not fetched.interrupted:
        try:
            uploads = publishing.publish(site)
        except MirrorError as exc:  # the night's fetch stands; the log says why
            publish_error = str(exc)
            tell("publish-failed", config.publish.remote, publish_error)
        for upload in uploads.uploaded if uploads else ():
            replaced = ", replaced" if upload.replaced else ""
            tell("published", upload.path, f"{upload.size} bytes{replaced}")
        for failure in uploads.failed if uploads else ():
            tell("publish-failed", failure.path, failure.reason)
    return BackupResult(fetched, tuple(gone), pruned, skipped, guarded, uploads, publish_error)


def _newly_gone(done: Outcome, before: UrlRecord | None) -> bool:
    """Fetched before without trouble, and now the source says it is gone."""
    return (
        done.dead and before is not None and before.status == "mirrored" and not before.last_error
    )


def _why_not_prune(scan: ScanResult) -> str | None:
    if scan.unreadable:
        count = len(scan.unreadable)
        return f"not pruned: {counted(count, 'post')} could not be read"
    if not scan.names:
        return "not pruned: no posts were found"
    return None


def _prune(site: Site, scan: ScanResult) -> tuple[Pruned, ...]:
    """Move the files of URLs unreferenced for ``prune_after`` days to the trash."""
    config, state = site.config, site.state
    cutoff = datetime.now(UTC) - timedelta(days=config.backup.prune_after)
    if config.backup.prune_after > 0:  # 0: at once, whenever the last reference was
        cutoff -= REFERENCED_TO  # a reference is recorded to the day (State.seen)
    referenced = set(scan.urls)
    trash = config.state_dir / TRASH_DIR_NAME
    records = state.records()
    # In use: the files of referenced URLs (with the hash layout one file
    # serves several URLs), and those that rewritten posts point at.
    in_use = {r.path for r in records.values() if r.url in referenced and r.path}
    in_use |= OwnLinks(config).in_use(scan)
    expired = [
        r for r in records.values()
        if r.url not in referenced and r.path not in in_use
        and (r.last_referenced or r.first_seen) <= cutoff
    ]  # fmt: skip
    by_path: dict[str, list[str]] = {}
    for record in expired:
        if record.path and record.status == "mirrored":
            by_path.setdefault(record.path, []).append(record.url)
    pruned: list[Pruned] = []
    thumbs = thumbs_root(config)
    for path, urls in sorted(by_path.items()):
        # The file moves first: a crash before the rows go leaves rows whose
        # file is missing, which the next run handles as any missing file.
        moved = to_trash(inside(config.mirror_dir, PurePosixPath(path)), trash / path)
        for thumb in thumbrows.files_of(state, path):
            to_trash(thumbs / thumb, trash / config.thumbnails.dir / thumb)
        pruned.append(Pruned(path, tuple(sorted(urls)), moved))
    with state.transaction():
        state.forget(r.url for r in expired)
        thumbrows.forget(state, (p.path for p in pruned))
    return tuple(pruned)
