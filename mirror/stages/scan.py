"""The scan as every command runs it, and the state read without writing."""

from __future__ import annotations

from collections.abc import Sequence

from mirror.config import Config
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.state import STATE_FILE_NAME, State, UrlRecord
from mirror.models import ScanResult
from mirror.scanner import scan_site


def scan(config: Config) -> ScanResult:
    """Scan the site's posts; the mirror and state folders are never posts."""
    found = scan_site(
        config.site.root,
        posts=config.site.posts,
        front_matter_keys=config.site.front_matter_keys,
        exclude=(config.mirror_dir, config.state_dir),
    )
    return OwnLinks(config).claim(found)


def url_records(config: Config, urls: Sequence[str] | None = None) -> dict[str, UrlRecord]:
    """What the state knows of ``urls`` (None: every URL), read-only; empty
    before the first fetch."""
    state = State.read(config.state_dir / STATE_FILE_NAME)
    if state is None:
        return {}
    with state:
        return state.records(urls)


def site_records(config: Config, scan: ScanResult) -> dict[str, UrlRecord]:
    """What the state knows of the scan's URLs, read-only, the mirror's own
    links with the records of the files they name (:meth:`OwnLinks.records`)."""
    state = State.read(config.state_dir / STATE_FILE_NAME)
    if state is None:
        return OwnLinks(config).records(scan, None)
    with state:
        records = state.records(scan.urls)
        records.update(OwnLinks(config).records(scan, state))
        return records
