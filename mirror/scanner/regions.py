"""Where a post holds code or comments, so that nothing there is a reference.

The order follows Hexo's own: fenced code is set aside first (a tag written
inside a fence is literal text), then indented code, then one left-to-right
pass over what remains finds inline code spans, HTML comments, ``{% raw %}``
style blocks and Hugo comment shortcodes; whichever starts first wins, so a
backtick inside a comment or a ``<!--`` inside inline code cannot open a
second region.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache

# Hexo's backtick_code_block filter accepts fences after any indentation, a
# blockquote prefix or a list marker, so this is looser than CommonMark.
_FENCE_OPEN = re.compile(
    rb"^[ \t]*(?:>[ \t]*)*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?(`{3,}|~{3,})([^\n]*)$", re.M
)
_BLANK_LINE = re.compile(rb"\n[ \t]*\r?\n")
_INDENTED = re.compile(rb"^(?: {4}| {0,3}\t)[^\n]*?\S", re.M)
_LIST_ITEM = re.compile(rb"[ \t]*(?:[-*+]|\d{1,9}[.)])(?:[ \t]|\r?$)")
_INLINE = re.compile(
    rb"(?<!\\)(`+)"
    rb"|<!--"
    rb"|\{%-?\s*(raw|verbatim|codeblock|code|highlight)\b"
    rb"|\{\{<\s*/\*|\{\{%\s*/\*"
    rb"|\{\{<\s*highlight\b"
)
_TAG_END = re.compile(rb"-?%\}")
_HIGHLIGHT_END = re.compile(rb"\{\{<\s*/highlight\s*>\}\}")


@lru_cache(maxsize=64)
def _fence_close(char: bytes, length: int) -> re.Pattern[bytes]:
    return re.compile(rb"^[ \t]*(?:>[ \t]*)*" + re.escape(char) + b"{%d,}[ \t]*\r?$" % length, re.M)


@lru_cache(maxsize=16)
def _end_tag(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"\{%-?\s*end" + name + rb"\s*-?%\}")


@lru_cache(maxsize=16)
def _closing_backticks(length: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?<!`)`{%d}(?!`)" % length)


class Excluded:
    """Sorted, non-overlapping byte intervals ``[start, end)`` that hold code."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self._starts = [s for s, _ in merged]
        self._ends = [e for _, e in merged]

    def __contains__(self, pos: object) -> bool:
        if not isinstance(pos, int):
            return False
        i = bisect_right(self._starts, pos) - 1
        return i >= 0 and pos < self._ends[i]

    def end_of(self, pos: int) -> int:
        """The end of the interval holding ``pos`` (``pos`` itself if none)."""
        i = bisect_right(self._starts, pos) - 1
        return self._ends[i] if i >= 0 and pos < self._ends[i] else pos

    @property
    def spans(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))


def find_excluded(data: bytes, start: int = 0) -> Excluded:
    """All code and comment regions of ``data`` at or after ``start``."""
    blocks = _fenced(data, start)
    blocks.extend(_indented(data, start, Excluded(blocks)))
    block_index = Excluded(blocks)
    return Excluded(blocks + _inline(data, start, block_index))


def _fenced(data: bytes, pos: int) -> list[tuple[int, int]]:
    spans = []
    while (m := _FENCE_OPEN.search(data, pos)) is not None:
        fence, info = m.group(1), m.group(2)
        if fence[:1] == b"`" and b"`" in info:
            pos = m.end()  # ```a``` on one line is inline code, not a fence
            continue
        close = _fence_close(fence[:1], len(fence)).search(data, m.end())
        end = len(data) if close is None else close.end()
        spans.append((m.start(), end))
        pos = end
    return spans


def _line_start(data: bytes, pos: int) -> int:
    return data.rfind(b"\n", 0, pos) + 1


def _indented(data: bytes, body: int, fences: Excluded) -> list[tuple[int, int]]:
    """Indented code blocks: after a blank line, outside a list item."""
    if b"\n    " not in data and b"\t" not in data:
        return []
    spans = []
    pos = body
    while (m := _INDENTED.search(data, pos)) is not None:
        start = m.start()
        if start in fences or not _opens_indented_block(data, body, start):
            pos = data.find(b"\n", m.end())
            if pos < 0:
                break
            continue
        end = _indented_block_end(data, start)
        spans.append((start, end))
        pos = end
    return spans


def _opens_indented_block(data: bytes, body: int, start: int) -> bool:
    if start <= body:
        return True
    prev_end = start - 1  # the "\n" ending the previous line
    prev_start = _line_start(data, prev_end)
    if data[prev_start:prev_end].strip():
        return False  # a lazy paragraph continuation, not code
    # Walk back over the blocks above: indented text under a list item is the
    # item's continuation, not code.
    line_end = prev_start - 1
    while line_end > body:
        line_start = max(_line_start(data, line_end), body)
        line = data[line_start:line_end]
        if line.strip():
            if _LIST_ITEM.match(line):
                return False
            if not line.startswith((b" ", b"\t")):
                return True
        line_end = line_start - 1
    return True


def _indented_block_end(data: bytes, start: int) -> int:
    """End of the indented block at ``start``, trailing blank lines excluded."""
    end = pos = start
    size = len(data)
    while pos < size:
        nl = data.find(b"\n", pos)
        line_end = size if nl < 0 else nl + 1
        line = data[pos:line_end]
        if line.strip():
            if not (line.startswith(b"    ") or line.lstrip(b" ").startswith(b"\t")):
                break
            end = line_end
        pos = line_end
    return end


def _inline(data: bytes, pos: int, blocks: Excluded) -> list[tuple[int, int]]:
    spans = []
    size = len(data)
    while (m := _INLINE.search(data, pos)) is not None:
        start = m.start()
        if start in blocks:
            pos = blocks.end_of(start)
            continue
        ticks, tag = m.group(1), m.group(2)
        if ticks is not None:
            para = _BLANK_LINE.search(data, m.end())
            limit = size if para is None else para.start()
            close = _closing_backticks(len(ticks)).search(data, m.end(), limit)
            if close is None:
                pos = m.end()
                continue
            end = close.end()
        elif tag is not None:
            close = _end_tag(tag).search(data, m.end())
            if close is None:  # unclosed: only the opening tag is literal
                tag_end = _TAG_END.search(data, m.end())
                end = m.end() if tag_end is None else tag_end.end()
            else:
                end = close.end()
        else:
            end = _region_end(data, m)
        spans.append((start, end))
        pos = end
    return spans


def _region_end(data: bytes, m: re.Match[bytes]) -> int:
    text = m.group(0)
    if text == b"<!--":
        closer, fallback = b"-->", len(data)
    elif text.startswith(b"{{%"):
        closer, fallback = b"*/%}}", data.find(b"%}}", m.end())
    elif text.endswith(b"highlight"):
        close = _HIGHLIGHT_END.search(data, m.end())
        return len(data) if close is None else close.end()
    else:
        closer, fallback = b"*/>}}", data.find(b">}}", m.end())
    found = data.find(closer, m.end())
    if found >= 0:
        return found + len(closer)
    return len(data) if fallback < 0 else fallback + 3
