"""Markdown images: inline, inside links, and reference-style.

Regular expressions over the raw bytes rather than a full Markdown parse: a
parse of every post would cost more than the whole scan may take, and only
the image forms are needed. Code regions were found beforehand
(``regions``), and every hit inside one is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

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
    rb"(?:<([^<>\n]*)>|(" + _PLAIN + rb"*(?:(?:\\.|\(" + _PLAIN + rb"*(?:\\." + _PLAIN
    + rb"*)*\))" + _PLAIN + rb"*)*))"
)
_TAIL = (
    rb"(?:[ \t]*\n?[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?"  # title
    rb"(?:[ \t]+=\d*x\d*)?"  # markdown-it-style size: ![](a.png =200x)
    rb"[ \t]*\n?[ \t]*\)"
)
_OPEN = rb"\([ \t]*\n?[ \t]*"
_IMAGE = re.compile(rb"!\[" + _ALT + rb"\]" + _OPEN + _DEST + _TAIL)
_LINKED_IMAGE = re.compile(
    rb"\[[ \t]*!\[" + _ALT + rb"\](?:\((?:[^()\n]|\([^()\n]*\))*\)|\[[^\]\n]*\])"
    rb"[ \t]*\]" + _OPEN + _DEST + _TAIL
)
_REF_USE = re.compile(rb"!\[(" + _ALT + rb")\](?:\[([^\[\]\n]*)\])?(?![(\[])")
_REF_DEF = re.compile(
    rb"^[ ]{0,3}\[([^\]\n^][^\]\n]*)\]:[ \t]*\n?[ \t]*(?:<([^<>\n]*)>|(\S+))", re.M
)


def scan_markdown(data: bytes, start: int, excluded: Excluded) -> Iterator[Hit]:
    if b"![" not in data:
        return
    for m in _IMAGE.finditer(data, start):
        yield from _destination(m, excluded, "image")
    for m in _LINKED_IMAGE.finditer(data, start):
        # The link around a thumbnail usually opens the full-size image.
        group = 1 if m.start(1) >= 0 else 2
        if looks_like_image(m.group(group).decode("utf-8", "replace")):
            yield from _destination(m, excluded, "link to image")
    yield from _references(data, start, excluded)


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
