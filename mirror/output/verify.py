"""What ``verify`` prints: each problem and a summary line, or JSON (schema 1)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TextIO

from mirror.output.scan import SCHEMA_VERSION
from mirror.stages.verify import VerifyResult
from mirror.wording import counted


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
            "posts": len(result.scan.names),
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
