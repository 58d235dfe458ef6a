"""What ``publish`` prints (one line per file sent or failed, then a summary) and
its ``--json FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from mirror.output import files as outfile
from mirror.stages.publish import PublishResult
from mirror.wording import counted


def summary(result: PublishResult) -> dict[str, int]:
    return {
        "uploaded": len(result.uploaded),
        "replaced": sum(1 for u in result.uploaded if u.replaced),
        "thumbnails": sum(1 for u in result.uploaded if u.thumbnail),
        "bytes": result.bytes,
        "already": result.already,
        "failed": len(result.failed),
    }


def summary_line(result: PublishResult) -> str:
    counts = summary(result)
    verb = "would upload" if result.dry_run else "uploaded"
    interrupted = "interrupted; " if result.interrupted else ""
    fetched_first = (
        f" and the {counted(result.after_fetch, 'image')} fetched first"
        if result.after_fetch
        else ""
    )
    return (
        f"publish: {interrupted}{verb} {counted(counts['uploaded'], 'file')}"
        f" ({counts['bytes'] / 1e6:.1f} MB; {counts['replaced']} replaced){fetched_first}"
        f" to {result.remote}, {counts['already']} already published, {counts['failed']} failed"
    )


def write_publish(result: PublishResult, out: TextIO, *, quiet: bool = False) -> None:
    if not quiet:
        verb = "would upload" if result.dry_run else "uploaded"
        for upload in result.uploaded:
            what = "replaced" if upload.replaced else verb
            out.write(f"{what}: {upload.path} ({upload.size} bytes)\n")
        for url in result.purged:
            out.write(f"purge: {url}\n")
    for failure in result.failed:
        out.write(f"failed: {failure.path}: {failure.reason}\n")
    if result.purge_problem:
        out.write(f"publish: {result.purge_problem}\n")
    out.write(summary_line(result) + "\n")


def document(result: PublishResult) -> dict[str, object]:
    """The run as a JSON value (``publish --json``; ``backup --json``'s ``publish``)."""
    return {
        "remote": result.remote,
        "dry_run": result.dry_run,
        "interrupted": result.interrupted,
        "summary": summary(result),
        "uploaded": [
            {"path": u.path, "size": u.size, "replaced": u.replaced, "thumbnail": u.thumbnail}
            for u in result.uploaded
        ],
        "failed": [{"path": f.path, "error": f.reason} for f in result.failed],
        "purged": list(result.purged),
        "purge_problem": result.purge_problem,
    }


def write_publish_json(result: PublishResult, path: Path, *, exit_code: int) -> None:
    import json  # only --json needs it

    body = {"schema": 1, "command": "publish", "exit_code": exit_code, **document(result)}
    outfile.write(path, json.dumps(body, indent=2, ensure_ascii=False).encode() + b"\n")
