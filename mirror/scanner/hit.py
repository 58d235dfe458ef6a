"""The scanner's internal finding: a byte span and what kind of syntax holds it."""

from __future__ import annotations

from typing import NamedTuple

from mirror.models import RefKind


class Hit(NamedTuple):
    """A named tuple rather than a dataclass: a large scan makes ~10 per post,
    and tuples are built and sorted several times faster."""

    start: int
    end: int
    kind: RefKind
    context: str
    html: bool = False  # the text may hold HTML entities to decode for fetching
    # the value the text stands for, where they differ: a quoted YAML scalar
    # with escapes ('it''s', "a\u0062"); None: the text itself
    value: str | None = None
