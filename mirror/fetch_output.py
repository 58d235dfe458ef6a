"""The summary of a fetch: what is new, what was there, what failed and where it is used."""

from __future__ import annotations

from collections import defaultdict
from typing import TextIO

from mirror.mirroring import FetchResult
from mirror.models import Outcome


def write_summary(result: FetchResult, out: TextIO) -> None:
    new = result.mirrored
    size = sum(o.size for o in new)
    out.write(
        f"Mirrored {len(new)} new images ({size / 1e6:.1f} MB), {result.already} already"
        f" mirrored, {len(result.failed)} failed, in {result.elapsed:.1f} s.\n"
    )
    if not result.failed:
        return
    uses: dict[str, list[str]] = defaultdict(list)
    for ref in result.scan.refs:
        uses[ref.url].append(f"{ref.post}:{ref.line}")
    by_reason: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in result.failed:
        by_reason[outcome.error or "failed"].append(outcome)
    out.write("Failed:\n")
    for reason, outcomes in sorted(by_reason.items()):
        out.write(f"  {reason} ({len(outcomes)}):\n")
        for outcome in sorted(outcomes, key=lambda o: o.url):
            places = uses.get(outcome.url, [])
            shown = ", ".join(places[:5]) + (
                f", and {len(places) - 5} more" if len(places) > 5 else ""
            )
            out.write(f"    {outcome.url}\n      used by {shown}\n")
