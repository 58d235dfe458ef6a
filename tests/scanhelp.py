"""Shared helpers for scanner tests: scan text, check every span, compare compactly."""

from __future__ import annotations

from mirror.config import DEFAULT_FRONT_MATTER_KEYS
from mirror.models import PostScan
from mirror.scanner.post import scan_post

KEYS = frozenset(k.lower() for k in DEFAULT_FRONT_MATTER_KEYS)


def scan_text(text: str | bytes, post: str = "p.md") -> PostScan:
    """Scan ``text`` and check the invariants every reference must keep."""
    data = text.encode() if isinstance(text, str) else text
    result = scan_post(data, post, KEYS)
    for ref in result.refs:
        assert data[ref.start : ref.end].decode() == ref.raw, ref
        assert ref.line == data.count(b"\n", 0, ref.start) + 1, ref
    return result


def found(text: str | bytes) -> list[tuple[str, str]]:
    """(kind, raw) of every reference, local ones marked with a leading "local:"."""
    return [(ref.kind, ("local:" if ref.local else "") + ref.raw) for ref in scan_text(text).refs]
