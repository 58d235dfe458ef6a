"""The revert stage: undo the rewrite runs of the journal, newest first.

Byte-exact where a post is as the rewrite left it; else edit by edit: each
rewritten URL still standing as the rewrite wrote it is put back, wherever
the text around it moved or changed. A run with an edit left undone stays
open, so a later revert finishes it. Nothing here touches the network or
pixels: a revert must work when every host and library beyond the standard
one is gone (the import contract in the tests keeps it so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mirror.keep import journal
from mirror.keep.journal import sha256
from mirror.keep.postfile import Unreadable, read_post, write_post
from mirror.keep.site import Site
from mirror.models import Edit
from mirror.scanner.edit import apply_edits, locate_written, shifted_starts
from mirror.scanner.post import scan_post

RevertOutcome = Literal["restored", "partial", "unchanged", "not reverted"]
_INCOMPLETE: tuple[RevertOutcome, ...] = ("partial", "not reverted")  # the run stays open


@dataclass(frozen=True, slots=True)
class PostRevert:
    """What revert did to one post of one run."""

    run_id: int
    post: str
    outcome: RevertOutcome  # unchanged: it was already as before the run
    undone: int  # edits undone, by this revert or an earlier one
    total: int
    reason: str | None = None  # what was not reverted, and why
    newly: tuple[int, ...] = ()  # the edits (indexes) this revert undoes


@dataclass(frozen=True, slots=True)
class PostBytes:
    post: str
    before: bytes
    after: bytes


@dataclass(frozen=True, slots=True)
class RevertResult:
    dry_run: bool
    runs: tuple[journal.JournalRun, ...]  # undone (or, under a dry run, to undo), newest first
    posts: tuple[PostRevert, ...]
    changes: tuple[PostBytes, ...]  # each post's bytes on disk and after all its runs' undoing

    @property
    def incomplete(self) -> tuple[PostRevert, ...]:
        return tuple(p for p in self.posts if p.outcome in _INCOMPLETE)


def revert(site: Site, *, dry_run: bool = False) -> RevertResult:
    """Undo every rewrite run not reverted yet, newest first.

    A run stays open while an edit of it is left undone (its post unreadable,
    unwritable, or its rewritten URL replaced): a later revert tries again.
    """
    config = site.config
    keys = frozenset(k.lower() for k in config.site.front_matter_keys)
    state = site.read_state if dry_run else site.state
    if state is None:  # a dry run before anything was recorded
        return RevertResult(dry_run, (), (), ())
    runs = journal.open_runs(state)
    on_disk: dict[str, bytes | Unreadable] = {}
    current: dict[str, bytes] = {}  # each post as the runs undone so far leave it
    reverts = []
    for run in runs:
        for entry in run.posts:
            if entry.post not in on_disk:
                on_disk[entry.post] = read_post(config.site.root / entry.post)
            data = current.get(entry.post, on_disk[entry.post])
            if isinstance(data, Unreadable):
                undone, total = len(entry.undone), len(entry.edits)
                reverts.append(
                    PostRevert(run.id, entry.post, "not reverted", undone, total, data.reason)
                )
                continue
            outcome, current[entry.post] = _undo(run.id, entry, data, keys)
            reverts.append(outcome)
    changes = tuple(
        PostBytes(post, before, current[post])
        for post, before in on_disk.items()
        if isinstance(before, bytes) and current.get(post, before) != before
    )
    if not dry_run:
        unwritten = {
            c.post: problem
            for c in changes
            if (problem := write_post(config.site.root / c.post, c.before, c.after))
        }
        reverts = [_unwritten(r, unwritten.get(r.post)) for r in reverts]
        for run in runs:
            mine = [r for r in reverts if r.run_id == run.id]
            journal.mark_undone(
                state,
                run.id,
                [(e.id, _note(r), r.newly) for e, r in zip(run.posts, mine, strict=True)],
                finished=not any(r.outcome in _INCOMPLETE for r in mine),
            )
    return RevertResult(dry_run, tuple(runs), tuple(reverts), changes)


def _undo(
    run_id: int, entry: journal.JournalPost, data: bytes, keys: frozenset[str]
) -> tuple[PostRevert, bytes]:
    """Undo one post's edits of one run in ``data``: all of them, or those still standing."""
    total, pending, post = len(entry.edits), entry.pending, entry.post
    digest = sha256(data)
    if digest == entry.original_sha256:
        return PostRevert(run_id, post, "unchanged", total, total, newly=pending), data
    if digest == entry.result_sha256:  # unchanged since the rewrite
        return PostRevert(run_id, post, "restored", total, total, newly=pending), entry.original
    # The post as the rewrite would have left it had it made only the edits
    # still to undo: those an earlier revert undid read as before the run.
    edits = [entry.edits[i] for i in pending]
    rewritten = apply_edits(entry.original, edits)
    starts = shifted_starts(edits)
    found = scan_post(data, post, keys).refs
    places = locate_written(rewritten, data, list(zip(starts, edits, strict=True)), found)
    undo, newly, gone = [], [], []
    for i, edit, start, at in zip(pending, edits, starts, places, strict=True):
        if at is None:
            gone.append(f"line {_line(rewritten, start)} ({edit.new})")
        else:
            undo.append(Edit(at, edit.new, edit.old, edit.old))
            newly.append(i)
    restored = apply_edits(data, undo)
    undone = len(entry.undone) + len(newly)
    if not gone:  # edited elsewhere, but every rewritten URL still stood and is back
        return PostRevert(run_id, post, "restored", total, total, newly=tuple(newly)), restored
    more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
    reason = (
        f"the post was edited after the rewrite: {len(gone)} of {total} rewritten URLs"
        f" no longer stand as the rewrite left them: {', '.join(gone[:5])}{more}"
    )
    outcome: RevertOutcome = "partial" if undone else "not reverted"
    return PostRevert(run_id, post, outcome, undone, total, reason, tuple(newly)), restored


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _unwritten(outcome: PostRevert, problem: str | None) -> PostRevert:
    if problem is None or outcome.outcome == "unchanged":
        return outcome
    earlier = outcome.undone - len(outcome.newly)  # by an earlier revert: still undone
    return PostRevert(outcome.run_id, outcome.post, "not reverted", earlier, outcome.total, problem)


def _note(outcome: PostRevert) -> str:
    return outcome.outcome + (f": {outcome.reason}" if outcome.reason else "")
