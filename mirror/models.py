"""Plain values passed between the stages. No I/O here.

A reference's span is a pair of byte offsets into the post file exactly as it
is on disk (BOM and CRLF included), so that ``data[start:end]`` is always the
raw URL text and a later rewrite can edit those bytes and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple, cast

Source = Literal["origin", "alternative", "wayback"]  # where a mirrored file came from
RefKind = Literal["front_matter", "gallery", "markdown", "html", "tag", "shortcode", "reference"]


class ImageRef(NamedTuple):
    """One place in one post where an image URL stands.

    A named tuple rather than a frozen dataclass, as immutable and as typed:
    a scan makes one per reference (~70,000 for a 10,000-post blog) and hands
    them between processes, and tuples are built and pickled ~5x faster.
    """

    post: str  # posix path relative to the site root
    start: int  # byte offset of the URL text in the file
    end: int
    line: int  # 1-based line of the URL text
    column: int  # 1-based column, in characters, of the URL text
    kind: RefKind
    raw: str  # the URL text exactly as it stands in the post
    url: str  # normalized URL (remote) or the site path as written (local)
    local: bool  # a site-relative path: listed, never fetched
    repairs: tuple[str, ...] = ()
    context: str = ""  # where it was found: "headimg", "img src", "{% img %}", ...


@dataclass(frozen=True, slots=True)
class SkippedRef:
    """Text in an image position that is no reference: a data: URI, a template, ..."""

    post: str
    line: int
    raw: str
    reason: str  # "data: URI", "template placeholder", "anchor", ...


@dataclass(frozen=True, slots=True)
class PostScan:
    """What the scanner found in one post, and why parts of it could not be read."""

    post: str
    refs: tuple[ImageRef, ...] = ()
    problems: tuple[str, ...] = ()  # non-empty: the post, or a part of it, could not be read
    skipped: tuple[SkippedRef, ...] = ()


@dataclass(frozen=True, slots=True)
class PostBrief:
    """A post's scan in brief: the distinct URLs it uses, without their references.

    What the scan cache answers with for a post unchanged since its last scan,
    so that a night with no post changed reads no post and builds no reference.
    """

    post: str
    urls: tuple[str, ...]  # distinct remote URLs, in order of first appearance
    local_urls: tuple[str, ...]  # distinct site-relative paths, the same

    @classmethod
    def of(cls, scan: PostScan) -> PostBrief:
        urls = dict.fromkeys(r.url for r in scan.refs if not r.local)
        local = dict.fromkeys(r.url for r in scan.refs if r.local)
        return cls(scan.post, tuple(urls), tuple(local))


@dataclass(frozen=True, slots=True)
class SiteBrief:
    """The whole site in brief, as a run that had every post's scan kept left it:
    its posts and their distinct URLs, without a post's own.

    What a night whose posts are all as they were then starts from: the
    site's URLs at once, without a brief per post to read and join.
    """

    posts: tuple[str, ...]  # in path order
    urls: tuple[str, ...]  # distinct remote URLs, in order of first appearance
    local_urls: tuple[str, ...]  # distinct site-relative paths, the same


@dataclass(frozen=True)
class ScanResult:
    """The scan of a whole site.

    Each post is its scan, or the brief of a scan made before (a post that did
    not change); or, with no post changed since, the site's brief stands for
    them all. The URLs come from either; the references (``posts``, ``refs``
    and the rest) are loaded for the briefs on first use by ``load``, so a run
    that only needs the URLs never builds them. No slots: the derived views
    are computed once (``cached_property``), which the nightly run relies on.
    """

    root: Path
    globs: tuple[str, ...]
    detected: str
    scans: tuple[PostScan | PostBrief, ...] | SiteBrief  # the posts, in path order
    notes: tuple[str, ...] = ()  # site-level warnings (e.g. a directory symlink loop)
    # the full scans of posts named by a brief, by post
    load: Callable[[Sequence[str]], Mapping[str, PostScan]] | None = field(
        default=None, compare=False, repr=False
    )

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The posts, in path order."""
        if isinstance(self.scans, SiteBrief):
            return self.scans.posts
        return tuple(p.post for p in self.scans)

    @cached_property
    def found(self) -> tuple[PostScan | PostBrief, ...]:
        """One per post, in path order: its scan or its brief."""
        return self.posts if isinstance(self.scans, SiteBrief) else self.scans

    @cached_property
    def posts(self) -> tuple[PostScan, ...]:
        scans = self.scans
        briefs = (
            scans.posts if isinstance(scans, SiteBrief)
            else [p.post for p in scans if isinstance(p, PostBrief)]
        )  # fmt: skip
        if not briefs:
            return cast(tuple[PostScan, ...], scans)
        if self.load is None:
            raise ValueError("a scan with briefs needs a loader")
        loaded = self.load(briefs)
        if isinstance(scans, SiteBrief):
            return tuple(loaded[post] for post in scans.posts)
        return tuple(loaded[p.post] if isinstance(p, PostBrief) else p for p in scans)

    @cached_property
    def refs(self) -> tuple[ImageRef, ...]:
        """Remote references: what would be fetched."""
        return tuple(r for p in self.posts for r in p.refs if not r.local)

    @cached_property
    def local_refs(self) -> tuple[ImageRef, ...]:
        """Site-relative references: listed, never fetched."""
        return tuple(r for p in self.posts for r in p.refs if r.local)

    @cached_property
    def urls(self) -> tuple[str, ...]:
        """Distinct normalized remote URLs, in order of first appearance."""
        if isinstance(self.scans, SiteBrief):
            return self.scans.urls
        return tuple(dict.fromkeys(u for p in self._briefs for u in p.urls))

    @cached_property
    def local_urls(self) -> tuple[str, ...]:
        """Distinct site-relative paths, in order of first appearance."""
        if isinstance(self.scans, SiteBrief):
            return self.scans.local_urls
        return tuple(dict.fromkeys(u for p in self._briefs for u in p.local_urls))

    @property
    def uses(self) -> dict[str, tuple[ImageRef, ...]]:
        """Remote references by URL, URLs in order of first appearance."""
        found: dict[str, list[ImageRef]] = {}
        for ref in self.refs:
            found.setdefault(ref.url, []).append(ref)
        return {url: tuple(refs) for url, refs in found.items()}

    @property
    def skipped(self) -> tuple[SkippedRef, ...]:
        return tuple(s for p in self.posts for s in p.skipped)

    @cached_property
    def unreadable(self) -> tuple[PostScan, ...]:
        # A brief is never of a post with problems: those are not kept, and a
        # site's brief is kept only when every post's scan was.
        if isinstance(self.scans, SiteBrief):
            return ()
        return tuple(p for p in self.scans if isinstance(p, PostScan) and p.problems)

    @cached_property
    def _briefs(self) -> tuple[PostBrief, ...]:
        return tuple(p if isinstance(p, PostBrief) else PostBrief.of(p) for p in self.found)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What fetching one URL came to: mirrored with its file's facts, or failed with why."""

    url: str
    # "unchanged": a refresh found the mirrored file still current (304, or the same bytes)
    status: Literal["mirrored", "failed", "unchanged"]
    path: str | None = None  # relative to the mirror dir, posix
    size: int = 0
    sha256: str | None = None
    content_type: str | None = None
    final_url: str | None = None  # after redirects, or the alternative origin's URL
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    attempts: int = 0
    source: Source = "origin"
    dead: bool = False  # failed because the source is gone: 404/410 or the host does not resolve
    replaced: str | None = None  # a refresh replaced this older file (kept under versions/)
    # kept though the answer's Content-Type says otherwise: the bytes are a complete image
    note: str | None = None


