"""The rewrite journal: what each `rewrite` run changed, so `revert` can undo it.

Three tables (migration ``0003_create_rewrite_journal`` in ``mirror.keep.state``):
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
from typing import cast

from mirror.keep.state import State, timestamp
from mirror.models import Edit


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
