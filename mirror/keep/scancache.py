"""The ``post_scans`` table: each post's last scan, with the stat of the file it was
made from, so that a run reads only the posts that changed since.

A row is used only while the post's :class:`~mirror.keep.postfile.Stamp`
(size, mtime, ctime, inode) is what it was, and only by the program and
settings that made it (``scanner``: a hash of gallery-mirror's code, the
Python version and the scan's settings): any other version of either scans
again. A post changed in the last two seconds is not kept: it may change
again within the same timestamp tick without its stamp showing it (git's
"racily clean" entries). A post with problems is never kept, so its problems
are found, and said, on every run.

Each row holds a brief (the distinct URLs) and the full scan, loaded only
when a command asks for the references. Besides, a run that had every
post's scan kept keeps the site's brief (``site_scan``, one row): its posts
and their distinct URLs, under a digest of every post's name and stamp. A
night that finds the same digest starts from that row alone, which is all
it needs, instead of a brief per post. The values are ``marshal``-ed
tuples: the fastest to load of the standard formats, and only ever read by
the Python that wrote them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from mirror.errors import MirrorError
from mirror.keep.db import Migration
from mirror.keep.postfile import Stamp
from mirror.models import ImageRef, PostBrief, PostScan, SiteBrief, SkippedRef
from mirror.version import __version__

if TYPE_CHECKING:  # the state applies this module's migrations: imported the other way
    from mirror.keep.state import State

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0011_create_post_scans",
        """
        CREATE TABLE post_scans (
            post     TEXT PRIMARY KEY NOT NULL,  -- posix, relative to the site root
            size     INTEGER NOT NULL,           -- the post's stamp when it was scanned
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            inode    INTEGER NOT NULL,
            scanner  TEXT NOT NULL,              -- what made the scan (code and settings)
            brief    BLOB NOT NULL,              -- its distinct URLs
            -- its references; the last column, so that reading the brief
            -- leaves this large value's own pages alone
            scan     BLOB NOT NULL
        );
        """,
    ),
    Migration(
        "0012_create_site_scan",
        """
        CREATE TABLE site_scan (
            id      INTEGER PRIMARY KEY CHECK (id = 1),  -- one site per state
            scanner TEXT NOT NULL,
            digest  BLOB NOT NULL,  -- of every post's name and stamp (ScanCache.site)
            brief   BLOB NOT NULL   -- the posts, and their distinct URLs
        );
        """,
    ),
)

# The libraries whose reading decides a scan: PyYAML (the front matter's spans;
# its C loader too) and markdown-it-py (the code blocks).
_PARSERS: Final = ("yaml", "_yaml", "markdown_it")
_RACY_NS: Final = 2_000_000_000  # coarse file systems keep mtimes to 1 or 2 seconds
_CHUNK: Final = 500  # posts per query: under SQLite's limit of bound values


class ScanCache:
    """The kept scans of one site, read through a session's state."""

    def __init__(self, state: State, *, scanner: str, writable: bool) -> None:
        self._state, self._scanner, self._writable = state, scanner, writable
        self._rows: set[str] = set()  # posts with a row, whoever made it
        self._current: set[str] = set()  # posts whose row is of their stamp and this scanner
        self._digest = b""  # of the posts and stamps given to site()

    def site(self, posts: Sequence[str], stamps: Mapping[str, Stamp]) -> SiteBrief | None:
        """The site's brief, if the site's posts (``posts``, the ``stamps`` of
        those a stat could see) are all as the run that kept it found them."""
        # Names and stamps both: a post that cannot be stat-ed has no stamp.
        self._digest = hashlib.blake2b(marshal.dumps((tuple(posts), dict(stamps)))).digest()
        row = self._state.connection.execute(
            "SELECT brief FROM site_scan WHERE scanner = ? AND digest = ?",
            (self._scanner, self._digest),
        ).fetchone()
        return None if row is None else SiteBrief(*marshal.loads(row[0]))

    def briefs(self, stamps: Mapping[str, Stamp]) -> dict[str, PostBrief]:
        """The briefs of the posts of ``stamps`` that are as they were when scanned."""
        found: dict[str, PostBrief] = {}
        rows = self._state.connection.execute(
            "SELECT post, size, mtime_ns, ctime_ns, inode, scanner, brief FROM post_scans"
        )
        for post, size, mtime_ns, ctime_ns, inode, scanner, brief in rows:
            self._rows.add(post)
            if scanner == self._scanner and stamps.get(post) == (size, mtime_ns, ctime_ns, inode):
                urls, local_urls = marshal.loads(brief)
                found[post] = PostBrief(post, urls, local_urls)
        self._current.update(found)
        return found

    def load(self, stamps: Mapping[str, Stamp]) -> dict[str, PostScan]:
        """The full scans of the posts of ``stamps`` still kept for those stamps;
        none once the session is closed (a library caller kept the scan)."""
        try:
            return self._load(stamps)
        except sqlite3.ProgrammingError:  # a closed connection
            return {}

    def _load(self, stamps: Mapping[str, Stamp]) -> dict[str, PostScan]:
        found: dict[str, PostScan] = {}
        names = list(stamps)
        for i in range(0, len(names), _CHUNK):
            chunk = names[i : i + _CHUNK]
            rows = self._state.connection.execute(
                "SELECT post, size, mtime_ns, ctime_ns, inode, scanner, scan FROM post_scans"
                f" WHERE post IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for post, size, mtime_ns, ctime_ns, inode, scanner, scan in rows:
                if scanner == self._scanner and stamps[post] == (size, mtime_ns, ctime_ns, inode):
                    found[post] = _decode(post, scan)
        return found

    def keep(
        self,
        scans: Iterable[tuple[PostScan, Stamp]],
        posts: Sequence[str],
        site: Callable[[], SiteBrief],
    ) -> None:
        """Keep these fresh scans (see the module's rules) and forget the rows of
        posts no longer among ``posts``; with every post's scan kept then, keep
        ``site()`` too, under the digest :meth:`site` made of them. A read-only
        session keeps nothing."""
        if not self._writable:
            return
        settled = time.time_ns() - _RACY_NS
        rows = [
            (scan.post, *stamp, self._scanner, *_encode(scan))
            for scan, stamp in scans
            if not scan.problems and max(stamp[1], stamp[2]) < settled  # mtime, ctime
        ]
        gone = self._rows.difference(posts)
        current = self._current.union(row[0] for row in rows)
        whole = None
        if current.issuperset(posts):
            brief = site()
            whole = marshal.dumps((brief.posts, brief.urls, brief.local_urls))
        if not rows and not gone and whole is None:
            return  # nothing new, and a post that must be read again each run
        try:
            self._write(rows, gone, whole)
        except (sqlite3.Error, MirrorError):
            # Kept scans only save time: a full disk is for the run to meet
            # where it stops cleanly (the fetch), not here. Nothing was written.
            return
        self._rows.difference_update(gone)
        self._rows.update(row[0] for row in rows)
        self._current = current

    def _write(
        self, rows: Sequence[tuple[object, ...]], gone: set[str], whole: bytes | None
    ) -> None:
        with self._state.transaction():
            if whole is not None:
                self._state.connection.execute(
                    "INSERT OR REPLACE INTO site_scan (id, scanner, digest, brief)"
                    " VALUES (1, ?, ?, ?)",
                    (self._scanner, self._digest, whole),
                )
            connection = self._state.connection
            connection.executemany(
                "INSERT INTO post_scans"
                " (post, size, mtime_ns, ctime_ns, inode, scanner, brief, scan)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (post) DO UPDATE SET size = excluded.size,"
                " mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,"
                " inode = excluded.inode, scanner = excluded.scanner,"
                " brief = excluded.brief, scan = excluded.scan",
                rows,
            )
            connection.executemany(
                "DELETE FROM post_scans WHERE post = ?", ((post,) for post in gone)
            )


def _encode(scan: PostScan) -> tuple[bytes, bytes]:
    brief = PostBrief.of(scan)
    refs = tuple(ref[1:] for ref in scan.refs)  # the post is the row's
    skipped = tuple((s.line, s.raw, s.reason) for s in scan.skipped)
    return marshal.dumps((brief.urls, brief.local_urls)), marshal.dumps((refs, skipped))


def _decode(post: str, data: bytes) -> PostScan:
    refs, skipped = marshal.loads(data)
    return PostScan(
        post,
        tuple(ImageRef(post, *ref) for ref in refs),
        (),
        tuple(SkippedRef(post, *s) for s in skipped),
    )


def scanner_id(*settings: object) -> str:
    """What a kept scan was made by: this program's code and version, the Python
    that runs it (``marshal``'s format is its own), the parsers it uses and
    ``settings``, as one hash."""
    digest = hashlib.sha256(f"{sys.version}\0{__version__}\0{settings!r}".encode())
    for library in _PARSERS:  # an upgrade rewrites their files: their stat tells
        spec = importlib.util.find_spec(library)
        origin = spec.origin if spec is not None else None
        info = os.stat(origin) if origin else None
        digest.update(f"{library}\0{origin}\0{info and (info.st_size, info.st_mtime_ns)}".encode())
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the mirror package
    for name in sorted(_sources(top)):
        digest.update(name.encode())
        with open(name, "rb") as source:
            digest.update(source.read())
    return digest.hexdigest()


def _sources(top: str) -> Iterator[str]:
    # All of the code, not a list of the scanner's modules that could fall out
    # of date: reading it takes ~2 ms, and any change to it rescans once.
    for folder, _, files in os.walk(top):
        yield from (os.path.join(folder, f) for f in files if f.endswith(".py"))
