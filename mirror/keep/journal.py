"""The rewrite journal: what each `rewrite` run changed, so `revert` can undo it.

Three tables (:data:`MIGRATIONS`, applied with the state's own):
a run (id, time, target, base URL, when reverted), per post of a run the
SHA-256 of the file before and after and the file before itself, and per post
its edits (byte offset in the file before, old text, new text, when revert
undid it). A post unchanged since the run gets its old bytes back; in a post
edited since, each rewritten URL is looked for where it now stands (see
``rewrite.locate_written``). A run is marked reverted once every edit of it
is undone: until then, each ``revert`` tries the edits still standing out.

The stage writes a post's rows and commits them *before* it renames the new
post into place: after a crash the journal may name a rewrite that never
landed (revert then finds the original and does nothing) but never misses
one that did. Rows of a post whose write failed are deleted again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from mirror.keep.db import Migration, timestamp
from mirror.models import Edit

if TYPE_CHECKING:  # the state applies this module's migrations: imported the other way
    from mirror.keep.state import State

MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0003_create_rewrite_journal",
        # What `rewrite` changed, so that `revert` can put every byte back
        # (mirror.keep.journal reads and writes these tables). Offsets are bytes.
        """
        CREATE TABLE rewrite_runs (
            -- AUTOINCREMENT: a run id is never reused, even after rows are deleted.
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at  TEXT NOT NULL,
            target      TEXT NOT NULL CHECK (target IN ('local', 'cdn')),
            base        TEXT NOT NULL,            -- the local_prefix or cdn_base used
            reverted_at TEXT                      -- set once revert has undone the run
        );
        CREATE TABLE rewrite_posts (
            id              INTEGER PRIMARY KEY,
            run_id          INTEGER NOT NULL REFERENCES rewrite_runs (id) ON DELETE CASCADE,
            post            TEXT NOT NULL,        -- posix, relative to the site root
            original_sha256 TEXT NOT NULL,        -- of the file before this run's edits
            result_sha256   TEXT NOT NULL,        -- of the file this run wrote
            original        BLOB NOT NULL,        -- the file before: revert's anchor
            reverted        TEXT,                 -- what revert did to this post
            UNIQUE (run_id, post)
        );
        CREATE TABLE rewrite_edits (
            post_id     INTEGER NOT NULL REFERENCES rewrite_posts (id) ON DELETE CASCADE,
            seq         INTEGER NOT NULL,         -- 0-based, in file order
            byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),  -- of old, in the original
            old         TEXT NOT NULL,            -- the bytes replaced (UTF-8)
            new         TEXT NOT NULL,            -- the bytes written in their place
            PRIMARY KEY (post_id, seq)
        );
        """,
    ),
    Migration(
        "0007_rewrite_edits_undone",
        # When revert undid the edit: a run whose post was edited since may be
        # undone in parts, and stays open until its last edit is undone.
        "ALTER TABLE rewrite_edits ADD COLUMN undone_at TEXT;",
    ),
)


@dataclass(frozen=True, slots=True)
class JournalPost:
    id: int
    post: str
    original_sha256: str
    result_sha256: str
    original: bytes
    edits: tuple[Edit, ...]  # sorted by start; starts are offsets in the original
    undone: frozenset[int]  # indexes into ``edits`` that an earlier revert undid

    @property
    def pending(self) -> tuple[int, ...]:
        """The indexes of the edits not undone yet."""
        return tuple(i for i in range(len(self.edits)) if i not in self.undone)


@dataclass(frozen=True, slots=True)
class JournalRun:
    id: int
    started_at: str
    target: str
    base: str
    posts: tuple[JournalPost, ...]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def begin_run(state: State, *, target: str, base: str) -> int:
    """Record a new run; its id."""
    with state.transaction():
        cursor = state.connection.execute(
            "INSERT INTO rewrite_runs (started_at, target, base) VALUES (?, ?, ?)",
            (timestamp(), target, base),
        )
    return cast(int, cursor.lastrowid)


def record_post(
    state: State, run_id: int, post: str, *, original: bytes, result: bytes, edits: Iterable[Edit]
) -> int:
    """Record one post's edits (committed on return); the row id, for :func:`forget_post`."""
    conn = state.connection
    with state.transaction():
        cursor = conn.execute(
            "INSERT INTO rewrite_posts (run_id, post, original_sha256, result_sha256, original)"
            " VALUES (?, ?, ?, ?, ?)",
            (run_id, post, sha256(original), sha256(result), original),
        )
        post_id = cast(int, cursor.lastrowid)
        conn.executemany(
            "INSERT INTO rewrite_edits (post_id, seq, byte_offset, old, new)"
            " VALUES (?, ?, ?, ?, ?)",
            ((post_id, seq, e.start, e.old, e.new) for seq, e in enumerate(edits)),
        )
    return post_id


