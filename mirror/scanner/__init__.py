"""Find every image reference in a site's posts, exactly where it stands.

``scan_site`` walks the posts, reads each one's bytes and hands them to
``scan_post``; the stages inside (front matter, code regions, template tags,
Markdown, HTML) each live in their own module.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Sequence
from pathlib import Path

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
    scans = tuple(_scan_file(root, post, keys) for post in found.posts)
    return ScanResult(root, found.globs, found.detected, scans, found.notes)


def _scan_file(root: Path, post: str, keys: frozenset[str]) -> PostScan:
    path = root / post
    try:
        # A named pipe or a device would block the read, or never end.
        if not stat.S_ISREG(path.stat().st_mode):
            return PostScan(post, problems=("cannot be read: not a regular file",))
        data = path.read_bytes()
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        return PostScan(post, problems=(f"cannot be read: {reason}",))
    return scan_post(data, post, keys)
