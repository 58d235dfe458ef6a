"""The report as text (a terminal, a CI log), Markdown (an issue, a CI summary) and JSON.

The JSON is the scan's contract JSON (:func:`mirror.output.scan.scan_json`)
with each URL's status as the report sees it (``ok``/``broken`` after
``--check``) and the report's own parts added. The HTML page is in
:mod:`mirror.output.report_html`.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from mirror.keep.db import timestamp
from mirror.models import Probe
from mirror.output import files as outfile
from mirror.output.fetch import write_plan
from mirror.output.rewrite import write_rewrite
from mirror.output.scan import local_refs, places, scan_json
from mirror.scanner.edit import unified_diff
from mirror.stages.report import STATUSES, Report
from mirror.wording import counted, ljust, rjust, width

HOST_COLUMNS = ("host", "refs", "urls", *STATUSES)
_COLOURS = {"mirrored": "32", "ok": "32", "pending": "33", "failed": "31", "broken": "31"}


def use_colour(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return "NO_COLOR" not in environ and stream.isatty()


def host_columns(report: Report) -> list[str]:
    """The host table's header: a published column once publish.remote is set."""
    return [*HOST_COLUMNS, *(["published"] if report.publish_remote else [])]


def host_rows(report: Report) -> list[list[str]]:
    """The host table's cells, shared by every format."""
    published = bool(report.publish_remote)
    return [
        [
            h.host or "(no host)", str(h.refs), str(h.urls),
            *(str(h.statuses[s]) for s in STATUSES), *([str(h.published)] if published else []),
        ]
        for h in report.hosts()
    ]  # fmt: skip


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return counted(size, "byte")


def headline(report: Report) -> list[str]:
    """The totals, as sentences."""
    c = report.counts()
    lines = [
        f"{counted(c['posts'], 'post')}, {counted(c['refs'], 'image reference')} to"
        f" {counted(c['urls'], 'distinct URL')} on {counted(c['hosts'], 'host')}"
        f"{local_refs(c['local_refs'])}; {counted(c['repaired_refs'], 'reference')} repaired,"
        f" {counted(c['unreadable'], 'unreadable post')}.",
        "URLs: " + ", ".join(f"{c[s]} {s}" for s in STATUSES) + ".",
        f"Mirrored: {size_text(c['bytes_mirrored'])}."
        + (
            f" To fetch: {size_text(c['bytes_to_fetch'])} where the servers said."
            if report.checked
            else " Not checked: --check asks each URL not mirrored yet whether it answers."
        ),
    ]
    return lines


def check_detail(probe: Probe | None) -> str:
    """What the probe found, for a reachable URL: ``HTTP 200 image/jpeg 1.2 MB``."""
    if probe is None:
        return ""
    parts = [f"HTTP {probe.status}" if probe.status else "", probe.content_type or ""]
    if probe.size is not None:
        parts.append(size_text(probe.size))
    return " ".join(p for p in parts if p)


# -- text -----------------------------------------------------------------------


def write_text(report: Report, out: TextIO, *, colour: bool = False, quiet: bool = False) -> None:
    def paint(text: str, status: str) -> str:
        return f"\033[{_COLOURS[status]}m{text}\033[0m" if colour and status in _COLOURS else text

    out.write("\n".join(headline(report)) + "\n")
    if not quiet:
        out.write("\nHosts:\n")
        table = _aligned([host_columns(report), *host_rows(report)], numeric_from=1)
        out.write("".join(f"  {line}\n" for line in table))
        if report.repaired:
            out.write(f"\nRepaired URLs ({counted(len(report.repaired), 'reference')}):\n")
            for ref in report.repaired:
                out.write(f"  {ref.post}:{ref.line}  {ref.raw}\n")
                out.write(f"      -> {ref.url}  ({'; '.join(ref.repairs)})\n")
        checked = [u for u in report.urls if u.status == "ok"]
        if checked:
            out.write(f"\nReachable, to fetch ({len(checked)}):\n")
            for url in checked:
                out.write(f"  {paint('ok', 'ok')}  {url.url}  {check_detail(url.probe)}\n")
    if report.problems:
        out.write(f"\nFailed or broken ({len(report.problems)}):\n")
        width = max(len(u.status) for u in report.problems)
        for url in report.problems:
            status = paint(f"{url.status:<{width}}", url.status)
            out.write(f"  {status}  {url.url}\n")
            out.write(f"  {'':<{width}}  {url.error}; used by {places(url.uses)}\n")
            if url.next_try is not None:
                out.write(
                    f"  {'':<{width}}  backup tries it again from {timestamp(url.next_try)}\n"
                )
    if report.scan.unreadable:
        out.write(f"\nPosts that could not be read ({len(report.scan.unreadable)}):\n")
        for post in report.scan.unreadable:
            out.write(f"  {post.post}: {'; '.join(post.problems)}\n")
    if not quiet:
        out.write("\nWhat migrate would do (--format md shows the diff):\n")
        out.write(_indented(plan_text(report, diff=False)))


def _aligned(rows: list[list[str]], *, numeric_from: int) -> list[str]:
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            rjust(cell, columns) if i >= numeric_from else ljust(cell, columns)
            for i, (cell, columns) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def _indented(text: str) -> str:
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(True))


def plan_text(report: Report, *, diff: bool) -> str:
    """The fetch plan and the rewrite's summary, as migrate --dry-run prints them."""
    buffer = io.StringIO()
    write_plan(report.fetch, buffer, diff=diff)
    write_rewrite(report.rewrite, buffer, diff=False)
    return buffer.getvalue()


