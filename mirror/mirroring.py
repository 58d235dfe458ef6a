"""The fetch stage as a whole: plan what is not mirrored yet, download, record.

Order matters for crash safety: leftover temporary files are removed under
the site lock before anything starts; each image is renamed into place by
the downloader before its row is written; so after a kill at any moment the
next run finds every recorded file complete and fetches what is missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mirror.config import Config
from mirror.fetch import Downloader
from mirror.lock import SiteLock
from mirror.models import Outcome, ScanResult
from mirror.state import STATE_FILE_NAME, State, UrlRecord
from mirror.store import remove_partials
from mirror.transport import make_client

_BATCH = 64  # state rows per commit
VERSIONS_DIR_NAME = "versions"  # under the state dir: files a refresh replaced


@dataclass(frozen=True, slots=True)
class FetchResult:
    scan: ScanResult
    fetched: tuple[Outcome, ...]  # new files, re-checks and failures of this run
    already: int  # URLs mirrored before, file still there with the recorded size
    elapsed: float
    interrupted: bool = False  # Ctrl-C: ``fetched`` is what finished before it

    @property
    def mirrored(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.fetched if o.status == "mirrored")

    @property
    def unchanged(self) -> tuple[Outcome, ...]:
        """Refreshed URLs whose mirrored copy is still current."""
        return tuple(o for o in self.fetched if o.status == "unchanged")

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.fetched if o.status == "failed")


def fetch(
    config: Config,
    scan: ScanResult,
    *,
    refresh_after: float | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> FetchResult:
    """Mirror every URL of ``scan`` that is not mirrored yet.

    With ``refresh_after`` (days; 0 = all), the mirrored URLs last fetched
    longer ago than that are re-validated with conditional requests too.
    """
    started = time.monotonic()
    root = config.mirror_dir
    with SiteLock(config.state_dir), State.open(config.state_dir / STATE_FILE_NAME) as state:
        remove_partials(root)
        urls = scan.urls
        state.seen(urls)
        records = state.records(urls)
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

        def flush() -> None:
            with state.transaction():
                for outcome in pending:
                    _record(state, outcome, refreshing=outcome.url in stale)
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
            asyncio.run(_download(config, todo, stale, record))
        except KeyboardInterrupt:
            interrupted = True  # every download was cancelled and its temporary file removed
        finally:
            flush()  # also after Ctrl-C: what finished is recorded
    already = len(mirrored) - len(stale)
    elapsed = time.monotonic() - started
    return FetchResult(scan, tuple(done), already, elapsed, interrupted)


def _stale(
    records: dict[str, UrlRecord], mirrored: set[str], refresh_after: float | None
) -> dict[str, UrlRecord]:
    """The mirrored URLs due for a conditional re-check."""
    if refresh_after is None:
        return {}
    due = datetime.now(UTC) - timedelta(days=refresh_after)
    return {
        url: record
        for url in mirrored
        if (record := records[url]).last_fetched is None or record.last_fetched <= due
    }


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
) -> None:
    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, mirror_root=config.mirror_dir,
            layout=config.mirror.layout, versions=config.state_dir / VERSIONS_DIR_NAME,
        )  # fmt: skip
        await downloader.fetch_all(urls, known=known, on_outcome=record)


def _record(state: State, outcome: Outcome, *, refreshing: bool) -> None:
    if outcome.status != "failed" and outcome.path and outcome.sha256:
        state.mark_mirrored(
            outcome.url, path=outcome.path, size=outcome.size, sha256=outcome.sha256,
            content_type=outcome.content_type or "", final_url=outcome.final_url or outcome.url,
            etag=outcome.etag, last_modified=outcome.last_modified, source=outcome.source,
            attempts=outcome.attempts,
        )  # fmt: skip
    elif not refreshing:  # a failed re-check leaves the mirrored copy as it was
        state.mark_failed(outcome.url, error=outcome.error or "failed", attempts=outcome.attempts)
