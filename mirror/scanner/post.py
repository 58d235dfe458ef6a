"""Scan one post's bytes into references: the stages of the scanner in order."""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

from mirror.models import ImageRef, PostScan, SkippedRef
from mirror.scanner.frontmatter import scan_front_matter
from mirror.scanner.hit import Hit
from mirror.scanner.html import scan_html
from mirror.scanner.markdown import scan_markdown
from mirror.scanner.regions import find_excluded
from mirror.scanner.tags import scan_tags
from mirror.urls import Normalized, normalize

_BOM = b"\xef\xbb\xbf"


# Blogs reuse images across posts (a cover is often also gallery image 1):
# normalizing each distinct raw text once is a large part of a scan's speed.
@lru_cache(maxsize=1 << 16)
def _normalize(raw: str, html: bool) -> Normalized:
    return normalize(raw, html=html)


def scan_post(data: bytes, post: str, keys: frozenset[str]) -> PostScan:
    """Every image reference in ``data``, the bytes of the post ``post``.

    ``keys`` are the lower-case dotted front-matter keys that hold images.
    Never raises on any input: what cannot be read becomes a problem.
    """
    if b"\x00" in data:
        return PostScan(post, problems=("binary file (it contains NUL bytes), not a post",))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return PostScan(
            post, problems=(f"not valid UTF-8 (byte {exc.start}, line {line}): {exc.reason}",)
        )
    has_bom = data.startswith(_BOM)
    front = scan_front_matter(data, len(_BOM) if has_bom else 0, keys)
    # The body scanners anchor on line starts ("^"), which a BOM would hide
    # from line 1: they read a copy with spaces in its place, same offsets.
    body = b"   " + data[3:] if has_bom else data
    excluded = find_excluded(body, front.body_start)
    tags = scan_tags(body, front.body_start, excluded)
    body_hits = [
        *tags.hits,
        *scan_markdown(body, front.body_start, excluded),
        *scan_html(body, front.body_start, excluded),
    ]
    hits = front.hits + _in_galleries(body_hits, tags.bodies)
    problems = () if front.problem is None else (front.problem,)
    refs, skipped = _refs(data, post, hits)
    return PostScan(post, tuple(refs), problems, tuple(skipped))


def _in_galleries(hits: list[Hit], bodies: list[tuple[int, int]]) -> list[Hit]:
    """Every image inside a gallery tag's body is a gallery image."""
    if not bodies:
        return hits
    starts = [a for a, _ in bodies]
    out = []
    for hit in hits:
        i = bisect_right(starts, hit.start) - 1
        if i >= 0 and hit.start < bodies[i][1]:
            hit = hit._replace(kind="gallery")
        out.append(hit)
    return out


def _refs(data: bytes, post: str, hits: list[Hit]) -> tuple[list[ImageRef], list[SkippedRef]]:
    refs, skipped = [], []
    hits.sort()
    # Lines are counted incrementally between sorted hits: two C-level calls
    # per reference instead of an index of every line of the post.
    line, counted_to, previous = 1, 0, (-1, -1)
    for hit in hits:
        if (hit.start, hit.end) == previous:
            continue  # one span found by two syntaxes (a tag in a gallery body)
        previous = (hit.start, hit.end)
        raw = data[hit.start : hit.end].decode("utf-8")
        found = _normalize(raw if hit.value is None else hit.value, hit.html)
        line += data.count(b"\n", counted_to, hit.start)
        counted_to = hit.start
        if found.kind == "ignored":
            skipped.append(SkippedRef(post, line, raw, found.reason))
            continue
        line_start = data.rfind(b"\n", 0, hit.start) + 1 or (
            len(_BOM) if data.startswith(_BOM) else 0  # the BOM is no character the user sees
        )
        before = data[line_start : hit.start]
        column = (len(before) if before.isascii() else len(before.decode("utf-8", "replace"))) + 1
        ref = ImageRef(post, hit.start, hit.end, line, column, hit.kind, raw, found.url,
                       found.kind == "local", found.repairs, hit.context)  # fmt: skip
        refs.append(ref)
    return refs, skipped
