"""The image formats the mirror accepts, and the file extensions of each: one table.

Sniffing and validation (``validate``) name a file's format from its bytes;
the fetch and the store (``store``) give the file the extension written here;
the scanner (``urls.looks_like_image``) takes a URL ending in any of a
format's extensions for an image; ``migrate`` predicts a URL's path from its
extension. They all read this table, so they cannot disagree.

``extension`` is the one the mirror writes. It may not change: the ``url``
layout keeps a URL's own name only when the name ends in one of its format's
extensions, and appends the written one otherwise (``a`` served as a JPEG is
stored as ``a~<hash>.jpg``), so existing mirrors depend on it. ``aliases`` are
every other spelling a file of the format is commonly given.

Values only: no I/O, and no Pillow (the scanner imports this).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "Format",
    "ImageFormat",
    "format_of",
    "mime_of",
    "written",
]

ImageFormat = Literal["jpeg", "png", "gif", "webp", "avif", "heic", "bmp", "tiff", "ico", "svg"]


@dataclass(frozen=True, slots=True)
class Format:
    name: str  # as messages show it: "JPEG", "WebP"
    extension: str  # what the mirror writes, lower case with the dot
    mime: str  # the Content-Type a file of the format is served with
    aliases: frozenset[str] = frozenset()  # other extensions of the format
    pillow: str | None = None  # the Pillow plugin that reads and writes it, if any


FORMATS: Final[Mapping[ImageFormat, Format]] = MappingProxyType(
    {
        "jpeg": Format(
            "JPEG",
            ".jpg",
            "image/jpeg",
            frozenset({".jpeg", ".jpe", ".jfif", ".pjpeg", ".pjp"}),
            "JPEG",
        ),
        "png": Format("PNG", ".png", "image/png", frozenset({".apng"}), "PNG"),
        "gif": Format("GIF", ".gif", "image/gif", pillow="GIF"),
        "webp": Format("WebP", ".webp", "image/webp", pillow="WEBP"),
        "avif": Format("AVIF", ".avif", "image/avif", frozenset({".avifs"}), "AVIF"),
        # Pillow has no HEIC plugin of its own (pillow-heif adds one).
        "heic": Format(
            "HEIC", ".heic", "image/heic", frozenset({".heif", ".heics", ".heifs", ".hif"})
        ),
        "bmp": Format("BMP", ".bmp", "image/bmp", frozenset({".dib"}), "BMP"),
        "tiff": Format("TIFF", ".tif", "image/tiff", frozenset({".tiff"}), "TIFF"),
        "ico": Format("ICO", ".ico", "image/vnd.microsoft.icon", pillow="ICO"),
        "svg": Format("SVG", ".svg", "image/svg+xml"),
    }
)

_BY_EXTENSION: Final[Mapping[str, ImageFormat]] = MappingProxyType(
    {ext: fmt for fmt, f in FORMATS.items() for ext in (f.extension, *f.aliases)}
)

IMAGE_EXTENSIONS: Final[frozenset[str]] = frozenset(_BY_EXTENSION)
"""Every extension of every format, lower case with the dot."""


def format_of(extension: str) -> ImageFormat | None:
    """The format an extension (with its dot, any case) names, or None."""
    return _BY_EXTENSION.get(extension.lower())


def written(extension: str) -> str:
    """The extension the mirror writes for ``extension``'s format, lower case;
    an extension of no format comes back lower-cased, as it is."""
    fmt = format_of(extension)
    return FORMATS[fmt].extension if fmt is not None else extension.lower()


def mime_of(extension: str) -> str | None:
    """The Content-Type of the format an extension names, or None."""
    fmt = format_of(extension)
    return FORMATS[fmt].mime if fmt is not None else None
