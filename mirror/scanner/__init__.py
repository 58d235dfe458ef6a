"""Find every image reference in a site's posts, exactly where it stands.

``scan_site`` walks the posts, reads each one's bytes and hands them to
``scan_post``; the stages inside (front matter, code regions, template tags,
Markdown, HTML) each live in their own module. A large site is scanned by
one process per core: each post is independent, and the scan is CPU-bound.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path

from mirror.keep.postfile import Unreadable, read_post
from mirror.models import PostScan, ScanResult
from mirror.scanner.discover import discover
from mirror.scanner.post import scan_post

__all__ = ["scan_post", "scan_site"]


def scan_site(
    root: Path,
    *,
    posts: Sequence[str] | None,
    front_matter_keys: Sequence[str],
    exclude: Sequence[Path] = (),
) -> ScanResult:
    """Scan every post under ``root``; a post that cannot be read is a problem, not an error."""
    found = discover(root, posts, exclude=exclude)
    keys = frozenset(k.lower() for k in front_matter_keys)
    workers = _workers(len(found.posts))
    if workers > 1:
        chunks = [found.posts[i : i + _CHUNK] for i in range(0, len(found.posts), _CHUNK)]
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            scans = tuple(
                scan
                for chunk in pool.map(_scan_files, repeat(root), chunks, repeat(keys))
                for scan in chunk
            )
    else:
        scans = tuple(_scan_file(root, post, keys) for post in found.posts)
    return ScanResult(root, found.globs, found.detected, scans, found.notes)


_CHUNK = 250  # posts per task: large enough to amortize the hand-over, small to balance
_PARALLEL_FROM = 4 * _CHUNK  # below this, starting workers costs more than it saves


def _workers(posts: int) -> int:
    # Forking a process that runs other threads can copy a held lock: then stay serial.
    if posts < _PARALLEL_FROM or threading.active_count() > 1 or sys.platform == "win32":
        return 1
    return min(os.cpu_count() or 1, 8, posts // _CHUNK)


def _scan_files(root: Path, posts: Sequence[str], keys: frozenset[str]) -> list[PostScan]:
    return [_scan_file(root, post, keys) for post in posts]


def _scan_file(root: Path, post: str, keys: frozenset[str]) -> PostScan:
    data = read_post(root / post)
    if isinstance(data, Unreadable):
        return PostScan(post, problems=(data.reason,))
    return scan_post(data, post, keys)
