"""The scanner's internal finding: a byte span and what kind of syntax holds it."""

from __future__ import annotations

from dataclasses import dataclass

from mirror.models import RefKind


@dataclass(frozen=True, slots=True)
class Hit:
    start: int
    end: int
    kind: RefKind
    context: str
    html: bool = False  # the text may hold HTML entities to decode for fetching
