"""Renderers of a scan: the readable table and the contract's JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from mirror.keep.state import UrlRecord
from mirror.models import ImageRef, ScanResult
from mirror.stages.scan import summary_counts
from mirror.urls import host_of
from mirror.wording import counted, ljust, width

SCHEMA_VERSION = 1


def scan_json(result: ScanResult, records: Mapping[str, UrlRecord]) -> dict[str, Any]:
    """The contract's JSON; ``records`` is what the state knows of the URLs."""
    counts = summary_counts(result, records)
    uses = Counter(r.url for r in result.refs)
    return {
        "schema": SCHEMA_VERSION,
        "root": str(result.root),
        "globs": list(result.globs),
        "refs": [_ref_json(r) for r in result.refs],
        "local_refs": [_ref_json(r) for r in result.local_refs],
        "urls": [_url_json(url, records.get(url), uses[url]) for url in result.urls],
        "skipped": [
            {"post": s.post, "line": s.line, "raw": s.raw, "reason": s.reason}
            for s in result.skipped
        ],
        "problems": [
            {"post": p.post, "reason": reason} for p in result.unreadable for reason in p.problems
        ],
        "summary": counts,
    }


def _url_json(url: str, record: UrlRecord | None, uses: int) -> dict[str, Any]:
    status = "pending" if record is None else record.status
    return {
        "url": url,
        "status": status,
        "path": record.path if record is not None and status == "mirrored" else None,
        "error": record.last_error if record is not None and status == "failed" else None,
        "host": host_of(url),
        "refs": uses,
    }


def _ref_json(ref: ImageRef) -> dict[str, Any]:
    return {
        "post": ref.post,
        "line": ref.line,
        "column": ref.column,
        "kind": ref.kind,
        "raw": ref.raw,
        "url": ref.url,
        "start": ref.start,
        "end": ref.end,
        "repairs": list(ref.repairs),
        "context": ref.context,
    }


def write_json(result: ScanResult, records: Mapping[str, UrlRecord], out: TextIO) -> None:
    import json  # only --json needs it

    json.dump(scan_json(result, records), out, ensure_ascii=False, indent=2)
    out.write("\n")


def write_table(
    result: ScanResult, out: TextIO, *, quiet: bool = False, verbose: bool = False
) -> None:
    """``post:line:col  kind  url  (repairs)``: grep-friendly, one reference a line."""
    if not quiet:
        _rows(result.refs, out, "Image references")
        _rows(result.local_refs, out, "Site-relative references (listed, never fetched)")
        if verbose and result.skipped:
            out.write("Not references (skipped):\n")
            for s in result.skipped:
                raw = s.raw if len(s.raw) <= 80 else s.raw[:77] + "..."
                out.write(f"  {s.post}:{s.line}  {s.reason}: {raw}\n")
            out.write("\n")
        if result.unreadable:
            out.write("Posts that could not be read (fully):\n")
            for post in result.unreadable:
                for reason in post.problems:
                    out.write(f"  {post.post}: {reason}\n")
            out.write("\n")
    out.write(summary_line(result) + "\n")


def _rows(refs: tuple[ImageRef, ...], out: TextIO, title: str) -> None:
    if not refs:
        return
    out.write(f"{title}:\n")
    places = [f"{r.post}:{r.line}:{r.column}" for r in refs]
    columns = min(max(width(p) for p in places), 60)
    for place, ref in zip(places, refs, strict=True):
        line = f"  {ljust(place, columns)}  {ref.kind:<12}  {ref.url}"
        if ref.repairs:
            line += f"  (repaired: {'; '.join(ref.repairs)})"
        out.write(line + "\n")
    out.write("\n")


def local_refs(count: int) -> str:
    """The site-relative references, which the count before it leaves out."""
    return f", and {count} to site-relative paths (never fetched)" if count else ""


def summary_line(result: ScanResult) -> str:
    c = summary_counts(result)
    return (
        f"{counted(c['posts'], 'post')}, {counted(c['refs'], 'image reference')} to"
        f" {counted(c['urls'], 'distinct URL')} on {counted(c['hosts'], 'host')}"
        f"{local_refs(c['local_refs'])};"
        f" {c['repaired_refs']} repaired, {counted(c['unreadable'], 'unreadable post')}"
    )


_PLACES = 5  # posts:lines listed per URL before "and N more"


def places(refs: Sequence[ImageRef], *, limit: int | None = _PLACES) -> str:
    where = [f"{r.post}:{r.line}" for r in refs]
    if limit is None or len(where) <= limit:
        return ", ".join(where)
    return ", ".join(where[:limit]) + f", and {len(where) - limit} more"
