"""References that point at our own mirror: what ``rewrite`` wrote.

After ``rewrite``, posts hold ``rewrite.local_prefix`` + path (a site path, or
a full URL) or ``rewrite.cdn_base`` + path. Such a reference is the mirror
itself: it is never fetched (that would mirror the mirror), and the file it
names is in use, so ``backup --prune`` must not move it away.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

from mirror.config import Config
from mirror.models import ScanResult
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

    def of(self, url: str) -> OwnLink | None:
        """Where ``url`` (as the scanner normalizes it) points in the mirror, or None."""
        for base, local in self._bases:
            if url.startswith(base):
                rest = url[len(base) :].partition("?")[0].partition("#")[0]
                return OwnLink(unquote(rest), local)
        return None

    def to_fetch(self, scan: ScanResult) -> tuple[str, ...]:
        """The scan's remote URLs, less those that are the mirror itself."""
        return tuple(url for url in scan.urls if self.of(url) is None)

    def in_use(self, scan: ScanResult) -> set[str]:
        """Mirror paths that the posts point at directly."""
        refs = (*scan.refs, *scan.local_refs)
        return {link.path for ref in refs if (link := self.of(ref.url)) is not None}


def _canonical(base: str) -> str:
    """A base as the scanner normalizes URLs (host lower-cased, ...); a path as is."""
    base = base.rstrip("/")
    if base.startswith(("http://", "https://")):
        return normalize(base).url.rstrip("/")
    return base
