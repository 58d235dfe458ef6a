"""Markdown images: inline, inside links, and reference-style.

Regular expressions over the raw bytes rather than a full Markdown parse: a
parse of every post would cost more than the whole scan may take, and only
the image forms are needed. Code regions were found beforehand
(``regions``), and every hit inside one is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from mirror.scanner.hit import Hit
from mirror.scanner.regions import Excluded
from mirror.urls import looks_like_image

# The patterns are written as unrolled loops (plain run, then (special, plain
# run)*): the same language as an alternation per character, several times
# faster in Python's backtracking engine.
_ALT = rb"[^\[\]\\\n]*(?:(?:\\.|\[[^\[\]\n]*\])[^\[\]\\\n]*)*"
# A destination is <...> or a run without spaces whose parentheses balance
# (one level deep, which is what real posts use: /img/1(3).jpg).
_PLAIN = rb"[^\s()\\]"
_DEST = (
    rb"(?:<([^<>\n]*)>|("
    + _PLAIN
    + rb"*(?:(?:\\.|\("
    + _PLAIN
    + rb"*(?:\\."
    + _PLAIN
    + rb"*)*\))"
    + _PLAIN
    + rb"*)*))"
)
_TAIL = (
    rb"(?:[ \t]*(?:\r?\n)?[ \t]+(?:\"[^\"\r\n]*\"|'[^'\r\n]*'|\([^()\r\n]*\)))?"  # title
    rb"(?:[ \t]+=\d*x\d*)?"  # markdown-it-style size: ![](a.png =200x)
    rb"[ \t]*(?:\r?\n)?[ \t]*\)"
)
_OPEN = rb"\([ \t]*(?:\r?\n)?[ \t]*"
_IMAGE = re.compile(rb"!\[" + _ALT + rb"\]" + _OPEN + _DEST + _TAIL)
_LINKED_IMAGE = re.compile(
    rb"\[[ \t]*!\[" + _ALT + rb"\](?:\((?:[^()\n]|\([^()\n]*\))*\)|\[[^\]\n]*\])"
    rb"[ \t]*\]" + _OPEN + _DEST + _TAIL
)
# The "[" comes first so that Python's engine can skip to each "[" at memchr
# speed; the lookbehinds after it then refuse "![", "][" and "\[".
_LINK = re.compile(
    rb"\[(?<!!\[)(?<!\]\[)(?<!\\\[)[^\[\]\\\n]*(?:\\.[^\[\]\\\n]*)*\]" + _OPEN + _DEST + _TAIL
)
# CommonMark HTML blocks of kinds 1 and 6: Markdown inside them is literal
# text, so "![](x)" there is no image (HTML <img> inside still is, and
# html.py finds it). Kind 1 runs to its closing tag, kind 6 to a blank line.
_HTML_BLOCK = re.compile(
    rb"^ {0,3}<(?:(pre|script|style|textarea)(?:[\s>]|$)|/?(?:"
    rb"address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|"
    rb"details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|"
    rb"h[1-6]|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|"
    rb"optgroup|option|p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|tr|"
    rb"track|ul)(?:[\s/>]|$))",
    re.M | re.I,
)
_BLANK_LINE = re.compile(rb"\n[ \t]*\r?(?:\n|$)")
_REF_USE = re.compile(rb"!\[(" + _ALT + rb")\](?:\[([^\[\]\n]*)\])?(?![(\[])")
_REF_DEF = re.compile(
    rb"^[ ]{0,3}\[([^\]\n^][^\]\n]*)\]:[ \t]*(?:\r?\n)?[ \t]*(?:<([^<>\r\n]*)>|(\S+))", re.M
)


def scan_markdown(data: bytes, start: int, excluded: Excluded) -> Iterator[Hit]:
    if b"](" not in data and b"]:" not in data:
        return
    found = [(m, "image") for m in _IMAGE.finditer(data, start)]
    # A link to an image file is an image to keep: it usually opens the
    # full-size version of a thumbnail, or is the only copy the post shows.
    for pattern in (_LINKED_IMAGE, _LINK):
        for m in pattern.finditer(data, start):
            group = 1 if m.start(1) >= 0 else 2
            if looks_like_image(m.group(group).decode("utf-8", "replace")):
                found.append((m, "link to image"))
    if found:
        literal = Excluded(html_blocks(data, start, excluded) if b"<" in data else [])
        for m, context in found:
            if m.start() not in literal:
                yield from _destination(m, excluded, context)
    yield from _references(data, start, excluded)


def html_blocks(data: bytes, start: int, excluded: Excluded) -> list[tuple[int, int]]:
    """Spans of the HTML blocks (CommonMark kinds 1 and 6) outside code."""
    spans = []
    pos = start
    while (m := _HTML_BLOCK.search(data, pos)) is not None:
        if m.start() in excluded:
            pos = excluded.end_of(m.start())
            continue
        if m.group(1) is not None:
            close = _closing_tag(m.group(1)).search(data, m.end())
            end = len(data) if close is None else close.start()
        else:
            blank = _BLANK_LINE.search(data, m.end())
            end = len(data) if blank is None else blank.start()
        spans.append((m.start(), end))
        pos = max(end, m.end())
    return spans


@lru_cache(maxsize=8)
def _closing_tag(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"</" + name + rb"\s*>", re.I)


def _destination(m: re.Match[bytes], excluded: Excluded, context: str) -> Iterator[Hit]:
    group = 1 if m.start(1) >= 0 else 2
    a, b = m.start(group), m.end(group)
    if a < b and a not in excluded:
        yield Hit(a, b, "markdown", context, html=True)


def _label(raw: bytes) -> bytes:
    return b" ".join(raw.split()).lower()


def _references(data: bytes, start: int, excluded: Excluded) -> Iterator[Hit]:
    if b"]:" not in data:
        return
    used = set()
    for m in _REF_USE.finditer(data, start):
        if m.start() not in excluded:
            label = m.group(2) or m.group(1)  # ![alt][] and ![alt] use the alt text
            used.add(_label(label))
    if not used:
        return
    for m in _REF_DEF.finditer(data, start):
        if m.start() in excluded or _label(m.group(1)) not in used:
            continue
        group = 2 if m.start(2) >= 0 else 3
        a, b = m.start(group), m.end(group)
        if a < b:
            yield Hit(a, b, "reference", f"[{m.group(1).decode('utf-8', 'replace')}]", html=True)
