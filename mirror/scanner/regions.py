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
    rb"(`+)"
    rb"|<!--"
    rb"|\{%-?\s*(raw|verbatim|codeblock|code|highlight)\b"
    rb"|\{\{<\s*/\*|\{\{%\s*/\*"
    rb"|\{\{<\s*highlight\b"
)
_TAG_END = re.compile(rb"-?%\}")
_RAW_OPEN = re.compile(rb"\{%-?\s*raw\s*-?%\}")
_HIGHLIGHT_END = re.compile(rb"\{\{<\s*/highlight\s*>\}\}")


@lru_cache(maxsize=64)
def _fence_close(char: bytes, length: int) -> re.Pattern[bytes]:
    return re.compile(rb"^[ \t]*(?:>[ \t]*)*" + re.escape(char) + b"{%d,}[ \t]*\r?$" % length, re.M)


@lru_cache(maxsize=16)
def _end_tag(name: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"\{%-?\s*end" + name + rb"\s*-?%\}")


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


def find_excluded(data: bytes, start: int = 0) -> Excluded:
    """All code and comment regions of ``data`` at or after ``start``."""
    blocks = _fenced(data, start)
    blocks.extend(_indented(data, start, Excluded(blocks)))
    block_index = Excluded(blocks)
    return Excluded(blocks + _inline(data, start, block_index))


def _fenced(data: bytes, pos: int) -> list[tuple[int, int]]:
    spans = []
    # memchr-speed finds of the fence characters, then a match at the line
    # start: a MULTILINE "^" search would try every byte of the post. Each
    # kind's next position is kept, so a post with many ``` fences and no
    # ~~~ is not searched to its end once per fence.
    ticks, tildes = _NextFind(data, b"```"), _NextFind(data, b"~~~")
    while (fence_at := _min_found(ticks.at_or_after(pos), tildes.at_or_after(pos))) >= 0:
        line = max(_line_start(data, fence_at), pos)
        m = _FENCE_OPEN.match(data, line)
        if m is None or m.start(1) != fence_at:
            pos = fence_at + 3
            continue
        fence, info = m.group(1), m.group(2)
        if fence[:1] == b"`" and b"`" in info:
            pos = m.end()  # ```a``` on one line is inline code, not a fence
            continue
        close = _fence_close(fence[:1], len(fence)).search(data, m.end())
        end = len(data) if close is None else close.end()
        spans.append((m.start(), end))
        pos = end
    return spans


class _NextFind:
    """``data.find(needle, pos)`` for rising ``pos``, searching again only when passed."""

    __slots__ = ("_data", "_found", "_needle")

    def __init__(self, data: bytes, needle: bytes) -> None:
        self._data, self._needle, self._found = data, needle, -2

    def at_or_after(self, pos: int) -> int:
        if self._found == -2 or -1 < self._found < pos:
            self._found = self._data.find(self._needle, pos)
        return self._found


def _min_found(a: int, b: int) -> int:
    return b if a < 0 else a if b < 0 else min(a, b)


def _line_start(data: bytes, pos: int) -> int:
    return data.rfind(b"\n", 0, pos) + 1


def _indented(data: bytes, body: int, fences: Excluded) -> list[tuple[int, int]]:
    """Indented code blocks: after a blank line, outside a list item."""
    if b"    " not in data and b"\t" not in data:
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


class _Openers:
    """The next position of any opener's first bytes.

    A regex search for the alternation would try every byte of the post (and
    did: it was most of the scan's time); each ``find`` runs at memchr speed.
    """

    __slots__ = ("_finds",)

    def __init__(self, data: bytes) -> None:
        self._finds = [_NextFind(data, p) for p in (b"`", b"<!--", b"{%", b"{{")]

    def at_or_after(self, pos: int) -> int:
        best = -1
        for find in self._finds:
            best = _min_found(best, find.at_or_after(pos))
        return best


def _inline(data: bytes, pos: int, blocks: Excluded) -> list[tuple[int, int]]:
    spans = []
    size = len(data)
    openers = _Openers(data)
    while (start := openers.at_or_after(pos)) >= 0:
        if start in blocks:
            pos = blocks.end_of(start)
            continue
        m = _INLINE.match(data, start)
        if m is None or (data[start : start + 1] == b"`" and data[start - 1 : start] == b"\\"):
            pos = start + 1 if m is None else m.end()
            continue
        ticks, tag = m.group(1), m.group(2)
        if ticks is not None:
            end = _code_span_end(data, m.end(), len(ticks), size)
            if end < 0:
                pos = m.end()
                continue
        elif tag is not None:
            close = _block_end(data, tag, m.end())
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


def _code_span_end(data: bytes, pos: int, length: int, size: int) -> int:
    """End of the backtick run of exactly ``length`` closing a code span, or -1.

    A code span does not cross a blank line.
    """
    para = _BLANK_LINE.search(data, pos)
    limit = size if para is None else para.start()
    run = b"`" * length
    while (found := data.find(run, pos, limit)) >= 0:
        end = found + length
        while end < limit and data[end] == 0x60:
            end += 1
        if end - found == length:
            return end
        pos = end
    return -1


def _block_end(data: bytes, tag: bytes, pos: int) -> re.Match[bytes] | None:
    """The end tag closing a code-like block opened before ``pos``.

    An end tag inside a nested ``{% raw %}`` block is text, not the end
    (Stellar's docs show ``{% endcodeblock %}`` that way inside a codeblock).
    """
    end_tag = _end_tag(tag)
    while (close := end_tag.search(data, pos)) is not None and tag != b"raw":
        raw = _RAW_OPEN.search(data, pos, close.start())
        if raw is None:
            break
        raw_end = _end_tag(b"raw").search(data, raw.end())
        if raw_end is None:
            break
        pos = raw_end.end()
    return close


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