def diffs(report: Report) -> str:
    """The unified diff of every post the rewrite would change."""
    return "".join(unified_diff(c.post, c.before, c.after) for c in report.rewrite.changed)


# -- Markdown -------------------------------------------------------------------


def write_markdown(report: Report, out: TextIO) -> None:
    out.write("# Image report\n\n")
    out.write("".join(f"- {_md_text(line)}\n" for line in headline(report)))
    out.write("\n## Hosts\n\n")
    out.write(_md_table(host_columns(report), host_rows(report), numeric_from=1))
    if report.problems:
        out.write(f"\n## Failed or broken ({len(report.problems)})\n\n")
        rows = [
            [u.status, _md_code(u.url), _md_text(u.error or ""), _md_text(places(u.uses))]
            for u in report.problems
        ]
        out.write(_md_table(["status", "URL", "reason", "used by"], rows))
    checked = [u for u in report.urls if u.status == "ok"]
    if checked:
        out.write(f"\n## Reachable, to fetch ({len(checked)})\n\n")
        rows = [[_md_code(u.url), _md_text(check_detail(u.probe))] for u in checked]
        out.write(_md_table(["URL", "answer"], rows))
    if report.repaired:
        out.write(f"\n## Repaired URLs ({counted(len(report.repaired), 'reference')})\n\n")
        rows = [
            [
                _md_code(f"{r.post}:{r.line}"),
                _md_code(r.raw),
                _md_code(r.url),
                _md_text("; ".join(r.repairs)),
            ]
            for r in report.repaired
        ]
        out.write(_md_table(["where", "as written", "repaired", "repairs"], rows))
    if report.scan.unreadable:
        out.write(f"\n## Posts that could not be read ({len(report.scan.unreadable)})\n\n")
        for post in report.scan.unreadable:
            out.write(f"- {_md_code(post.post)}: {_md_text('; '.join(post.problems))}\n")
    out.write("\n## What migrate would do\n\n")
    out.write(_fenced(plan_text(report, diff=bool(report.rewrite.changed)), "text"))
    if report.rewrite.changed:
        out.write("\n" + _fenced(diffs(report), "diff"))


def _md_table(header: list[str], rows: list[list[str]], *, numeric_from: int | None = None) -> str:
    aligns = [
        "---:" if numeric_from is not None and i >= numeric_from else "---"
        for i in range(len(header))
    ]
    lines = [header, aligns, *rows]
    return "".join("| " + " | ".join(cells) + " |\n" for cells in lines)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<|])")


def _md_text(text: str) -> str:
    """Text from posts and servers, inert in Markdown (no markup, no HTML, no table break)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _md_code(text: str) -> str:
    """A code span that holds any text: a longer run of backticks than the text has."""
    text = " ".join(text.split()).replace("|", "\\|")
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _fenced(text: str, info: str) -> str:
    """A fenced block longer than any backtick run inside (posts hold fences of their own)."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{info}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}\n"


# -- JSON -----------------------------------------------------------------------


def report_json(report: Report) -> dict[str, Any]:
    """The contract's JSON (schema 1) with the report's statuses, hosts, plan and rewrite."""
    doc = scan_json(report.scan, report.records)
    by_url = {u.url: u for u in report.urls}
    for entry in doc["urls"]:
        url = by_url[entry["url"]]
        entry["status"] = url.status
        entry["error"] = url.error
        entry["size"] = url.size
        entry["state"] = url.record.status if url.record is not None else None
        entry["check"] = _probe_json(url.probe)
        entry["used_by"] = [f"{r.post}:{r.line}" for r in url.uses]
        entry["next_attempt"] = timestamp(url.next_try) if url.next_try is not None else None
    doc["checked"] = report.checked
    doc["summary"] = report.counts()
    doc["hosts"] = []
    for h in report.hosts():
        row: dict[str, object] = {"host": h.host, "refs": h.refs, "urls": h.urls}
        row.update((status, h.statuses[status]) for status in STATUSES)
        if report.publish_remote:
            row["published"] = h.published
        doc["hosts"].append(row)
    if report.publish_remote:
        doc["publish_remote"] = report.publish_remote
    rewrite = report.rewrite
    doc["migrate"] = {
        "fetch": list(report.fetch.todo),
        "already_mirrored": report.fetch.already,
        "rewrite": {
            "target": rewrite.target,
            "base": rewrite.base,
            "posts": [
                {
                    "post": c.post,
                    "refs": len(c.edits),
                    "diff": unified_diff(c.post, c.before, c.after),
                }
                for c in rewrite.changed
            ],
            "left_alone": [
                {"post": x.ref.post, "line": x.ref.line, "url": x.ref.url, "reason": x.reason}
                for x in rewrite.left_alone
            ],
            "failed": [{"post": f.post, "reason": f.reason} for f in rewrite.failed],
        },
    }
    return doc


def _probe_json(probe: Probe | None) -> dict[str, Any] | None:
    if probe is None:
        return None
    return {
        "reachable": probe.reachable,
        "http_status": probe.status,
        "content_type": probe.content_type,
        "size": probe.size,
        "method": probe.method,
        "final_url": probe.final_url,
        "error": probe.error,
        "attempts": probe.attempts,
    }


def write_json_file(report: Report, path: Path) -> None:
    """Write the JSON to ``path`` (see :mod:`mirror.output.files`)."""
    text = json.dumps(report_json(report), ensure_ascii=False, indent=2)
    outfile.write(path, text.encode() + b"\n")
