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
from pathlib import Path

from mirror.config import Config
from mirror.errors import ConfigError
from mirror.fetch import Downloader
from mirror.lock import SiteLock
from mirror.models import Outcome, ScanResult
from mirror.state import STATE_FILE_NAME, State, UrlRecord
from mirror.store import remove_partials
from mirror.transport import make_client

_BATCH = 64  # state rows per commit


@dataclass(frozen=True, slots=True)
class FetchResult:
    scan: ScanResult
    fetched: tuple[Outcome, ...]  # new files and failures of this run
    already: int  # URLs mirrored before, file still there with the recorded size
    elapsed: float

    @property
    def mirrored(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.fetched if o.status == "mirrored")

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.fetched if o.status == "failed")


def fetch(
    config: Config, scan: ScanResult, *, on_outcome: Callable[[Outcome], None] | None = None
) -> FetchResult:
    """Mirror every URL of ``scan`` that is not mirrored yet."""
    if config.mirror.layout != "url":
        raise ConfigError('mirror.layout = "hash" is not supported by fetch yet; use "url"')
    started = time.monotonic()
    root = config.mirror_dir
    with SiteLock(config.state_dir), State.open(config.state_dir / STATE_FILE_NAME) as state:
        remove_partials(root)
        urls = scan.urls
        state.seen(urls)
        records = state.records(urls)
        todo = [url for url in urls if not _still_mirrored(records.get(url), root)]

        # Rows are written in batches: one durable commit per image cost more
        # than its download. A kill loses at most a batch of rows, whose files
        # are complete on disk and are simply fetched again by the next run.
        pending: list[Outcome] = []

        def flush() -> None:
            with state.transaction():
                for outcome in pending:
                    _record(state, outcome)
            pending.clear()

        def record(outcome: Outcome) -> None:
            pending.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if len(pending) >= _BATCH:
                flush()

        try:
            fetched = asyncio.run(_download(config, todo, record))
        finally:
            flush()  # also after Ctrl-C: what finished is recorded
    return FetchResult(scan, tuple(fetched), len(urls) - len(todo), time.monotonic() - started)


def _still_mirrored(record: UrlRecord | None, root: Path) -> bool:
    """Mirrored, and the file is still there with the recorded size: no request needed."""
    if record is None or record.status != "mirrored" or record.path is None:
        return False
    try:
        return (root / record.path).stat().st_size == record.size
    except OSError:
        return False


async def _download(
    config: Config, urls: Sequence[str], record: Callable[[Outcome], None]
) -> list[Outcome]:
    async with make_client(config.download) as client:
        downloader = Downloader(
            client=client, config=config.download, mirror_root=config.mirror_dir
        )
        return await downloader.fetch_all(urls, on_outcome=record)


def _record(state: State, outcome: Outcome) -> None:
    if outcome.status == "mirrored" and outcome.path and outcome.sha256:
        state.mark_mirrored(
            outcome.url, path=outcome.path, size=outcome.size, sha256=outcome.sha256,
            content_type=outcome.content_type or "", final_url=outcome.final_url or outcome.url,
            etag=outcome.etag, last_modified=outcome.last_modified, source=outcome.source,
            attempts=outcome.attempts,
        )  # fmt: skip
    else:
        state.mark_failed(outcome.url, error=outcome.error or "failed", attempts=outcome.attempts)
