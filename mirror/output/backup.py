"""What ``backup`` prints and writes: made for logs and for schedulers.

One line per event as it happens (``-q``: only failures and sources gone),
then one summary line. ``--json FILE`` writes the same run as JSON.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from mirror.keep.db import timestamp
from mirror.models import HostEvent
from mirror.output import files as outfile
from mirror.output.progress import Progress
from mirror.output.publish import document as publish_document
from mirror.output.publish import summary_line as publish_summary_line
from mirror.output.scan import places
from mirror.stages.backup import BackupResult, Event
from mirror.wording import counted

PROBLEMS = frozenset(
    {"failed", "gone", "publish-failed", "missing", "changed on disk", "unrepairable"}
)


def write_event(event: Event, out: TextIO, *, quiet: bool) -> None:
    if quiet and event.kind not in PROBLEMS:
        return
    used = f"; used by {places(event.refs)}" if event.refs else ""
    out.write(f"{event.kind}: {event.url}: {event.detail}{used}\n")
    out.flush()  # a log tailed while the job runs shows it now


def write_host_event(event: HostEvent, out: TextIO, progress: Progress, *, quiet: bool) -> None:
    """``host: <host>: <what>``: a host down (a problem, kept with -q) or rate-limited;
    the bar (on a terminal) names it too."""
    progress.host(event)
    if quiet and event.kind != "down":
        return
    out.write(f"host: {event.host}: {event.detail}\n")
    out.flush()


def summary(result: BackupResult) -> dict[str, int | float]:
    fetched, guarded = result.fetched, result.guarded
    new = [o for o in fetched.mirrored if o.replaced is None]
    thumbs = fetched.thumbs.done if fetched.thumbs is not None else ()
    return {
        "new": len(new),
        "changed": len(fetched.mirrored) - len(new),
        "unchanged": len(fetched.unchanged),  # re-checked, still current
        "already": fetched.already,  # not re-checked: mirrored before, or the mirror's own link
        "failed": len(fetched.failed),
        "waiting": len(fetched.waiting),  # failed before, not due for another try yet
        "not_tried": fetched.not_tried,  # left when the run stopped early
        "recheck_failed": len(fetched.recheck_failed),
        "gone": len(result.gone),
        "pruned": len(result.pruned),
        "missing": guarded.having("missing"),  # files the posts use, found so this run
        "changed_on_disk": guarded.having("changed on disk"),
        "repaired": guarded.repaired,
        "unrepairable": len(guarded.unrepairable),
        "not_repaired": guarded.not_tried,  # the run stopped before their turn
        "files_checked": guarded.checked,  # a stat each
        "files_hashed": guarded.hashed,  # by the re-hash schedule, or all with --verify
        "thumbnails": sum(1 for m in thumbs if m.result.status == "made"),
        "thumbnails_failed": sum(1 for m in thumbs if m.result.status == "failed"),
        "bytes": sum(o.size for o in fetched.mirrored),
        "seconds": round(fetched.elapsed, 1),
    }


def write_summary_line(result: BackupResult, out: TextIO) -> None:
    counts = summary(result)
    fetched = result.fetched
    stop = fetched.stopped or result.guarded.stopped  # the guard's repairs stop alike
    stopped = "interrupted; " if fetched.interrupted else "stopped; " if stop else ""
    waiting = ""
    if fetched.waiting:
        first = min(fetched.next_tries[url] for url in fetched.waiting)
        waiting = f" ({len(fetched.waiting)} more wait to be tried again, from {timestamp(first)})"
    if result.published is not None:  # its own line before the summary, which stays last
        out.write(f"{publish_summary_line(result.published)}\n")
    out.write(
        f"backup: {stopped}{counts['new']} new ({counts['bytes'] / 1e6:.1f} MB),"
        f" {counts['changed']} changed, {counts['unchanged']} unchanged,"
        f" {counts['already']} already mirrored,"
        f" {counts['failed']} failed{waiting},"
        f" {counted(int(counts['recheck_failed']), 're-check')} failed"
        f" ({counted(int(counts['gone']), 'source')} newly gone), {counts['pruned']} pruned,"
        f" {counted(int(counts['thumbnails']), 'thumbnail')}, in {counts['seconds']:.1f} s\n"
    )
    if result.guarded.problems or result.guarded.every:  # else in the JSON only
        out.write(
            f"backup: mirror: {counted(result.guarded.checked, 'file')} checked"
            f" ({counts['files_hashed']} re-hashed, {result.guarded.hashed_bytes / 1e6:.1f} MB),"
            f" {counts['missing']} missing, {counts['changed_on_disk']} changed on disk,"
            f" {counts['repaired']} repaired, {counts['unrepairable']} unrepairable\n"
        )
    if fetched.stopped is not None:
        left = counted(fetched.not_tried, "image")
        out.write(f"backup: stopped: {fetched.stopped.message}; {left} not tried yet\n")
    elif result.guarded.stopped is not None:
        left = counted(result.guarded.not_tried, "file")
        out.write(f"backup: stopped: {result.guarded.stopped.message}; {left} not repaired yet\n")
    if result.prune_skipped:
        out.write(f"backup: {result.prune_skipped}\n")


def write_backup_json(result: BackupResult, path: Path, *, exit_code: int) -> None:
    """The run as JSON (see :mod:`mirror.output.files`: a monitor never reads half a file)."""
    uses = {
        url: [f"{r.post}:{r.line}" for r in refs] for url, refs in result.fetched.uses().items()
    }
    gone = {o.url for o in result.gone}
    fetched = result.fetched

    def next_try(url: str) -> str | None:
        when = fetched.next_tries.get(url)
        return timestamp(when) if when is not None else None

    document = {
        "schema": 1,
        "command": "backup",
        "exit_code": exit_code,
        "interrupted": fetched.interrupted,
        "stopped": asdict(stop) if (stop := fetched.stopped or result.guarded.stopped) else None,
        "summary": summary(result),
        "failed": [
            {"url": o.url, "error": o.error, "posts": uses[o.url], "next_attempt": next_try(o.url)}
            for o in fetched.failed
        ],
        "waiting": [  # failed before, not tried this run
            {
                "url": url,
                "error": record.last_error,
                "failures": record.failures,
                "last_attempt": timestamp(record.last_checked) if record.last_checked else None,
                "next_attempt": next_try(url),
                "posts": uses[url],
            }
            for url, record in fetched.waiting.items()
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
        "files": [  # files the posts use found missing or changed, and their repair
            {
                "path": p.path,
                "urls": list(p.urls),
                "problem": p.problem,
                "detail": p.detail,
                "repaired": p.repair in ("same", "other"),
                # "same" bytes, "other" bytes, "failed", or "not tried" (the run stopped)
                "repair": p.repair,
                "repair_detail": p.repair_detail,
                "earlier_sha256": p.earlier_sha256,
                "posts": [f"{r.post}:{r.line}" for r in p.refs],
            }
            for p in result.guarded.problems
        ],
    }
    import json  # only --json needs it

    outfile.write(path, json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n")
