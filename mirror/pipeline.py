"""The scan as every command runs it, and the state read without writing."""

from __future__ import annotations

from collections.abc import Sequence

from mirror.config import Config
from mirror.models import ScanResult
from mirror.scanner import scan_site
from mirror.state import STATE_FILE_NAME, State, UrlRecord


def scan(config: Config) -> ScanResult:
    """Scan the site's posts; the mirror and state folders are never posts."""
    return scan_site(
        config.site.root,
        posts=config.site.posts,
        front_matter_keys=config.site.front_matter_keys,
        exclude=(config.mirror_dir, config.state_dir),
    )


def url_records(config: Config, urls: Sequence[str] | None = None) -> dict[str, UrlRecord]:
    """What the state knows of ``urls`` (None: every URL), read-only; empty
    before the first fetch."""
    state = State.read(config.state_dir / STATE_FILE_NAME)
    if state is None:
        return {}
    with state:
        return state.records(urls)
