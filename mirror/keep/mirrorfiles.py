"""Is a mirrored file still what the state recorded? Asked by rewrite, verify and backup.

A reference is only pointed at a file that is there with the recorded
SHA-256, and verify re-asks the same question; each file is located and
hashed once per run however many references use it. ``backup`` asks it
cheaply first (:func:`look`: a stat, and a read only when that is in doubt).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from mirror.keep.state import UrlRecord
from mirror.keep.store import AtomicFile, inside


class MirrorFiles:
    """The files under one mirror dir, checked against state records, with a hash cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # path -> its SHA-256 (None: no file), or why it cannot be looked at;
        # locating a path resolves symlinks, too slow to repeat per reference.
        self._hashes: dict[str, str | ValueError | None] = {}

    def problem(self, record: UrlRecord) -> str | None:
        """Why ``record``'s file is not as recorded, or None; the record must be mirrored."""
        path = record.path or ""
        if path not in self._hashes:
            try:
                self._hashes[path] = sha256_file(inside(self.root, PurePosixPath(path)))
            except ValueError as exc:
                self._hashes[path] = exc
        digest = self._hashes[path]
        if isinstance(digest, ValueError):
            return f"file path outside mirror.dir: {path}"
        if digest is None:
            return f"file missing: {path}"
        if digest != record.sha256:
            return f"file changed since it was fetched (sha256 differs): {path}"
        return None


def sha256_file(path: Path) -> str | None:
    """The file's SHA-256 in hex, or None when it is not a readable regular file."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def bundle_name(folder: Path, name: str, sha256: str) -> str:
    """The name a mirrored file gets in a post's own folder (``mirror.bundles``):
    its own name, unless another file holds that name (then the hash tells them apart)."""
    held = sha256_file(folder / name)
    if held is None or held == sha256:
        return name
    stem, dot, extension = name.rpartition(".")
    return f"{stem}~{sha256[:8]}.{extension}" if dot and stem else f"{name}~{sha256[:8]}"


def copy_into_bundle(source: Path, target: Path) -> None:
    """Copy a mirrored file into a post's folder, whole or not at all
    (:class:`AtomicFile`: a temporary name, fsync, rename)."""
    held = sha256_file(target)
    if held is not None and held == sha256_file(source):
        return
    with source.open("rb") as data, AtomicFile(target) as out:
        shutil.copyfileobj(data, out)


Finding = Literal["missing", "changed on disk"]


@dataclass(frozen=True, slots=True)
class Look:
    """What :func:`look` found: a problem and why, or the file's mtime when it is fine."""

    problem: Finding | None
    detail: str  # names the path
    mtime_ns: int | None = None
    hashed: bool = False  # it was read and has the recorded SHA-256


def look(root: Path, record: UrlRecord, *, read: bool) -> Look:
    """``record``'s file (mirrored) against the record, with a stat: there, a
    regular file, with the recorded size and mtime. It is read and hashed when
    ``read``, and also when the stat is in doubt: the mtime moved (a copy put
    back, or an edit that kept the size), or a problem was recorded before."""
    path = record.path or ""
    # The commit step placed it inside root; resolving every path (as verify
    # does for posts' links) would cost a third of a nightly run's checks.
    target = os.path.join(root, path)  # a string: a Path per file costs as much as its stat
    try:
        info = os.stat(target)
    except OSError:
        return Look("missing", f"{path} is gone")
    if not stat.S_ISREG(info.st_mode):
        return Look("missing", f"{path} is not a regular file")
    if info.st_size != record.size:
        return Look("changed on disk", f"{path} has {info.st_size} bytes, {record.size} recorded")
    moved = record.mtime_ns is not None and info.st_mtime_ns != record.mtime_ns
    if not (read or moved or record.file_problem):
        return Look(None, "", info.st_mtime_ns)
    digest = sha256_file(Path(target))
    if digest is None:
        return Look("missing", f"{path} cannot be read")
    if digest != record.sha256:
        how = "its mtime moved" if moved else "same size and mtime"
        return Look("changed on disk", f"{path}: the SHA-256 is not the recorded one ({how})")
    return Look(None, "", info.st_mtime_ns, hashed=True)
