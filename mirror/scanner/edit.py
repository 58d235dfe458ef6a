"""Pure span editing of one post's bytes: no file, state or network here.

A rewrite replaces the byte span of each chosen reference (as the scanner
found it) and nothing else: the new post is joined, in one pass, from the
text between the spans and the new texts, so every span keeps the offsets
the scanner gave it. Two checks keep it honest:

* before: the bytes at every span must still be the reference's raw text
  (:func:`apply_edits` raises otherwise; the caller rescans, never guesses);
* after: the new bytes are scanned again and must yield the same references
  at the shifted places, the edited ones carrying their new URL
  (:func:`check_rewritten`). That re-parses the front matter with the same
  YAML/TOML/JSON parsers that found the spans, so a value that would no
  longer read back as the URL is caught before anything is written.

The one context where a URL may need more than itself is a plain (unquoted)
YAML scalar: a new value that YAML would read differently gets double quotes.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence

import frontmatter
import yaml

from mirror.models import Edit, ImageRef, PostScan
from mirror.scanner.post import scan_post

# Characters of a configured base that would end or break the URL in some
# syntax (Markdown, HTML attributes, tag arguments, YAML/TOML strings).
_UNSAFE_IN_BASE = re.compile(r"[\s\"'<>\\`]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# YAML plain scalars may not start with an indicator; "-", "?" and ":" may,
# when followed by a non-space, but quoting them too costs nothing.
_YAML_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_YAML_FLOW = re.compile(r"[,\[\]{}]")  # ends a plain scalar inside a flow collection
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
# Lines end at "\n" only (str.splitlines would also split at U+2028, \x0c, ...).
_LINES = re.compile(r"[^\n]*\n|[^\n]+\Z")


def base_problem(base: str) -> str | None:
    """Why a configured URL base cannot be written into posts, or None."""
    if _UNSAFE_IN_BASE.search(base):
        return "it contains whitespace, a quote, '<', '>', '`' or a backslash"
    return None


_FRAGMENT = re.compile(r"(?<!&)#")  # not the "#" of an entity such as "&#38;"


def fragment_of(ref: ImageRef) -> str:
    """The ``#fragment`` written after the URL, as written ("" if none): the
    scanner keys the mirror on the URL without it, and a rewrite keeps it."""
    if not any(note.startswith("dropped fragment") for note in ref.repairs):
        return ""
    found = _FRAGMENT.search(ref.raw)
    return ref.raw[found.start() :].rstrip() if found else ""


def edit_for(data: bytes, ref: ImageRef, url: str) -> Edit:
    """The edit that puts ``url`` where ``ref`` stands, quoted if YAML needs it."""
    new = url
    if ref.kind == "front_matter" and not _quoted(data, ref) and not _plain_ok(url):
        new = f'"{url}"'  # safe: the URL holds no '"' or '\\' (see base_problem, quote)
    return Edit(ref.start, ref.raw, new, url)


def _quoted(data: bytes, ref: ImageRef) -> bool:
    before, after = data[ref.start - 1 : ref.start], data[ref.end : ref.end + 1]
    return ref.start > 0 and before in (b'"', b"'") and after == before


def _plain_ok(text: str) -> bool:
    """Would YAML read ``text`` as this very string, unquoted, in any context?"""
    if not text or text != text.strip() or text[0] in _YAML_INDICATORS:
        return False
    if ": " in text or " #" in text or text.endswith(":") or _YAML_FLOW.search(text):
        return False
    resolved: str = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, text, (True, False)
    )
    return resolved == _STR_TAG


def apply_edits(data: bytes, edits: Iterable[Edit]) -> bytes:
    """``data`` with every edit applied.

    Raises ValueError if the bytes at an edit are not its ``old`` text, or if
    two edits overlap: the caller's view of the file is out of date.
    """
    ordered = sorted(edits, key=lambda e: e.start)
    # Joined from pieces, each byte copied once: replacing spans in place would
    # move the whole tail of the post at each edit (quadratic in the references).
    pieces: list[bytes] = []
    done, last = 0, 0
    for edit in ordered:
        if edit.start < done:
            raise ValueError(f"overlapping edits at bytes {last} and {edit.start}")
        last = edit.start
        old = edit.old.encode("utf-8")
        end = edit.start + len(old)
        if data[edit.start : end] != old:
            raise ValueError(f"the text at byte {edit.start} is no longer {edit.old!r}")
        pieces += (data[done : edit.start], edit.new.encode("utf-8"))
        done = end
    pieces.append(data[done:])
    return b"".join(pieces)


def shifted_starts(edits: Sequence[Edit]) -> list[int]:
    """Where each edit (sorted by start) begins in the edited bytes."""
    starts, delta = [], 0
    for edit in edits:
        starts.append(edit.start + delta)
        delta += edit.delta
    return starts


def check_rewritten(
    before: PostScan, data: bytes, edits: Sequence[Edit], keys: frozenset[str]
) -> str | None:
    """Rescan the edited ``data``; why it does not read back as intended, or None.

    Every reference of ``before`` must stand at its shifted place, with its
    old text or, where edited, the new URL; no reference may appear or vanish.
    """
    after = scan_post(data, before.post, keys)
    if after.problems != before.problems:
        return "after the edit it no longer reads: " + "; ".join(after.problems)
    ordered = sorted(edits, key=lambda e: e.start)
    by_start = {e.start: e for e in ordered}
    # One walk over the references and the edits, both in file order, carrying
    # the shift of the edits passed so far (not summed again per reference).
    expected, passed, delta = [], 0, 0
    for ref in sorted(before.refs, key=lambda r: r.start):
        while passed < len(ordered) and ordered[passed].start < ref.start:
            delta += ordered[passed].delta
            passed += 1
        edit = by_start.get(ref.start)
        if edit is None:
            expected.append((ref.start + delta, ref.raw))
        else:
            expected.append((ref.start + delta + edit.url_offset, edit.url))
    found = [(r.start, r.raw) for r in after.refs]
    if sorted(expected) == sorted(found):
        edited = [by_start[r.start] for r in before.refs
                  if r.start in by_start and r.kind == "front_matter"]  # fmt: skip
        return _front_matter_holds(data, ordered, edited) if edited else None
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    what = f"'{missing[0][1]}' is not read back at byte {missing[0][0]}" if missing else ""
    what = what or f"a new reference '{extra[0][1]}' appears at byte {extra[0][0]}"
    return f"after the edit the post does not read back as intended ({what}); not written"


def relocate(before: bytes, after: bytes) -> Callable[[int, int], int | None]:
    """Map a span of ``before`` to where it stands in ``after``, the same text around it.

    A span maps when its whole line is unchanged between the two (a line
    diff, as ``patch`` without fuzz): no text is searched for, so an edit
    moved by lines added or removed elsewhere is found, and one on a line
    the user changed is not guessed at.
    """
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    old_starts, new_starts = _starts(old_lines), _starts(new_lines)
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    line_map = {
        i: j
        for i0, j0, size in matcher.get_matching_blocks()
        for i, j in zip(range(i0, i0 + size), range(j0, j0 + size), strict=True)
    }

    def where(start: int, length: int) -> int | None:
        line = bisect_right(old_starts, start) - 1
        if line < 0 or line not in line_map or start + length > old_starts[line + 1]:
            return None
        return new_starts[line_map[line]] + start - old_starts[line]

    return where


def locate_written(
    rewritten: bytes, data: bytes, written: Sequence[tuple[int, Edit]], found: Sequence[ImageRef]
) -> list[int | None]:
    """Where the new text of each edit, at its start in ``rewritten`` (in file
    order), stands in ``data`` now; None where it no longer does.

    First by :func:`relocate` (the whole line unchanged: exact). The others are
    looked for among the references the scanner ``found`` in ``data``: one whose
    URL is the edit's URL, with the edit's whole new text around it, paired in
    file order. So an edit is found on a line the user changed around it (the
    alt text, the paragraph it stands in), and one whose URL was replaced is not.
    """
    where = relocate(rewritten, data)
    places = [where(start, len(edit.new.encode("utf-8"))) for start, edit in written]
    pairs = zip(places, written, strict=True)
    taken = {at + edit.url_offset for at, (_, edit) in pairs if at is not None}
    lost = [i for i, at in enumerate(places) if at is None]
    urls = {written[i][1].url for i in lost}
    free = [ref for ref in found if ref.start not in taken and ref.raw in urls]
    matcher = difflib.SequenceMatcher(
        None, [written[i][1].url for i in lost], [ref.raw for ref in free], autojunk=False
    )
    for a, b, size in matcher.get_matching_blocks():
        for i, ref in zip(lost[a : a + size], free[b : b + size], strict=True):
            text = written[i][1].new.encode("utf-8")
            at = ref.start - written[i][1].url_offset
            if at >= 0 and data[at : at + len(text)] == text:
                places[i] = at
    return places


def _starts(lines: list[bytes]) -> list[int]:
    """The offset of each line, and the end of the text last."""
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    return starts


def unified_diff(post: str, before: bytes, after: bytes) -> str:
    """A unified diff of one post (both sides are UTF-8: the scanner read them)."""
    lines = difflib.unified_diff(
        _LINES.findall(before.decode("utf-8")),
        _LINES.findall(after.decode("utf-8")),
        fromfile=f"a/{post}",
        tofile=f"b/{post}",
    )
    # A last line without newline would run into the next header.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)  # fmt: skip


def _front_matter_holds(data: bytes, edits: Sequence[Edit], checked: Sequence[Edit]) -> str | None:
    """A second opinion from an independent parser (python-frontmatter): YAML
    front matter between ``---`` lines must still parse after the edit, and
    hold each new URL of ``checked`` whose old text it read before the edit
    (it cannot see, say, the first of two equal keys; the scanner's own check
    above covers those). ``edits`` are all the post's edits, in file order."""
    shift, undo = 0, []
    for edit in edits:  # back to the bytes before the edit, to compare
        undo.append(Edit(edit.start + shift, edit.new, edit.old, edit.old))
        shift += edit.delta
    values = {}
    for label, text in (("before", apply_edits(data, undo)), ("after", data)):
        decoded = text.decode("utf-8-sig", errors="replace")
        if not decoded.startswith("---"):
            return None
        try:
            values[label] = set(_strings(frontmatter.loads(decoded).metadata))
        except Exception as exc:
            if label == "before":
                return None  # it could not read the post to begin with: no opinion
            return f"after the edit the front matter no longer parses ({exc}); not written"
    for edit in checked:
        if edit.old in values["before"] and edit.url not in values["after"]:
            return f"after the edit the front matter does not hold {edit.url}; not written"
    return None


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