@dataclass(frozen=True, slots=True)
class HostEvent:
    """A host's health changed during a run (see ``mirror.net.hosts``): for the progress display."""

    host: str
    # down: its URLs fail at once; up: it answers again; throttled: it is sent
    # fewer requests at once; unthrottled: as many as per_host again
    kind: Literal["down", "up", "throttled", "unthrottled"]
    detail: str


@dataclass(frozen=True, slots=True)
class Probe:
    """What asking for one URL's headers found, without downloading it (``report --check``)."""

    url: str
    reachable: bool  # it answers with something a fetch could keep
    status: int | None = None  # the last HTTP status, None when no answer came
    content_type: str | None = None
    size: int | None = None  # bytes, when the answer says
    final_url: str | None = None  # after redirects, or the alternative origin's URL
    method: Literal["HEAD", "GET"] = "HEAD"  # GET: HEAD was refused, a one-byte range was asked
    error: str | None = None  # why it is not reachable
    attempts: int = 0


class Edit(NamedTuple):
    """Replace ``old`` at byte ``start`` of a post with ``new``.

    ``new`` may be the URL in added quotes; ``url`` is the URL alone.
    """

    start: int
    old: str
    new: str
    url: str

    @property
    def end(self) -> int:
        return self.start + len(self.old.encode("utf-8"))

    @property
    def delta(self) -> int:
        return len(self.new.encode("utf-8")) - len(self.old.encode("utf-8"))

    @property
    def url_offset(self) -> int:
        """Where the URL starts inside ``new``: after an added opening quote."""
        return self.new.index(self.url) if self.new != self.url else 0


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a run stops starting downloads: ``seconds`` after it started."""

    seconds: float  # as asked (--max-time, backup.max_time)
    at: float  # on time.monotonic()'s clock

    @classmethod
    def after(cls, seconds: float | None, started: float) -> Deadline | None:
        """The deadline ``seconds`` after ``started`` (monotonic); None for none or 0."""
        return cls(seconds, started + seconds) if seconds else None


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run stopped before it had tried every URL."""

    kind: Literal["deadline", "disk_full", "unwritable"]
    message: str  # names the directory, and for a full disk the room needed
    directory: str | None = None
    free: int | None = None  # bytes free in ``directory`` once the run ended
    needed: int | None = None  # bytes at least of the file that did not fit
