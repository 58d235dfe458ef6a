"""HTML inside posts: ``img``/``source`` attributes, image links, inline backgrounds.

Attribute values may be double-, single- or un-quoted, span lines and hold
entities; the span is the value exactly as written, and entities are decoded
only for fetching (the ``html`` flag of the hit).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mirror.scanner.hit import Hit
from mirror.scanner.regions import Excluded
from mirror.urls import looks_like_image

_TAG = re.compile(rb"<([A-Za-z][A-Za-z0-9-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_ATTR = re.compile(rb"([^\s\"'=<>/`]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?")
_CSS_URL = re.compile(rb"url\(\s*(?:\"([^\"]*)\"|'([^']*)'|([^)\"']*?))\s*\)", re.I)

# Attributes that hold one image URL, per tag; srcset-style ones hold a list.
_SRC_ATTRS = {
    b"img": (b"src", b"data-src", b"data-original", b"data-lazy-src", b"data-actualsrc"),
    b"source": (b"src",),
    b"video": (b"poster",),
}
_SRCSET_ATTRS = (b"srcset", b"data-srcset")


def scan_html(data: bytes, start: int, excluded: Excluded) -> Iterator[Hit]:
    if b"<" not in data:
        return
    for tag in _TAG.finditer(data, start):
        if tag.start() in excluded:
            continue
        name = tag.group(1).lower()
        if name not in (b"img", b"source", b"a", b"video") and b"url(" not in tag.group(2).lower():
            continue
        for attr in _ATTR.finditer(data, tag.start(2), tag.end(2)):
            yield from _attribute(name, attr)


def _attribute(tag: bytes, attr: re.Match[bytes]) -> Iterator[Hit]:
    group = next((g for g in (2, 3, 4) if attr.start(g) >= 0), 0)
    if not group:
        return
    name = attr.group(1).lower()
    a, value = attr.start(group), attr.group(group)
    context = f"{tag.decode()} {name.decode('ascii', 'replace')}"
    if name in _SRC_ATTRS.get(tag, ()):
        yield from _trimmed(value, a, context)
    elif tag in (b"img", b"source") and name in _SRCSET_ATTRS:
        for url_start, url_end in srcset_urls(value):
            yield Hit(a + url_start, a + url_end, "html", context, html=True)
    elif tag == b"a" and name == b"href" and looks_like_image(value.decode("utf-8", "replace")):
        yield from _trimmed(value, a, "a href")
    elif name == b"style":
        for m in _CSS_URL.finditer(value):
            g = next(g for g in (1, 2, 3) if m.start(g) >= 0)
            yield from _trimmed(m.group(g), a + m.start(g), "style url()")


def _trimmed(value: bytes, offset: int, context: str) -> Iterator[Hit]:
    """The value without surrounding whitespace, which is not part of the URL."""
    stripped = value.strip()
    if stripped:
        lead = len(value) - len(value.lstrip())
        yield Hit(offset + lead, offset + lead + len(stripped), "html", context, html=True)


def srcset_urls(value: bytes) -> Iterator[tuple[int, int]]:
    """Spans of the URLs in a srcset value, as the HTML standard splits it.

    A URL may itself hold commas (``?x-oss-process=image/resize,w_800``): only
    a comma after whitespace, or at the very end of the URL, separates.
    """
    pos, size = 0, len(value)
    while pos < size:
        while pos < size and (value[pos : pos + 1].isspace() or value[pos] == 0x2C):
            pos += 1
        start = pos
        while pos < size and not value[pos : pos + 1].isspace():
            pos += 1
        end = pos
        while end > start and value[end - 1] == 0x2C:
            end -= 1
        if end > start:
            yield start, end
        if end == pos:  # descriptors follow: skip to the next comma
            comma = value.find(b",", pos)
            pos = size if comma < 0 else comma + 1