def forget_post(state: State, post_id: int) -> None:
    """Drop a post's rows: its new bytes never reached the file."""
    with state.transaction():
        state.connection.execute("DELETE FROM rewrite_posts WHERE id = ?", (post_id,))


def forget_run_if_empty(state: State, run_id: int) -> bool:
    """Drop a run none of whose posts was written (nothing to revert); whether it was."""
    with state.transaction():
        cursor = state.connection.execute(
            "DELETE FROM rewrite_runs WHERE id = ?"
            " AND NOT EXISTS (SELECT 1 FROM rewrite_posts WHERE run_id = ?)",
            (run_id, run_id),
        )
    return cursor.rowcount > 0


def open_runs(state: State) -> list[JournalRun]:
    """The runs not reverted yet, newest first, with their posts that have edits to undo."""
    conn = state.connection
    runs = []
    for run_id, started, target, base in conn.execute(
        "SELECT id, started_at, target, base FROM rewrite_runs"
        " WHERE reverted_at IS NULL ORDER BY id DESC"
    ).fetchall():
        posts = []
        for post_id, post, original_sha, result_sha, original in conn.execute(
            "SELECT id, post, original_sha256, result_sha256, original FROM rewrite_posts"
            " WHERE run_id = ? ORDER BY post",
            (run_id,),
        ).fetchall():
            rows = conn.execute(
                "SELECT old, new, byte_offset, undone_at FROM rewrite_edits"
                " WHERE post_id = ? ORDER BY seq",
                (post_id,),
            ).fetchall()
            # `new` is the URL, or the URL in added double quotes (rewrite.edit_for),
            # and a URL written never holds a '"' (rewrite.base_problem, quote).
            edits = tuple(Edit(offset, old, new, new.strip('"')) for old, new, offset, _ in rows)
            undone = frozenset(seq for seq, row in enumerate(rows) if row[3] is not None)
            if len(undone) < len(edits):  # a post an earlier revert finished is left out
                posts.append(
                    JournalPost(post_id, post, original_sha, result_sha, original, edits, undone)
                )
        runs.append(JournalRun(run_id, started, target, base, tuple(posts)))
    return runs


def mark_undone(
    state: State, run_id: int, outcomes: Iterable[tuple[int, str, Iterable[int]]], *, finished: bool
) -> None:
    """Record what revert did to each post of a run (row id, note, indexes of the edits
    it undid); ``finished``: every edit of the run is undone now, the run is reverted."""
    conn = state.connection
    now = timestamp()
    with state.transaction():
        for post_id, note, undone in outcomes:
            conn.execute("UPDATE rewrite_posts SET reverted = ? WHERE id = ?", (note, post_id))
            conn.executemany(
                "UPDATE rewrite_edits SET undone_at = ? WHERE post_id = ? AND seq = ?",
                ((now, post_id, seq) for seq in undone),
            )
        if finished:
            conn.execute("UPDATE rewrite_runs SET reverted_at = ? WHERE id = ?", (now, run_id))
