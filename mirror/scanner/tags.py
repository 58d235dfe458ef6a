"""Template tags: Hexo ``{% ... %}`` tags and Hugo ``{{< ... >}}`` shortcodes.

Hexo splits tag arguments on whitespace, a quoted string being one argument.
Which argument is the image differs per tag and theme; the rules below follow
the themes' own source (see SYNTAX.md in the project's design notes). Gallery
tags hold their images in their body: the bodies are returned so that the
Markdown and HTML images inside them are reported as ``gallery``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from mirror.scanner.hit import Hit
from mirror.scanner.regions import Excluded
from mirror.urls import looks_like_image

_MAX_TAG = 4096  # no real tag is longer; bounds the work on an unclosed "{%"
_HEXO_OPEN = re.compile(rb"\{%-?\s*([A-Za-z_][\w-]*)")
_ARG = re.compile(rb"\"([^\"]*)\"|'([^']*)'|(\S+)")
# Hexo's img tag takes as source the first argument with a scheme, "www." or
# a leading "/"; anything else before it is a CSS class.
_SOURCE_LIKE = re.compile(rb"[A-Za-z]{3,9}:?//|[A-Za-z]{3,9}:/|/|www\.")
_OPTION = re.compile(rb"[A-Za-z_][\w-]*[:=](?!/)")
# Tags whose image is a named option: Stellar's {% frame iphone11 img:URL %}
# and {% link URL title icon:URL %}.
_OPTION_IMAGE = {b"frame": re.compile(rb"img[:=]"), b"link": re.compile(rb"icon[:=]")}
_BODY_TAGS = frozenset({b"gallery", b"grouppicture", b"gp", b"gi", b"swiper"})
_ARG_TAGS = frozenset(
    {b"img", b"image", b"inlineimage", b"inlineimg", b"gallerygroup", b"asset_img"}
) | frozenset(_OPTION_IMAGE)
# Butterfly's friend links: a YAML list in the body whose "avatar" is shown.
_FLINK_AVATAR = re.compile(rb"^[ \t]*(?:-[ \t]+)?avatar:[ \t]*([^\s#]+)", re.M)

_SHORTCODE_OPEN = re.compile(rb"\{\{([<%])\s*([A-Za-z_][\w./-]*)")
_SHORTCODE_PARAM = re.compile(
    rb"([A-Za-z_][\w-]*)\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|`([^`]*)`|'([^']*)'|([^\s\"'`]+))"
)

Span = tuple[int, int]


@dataclass(slots=True)
class TagScan:
    hits: list[Hit] = field(default_factory=list)
    bodies: list[Span] = field(default_factory=list)  # gallery bodies


@lru_cache(maxsize=16)
def _end_tag(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"\{%-?\s*end" + re.escape(name) + rb"\s*-?%\}", re.I)


def scan_tags(data: bytes, start: int, excluded: Excluded) -> TagScan:
    found = TagScan()
    if b"{%" in data:
        _hexo(data, start, excluded, found)
    if b"{{" in data:
        found.hits.extend(_shortcodes(data, start, excluded))
    return found


def _hexo(data: bytes, start: int, excluded: Excluded, found: TagScan) -> None:
    for m in _HEXO_OPEN.finditer(data, start):
        if m.start() in excluded:
            continue
        close = data.find(b"%}", m.end(), m.end() + _MAX_TAG)
        if close < 0:
            continue
        name = m.group(1).lower()
        args_end = close - 1 if data[close - 1 : close] == b"-" else close
        if name in _BODY_TAGS:
            end = _end_tag(name).search(data, close + 2)
            if end is not None:
                found.bodies.append((close + 2, end.start()))
        elif name == b"flink":
            end = _end_tag(name).search(data, close + 2)
            body_end = len(data) if end is None else end.start()
            for avatar in _FLINK_AVATAR.finditer(data, close + 2, body_end):
                found.hits.append(Hit(avatar.start(1), avatar.end(1), "tag", "{% flink %} avatar"))
        elif name in _ARG_TAGS:
            args = [_arg(a) for a in _ARG.finditer(data, m.end(), args_end)]
            found.hits.extend(_tag_source(data, name, args))


def _arg(m: re.Match[bytes]) -> Span:
    group = next(g for g in (1, 2, 3) if m.start(g) >= 0)
    a, b = m.start(group), m.end(group)
    if group == 3:  # Volantis writes "{% image url, alt=... %}"
        b = a + len(m.group(group).rstrip(b","))
    return a, b


def _tag_source(data: bytes, name: bytes, args: list[Span]) -> Iterator[Hit]:
    context = "{% " + name.decode() + " %}"
    if name == b"gallerygroup":
        chosen = args[3:4]
    elif name == b"asset_img":
        chosen = args[:1]
    elif name in _OPTION_IMAGE:
        option = _OPTION_IMAGE[name]
        chosen = [(m.end(), b) for a, b in args if (m := option.match(data, a, b))]
    else:
        chosen = _first_source(data, args, relative_ok=name != b"img")
    for a, b in chosen:
        if a < b:
            yield Hit(a, b, "tag", context)


def _first_source(data: bytes, args: list[Span], *, relative_ok: bool) -> list[Span]:
    """The image argument of img/image/inlineimage/inlineImg.

    An argument with a scheme or a leading "/" wins wherever it stands
    (Stellar allows "fancybox:true URL"); themes other than Hexo core also
    take a relative path that looks like an image, never a key:value option.
    """
    for a, b in args:
        if _SOURCE_LIKE.match(data, a, b):
            return [(a, b)]
    if relative_ok:
        for a, b in args:
            text = data[a:b]
            if not _OPTION.match(text) and looks_like_image(text.decode("utf-8", "replace")):
                return [(a, b)]
    return []


def _shortcodes(data: bytes, start: int, excluded: Excluded) -> Iterator[Hit]:
    for m in _SHORTCODE_OPEN.finditer(data, start):
        if m.start() in excluded:
            continue
        closer = b">}}" if m.group(1) == b"<" else b"%}}"
        close = data.find(closer, m.end(), m.end() + _MAX_TAG)
        if close < 0:
            continue
        name = m.group(2).decode("utf-8", "replace")
        for p in _SHORTCODE_PARAM.finditer(data, m.end(), close):
            param = p.group(1).lower()
            group = next(g for g in (2, 3, 4, 5) if p.start(g) >= 0)
            value = p.group(group)
            if param == b"src" or (
                param == b"link" and looks_like_image(value.decode("utf-8", "replace"))
            ):
                a, b = p.start(group), p.end(group)
                if a < b:
                    yield Hit(a, b, "shortcode", f"{name} {param.decode()}")
