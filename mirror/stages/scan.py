"""The scan as every command runs it, and the counts of what it found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from mirror.config import Config
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.scancache import ScanCache, scanner_id
from mirror.keep.site import Site
from mirror.keep.state import UrlRecord
from mirror.models import PostScan, ScanResult, SiteBrief
from mirror.scanner.discover import discover
from mirror.urls import host_of


def scan(config: Config, site: Site | None = None) -> ScanResult:
    """Scan the site's posts; the mirror and state folders are never posts.

    With the session of a site that has a state, a post unchanged since its
    last scan (:mod:`mirror.keep.scancache`) is not read again: its brief
    stands in for it until a command asks for the references (then loaded
    from the state, or read from the post once the session is closed).
    """
    root = config.site.root
    found = discover(root, config.site.posts, exclude=(config.mirror_dir, config.state_dir))
    keys = frozenset(k.lower() for k in config.site.front_matter_keys)
    links = OwnLinks(config)
    state = site.read_state if site is not None else None
    if state is None or site is None:
        scans = _scanned(root, found.posts, keys, links)
        return ScanResult(root, found.globs, found.detected, scans, found.notes)
    cache = ScanCache(state, scanner=scanner_id(sorted(keys), links.bases), writable=site.writable)

    def load(posts: Sequence[str]) -> Mapping[str, PostScan]:
        kept = cache.load({post: found.stamps[post] for post in posts})
        # Gone from the cache since (another run kept a newer scan, the session
        # closed): read again.
        missing = [post for post in posts if post not in kept]
        return {**kept, **dict(zip(missing, _scanned(root, missing, keys, links), strict=True))}

    whole = cache.site(found.posts, found.stamps)
    if whole is not None:  # no post changed since
        return ScanResult(root, found.globs, found.detected, whole, found.notes, load)
    briefs = cache.briefs(found.stamps)
    todo = [post for post in found.posts if post not in briefs]
    fresh = dict(zip(todo, _scanned(root, todo, keys, links), strict=True))
    each = tuple(briefs.get(post) or fresh[post] for post in found.posts)
    result = ScanResult(root, found.globs, found.detected, each, found.notes, load)
    stamped = ((fresh[post], found.stamps[post]) for post in todo if post in found.stamps)
    cache.keep(stamped, found.posts, lambda: SiteBrief(found.posts, result.urls, result.local_urls))
    return result


def _scanned(
    root: Path, posts: Sequence[str], keys: frozenset[str], links: OwnLinks
) -> tuple[PostScan, ...]:
    if not posts:
        return ()
    # Imported here: the parsers take longer to import than a night with
    # every post unchanged takes altogether.
    from mirror.scanner.site import scan_files

    return tuple(links.claim(post) for post in scan_files(root, posts, keys))


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
        "posts": len(result.names),
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
