"""Tests for mirror.formats: the one table of image formats and extensions, and
that the scanner, the store and migrate's prediction all read it alike."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import get_args

import pytest

from mirror.formats import FORMATS, IMAGE_EXTENSIONS, ImageFormat, format_of, written
from mirror.keep.store import hash_path, url_path
from mirror.urls import looks_like_image

SHA = "ab" * 32
EVERY = [(fmt, ext) for fmt, f in FORMATS.items() for ext in sorted({f.extension, *f.aliases})]


def test_written_extensions_stay_as_existing_mirrors_have_them() -> None:
    # The url layout keeps a name only when it ends in one of these: changing
    # one would move files that rewritten posts point at.
    assert {fmt: f.extension for fmt, f in FORMATS.items()} == {
        "jpeg": ".jpg",
        "png": ".png",
        "gif": ".gif",
        "webp": ".webp",
        "avif": ".avif",
        "heic": ".heic",
        "bmp": ".bmp",
        "tiff": ".tif",
        "ico": ".ico",
        "svg": ".svg",
    }


def test_table_shape() -> None:
    assert set(FORMATS) == set(get_args(ImageFormat))
    listed = [ext for f in FORMATS.values() for ext in (f.extension, *f.aliases)]
    assert len(listed) == len(set(listed)) == len(IMAGE_EXTENSIONS)  # each names one format
    assert all(e == e.lower() and e.startswith(".") and len(e) > 1 for e in listed)
    assert all(f.extension not in f.aliases for f in FORMATS.values())
    # The extensions the scanner took for images before the table was one.
    assert {".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".svg", ".bmp", ".ico"} | {
        ".tif",
        ".tiff",
        ".heic",
        ".jfif",
        ".apng",
    } <= IMAGE_EXTENSIONS


def test_format_of_and_written() -> None:
    assert format_of(".JPEG") == format_of(".jpg") == "jpeg"
    assert format_of(".tiff") == format_of(".TIF") == "tiff"
    assert format_of(".txt") is None and format_of("") is None
    assert written(".TIFF") == ".tif" and written(".Pjpeg") == ".jpg"
    assert written(".BIN") == ".bin"


@pytest.mark.parametrize(("fmt", "ext"), EVERY)
def test_every_extension_is_an_image_and_keeps_its_name(fmt: ImageFormat, ext: str) -> None:
    url = f"https://h/a{ext}"
    assert looks_like_image(url) and looks_like_image(url.upper())
    written_ext = FORMATS[fmt].extension
    assert url_path(url, written_ext) == PurePosixPath("h", f"a{ext}")
    assert url_path(url.upper().replace("HTTPS://H", "https://h"), written_ext).name == (
        f"A{ext.upper()}"
    )
    # Handed any spelling, the store writes the format's own extension.
    assert url_path("https://h/a", ext).suffix == written_ext
    assert hash_path(SHA, ext).name == SHA + written_ext


def test_an_extension_of_another_format_is_appended() -> None:
    url = "https://h/a.heif"
    u_hash = hashlib.sha256(b"//h/a.heif").hexdigest()[:8]
    assert url_path(url, ".jpg") == PurePosixPath("h", f"a.heif~{u_hash}.jpg")
