"""Byte-exact locations of the string values in a TOML document.

``tomllib`` gives values but no positions, so this walks the text with a
small tokenizer that knows just enough TOML to find each string and the
dotted key path it belongs to. The values are checked against ``tomllib``'s
own result by the caller, so a mistake here cannot invent a reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mirror.config import read_toml_key

_WS = re.compile(r"[ \t]*")
_SKIP = re.compile(r"(?:[ \t\r\n]|#[^\n]*)*")
_HEADER = re.compile(r"[ \t]*(\[\[?)")
_STRING = re.compile(
    r'"""(?:[^\\]|\\.)*?"""{0,2}|\'\'\'.*?\'\'\'{0,2}|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'', re.S
)
_SCALAR = re.compile(r"[^\s,\]}#]+")

StringSpan = tuple[tuple[str, ...], int, int]  # key path, start and end of the text inside quotes


class _Stop(Exception):
    """The tokenizer met something it does not understand: give up quietly."""


def string_spans(text: str) -> Iterator[StringSpan]:
    """Yield (key path, start, end) for each single-line string value in ``text``.

    Offsets are character offsets into ``text``; the span excludes the quotes.
    Multi-line strings are skipped: their raw text is not the URL.
    """
    try:
        yield from _document(text)
    except _Stop:
        return


def _document(text: str) -> Iterator[StringSpan]:
    table: tuple[str, ...] = ()
    pos = 0
    while True:
        pos = _after(_SKIP, text, pos)
        if pos >= len(text):
            return
        header = _HEADER.match(text, pos)
        if header is not None:
            table, pos = _key(text, header.end())
            pos = text.find("\n", pos)
            if pos < 0:
                return
            continue
        key, pos = _key(text, pos)
        if not text.startswith("=", pos):
            raise _Stop
        pos = _after(_WS, text, pos + 1)
        for span in _value(text, pos, table + key):
            if isinstance(span, int):
                pos = span
            else:
                yield span


def _after(pattern: re.Pattern[str], text: str, pos: int) -> int:
    m = pattern.match(text, pos)
    return pos if m is None else m.end()


def _key(text: str, pos: int) -> tuple[tuple[str, ...], int]:
    key = read_toml_key(text, pos)
    if key is None:
        raise _Stop
    return key


def _value(text: str, pos: int, path: tuple[str, ...]) -> Iterator[StringSpan | int]:
    """Yield the string spans of the value at ``pos``, then the position after it."""
    char = text[pos : pos + 1]
    if char in ('"', "'"):
        m = _STRING.match(text, pos)
        if m is None:
            raise _Stop
        token = m.group(0)
        if not token.startswith(('"""', "'''")):
            yield path, pos + 1, m.end() - 1
        yield m.end()
    elif char == "[":
        pos += 1
        while True:
            pos = _after(_SKIP, text, pos)
            if text.startswith("]", pos):
                yield pos + 1
                return
            for item in _value(text, pos, path):
                if isinstance(item, int):
                    pos = item
                else:
                    yield item
            pos = _after(_SKIP, text, pos)
            if text.startswith(",", pos):
                pos += 1
    elif char == "{":
        pos += 1
        while True:
            pos = _after(_WS, text, pos)
            if text.startswith("}", pos):
                yield pos + 1
                return
            key, pos = _key(text, pos)
            if not text.startswith("=", pos):
                raise _Stop
            pos = _after(_WS, text, pos + 1)
            for item in _value(text, pos, path + key):
                if isinstance(item, int):
                    pos = item
                else:
                    yield item
            pos = _after(_WS, text, pos)
            if text.startswith(",", pos):
                pos += 1
    else:
        m = _SCALAR.match(text, pos)
        if m is None:
            raise _Stop
        yield m.end()
