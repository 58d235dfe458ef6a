"""Is a mirrored file still what the state recorded? Asked by rewrite and verify.

A reference is only pointed at a file that is there with the recorded
SHA-256, and verify re-asks the same question; each file is located and
hashed once per run however many references use it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath

from mirror.keep.state import UrlRecord
from mirror.keep.store import inside


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
    """Copy a mirrored file into a post's folder, whole or not at all (temp + rename)."""
    if sha256_file(target) is not None and sha256_file(target) == sha256_file(source):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
