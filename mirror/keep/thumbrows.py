"""The thumbnails table: what each mirrored file's thumbnails were made from and with,
so that they are rebuilt only when the file or the settings change.

One row per original (its path in the mirror): the SHA-256 it was made from,
the settings' fingerprint, the status (made, skipped, failed) and why, and the
files written (relative to ``thumbnails.dir``). The thumbnail stage decides;
this module only keeps the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mirror.keep.db import Migration, timestamp

if TYPE_CHECKING:  # the state applies this module's migrations: imported the other way
    from mirror.keep.state import State

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0004_create_thumbnails",
        # What each mirrored file's thumbnails were made from and with, so that
        # they are rebuilt only when the file or the settings change
        # (mirror.keep.thumbrows reads and writes this table).
        """
        CREATE TABLE thumbnails (
            path        TEXT PRIMARY KEY NOT NULL,  -- the original, relative to mirror.dir
            sha256      TEXT NOT NULL,              -- of the original they were made from
            fingerprint TEXT NOT NULL,              -- the settings used (ThumbSpec.fingerprint)
            status      TEXT NOT NULL CHECK (status IN ('made', 'skipped', 'failed')),
            reason      TEXT,                       -- why skipped or failed
            files       TEXT NOT NULL DEFAULT '',   -- one per line, relative to thumbnails.dir
            made_at     TEXT NOT NULL
        );
        """,
    ),
)


@dataclass(frozen=True, slots=True)
class ThumbRow:
    path: str  # the original, relative to mirror.dir
    sha256: str
    fingerprint: str
    status: str
    files: tuple[str, ...]  # relative to thumbnails.dir


def record(
    state: State,
    path: str,
    sha256: str,
    fingerprint: str,
    status: str,
    reason: str | None,
    files: Sequence[str],
) -> None:
    """Remember what ``path``'s thumbnails were made from (inside the caller's transaction)."""
    state.connection.execute(
        """
        INSERT INTO thumbnails (path, sha256, fingerprint, status, reason, files, made_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (path) DO UPDATE SET
            sha256 = excluded.sha256, fingerprint = excluded.fingerprint,
            status = excluded.status, reason = excluded.reason,
            files = excluded.files, made_at = excluded.made_at
        """,
        (path, sha256, fingerprint, status, reason, "\n".join(files), timestamp()),
    )


def files_of(state: State, path: str) -> list[str]:
    """The thumbnails recorded for ``path``, relative to the thumbnails root."""
    row = state.connection.execute("SELECT files FROM thumbnails WHERE path = ?", (path,))
    found = row.fetchone()
    return str(found[0]).splitlines() if found else []


def rows(state: State) -> Iterator[ThumbRow]:
    """Every row."""
    for path, sha256, fingerprint, status, files in state.connection.execute(
        "SELECT path, sha256, fingerprint, status, files FROM thumbnails"
    ):
        yield ThumbRow(path, sha256, fingerprint, status, tuple(str(files).splitlines()))


def forget(state: State, paths: Iterable[str]) -> None:
    """Drop the rows of ``paths`` (inside the caller's transaction)."""
    state.connection.executemany(
        "DELETE FROM thumbnails WHERE path = ?", ((path,) for path in paths)
    )
