"""What ``backup`` prints and writes: made for logs and for schedulers.

One line per event as it happens (``-q``: only failures and sources gone),
then one summary line. ``--json FILE`` writes the same run as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from mirror.output import files as outfile
from mirror.output.publish import document as publish_document
from mirror.output.publish import summary_line as publish_summary_line
from mirror.stages.backup import BackupResult, Event
from mirror.wording import counted

PROBLEMS = frozenset({"failed", "gone", "publish-failed"})


def write_event(event: Event, out: TextIO, *, quiet: bool) -> None:
    if quiet and event.kind not in PROBLEMS:
        return
    out.write(f"{event.kind}: {event.url}: {event.detail}\n")
    out.flush()  # a log tailed while the job runs shows it now


def summary(result: BackupResult) -> dict[str, int | float]:
    fetched = result.fetched
    new = [o for o in fetched.mirrored if o.replaced is None]
    thumbs = fetched.thumbs.done if fetched.thumbs is not None else ()
    return {
        "new": len(new),
        "changed": len(fetched.mirrored) - len(new),
        "unchanged": len(fetched.unchanged),  # re-checked, still current
        "already": fetched.already,  # not re-checked: mirrored before, or the mirror's own link
        "failed": len(fetched.failed),
        "recheck_failed": len(fetched.recheck_failed),
        "gone": len(result.gone),
        "pruned": len(result.pruned),
        "thumbnails": sum(1 for m in thumbs if m.result.status == "made"),
        "thumbnails_failed": sum(1 for m in thumbs if m.result.status == "failed"),
        "bytes": sum(o.size for o in fetched.mirrored),
        "seconds": round(fetched.elapsed, 1),
    }


def write_summary_line(result: BackupResult, out: TextIO) -> None:
    counts = summary(result)
    interrupted = "interrupted; " if result.fetched.interrupted else ""
    if result.published is not None:  # its own line before the summary, which stays last
        out.write(f"{publish_summary_line(result.published)}\n")
    out.write(
        f"backup: {interrupted}{counts['new']} new ({counts['bytes'] / 1e6:.1f} MB),"
        f" {counts['changed']} changed, {counts['unchanged']} unchanged,"
        f" {counts['already']} already mirrored,"
        f" {counts['failed']} failed, {counted(int(counts['recheck_failed']), 're-check')} failed"
        f" ({counted(int(counts['gone']), 'source')} newly gone), {counts['pruned']} pruned,"
        f" {counted(int(counts['thumbnails']), 'thumbnail')}, in {counts['seconds']:.1f} s\n"
    )
    if result.prune_skipped:
        out.write(f"backup: {result.prune_skipped}\n")


def write_backup_json(result: BackupResult, path: Path, *, exit_code: int) -> None:
    """The run as JSON (see :mod:`mirror.output.files`: a monitor never reads half a file)."""
    uses = {
        url: [f"{r.post}:{r.line}" for r in refs] for url, refs in result.fetched.scan.uses.items()
    }
    gone = {o.url for o in result.gone}
    document = {
        "schema": 1,
        "command": "backup",
        "exit_code": exit_code,
        "interrupted": result.fetched.interrupted,
        "summary": summary(result),
        "failed": [
            {"url": o.url, "error": o.error, "posts": uses[o.url]} for o in result.fetched.failed
        ],
        "recheck_failed": [  # the mirrored copy is kept
            {"url": o.url, "error": o.error, "newly_gone": o.url in gone, "posts": uses[o.url]}
            for o in result.fetched.recheck_failed
        ],
        "new": [{"url": o.url, "path": o.path, "size": o.size} for o in result.fetched.mirrored],
        "pruned": [
            {"path": p.path, "urls": list(p.urls), "moved_to_trash": p.moved} for p in result.pruned
        ],
        "prune_skipped": result.prune_skipped,
        # null when publish.remote is not set
        "publish": publish_document(result.published) if result.published else None,
        "publish_error": result.publish_error,
    }
    outfile.write(path, json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n")
