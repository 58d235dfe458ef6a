"""What rewrite, revert and verify print: diffs, summaries, and verify's JSON."""

from __future__ import annotations

from collections import defaultdict
from typing import TextIO

from mirror.scanner.edit import unified_diff
from mirror.stages.rewrite import LeftAlone, RewriteResult
from mirror.wording import counted

_SHOWN = 5  # places listed per reason before "and N more"


def write_rewrite(
    result: RewriteResult, out: TextIO, *, verbose: bool = False, diff: bool = True
) -> None:
    """Under a dry run, a unified diff per post (unless not ``diff``); then the summary."""
    if result.dry_run and diff:
        for change in result.changed:
            out.write(unified_diff(change.post, change.before, change.after))
    verb = ("Interrupted: " if result.interrupted else "") + (
        "Would rewrite" if result.dry_run else "Rewrote"
    )
    posts = len(result.changed)
    out.write(
        f"{verb} {counted(result.rewritten, 'reference')} in {counted(posts, 'post')}"
        f" (to {result.target}: {result.base or '/'}/...); {len(result.left_alone)} left alone,"
        f" {counted(len(result.failed), 'post')} failed."
        + (f" Journal run {result.run_id}." if result.run_id is not None else "")
        + "\n"
    )
    for change in result.changed:
        if change.rescanned:
            out.write(f"  {change.post}: changed since the scan; rescanned before the edit\n")
    _left_alone(result.left_alone, out, verbose=verbose)
    if result.failed:
        out.write("Failed:\n")
        for failure in result.failed:
            out.write(f"  {failure.post}: {failure.reason}\n")


def interrupted_note(result: RewriteResult) -> str:
    """What a rewrite stopped by Ctrl-C left, and how to undo it."""
    written = len(result.changed)
    if result.dry_run or not written:
        return "interrupted; no post was rewritten"
    return (
        f"interrupted after rewriting {counted(written, 'post')} (journal run {result.run_id});"
        " `gallery-mirror revert` undoes them"
    )


def _left_alone(left: tuple[LeftAlone, ...], out: TextIO, *, verbose: bool) -> None:
    by_reason: dict[str, list[LeftAlone]] = defaultdict(list)
    for item in left:
        by_reason[item.reason].append(item)
    if not by_reason:
        return
    out.write("Left alone:\n")
    for reason, items in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.write(f"  {reason} ({len(items)})\n")
        shown = items if verbose else items[:_SHOWN]
        for item in shown:
            out.write(f"    {item.ref.post}:{item.ref.line}  {item.ref.raw}\n")
        if len(shown) < len(items):
            out.write(f"    and {len(items) - len(shown)} more (-v lists them all)\n")
