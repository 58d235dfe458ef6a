"""What rewrite, revert and verify print: diffs, summaries, and verify's JSON."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, TextIO

from mirror.output.scan import SCHEMA_VERSION
from mirror.scanner.edit import unified_diff
from mirror.stages.rewrite import LeftAlone, RevertResult, RewriteResult
from mirror.stages.verify import VerifyResult
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


def write_verify(result: VerifyResult, out: TextIO) -> None:
    for problem in result.problems:
        out.write(f"{problem.where}: {problem.detail}\n")
    unreadable = len(result.scan.unreadable)
    out.write(
        f"Checked {counted(result.files, 'mirrored file')} and"
        f" {counted(len(result.rewritten), 'rewritten reference')}:"
        f" {counted(len(result.problems), 'problem')}"
        + (f", {counted(unreadable, 'post')} unreadable" if unreadable else "")
        + ".\n"
    )


def verify_json(result: VerifyResult) -> dict[str, Any]:
    """The contract's JSON shape: ``refs`` are the rewritten references checked."""
    statuses = Counter(r.status for r in result.records.values())
    broken = {(p.where, p.url) for p in result.problems if p.kind == "reference"}
    return {
        "schema": SCHEMA_VERSION,
        "refs": [
            {
                "post": r.post,
                "line": r.line,
                "kind": r.kind,
                "raw": r.raw,
                "url": r.url,
                "ok": (f"{r.post}:{r.line}", r.raw) not in broken,
            }
            for r in result.rewritten
        ],
        "urls": [
            {
                "url": r.url,
                "status": r.status,
                "path": r.path if r.status == "mirrored" else None,
                "error": r.last_error if r.status == "failed" else None,
            }
            for r in result.records.values()
        ],
        "problems": [
            {"kind": p.kind, "where": p.where, "url": p.url, "detail": p.detail}
            for p in result.problems
        ],
        "summary": {
            "posts": len(result.scan.posts),
            "refs": len(result.rewritten),
            "urls": len(result.records),
            "pending": statuses["pending"],
            "mirrored": statuses["mirrored"],
            "failed": statuses["failed"],
            "files_checked": result.files,
            "problems": len(result.problems),
            "unreadable": len(result.scan.unreadable),
        },
    }


def write_verify_json(result: VerifyResult, out: TextIO) -> None:
    json.dump(verify_json(result), out, ensure_ascii=False, indent=2)
    out.write("\n")
