"""The ``published`` table: which mirror files are on which remote, with which bytes.

``publish`` writes a row only after the remote's own listing confirmed the
upload (size and, where the remote has one, a hash it computed itself), so a
row is a fact about the remote, not a hope. ``rewrite --to cdn`` reads the
rows: a reference goes to ``cdn_base`` only when its file is published with
the bytes the mirror holds now. A file replaced in the mirror (a refreshed
image, a rebuilt thumbnail) no longer matches its row and is uploaded again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from mirror.keep.db import Migration, sqlite_errors, timestamp

if TYPE_CHECKING:  # the state applies this module's migrations: imported the other way
    from mirror.keep.state import State

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0009_create_published",
        """
        CREATE TABLE published (
            target       TEXT NOT NULL,     -- publish.remote, as configured
            path         TEXT NOT NULL,     -- posix, relative to mirror.dir
            size         INTEGER NOT NULL CHECK (size >= 0),
            sha256       TEXT NOT NULL,     -- of the local file that was uploaded
            remote_hash  TEXT,              -- "md5:...", as the remote listed it; NULL: none
            published_at TEXT NOT NULL,
            PRIMARY KEY (target, path)
        );
        """,
    ),
)


@dataclass(frozen=True, slots=True)
class PublishedRow:
    path: str
    size: int
    sha256: str
    remote_hash: str | None


def rows(state: State | None, target: str) -> dict[str, PublishedRow]:
    """Every file published to ``target``, by path; empty without a state."""
    if state is None or not target:
        return {}
    with sqlite_errors(state.path):
        found = state.connection.execute(
            "SELECT path, size, sha256, remote_hash FROM published WHERE target = ?", (target,)
        )
        return {path: PublishedRow(path, size, sha, rh) for path, size, sha, rh in found}


def by_target(state: State | None) -> Mapping[str, int]:
    """How many files each target holds (for ``report``)."""
    if state is None:
        return {}
    with sqlite_errors(state.path):
        found = state.connection.execute("SELECT target, count(*) FROM published GROUP BY target")
        return {target: count for target, count in found}


def record(state: State, target: str, confirmed: Iterable[PublishedRow]) -> None:
    """Remember files the remote confirmed (one transaction for them all)."""
    stamp = timestamp()
    with state.transaction():
        state.connection.executemany(
            """
            INSERT INTO published (target, path, size, sha256, remote_hash, published_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (target, path) DO UPDATE SET
                size = excluded.size, sha256 = excluded.sha256,
                remote_hash = excluded.remote_hash, published_at = excluded.published_at
            """,
            ((target, r.path, r.size, r.sha256, r.remote_hash, stamp) for r in confirmed),
        )
