"""The summary of a thumbnail run."""

from __future__ import annotations

from collections import defaultdict
from typing import TextIO

from mirror.keep.store import TRASH_DIR_NAME
from mirror.stages.thumbs import Made, ThumbsResult
from mirror.wording import counted


def write_thumbs_summary(result: ThumbsResult, out: TextIO) -> None:
    made, skipped, failed = (result.having(s) for s in ("made", "skipped", "failed"))
    stopped = "Interrupted: " if result.interrupted else ""
    out.write(
        f"{stopped}Thumbnails: made for {counted(len(made), 'image')}, {len(skipped)} skipped,"
        f" {len(failed)} failed, {result.up_to_date} up to date, in {result.elapsed:.1f} s.\n"
    )
    if result.trashed:
        out.write(
            f"Moved {counted(result.trashed, 'old thumbnail')} that no setting asks for any more"
            f" (thumbnails.format, thumbnails.sizes) to .gallery-mirror/{TRASH_DIR_NAME}/.\n"
        )
    _by_reason("Skipped (no thumbnail for this kind of file)", skipped, out)
    _by_reason("Failed", failed, out)


def _by_reason(title: str, items: tuple[Made, ...], out: TextIO) -> None:
    if not items:
        return
    groups: dict[str, list[str]] = defaultdict(list)
    for item in items:
        groups[item.result.reason or "unknown"].append(item.path)
    out.write(f"{title}:\n")
    for reason, paths in sorted(groups.items()):
        out.write(f"  {reason} ({len(paths)}):\n")
        for path in sorted(paths):
            out.write(f"    {path}\n")
