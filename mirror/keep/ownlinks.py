"""References that point at our own mirror: what ``rewrite`` wrote.

After ``rewrite``, posts hold ``rewrite.local_prefix`` + path (a site path, or
a full URL) or ``rewrite.cdn_base`` + path. Such a reference is the mirror
itself: it is never fetched (that would mirror the mirror), and the file it
names is in use, so ``backup --prune`` must not move it away.

Every output counts such a reference the same way, through :meth:`OwnLinks.records`:
it is mirrored, with the bytes of the state record of the file it names (the
record of the URL it was rewritten from). A site path under ``local_prefix`` is
a reference to an image like any URL (:meth:`OwnLinks.claim`), not one of the
blog's own site paths, so that a local rewrite keeps every count it had.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import unquote

from mirror.config import Config
from mirror.keep.state import UrlRecord
from mirror.models import PostScan, ScanResult
from mirror.urls import normalize


class OwnLink(NamedTuple):
    path: str  # relative to mirror.dir, decoded
    local: bool  # under local_prefix (a file on disk) rather than cdn_base


class OwnLinks:
    def __init__(self, config: Config) -> None:
        prefix, cdn = config.rewrite.local_prefix, config.rewrite.cdn_base
        self._bases = [(_canonical(prefix) + "/", True)]
        if cdn:
            self._bases.append((_canonical(cdn) + "/", False))
        # A blog names each image many times: each URL is looked at once.
        self._seen: dict[str, OwnLink | None] = {}

    @property
    def bases(self) -> tuple[str, ...]:
        """The URL prefixes that are the mirror: what a claimed scan depends on."""
        return tuple(base for base, _ in self._bases)

    def of(self, url: str) -> OwnLink | None:
        """Where ``url`` (as the scanner normalizes it) points in the mirror, or None."""
        if url in self._seen:
            return self._seen[url]
        found = None
        for base, local in self._bases:
            if url.startswith(base):
                rest = url[len(base) :].partition("?")[0].partition("#")[0]
                found = OwnLink(unquote(rest), local)
                break
        self._seen[url] = found
        return found

    def to_fetch(self, scan: ScanResult) -> tuple[str, ...]:
        """The scan's remote URLs, less those that are the mirror itself."""
        return tuple(url for url in scan.urls if self.of(url) is None)

    def claim(self, post: PostScan) -> PostScan:
        """``post`` with the site paths that name mirror files counted as image references."""
        if not any(r.local and self.of(r.url) is not None for r in post.refs):
            return post
        refs = tuple(
            ref._replace(local=False) if ref.local and self.of(ref.url) is not None else ref
            for ref in post.refs
        )
        return replace(post, refs=refs)

    def records(
        self, scan: ScanResult, every: Callable[[], Mapping[str, UrlRecord]]
    ) -> dict[str, UrlRecord]:
        """Each own link of ``scan`` -> the state record of the mirrored file it names.

        A link whose file the state does not hold as mirrored gets a ``failed``
        record saying so (made here, not stored): it is no image a fetch could
        bring back, and counting it as pending would promise one.
        """
        links = {url: link for url in scan.urls if (link := self.of(url)) is not None}
        if not links:
            return {}
        by_path = _mirrored_by_path(every())  # asked only when there are own links
        return {
            url: by_path[link.path][0]  # the first by URL: the same one each run
            if link.path in by_path
            else _dangling(url, f"no mirrored file {link.path} in the state")
            for url, link in links.items()
        }

    def sources(
        self, scan: ScanResult, every: Callable[[], Mapping[str, UrlRecord]]
    ) -> dict[str, tuple[str, ...]]:
        """Each recorded source URL of a file the scan's own links name -> those links.

        After a rewrite the posts no longer name where an image came from; the
        state does, and ``--refresh``, the retry schedule and repairs go there.
        """
        links = {url: link.path for url in scan.urls if (link := self.of(url)) is not None}
        if not links:
            return {}
        by_path = _mirrored_by_path(every())
        sources: dict[str, list[str]] = {}
        for url, path in links.items():
            for source in by_path.get(path, ()):
                sources.setdefault(source.url, []).append(url)
        return {source: tuple(urls) for source, urls in sources.items()}

    def mirrored(self, records: Mapping[str, UrlRecord]) -> int:
        """How many own links among ``records`` (keyed by URL) name a mirrored file."""
        return sum(
            1 for url, record in records.items()
            if record.status == "mirrored" and self.of(url) is not None
        )  # fmt: skip

    def in_use(self, scan: ScanResult) -> set[str]:
        """Mirror paths that the posts point at directly."""
        urls = (*scan.urls, *scan.local_urls)
        return {link.path for url in urls if (link := self.of(url)) is not None}


def _mirrored_by_path(records: Mapping[str, UrlRecord]) -> dict[str, list[UrlRecord]]:
    """The mirrored records by their file's path, each path's in URL order."""
    by_path: dict[str, list[UrlRecord]] = {}
    for url in sorted(records):
        record = records[url]
        if record.status == "mirrored" and record.path:
            by_path.setdefault(record.path, []).append(record)
    return by_path


def _canonical(base: str) -> str:
    """A base as the scanner normalizes URLs (host lower-cased, ...); a path as is."""
    base = base.rstrip("/")
    if base.startswith(("http://", "https://")):
        return normalize(base).url.rstrip("/")
    return base


def _dangling(url: str, reason: str) -> UrlRecord:
    return UrlRecord(
        url=url, final_url=None, status="failed", path=None, size=None, sha256=None,
        content_type=None, etag=None, last_modified=None, attempts=0, last_error=reason,
        source=None, first_seen=datetime.now(UTC), last_fetched=None, last_referenced=None,
        last_checked=None,
    )  # fmt: skip
