"""The summary of a fetch: what is new, what was there, what failed and where it is used."""

from __future__ import annotations

from collections import defaultdict
from typing import TextIO

from mirror.models import Outcome
from mirror.output.scan import places
from mirror.output.thumbs import write_thumbs_summary
from mirror.stages.fetch import FetchResult
from mirror.stages.migrate import FetchPlan
from mirror.wording import counted


def write_summary(result: FetchResult, out: TextIO) -> None:
    replaced = [o for o in result.mirrored if o.replaced is not None]
    new = [o for o in result.mirrored if o.replaced is None]
    size = sum(o.size for o in new)
    stopped = "Interrupted: " if result.interrupted else "Stopped: " if result.stopped else ""
    out.write(
        f"{stopped}Mirrored {counted(len(new), 'new image')} ({size / 1e6:.1f} MB),"
        f" {result.already} already mirrored, {len(result.failed)} failed,"
        f" in {result.elapsed:.1f} s.\n"
    )
    if result.stopped is not None:
        left = counted(result.not_tried, "image")
        out.write(
            f"Stopped early: {result.stopped.message}. {left} not tried yet;"
            " what finished is recorded, and the next run goes on from there.\n"
        )
    if result.unchanged or replaced or result.recheck_failed:
        out.write(
            f"Re-checked: {len(result.unchanged)} unchanged, {len(replaced)} changed and"
            " replaced (the old files are kept in .gallery-mirror/versions/),"
            f" {len(result.recheck_failed)} could not be re-checked (the copies are kept).\n"
        )
        for outcome in sorted(result.recheck_failed, key=lambda o: o.url):
            out.write(f"  {outcome.url}: {outcome.error}\n")
    if result.thumbs is not None and (result.thumbs.done or result.thumbs.up_to_date):
        write_thumbs_summary(result.thumbs, out)
    noted = [o for o in result.mirrored if o.note]
    if noted:
        out.write(
            f"Kept under a wrong Content-Type ({len(noted)}; the bytes are complete images):\n"
        )
        for outcome in sorted(noted, key=lambda o: o.url):
            out.write(f"  {outcome.url}: {outcome.note}\n")
    archived = [o for o in result.mirrored if o.source == "wayback"]
    if archived:
        out.write(f"From the Wayback Machine ({len(archived)}; the source is gone):\n")
        for outcome in sorted(archived, key=lambda o: o.url):
            out.write(f"  {outcome.url}\n")
    if not result.failed:
        return
    uses = result.uses()
    by_reason: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in result.failed:
        by_reason[outcome.error or "failed"].append(outcome)
    out.write("Failed:\n")
    for reason, outcomes in sorted(by_reason.items()):
        out.write(f"  {reason} ({len(outcomes)}):\n")
        for outcome in sorted(outcomes, key=lambda o: o.url):
            shown = places(uses.get(outcome.url, ()))
            out.write(f"    {outcome.url}\n      used by {shown}\n")


_SHOWN = 20  # URLs listed in a plan without -v


def write_plan(plan: FetchPlan, out: TextIO, *, verbose: bool = False, diff: bool = True) -> None:
    """What a fetch would download (a dry run's first part); ``diff``: a diff follows."""
    todo = counted(len(plan.todo), "image")
    out.write(f"Would fetch {todo} ({plan.already} already mirrored).\n")
    shown = plan.todo if verbose else plan.todo[:_SHOWN]
    for url in shown:
        out.write(f"  {url}\n")
    if len(shown) < len(plan.todo):
        out.write(f"  and {len(plan.todo) - len(shown)} more (-v lists them all)\n")
    if plan.predicted and diff:
        out.write(
            "The diff below uses the paths these images would get; a fetch may still"
            " correct an extension from the image's bytes.\n"
        )
