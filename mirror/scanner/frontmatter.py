"""Front matter: find its extent and the exact span of every configured image key.

Forms: YAML between ``---`` lines (also Hexo's form without the opening
``---``), TOML between ``+++`` lines, Hexo's JSON between ``;;;`` lines (its
body may omit the braces) and Hugo's bare ``{...}`` JSON object. Spans come
from the parser's own node positions (PyYAML ``compose()`` marks; JSON is
composed as YAML flow, which it is), never from re-serialising anything.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

import yaml

from mirror.scanner.hit import Hit
from mirror.scanner.tomlspans import string_spans

try:  # libyaml is ~10x faster; the pure-Python loader gives the same marks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_OPEN = re.compile(rb"(-{3,}|\+{3,}|;{3,})[ \t]*\r?\n")
_CLOSE = {
    b"-": re.compile(rb"^(?:-{3,}|\.{3})[ \t]*\r?$", re.M),
    b"+": re.compile(rb"^\+{3,}[ \t]*\r?$", re.M),
    b";": re.compile(rb"^;{3,}[ \t]*\r?$", re.M),
}
# Hexo also reads "title: x\n---" and '"title": "x",\n;;;' (no opening
# separator) as front matter.
_OPENLESS_FIRST_LINE = re.compile(rb"(?:[A-Za-z_][\w -]*|\"[^\"\n]+\"):(?:[ \t]|\r?\n)")
_OPENLESS_CLOSE = re.compile(rb"^(-{3,}|;{3,})[ \t]*\r?$", re.M)
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(slots=True)
class FrontMatter:
    body_start: int = 0
    hits: list[Hit] = field(default_factory=list)
    problem: str | None = None


def scan_front_matter(data: bytes, start: int, keys: frozenset[str]) -> FrontMatter:
    """Find the front matter at ``start`` and the image values under ``keys``.

    ``keys`` are lower-case dotted paths (``cover.image``); lists are walked.
    """
    opening = _OPEN.match(data, start)
    if opening is not None:
        char = opening.group(1)[:1]
        close = _CLOSE[char].search(data, opening.end())
        if close is None:
            return FrontMatter()  # a lone rule line, not front matter
        body_start = _line_after(data, close.end())
        block_start, block_end = opening.end(), close.start()
        if char == b"+":
            return _toml(data, block_start, block_end, body_start, keys)
        return _yaml(data, block_start, block_end, body_start, keys, json_body=char == b";")
    if data.startswith(b"{", start) and data[start + 1 : start + 2] in (b"\n", b"\r", b" ", b'"'):
        return _json_object(data, start, keys)
    if _OPENLESS_FIRST_LINE.match(data, start):
        close = _OPENLESS_CLOSE.search(data, start)
        if close is not None:
            found = _yaml(
                data,
                start,
                close.start(),
                _line_after(data, close.end()),
                keys,
                json_body=close.group(1)[:1] == b";",
            )
            if found.problem is None:
                return found
    return FrontMatter()


def _line_after(data: bytes, pos: int) -> int:
    nl = data.find(b"\n", pos)
    return len(data) if nl < 0 else nl + 1


def _yaml(
    data: bytes, start: int, end: int, body_start: int, keys: frozenset[str], *, json_body: bool
) -> FrontMatter:
    text = data[start:end].decode("utf-8")
    shift = 0
    if json_body and not text.lstrip().startswith("{"):
        text, shift = "{" + text + "\n}", 1  # Hexo's ;;; JSON omits the braces
    try:
        spans = list(_yaml_values(text, keys))
    except yaml.YAMLError as exc:
        return FrontMatter(body_start, [], _yaml_problem(data, start, exc))
    except _NotAMapping:
        return FrontMatter(body_start, [], "front matter is not a mapping of keys to values")
    to_bytes = _ByteOffsets(text, start, shift)
    hits = [
        Hit(to_bytes(a), to_bytes(b), "front_matter", path, value=None if text[a:b] == v else v)
        for path, a, b, v in spans
    ]
    return FrontMatter(body_start, hits)


def _yaml_problem(data: bytes, start: int, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"front matter is not valid YAML: {reason}"
    line = data.count(b"\n", 0, start) + mark.line + 1
    return f"front matter is not valid YAML (line {line}): {reason}"


class _NotAMapping(Exception):
    pass


@dataclass(slots=True)
class _Frame:
    path: str | None  # None: under a complex key, where nothing can match
    mapping: bool
    key: str | None = None
    expect_key: bool = True


def _yaml_values(text: str, keys: frozenset[str]) -> Iterator[tuple[str, int, int, str]]:
    """(dotted key, start, end, value) of each string scalar under one of ``keys``;
    the value differs from ``text[start:end]`` where the quoted text holds escapes.

    Walks the parser's events rather than composed nodes: the same marks,
    without building and resolving a node for every title and date.
    """
    stack: list[_Frame] = []
    # Dispatch on the exact class: isinstance chains were a fifth of a scan.
    for event in yaml.parse(text, Loader=_Loader):
        kind = event.__class__
        scalar = cast(yaml.ScalarEvent, event)  # used only where kind is _SCALAR
        if kind is _MAP_END or kind is _SEQ_END:
            stack.pop()
            continue
        if kind is not _SCALAR and kind is not _MAP_START and kind is not _SEQ_START:
            continue  # stream and document boundaries, aliases
        if not stack:
            if kind is _MAP_START:
                stack.append(_Frame("", mapping=True))
            elif kind is not _SCALAR or scalar.value != "":  # "" is an empty document
                raise _NotAMapping
            continue
        top = stack[-1]
        path: str | None = top.path
        if top.mapping:
            if top.expect_key:
                top.expect_key = False
                if kind is _SCALAR:
                    top.key = scalar.value.lower()
                else:  # a complex key: nothing under it can match
                    top.key = None
                    stack.append(_Frame(None, mapping=kind is _MAP_START))
                continue
            top.expect_key = True
            if path is not None and top.key is not None:
                path = f"{path}.{top.key}" if path else top.key
            else:
                path = None
        if kind is not _SCALAR:
            stack.append(_Frame(path, mapping=kind is _MAP_START))
        elif path in keys and _is_string(scalar):
            start, end = scalar.start_mark, scalar.end_mark
            if start is None or end is None or start.line != end.line:
                continue  # a folded multi-line value's raw text is not its URL
            # The event starts at its anchor or tag, if any: skip them.
            a, b = _after_properties(text, start.index), end.index
            if scalar.style in ('"', "'"):
                a, b = a + 1, b - 1
            if a < b:
                yield path, a, b, scalar.value


_SCALAR, _MAP_START, _SEQ_START = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
_MAP_END, _SEQ_END = yaml.MappingEndEvent, yaml.SequenceEndEvent
_RESOLVER = yaml.resolver.Resolver()
_PROPERTIES = re.compile(r"(?:[&!]\S*[ \t]+)*")


def _after_properties(text: str, pos: int) -> int:
    m = _PROPERTIES.match(text, pos)
    return pos if m is None else m.end()


def _is_string(event: yaml.ScalarEvent) -> bool:
    """A one-line string value: not a bool, number, date or null, not a block scalar."""
    if event.style in ("|", ">"):
        return False
    if event.style in ('"', "'"):
        return True
    if event.tag not in (None, "!"):
        return event.tag == _STR_TAG
    resolved: str = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, event.value, (True, False)
    )
    return resolved == _STR_TAG


class _ByteOffsets:
    """Character offsets in a decoded block -> byte offsets in the file."""

    def __init__(self, text: str, base: int, shift: int = 0) -> None:
        self._text, self._base, self._shift = text, base, shift
        self._ascii = text.isascii()

    def __call__(self, index: int) -> int:
        index -= self._shift
        if self._ascii:
            return self._base + index
        return self._base + len(self._text[self._shift : self._shift + index].encode("utf-8"))


def _toml(data: bytes, start: int, end: int, body_start: int, keys: frozenset[str]) -> FrontMatter:
    text = data[start:end].decode("utf-8")
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return FrontMatter(body_start, [], _toml_problem(data, start, end, exc))
    to_bytes = _ByteOffsets(text, start)
    hits = []
    for path, a, b in string_spans(text):
        dotted = ".".join(path).lower()
        if dotted in keys and _toml_holds(parsed, path, text[a:b]):
            hits.append(Hit(to_bytes(a), to_bytes(b), "front_matter", dotted))
    return FrontMatter(body_start, hits)


def _toml_problem(data: bytes, start: int, end: int, exc: tomllib.TOMLDecodeError) -> str:
    # tomllib counts lines within the block; the user needs the file's line.
    reason = str(exc)
    m = re.search(r"\(at line (\d+), column \d+\)$|\(at end of document\)$", reason)
    if m is None:
        return f"front matter is not valid TOML: {reason}"
    before = data.count(b"\n", 0, start)
    # At the end of the block, the closing +++ line is where it went wrong.
    line = before + (int(m.group(1)) if m.group(1) else data.count(b"\n", start, end) + 1)
    return f"front matter is not valid TOML (line {line}): {reason[: m.start()].rstrip()}"


def _toml_holds(parsed: object, path: tuple[str, ...], raw: str) -> bool:
    """Does tomllib agree that a string equal to ``raw`` stands at ``path``?"""
    values: list[object] = [parsed]
    for part in path:
        found: list[object] = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            found.extend(item[part] for item in items if isinstance(item, dict) and part in item)
        values = found
    flat = [v for value in values for v in (value if isinstance(value, list) else [value])]
    return any(isinstance(v, str) and (v == raw or "\\" in raw) for v in flat)


def _json_object(data: bytes, start: int, keys: frozenset[str]) -> FrontMatter:
    text = data[start:].decode("utf-8")
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return FrontMatter()  # not JSON front matter; the body starts at once
    end_byte = start + len(text[:end].encode("utf-8"))
    return _yaml(data, start, end_byte, _line_after(data, end_byte), keys, json_body=False)
