"""What ``revert`` prints: the diff of a dry run, then what was put back and what was not."""

from __future__ import annotations

from collections import Counter
from typing import TextIO

from mirror.scanner.edit import unified_diff
from mirror.stages.revert import RevertResult
from mirror.wording import counted


def write_revert(result: RevertResult, out: TextIO) -> None:
    if result.dry_run:
        for change in result.changes:
            out.write(unified_diff(change.post, change.before, change.after))
    if not result.runs:
        out.write("Nothing to revert: every rewrite run in the journal is reverted already.\n")
        return
    counts = Counter(p.outcome for p in result.posts)
    verb = "Would revert" if result.dry_run else "Reverted"
    runs = ", ".join(f"{r.id} ({r.started_at}, to {r.target})" for r in result.runs)
    out.write(
        f"{verb} rewrite run{'s' * (len(result.runs) != 1)} {runs}:"
        f" {counted(counts['restored'], 'post')} restored, {counts['partial']} partially,"
        f" {counts['not reverted']} not reverted, {counts['unchanged']} already as before.\n"
    )
    if result.incomplete:
        out.write("Not fully reverted:\n")
        for post in result.incomplete:
            out.write(
                f"  {post.post} (run {post.run_id}, {post.undone} of"
                f" {counted(post.total, 'edit')} undone):"
                f" {post.reason}\n"
            )
