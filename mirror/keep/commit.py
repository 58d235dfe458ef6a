"""The commit step: a checked download goes to its place in the mirror.

The downloader hands over a complete, validated temporary file and nothing
more; this step alone knows the layout (by URL, or by content hash), keeps
the file a refresh replaces under ``versions``, and renames. The caller
records the row only after the directories are fsynced (:class:`DirSync`),
so a row never names a file that a power cut can take back.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from mirror.keep.incoming import Incoming
from mirror.keep.mirrorfiles import sha256_file
from mirror.keep.state import UrlRecord
from mirror.keep.store import CheckedRoot, DirSync, hash_path, stamped, url_path


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a commit left a download: its path in the mirror, and the older
    file of another name that the URL's record pointed at, if any."""

    path: str
    replaced: str | None


class Commit:
    """Puts checked downloads into the mirror at ``root`` (call it from a worker thread)."""

    def __init__(
        self,
        root: CheckedRoot,
        *,
        layout: Literal["url", "hash"],
        versions: Path | None,
        dirs: DirSync | None,
    ) -> None:
        self._inside = root
        self._layout = layout
        self._versions = versions  # where a refresh keeps the file it replaces; None: not kept
        self._dirs = dirs  # renames made durable by the caller, before it records them
        self._kept: dict[str, Path | None] = {}  # path -> the older file kept this run
        self._created: set[str] = set()  # paths that held no file before this run

    def undo(self, relative: str) -> None:
        """The file committed at ``relative`` turned out unusable: put back the one it
        replaced (kept under ``versions``), or remove it where there was none
        before; a file of another URL it overwrote unkept is left as it is."""
        final = self._inside(PurePosixPath(relative))
        kept = self._kept.pop(relative, None)
        if kept is not None and kept.exists():
            os.replace(kept, final)
        elif relative in self._created:
            self._created.discard(relative)
            final.unlink(missing_ok=True)

    def __call__(
        self,
        file: Incoming,
        *,
        url: str,
        extension: str,
        known: UrlRecord | None,
        repair: bool = False,
    ) -> Placed | None:
        """Rename ``file`` into place; None when a refresh got the very same bytes
        again (the stored file is left as it was). The temporary file is gone
        either way, also when this raises.

        ``repair``: ``known``'s file is missing or not as recorded; the download
        goes to its recorded path whatever its bytes (posts may point there),
        and what was found there is kept under ``versions``."""
        try:
            if known is not None and file.sha256 == known.sha256 and not repair:
                file.discard()
                return None
            if repair and known is not None and known.path:
                relative = PurePosixPath(known.path)
            else:
                relative = self._unshared(self._place(file, url, extension, known), file, known)
            final = self._inside(relative)
            # A repair of a file that is gone replaces nothing.
            replaced = known.path if known is not None and (final.exists() or not repair) else None
            if self._layout == "hash" and final.exists() and not repair:
                file.discard()  # the same bytes are already stored under their hash
            else:
                replacing = known is not None and known.path == relative.as_posix()
                if not final.exists():
                    self._created.add(relative.as_posix())
                elif replacing and self._versions is not None:
                    self._kept[relative.as_posix()] = _keep_version(
                        final, self._versions / relative
                    )
                file.commit(relative, dirs=self._dirs)
        except BaseException:
            file.discard()  # waits for a rename in progress; nothing once renamed
            raise
        return Placed(relative.as_posix(), replaced)

    def _unshared(
        self, relative: PurePosixPath, file: Incoming, known: UrlRecord | None
    ) -> PurePosixPath:
        """``relative``, or the name beside it (``name~<hash>.ext``) when the file there
        has other bytes and is not ``known``'s own: a URL's http and https twins
        share a name in the url layout, and neither may overwrite the other's."""
        if self._layout != "url" or (known is not None and known.path == relative.as_posix()):
            return relative  # content-addressed, or its own file: a refresh replaces it
        held = sha256_file(self._inside(relative))
        if held is None or held == file.sha256:
            return relative
        return relative.with_name(f"{relative.stem}~{file.sha256[:8]}{relative.suffix}")

    def _place(
        self, file: Incoming, url: str, extension: str, known: UrlRecord | None
    ) -> PurePosixPath:
        if self._layout == "hash":
            return hash_path(file.sha256, extension)
        if known is not None and known.path and _own_url_path(url, known.path):
            # Rewritten posts may point at the file: a refresh keeps its name,
            # even when the image now comes in another format.
            return PurePosixPath(known.path)
        return url_path(url, extension)


def _own_url_path(url: str, path: str) -> bool:
    """Whether ``path`` is the name the url layout gives ``url`` (with its extension),
    or the one beside it that a twin's file made it take (:meth:`Commit._unshared`)."""
    placed = PurePosixPath(path)
    try:
        named = url_path(url, placed.suffix.lower())
    except ValueError:  # no extension, or one the layout would not write
        return False
    beside = re.fullmatch(
        re.escape(named.stem) + "~[0-9a-f]{8}" + re.escape(named.suffix), placed.name
    )
    return named == placed or (named.parent == placed.parent and beside is not None)


def _keep_version(old: Path, kept: Path) -> Path | None:
    """Keep ``old``'s current content at ``kept``.<UTC time> before it is replaced;
    where it is (None: replaced twice within a second, the first copy is kept).

    A hard link costs nothing and survives the rename over ``old``; a copy is
    the fallback where links are not allowed.
    """
    target = stamped(kept)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(old, target)
    except FileExistsError:
        return None
    except OSError:
        shutil.copy2(old, target)
    return target
