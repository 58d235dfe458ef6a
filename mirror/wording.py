"""How counts and table columns read in what the commands print.

``counted(1, "host")`` is "1 host", never "1 hosts". Columns are padded by
the width a terminal gives each character, not by the number of characters:
a CJK file name takes two columns per character, and ``len`` would shift
every column after it.
"""

from __future__ import annotations

import unicodedata


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless one: ``plural`` when adding "s" is wrong."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def width(text: str) -> int:
    """The columns ``text`` takes on a terminal: wide (W) and full-width (F)
    characters take two, combining marks and other zero-width ones none."""
    return sum(_columns(char) for char in text)


def _columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def ljust(text: str, columns: int) -> str:
    """``text`` padded on the right to ``columns`` terminal columns."""
    return text + " " * (columns - width(text))


def rjust(text: str, columns: int) -> str:
    """``text`` padded on the left to ``columns`` terminal columns."""
    return " " * (columns - width(text)) + text
