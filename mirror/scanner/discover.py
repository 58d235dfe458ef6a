"""Which files are posts: configured globs, or a layout detected from the site.

The walk is our own rather than ``Path.glob``: it follows directory symlinks
(blogs often link their posts folder in) but visits each real directory once,
so a symlink loop ends the descent instead of the run, and it prunes the walk
to the literal prefix of each glob.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirror.keep.postfile import Stamp, stamp_of
from mirror.scanner.layout import detect

# Never posts: tool and dependency folders, and our own state.
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", ".gallery-mirror", ".venv"})


@dataclass(frozen=True, slots=True)
class Discovery:
    globs: tuple[str, ...]
    detected: str  # how the globs were chosen, for -v
    posts: tuple[str, ...]  # posix paths relative to the root, sorted
    notes: tuple[str, ...]  # e.g. directory symlink loops that were not followed
    stamps: Mapping[str, Stamp]  # of each post a stat could see (links followed)


def detect_globs(root: Path) -> tuple[tuple[str, ...], str]:
    """The posts of the detected generator (:mod:`mirror.scanner.layout`), and why."""
    layout = detect(root)
    if layout.generator == "markdown":
        return layout.globs, "no Hexo, Hugo or Jekyll layout found: every Markdown file"
    return layout.globs, f"detected a {layout.name} site ({layout.why})"


def discover(root: Path, globs: Sequence[str] | None, *, exclude: Sequence[Path] = ()) -> Discovery:
    """The posts under ``root`` matching ``globs`` (None: detect the layout)."""
    if globs is None:
        chosen, detected = detect_globs(root)
    else:
        # "./posts/*.md" and "posts/*.md" name the same files, by the same names.
        chosen = tuple(dict.fromkeys(posixpath.normpath(g) for g in globs))
        detected = "configured in site.posts"
    skip = {p.resolve() for p in exclude}
    notes: list[str] = []
    split = [_split_glob(pattern) for pattern in chosen]
    post = re.compile("|".join(f"(?:{regex.pattern})" for _, regex in split))
    infos: dict[str, os.stat_result | None] = {}
    walked: set[str] = set()  # the folders walked so far, by their names
    # Each base once, in the globs' order (Hexo's four globs have two): a
    # base's own walk finds its posts under their own names first, though a
    # wider base holds a link to them, and reaches one the wider walk skips.
    for base in dict.fromkeys(base for base, _ in split):
        for rel, entry in _walk(root, base, skip, walked, notes):
            if rel not in infos and post.fullmatch(rel):
                try:  # in the walk's order: a folder's inodes are near each other
                    infos[rel] = entry.stat()  # links followed, as reading the post will
                except OSError:
                    infos[rel] = None  # unreadable: reported when read
    posts = _one_name_per_file(root, infos, notes)
    stamps = {rel: stamp_of(info) for rel in posts if (info := infos[rel]) is not None}
    return Discovery(chosen, detected, posts, tuple(dict.fromkeys(notes)), stamps)


def _one_name_per_file(
    root: Path, infos: Mapping[str, os.stat_result | None], notes: list[str]
) -> tuple[str, ...]:
    """Each real file once, under its own name rather than a symlinked alias.

    A link up the tree or a linked post would otherwise be scanned, and later
    rewritten, twice under two names with offsets gone stale after the first.
    """
    first: dict[tuple[int, int], str] = {}
    shared: set[tuple[int, int]] = set()  # files found under more than one name
    for name, st in infos.items():
        if st is not None and first.setdefault(key := (st.st_dev, st.st_ino), name) != name:
            shared.add(key)
    if not shared:  # the usual site: nothing more to choose
        return tuple(sorted(infos))
    real_root = root.resolve()
    chosen: dict[tuple[int, int] | str, str] = {}
    for name in sorted(infos):
        st = infos[name]
        if st is None or (key := (st.st_dev, st.st_ino)) not in shared:
            chosen[name] = name
            continue
        held = chosen.get(key)
        if held is None or (_is_canonical(real_root, name) and not _is_canonical(real_root, held)):
            chosen[key] = name
        if held is not None:
            kept = chosen[key]
            notes.append(f"{held if kept == name else name}: same file as {kept}, scanned once")
    return tuple(sorted(chosen.values()))


def _is_canonical(real_root: Path, name: str) -> bool:
    return (real_root / name).resolve() == real_root / name


def _split_glob(pattern: str) -> tuple[str, re.Pattern[str]]:
    """The literal directory prefix of a glob, and the whole glob as a regex."""
    parts = pattern.strip("/").split("/")
    literal = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        literal.append(part)
    return "/".join(literal), re.compile(translate_glob("/".join(parts)))


def translate_glob(pattern: str) -> str:
    """A glob with ``**`` (any number of directories) as a regular expression."""
    out = []
    i, size = 0, len(pattern)
    while i < size:
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (close := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : close]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _walk(
    root: Path, base: str, skip: set[Path], walked: set[str], notes: list[str]
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """The files under ``root/base``: relative posix path, and the entry.

    The files of a folder in ``walked`` (listed by an earlier base's walk:
    Hexo's ``source/`` holds ``source/_posts/``) are not yielded again: they
    were matched against every glob then. Its folders are walked all the same,
    for this walk's notes. The folders this walk lists are added to it."""
    start = root / base if base else root
    try:
        info = start.stat()
    except OSError:
        return
    visited = {(info.st_dev, info.st_ino)}
    stack = [(start, base)]
    while stack:
        folder, rel = stack.pop()
        again = rel in walked
        walked.add(rel)
        folders = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    if is_dir:
                        folders.append(entry)
                    elif not again:  # a broken or looping file link is reported when read
                        yield (f"{rel}/{entry.name}" if rel else entry.name), entry
        except OSError as exc:
            notes.append(f"{rel or '.'}: cannot list the folder: {exc.strerror}")
            continue
        # Folders in name order, so that which of two links to one folder is
        # followed is the same on every run; files need none (sorted at the end).
        for entry in sorted(folders, key=lambda e: e.name):
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.name in _SKIP_DIRS or Path(entry.path).resolve() in skip:
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:
                if entry.is_symlink():
                    notes.append(f"{child}: symlink loop, not followed")
                continue
            visited.add(key)
            stack.append((Path(entry.path), child))
