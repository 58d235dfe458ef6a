"""The scan as every command runs it, and the counts of what it found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from mirror.config import Config
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.state import UrlRecord
from mirror.models import ScanResult
from mirror.scanner import scan_site
from mirror.urls import host_of


def scan(config: Config) -> ScanResult:
    """Scan the site's posts; the mirror and state folders are never posts."""
    found = scan_site(
        config.site.root,
        posts=config.site.posts,
        front_matter_keys=config.site.front_matter_keys,
        exclude=(config.mirror_dir, config.state_dir),
    )
    return OwnLinks(config).claim(found)


def status_of(url: str, records: Mapping[str, UrlRecord]) -> str:
    record = records.get(url)
    return "pending" if record is None else record.status


def summary_counts(
    result: ScanResult, records: Mapping[str, UrlRecord] | None = None
) -> dict[str, int]:
    """The counts shared by the text summary and the JSON ``summary``."""
    refs = result.refs
    urls = result.urls
    statuses = Counter(status_of(url, records or {}) for url in urls)
    return {
        "posts": len(result.posts),
        "refs": len(refs),
        "urls": len(urls),
        "pending": statuses["pending"],
        "mirrored": statuses["mirrored"],
        "failed": statuses["failed"],
        "hosts": len({host_of(u) for u in urls}),
        "repaired_refs": sum(1 for r in refs if r.repairs),
        "local_refs": len(result.local_refs),
        "unreadable": len(result.unreadable),
        "skipped": len(result.skipped),
    }
