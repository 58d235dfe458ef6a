"""Scan many posts: one process per core for a large site, as each post is
independent and the scan is CPU-bound."""

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


def scan_site(
    root: Path,
    *,
    posts: Sequence[str] | None,
    front_matter_keys: Sequence[str],
    exclude: Sequence[Path] = (),
) -> ScanResult:
    """Scan every post under ``root``; a post that cannot be read is a problem, not an error."""
    found = discover(root, posts, exclude=exclude)
    scans = scan_files(root, found.posts, frozenset(k.lower() for k in front_matter_keys))
    return ScanResult(root, found.globs, found.detected, scans, found.notes)


def scan_files(root: Path, posts: Sequence[str], keys: frozenset[str]) -> tuple[PostScan, ...]:
    """The scans of ``posts`` (relative to ``root``), in their order.

    ``keys`` are the lower-case dotted front-matter keys that hold images.
    """
    workers = _workers(len(posts))
    if workers <= 1:
        return tuple(_scan_file(root, post, keys) for post in posts)
    chunks = [posts[i : i + _CHUNK] for i in range(0, len(posts), _CHUNK)]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        return tuple(
            scan
            for chunk in pool.map(_scan_files, repeat(root), chunks, repeat(keys))
            for scan in chunk
        )


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
