"""Tests for mirror.pixels.validate: sniffing, Content-Type, completeness, pixel limit.

Every image is made with Pillow (or by hand) in memory; nothing is downloaded.
Warnings are errors in this module, so a Pillow warning that leaked out of
validation would fail whichever test provoked it.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import random
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from mirror.config import DEFAULT_MAX_PIXELS
from mirror.formats import ImageFormat
from mirror.pixels.validate import (
    MAX_TRAILING_PADDING,
    ImageInfo,
    Invalid,
    _check_complete,
    content_type_allows,
    content_type_note,
    inspect,
    sniff,
)

pytestmark = pytest.mark.filterwarnings("error")

NAMES = {
    "jpeg": "JPEG",
    "png": "PNG",
    "gif": "GIF",
    "webp": "WebP",
    "avif": "AVIF",
    "heic": "HEIC",
    "bmp": "BMP",
    "tiff": "TIFF",
    "ico": "ICO",
    "svg": "SVG",
}
HAS_AVIF = features.check("avif") is True
needs_avif = pytest.mark.skipif(not HAS_AVIF, reason="Pillow built without AVIF")


# --- building images -----------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def gradient(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A smooth picture: compresses like a photo, unlike a flat colour."""
    return Image.linear_gradient("L").resize(size).convert(mode)


def translucent(size: tuple[int, int] = (40, 30)) -> Image.Image:
    """A gradient with a real alpha channel (an opaque one is dropped by encoders)."""
    image = gradient("RGBA", size)
    image.putalpha(gradient("L", size).rotate(180))
    return image


def frames() -> list[Image.Image]:
    first = gradient()
    return [first, first.rotate(90), first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]


def with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Test Camera"  # Make
    exif[0x0112] = 6  # Orientation: rotated
    return encode(gradient(), "JPEG", exif=exif)


def box(kind: bytes, payload: bytes) -> bytes:
    """An ISO-BMFF box."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes) -> bytes:
    return box(kind, b"\x00\x00\x00\x00" + payload)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))


def heic(*sizes: tuple[int, int], mdat: bytes = b"\x00" * 64) -> bytes:
    """A hand-made HEIC: ftyp, a meta box holding one ispe per size, mdat."""
    ispes = b"".join(full_box(b"ispe", struct.pack(">II", w, h)) for w, h in sizes)
    hdlr = full_box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 13)
    meta = full_box(b"meta", hdlr + box(b"iprp", box(b"ipco", ispes)))
    return ftyp(b"heic", b"mif1", b"heic") + meta + box(b"mdat", mdat)


# name: (format, width, height, bytes)
SampleSpec = tuple[ImageFormat, int, int, Callable[[], bytes]]
SAMPLES: dict[str, SampleSpec] = {
    "jpeg-baseline": ("jpeg", 40, 30, lambda: encode(gradient(), "JPEG", quality=90)),
    "jpeg-progressive": ("jpeg", 40, 30, lambda: encode(gradient(), "JPEG", progressive=True)),
    "jpeg-cmyk": ("jpeg", 40, 30, lambda: encode(gradient("CMYK"), "JPEG")),
    "jpeg-grey": ("jpeg", 40, 30, lambda: encode(gradient("L"), "JPEG")),
    "jpeg-exif": ("jpeg", 40, 30, with_exif),
    "png-rgb": ("png", 40, 30, lambda: encode(gradient(), "PNG")),
    "png-rgba": ("png", 40, 30, lambda: encode(translucent(), "PNG")),
    "png-palette": ("png", 40, 30, lambda: encode(gradient("P"), "PNG")),
    "png-16bit": ("png", 40, 30, lambda: encode(gradient("I;16"), "PNG")),
    "png-animated": (
        "png",
        40,
        30,
        lambda: encode(frames()[0], "PNG", save_all=True, append_images=frames()[1:]),
    ),
    "gif-still": ("gif", 40, 30, lambda: encode(gradient(), "GIF")),
    "gif-animated": (
        "gif",
        40,
        30,
        lambda: encode(frames()[0], "GIF", save_all=True, append_images=frames()[1:], loop=0),
    ),
    "webp-lossy": ("webp", 40, 30, lambda: encode(gradient(), "WEBP")),
    "webp-lossless": ("webp", 40, 30, lambda: encode(gradient(), "WEBP", lossless=True)),
    "webp-alpha": ("webp", 40, 30, lambda: encode(translucent(), "WEBP")),
    "webp-animated": (
        "webp",
        40,
        30,
        lambda: encode(frames()[0], "WEBP", save_all=True, append_images=frames()[1:]),
    ),
    "bmp-24bit": ("bmp", 40, 30, lambda: encode(gradient(), "BMP")),
    "bmp-8bit": ("bmp", 40, 30, lambda: encode(gradient("P"), "BMP")),
    "bmp-1bit": ("bmp", 40, 30, lambda: encode(gradient("1"), "BMP")),
    "tiff-raw": ("tiff", 40, 30, lambda: encode(gradient(), "TIFF")),
    "tiff-lzw": ("tiff", 40, 30, lambda: encode(gradient(), "TIFF", compression="tiff_lzw")),
    "tiff-deflate": (
        "tiff",
        40,
        30,
        lambda: encode(gradient(), "TIFF", compression="tiff_adobe_deflate"),
    ),
    "ico-png": (
        "ico",
        32,
        32,
        lambda: encode(translucent((32, 32)), "ICO", sizes=[(16, 16), (32, 32)]),
    ),
    "ico-bmp": (
        "ico",
        32,
        32,
        lambda: encode(translucent((32, 32)), "ICO", sizes=[(32, 32)], bitmap_format="bmp"),
    ),
    "avif": ("avif", 40, 30, lambda: encode(gradient(), "AVIF")),
    "heic": ("heic", 4032, 3024, lambda: heic((512, 512), (4032, 3024), (320, 240))),
}


def sample_params(names: list[str] | None = None) -> list[Any]:
    return [
        pytest.param(name, marks=needs_avif if name == "avif" else (), id=name)
        for name in (names or list(SAMPLES))
    ]


@functools.cache
def sample(name: str) -> bytes:
    return SAMPLES[name][3]()


def write(tmp_path: Path, data: bytes, name: str = "download.tmp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def reason(path: Path, **kwargs: Any) -> str:
    with pytest.raises(Invalid) as caught:
        inspect(path, **kwargs)
    return caught.value.reason


def with_png_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with every PNG IHDR in it claiming a new size, CRCs fixed."""
    out = bytearray(data)
    at = out.find(b"IHDR")
    while at != -1:
        fields = struct.pack(">II", width, height) + out[at + 12 : at + 17]
        out[at + 4 : at + 17] = fields
        out[at + 17 : at + 21] = struct.pack(">I", zlib.crc32(b"IHDR" + fields))
        at = out.find(b"IHDR", at + 4)
    return bytes(out)


# --- the formats, as written by Pillow -------------------------------------------


@pytest.mark.parametrize("name", sample_params())
def test_valid_image_is_accepted_with_its_size(tmp_path: Path, name: str) -> None:
    fmt, width, height, _ = SAMPLES[name]
    assert inspect(write(tmp_path, sample(name))) == ImageInfo(fmt, width, height)


@pytest.mark.parametrize("name", sample_params())
def test_sniff_names_the_format_from_32_bytes(name: str) -> None:
    assert sniff(sample(name)[:32]) == SAMPLES[name][0]


def check_complete(path: Path, fmt: ImageFormat) -> None:
    """The completeness check alone (inspect runs it before the header checks)."""
    with path.open("rb") as fp:
        _check_complete(fp, os.fstat(fp.fileno()).st_size, fmt)


@pytest.mark.parametrize("name", sample_params())
def test_check_complete_accepts_whole_file(tmp_path: Path, name: str) -> None:
    check_complete(write(tmp_path, sample(name)), SAMPLES[name][0])


CUTS: dict[str, Callable[[int], int]] = {
    "last byte": lambda n: n - 1,
    "last 2 bytes": lambda n: n - 2,
    "last 10 bytes": lambda n: n - 10,
    "three quarters": lambda n: n * 3 // 4,
    "half": lambda n: n // 2,
    "first 40 bytes": lambda n: 40,
}


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("name", sample_params())
def test_truncated_image_is_invalid_naming_its_format(tmp_path: Path, name: str, cut: str) -> None:
    data = sample(name)
    path = write(tmp_path, data[: CUTS[cut](len(data))])
    why = reason(path)
    assert NAMES[SAMPLES[name][0]] in why
    assert why.startswith(("truncated", "unreadable", "corrupt")), why


def test_truncation_reasons_are_specific(tmp_path: Path) -> None:
    def cut(name: str, keep: int = -2) -> str:
        return reason(write(tmp_path, sample(name)[:keep]))

    assert cut("jpeg-baseline") == "truncated JPEG (no end marker)"
    assert cut("png-rgb") == "truncated PNG (no IEND chunk)"
    assert cut("gif-animated") == "truncated GIF (no trailer)"
    n = len(sample("webp-lossy"))
    assert cut("webp-lossy") == f"truncated WebP (RIFF header declares {n} bytes, file has {n - 2})"
    n = len(sample("bmp-24bit"))
    assert cut("bmp-24bit") == f"truncated BMP (pixel data needs {n} bytes, file has {n - 2})"
    n = len(sample("tiff-raw"))
    assert cut("tiff-raw") == f"truncated TIFF (image data needs {n} bytes, file has {n - 2})"
    assert cut("ico-png") == "truncated ICO (image 2 of 2 runs past the end of the file)"
    n = len(sample("heic"))
    assert cut("heic") == f"truncated HEIC (box 'mdat' needs {n} bytes, file has {n - 2})"


@pytest.mark.parametrize("name", sample_params())
def test_every_prefix_is_invalid(tmp_path: Path, name: str) -> None:
    """No cut at any byte passes, and none raises anything but Invalid.

    The one exception is documented: a GIF cut that happens to end in the
    bytes of a block terminator and trailer (00 3B) looks complete.
    """
    data = sample(name)
    path = write(tmp_path, data)
    accepted = []
    for length in reversed(range(len(data))):
        os.truncate(path, length)  # far cheaper than rewriting the file each time
        try:
            inspect(path)
        except Invalid:
            continue
        accepted.append(length)
    if SAMPLES[name][0] == "gif":
        assert all(data[:n].rstrip(b"\x00").endswith(b"\x00\x3b") for n in accepted)
    else:
        assert accepted == []


def test_jpeg_cut_at_an_embedded_thumbnails_end_marker_is_invalid(tmp_path: Path) -> None:
    # An APP1 segment holding a whole JPEG (as an EXIF thumbnail does): a cut
    # right after the thumbnail's FFD9 ends in an end marker, but the outer
    # header is cut short, so the header parse refuses it.
    thumbnail = encode(gradient(size=(8, 6)), "JPEG")
    outer = sample("jpeg-baseline")
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(thumbnail)) + b"Exif\x00\x00" + thumbnail
    data = outer[:2] + app1 + outer[2:]
    assert inspect(write(tmp_path, data)) == ImageInfo("jpeg", 40, 30)
    cut = data[: 2 + len(app1)]
    assert cut.endswith(b"\xff\xd9")
    assert reason(write(tmp_path, cut)) == "unreadable JPEG header"


# --- trailing bytes after the end marker -------------------------------------------

PAD = MAX_TRAILING_PADDING
TRAILING = [
    ("jpeg-baseline", b"\x00" * 100, None),
    ("jpeg-baseline", b"\r\n", None),
    ("jpeg-baseline", b" \t\n" * 10, None),
    ("jpeg-baseline", b"\x00" * PAD, None),
    (
        "jpeg-baseline",
        b"\x00" * (PAD + 1),
        f"truncated JPEG (ends in more than {PAD} padding bytes)",
    ),
    ("jpeg-baseline", b"<br />\n<b>Warning</b>", "truncated JPEG (no end marker)"),
    ("png-rgb", b"\n", None),
    ("png-rgb", b"\x00" * 1000, None),
    ("png-rgb", b"PHP Notice: undefined index", "PNG has trailing data after the IEND chunk"),
    ("gif-animated", b"\x00" * 512, None),
    ("gif-animated", b"xyz", "truncated GIF (no trailer)"),
    ("webp-lossy", b"\x00", None),
    ("webp-lossy", b"\x00" * PAD, None),
    ("webp-lossy", b"\x00" * (PAD + 1), f"WebP has {PAD + 1} bytes of trailing data"),
    ("webp-lossy", b"junk", "WebP has 4 bytes of trailing data"),
    ("bmp-24bit", b"junk", None),  # BMP writers round their sizes; extra bytes are harmless
    ("heic", b"\x00" * 8, None),  # reads as a box of size 0: "to the end of the file"
    ("heic", b"\x00" * 3, "truncated HEIC (incomplete box header at byte "),
]


@pytest.mark.parametrize(
    ("name", "suffix", "expected"),
    TRAILING,
    ids=[f"{n}+{len(s)}" for n, s, _ in TRAILING],
)
def test_trailing_bytes(tmp_path: Path, name: str, suffix: bytes, expected: str | None) -> None:
    path = write(tmp_path, sample(name) + suffix)
    if expected is None:
        assert inspect(path).format == SAMPLES[name][0]
    else:
        assert reason(path).startswith(expected)


@needs_avif
def test_avif_cut_between_boxes_is_invalid(tmp_path: Path) -> None:
    data = sample("avif")
    ftyp_end = struct.unpack(">I", data[:4])[0]
    assert reason(write(tmp_path, data[:ftyp_end])) == "truncated AVIF (no meta box)"


def test_heic_cut_between_boxes_is_invalid(tmp_path: Path) -> None:
    data = sample("heic")
    without_mdat = data[: data.index(b"mdat") - 4]
    assert reason(write(tmp_path, without_mdat)) == "truncated HEIC (no mdat box)"


def test_heic_without_ispe_is_trusted_without_size(tmp_path: Path) -> None:
    assert inspect(write(tmp_path, heic())) == ImageInfo("heic", None, None)


def test_heic_data_in_idat_needs_no_mdat(tmp_path: Path) -> None:
    meta = full_box(b"meta", box(b"idat", b"\x00" * 16))
    data = ftyp(b"mif1", b"mif1", b"heic") + meta
    assert inspect(write(tmp_path, data)) == ImageInfo("heic", None, None)


# --- things that are not images -----------------------------------------------------

HTML_404 = (
    b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
    b"<body><h1>Not Found</h1></body></html>\n"
)
S3_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)
RANDOM = random.Random(20240601).randbytes(4096)
NOT_IMAGES = [
    ("html-doctype", HTML_404, "not an image (HTML page)"),
    ("html-bom-space", b"\xef\xbb\xbf \n<!doctype HTML><html></html>", "not an image (HTML page)"),
    ("html-bare", b"<html>\n<body>Forbidden</body></html>", "not an image (HTML page)"),
    ("html-comment", b"<!-- cdn error page -->\n<html lang=en>", "not an image (HTML page)"),
    ("html-head", b"\n\n<head><meta charset=utf-8></head>", "not an image (HTML page)"),
    ("html-script", b"<script>location.href='/login'</script>", "not an image (HTML page)"),
    ("html-inline-svg", b"<html><body><svg></svg></body></html>", "not an image (HTML page)"),
    ("json-object", b'{"error": "not found", "code": 404}', "not an image (JSON)"),
    ("json-array", b"  [1, 2, 3]\n", "not an image (JSON)"),
    ("text", b"Access denied.\n", "not an image (plain text)"),
    ("text-utf8", "图片不存在\n".encode(), "not an image (plain text)"),
    ("text-bm", b"BMW photos are hotlink-protected\n", "not an image (plain text)"),
    ("empty", b"", "not an image (empty file)"),
    ("random", RANDOM, "not an image"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not an image (PDF document)"),
    ("zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "not an image (ZIP archive)"),
    ("gzip", gzip.compress(b"\x89PNG not really"), "not an image (gzip data)"),
    ("mp4", ftyp(b"isom", b"isom", b"iso2", b"mp41") + b"\x00" * 32, "not an image (video)"),
    ("xml-error", S3_ERROR, "not an image (XML document)"),
    ("rss", b'<?xml version="1.0"?>\n<rss version="2.0"></rss>', "not an image (XML document)"),
    (
        "jpeg-xl",
        b"\xff\x0a\xfa\x7f\x01\x90\x08\x06\x01\x00" * 4,
        "unsupported image format (JPEG XL)",
    ),
    ("ico-no-images", b"\x00\x00\x01\x00\x00\x00" + b"\x00" * 40, "not an image"),
]


@pytest.mark.parametrize(
    ("data", "expected"), [p[1:] for p in NOT_IMAGES], ids=[p[0] for p in NOT_IMAGES]
)
def test_not_an_image(tmp_path: Path, data: bytes, expected: str) -> None:
    assert sniff(data) is None
    assert reason(write(tmp_path, data, "photo.jpg")) == expected


def test_random_bytes_fixture_is_not_accidentally_magic() -> None:
    assert RANDOM[:4] not in (b"\xff\xd8\xff\xe0", b"\x89PNG", b"GIF8", b"RIFF")


# --- SVG -----------------------------------------------------------------------------

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="4"/></svg>'
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
DOCTYPE = (
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
)
ILLUSTRATOR = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    "<!-- Generator: Adobe Illustrator 27.0.0, SVG Export Plug-In . SVG Version: 6.00 -->\n"
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
    '\t<!ENTITY ns_svg "http://www.w3.org/2000/svg">\n'
    '\t<!ENTITY ns_xlink "http://www.w3.org/1999/xlink">\n'
    "]>\n"
)
SVGS = [
    ("plain", SVG.encode()),
    ("xml-declaration", (XML_DECL + SVG + "\n").encode()),
    ("bom", ("\ufeff" + SVG).encode()),
    ("bom-declaration", ("\ufeff" + XML_DECL + SVG).encode()),
    ("comment-first", ("<!-- made by hand -->\n" + SVG).encode()),
    ("doctype", (XML_DECL + DOCTYPE + SVG).encode()),
    ("illustrator", (ILLUSTRATOR + SVG).encode()),
    ("whitespace", ("\r\n\t  " + SVG).encode()),
    ("upper-case", b"<SVG width='1' height='1'></SVG>"),
    ("namespaced", b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg"><svg:g/></svg:svg>'),
    ("newline-after-name", b'<svg\n  xmlns="http://www.w3.org/2000/svg">\n</svg>\n'),
    ("self-closing", b'<svg xmlns="http://www.w3.org/2000/svg"/>'),
    ("trailing-comment", (SVG + "\n<!-- end of file -->\n").encode()),
    ("trailing-nul-padding", SVG.encode() + b"\x00" * 10),
    ("utf-16", ("\ufeff" + XML_DECL.replace("UTF-8", "UTF-16") + SVG).encode("utf-16-le")),
    ("utf-16-be", ("\ufeff" + SVG).encode("utf-16-be")),
]


@pytest.mark.parametrize("data", [d for _, d in SVGS], ids=[i for i, _ in SVGS])
def test_svg_is_sniffed_and_accepted_without_size(tmp_path: Path, data: bytes) -> None:
    assert sniff(data) == "svg"
    path = write(tmp_path, data)
    assert inspect(path, content_type="image/svg+xml") == ImageInfo("svg", None, None)
    check_complete(path, "svg")


def test_svg_served_as_xml_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, (XML_DECL + SVG).encode())
    assert inspect(path, content_type="text/xml; charset=utf-8").format == "svg"


def test_svg_root_must_start_within_first_kilobyte() -> None:
    late = "<!--" + "x" * 1100 + "-->" + SVG
    assert sniff(late.encode()) is None
    assert sniff(("<!--" + "x" * 900 + "-->" + SVG).encode()) == "svg"


def test_svg_like_words_are_not_svg() -> None:
    assert sniff(b"<svgfoo/>") is None
    assert sniff(b"<!DOCTYPE html><svg></svg>") is None


@pytest.mark.parametrize("keep", [len(SVG) // 2, len(SVG) - 1, len(SVG) - 3])
def test_truncated_svg_is_invalid(tmp_path: Path, keep: int) -> None:
    path = write(tmp_path, (XML_DECL + SVG).encode()[: len(XML_DECL) + keep])
    assert reason(path) == "truncated SVG (no closing </svg> tag)"


# --- ISO-BMFF brands -------------------------------------------------------------------

FTYPS = [
    ("avif", ftyp(b"avif", b"avif", b"mif1", b"miaf", b"MA1B"), "avif"),
    ("avis", ftyp(b"avis", b"avis", b"msf1", b"miaf"), "avif"),
    ("mif1+avif", ftyp(b"mif1", b"mif1", b"avif", b"miaf"), "avif"),
    ("heic", ftyp(b"heic", b"mif1", b"heic"), "heic"),
    ("heix", ftyp(b"heix", b"mif1", b"heix"), "heic"),
    ("hevc", ftyp(b"hevc", b"msf1", b"hevc"), "heic"),
    ("mif1+heic", ftyp(b"mif1", b"mif1", b"heic"), "heic"),
    ("mif1 alone", ftyp(b"mif1", b"mif1"), "heic"),
    ("mp4", ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), None),
    ("quicktime", ftyp(b"qt  ", b"qt  "), None),
    ("3gp", ftyp(b"3gp4", b"3gp4"), None),
    ("short ftyp", struct.pack(">I", 12) + b"ftypavif" + b"\x00" * 20, None),
    # A 256-byte ftyp box starts with ICO's magic; it is still AVIF.
    ("256-byte ftyp", box(b"ftyp", b"avif\x00\x00\x00\x00" + b"avif" * 60), "avif"),
]


@pytest.mark.parametrize(("head", "expected"), [f[1:] for f in FTYPS], ids=[f[0] for f in FTYPS])
def test_sniff_iso_bmff_brands(head: bytes, expected: str | None) -> None:
    assert sniff(head + b"\x00" * 16) == expected


def test_sniff_never_raises_on_short_heads() -> None:
    for data in [b"", b"\xff", b"\xff\xd8", b"RIFF", b"\x00\x00\x01\x00", b"BM", b"ftyp"]:
        assert sniff(data) is None


def test_sniff_magic_numbers() -> None:
    assert sniff(b"\xff\xd8\xff\xdb" + b"\x00" * 28) == "jpeg"
    assert sniff(b"II*\x00" + b"\x00" * 28) == "tiff"
    assert sniff(b"MM\x00*" + b"\x00" * 28) == "tiff"
    assert sniff(b"II+\x00" + b"\x00" * 28) == "tiff"  # BigTIFF
    assert sniff(b"GIF87a" + b"\x00" * 26) == "gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None  # RIFF, but audio


# --- the pixel limit -------------------------------------------------------------------


def test_png_bomb_is_invalid_quietly(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    before = Image.MAX_IMAGE_PIXELS
    path = write(tmp_path, with_png_size(sample("png-rgb"), 100_000, 100_000))
    # Pillow's header parse refuses it before we see a size: its error gives
    # the pixel count only.
    assert reason(path) == ("image too large: 10000000000 pixels exceeds the limit of 178956970")
    assert len(recwarn) == 0
    assert capsys.readouterr() == ("", "")
    assert before == Image.MAX_IMAGE_PIXELS  # the global is never touched


def test_size_between_pillow_warning_and_limit_is_accepted_quietly(
    tmp_path: Path, recwarn: pytest.WarningsRecorder, capsys: pytest.CaptureFixture[str]
) -> None:
    # 100 million pixels: over Pillow's warning threshold, under its (and our) limit.
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS < 10_000 * 10_000 <= DEFAULT_MAX_PIXELS
    path = write(tmp_path, with_png_size(sample("png-rgb"), 10_000, 10_000))
    assert inspect(path) == ImageInfo("png", 10_000, 10_000)
    assert len(recwarn) == 0
    assert capsys.readouterr() == ("", "")


def test_default_limit_is_pillows_hard_limit() -> None:
    assert DEFAULT_MAX_PIXELS == 2 * 89_478_485


def jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(sample("jpeg-baseline"))
    sof = data.index(b"\xff\xc0\x00\x11")  # baseline frame header, 3 components
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_with_size(width: int, height: int) -> bytes:
    data = sample("gif-animated")
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def webp_with_size(width: int, height: int) -> bytes:
    data = sample("webp-alpha")
    assert data[12:16] == b"VP8X"
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return data[:24] + size + data[30:]


# Where Pillow's header parse is the only one (JPEG, GIF), its error names the
# pixel count only; where ours runs first, the width and height.
BOMBS = [
    ("jpeg", lambda: jpeg_with_size(60_000, 60_000), "3600000000"),
    ("gif", lambda: gif_with_size(65_535, 65_535), "4294836225"),
    # WebP's Pillow plugin allocates the canvas on open: never reached here.
    ("webp", lambda: webp_with_size(16_384, 16_384), "16384x16384"),
    ("ico", lambda: with_png_size(sample("ico-png"), 100_000, 100_000), "100000x100000"),
    ("heic", lambda: heic((100_000, 100_000), (512, 512)), "100000x100000"),
]


@pytest.mark.parametrize(("build", "dims"), [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS])
def test_bomb_in_every_format_is_invalid(
    tmp_path: Path, build: Callable[[], bytes], dims: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, build())
    assert reason(path) == f"image too large: {dims} pixels exceeds the limit of 178956970"
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("name", sample_params())
def test_own_limit_applies_to_every_format(tmp_path: Path, name: str) -> None:
    fmt, width, height, _ = SAMPLES[name]
    path = write(tmp_path, sample(name))
    limit = width * height - 1
    expected = f"image too large: {width}x{height} pixels exceeds the limit of {limit}"
    assert reason(path, max_pixels=limit) == expected
    assert inspect(path, max_pixels=width * height).format == fmt


def test_limit_above_pillows_is_capped_by_pillow(tmp_path: Path) -> None:
    path = write(tmp_path, with_png_size(sample("png-rgb"), 100_000, 100_000))
    assert reason(path, max_pixels=10**12) == (
        "image too large: 10000000000 pixels exceeds Pillow's limit of 178956970"
    )


def test_tiff_bomb_is_invalid(tmp_path: Path) -> None:
    # Patch ImageWidth (256) and ImageLength (257) in the first IFD.
    data = bytearray(sample("tiff-raw"))
    ifd = struct.unpack_from("<I", data, 4)[0]
    for index in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * index
        (tag,) = struct.unpack_from("<H", data, entry)
        if tag in (256, 257):
            struct.pack_into("<HHII", data, entry, tag, 4, 1, 100_000)  # LONG
    assert reason(write(tmp_path, bytes(data))) == (
        "image too large: 10000000000 pixels exceeds the limit of 178956970"
    )


def test_max_pixels_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        inspect(write(tmp_path, sample("png-rgb")), max_pixels=0)


# --- Content-Type ------------------------------------------------------------------------

CONTENT_TYPES = [
    ("image/jpeg", True),
    ("image/jpeg; charset=binary", True),
    ("IMAGE/PNG", True),
    ("  image/webp  ", True),
    ("image/svg+xml", True),
    ("image/x-icon", True),
    ("application/octet-stream", True),
    ("Application/Octet-Stream; name=photo.jpg", True),
    ("binary/octet-stream", True),
    ("text/xml", True),
    ("application/xml; charset=utf-8", True),
    (None, True),
    ("", True),
    ("   ", True),
    ("garbage", True),
    ("*/*", True),
    ("text/html;charset=utf-8", False),
    ("TEXT/HTML", False),
    ("text/html ; charset=UTF-8", False),
    ("text/plain", False),
    ("application/json", False),
    ("application/problem+json", False),
    ("application/xhtml+xml", False),
    ("text/javascript", False),
    ("application/pdf", False),
    ("video/mp4", False),
]


@pytest.mark.parametrize(
    ("value", "allowed"), CONTENT_TYPES, ids=[repr(v) for v, _ in CONTENT_TYPES]
)
def test_content_type_allows(value: str | None, allowed: bool) -> None:
    assert content_type_allows(value) is allowed


@pytest.mark.parametrize("value", ["image/png; charset=binary", "IMAGE/PNG", None, ""])
def test_inspect_with_allowed_content_type(tmp_path: Path, value: str | None) -> None:
    assert inspect(write(tmp_path, sample("png-rgb")), content_type=value).format == "png"


REFUSED = [
    (HTML_404, "text/html;charset=utf-8", "not an image (HTML page)"),
    (b'{"error": 403}', "application/json", "not an image (JSON)"),
    (RANDOM, "text/plain", "not an image (Content-Type text/plain)"),
    (b"", "text/html", "not an image (empty file)"),
]


@pytest.mark.parametrize(("data", "value", "expected"), REFUSED)
def test_refused_content_type_reason(
    tmp_path: Path, data: bytes, value: str, expected: str
) -> None:
    assert reason(write(tmp_path, data), content_type=value) == expected


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ("text/html; charset=UTF-8", "PNG served as text/html"),  # a PHP script's default
        ("text/plain", "PNG served as text/plain"),
        ("application/octet-stream", "PNG served as application/octet-stream"),
        (None, "PNG served without a Content-Type"),
        ("", "PNG served without a Content-Type"),
        ("image/jpeg", None),
    ],
)
def test_the_bytes_decide_and_the_content_type_is_a_note(
    tmp_path: Path, value: str | None, note: str | None
) -> None:
    info = inspect(write(tmp_path, sample("png-rgb")), content_type=value)
    assert info.format == "png" and content_type_note(value, info.format) == note


def test_svg_sent_as_xml_needs_no_note() -> None:
    assert content_type_note("text/xml; charset=utf-8", "svg") is None


def test_html_with_image_content_type_is_caught_by_sniffing(tmp_path: Path) -> None:
    assert reason(write(tmp_path, HTML_404), content_type="image/jpeg") == (
        "not an image (HTML page)"
    )


# --- Content-Length ------------------------------------------------------------------------


def test_expected_size_matches(tmp_path: Path) -> None:
    data = sample("jpeg-baseline")
    assert inspect(write(tmp_path, data), expected_size=len(data)).format == "jpeg"


@pytest.mark.parametrize("delta", [1, -1, 4000])
def test_expected_size_mismatch(tmp_path: Path, delta: int) -> None:
    data = sample("jpeg-baseline")
    path = write(tmp_path, data)
    expected = f"declared {len(data) + delta} bytes, got {len(data)}"
    assert reason(path, expected_size=len(data) + delta) == expected


def test_size_is_checked_before_content_type_and_sniffing(tmp_path: Path) -> None:
    path = write(tmp_path, b"x" * 1200)
    assert reason(path, expected_size=5000, content_type="text/html") == (
        "declared 5000 bytes, got 1200"
    )


# --- cost: bounded reads ----------------------------------------------------------------


class CountingFile(io.FileIO):
    """A raw file that counts the bytes read through it."""

    total = 0

    def readinto(self, buffer: Any) -> int | None:
        count = super().readinto(buffer)
        CountingFile.total += count or 0
        return count

    def readall(self) -> bytes:
        data = super().readall()
        CountingFile.total += len(data)
        return data


class CountingPath(type(Path())):  # type: ignore[misc]
    def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        assert mode == "rb"
        return io.BufferedReader(CountingFile(self, "rb"))


def noise(size: int) -> Image.Image:
    return Image.merge("RGB", [Image.effect_noise((size, size), 80) for _ in range(3)])


BIG = {
    "jpeg": lambda: encode(noise(1200), "JPEG", quality=95),
    "png": lambda: encode(noise(800), "PNG", compress_level=1),
    "webp": lambda: encode(noise(800), "WEBP", lossless=True, method=0),
    "gif": lambda: encode(Image.effect_noise((1000, 1000), 80), "GIF"),  # greys: no quantizing
    "bmp": lambda: encode(noise(800), "BMP"),
    "tiff": lambda: encode(noise(800), "TIFF"),
}


@pytest.mark.parametrize("fmt", list(BIG))
def test_inspect_reads_only_head_and_tail(tmp_path: Path, fmt: str) -> None:
    data = BIG[fmt]()
    assert len(data) > 1_000_000
    path = CountingPath(write(tmp_path, data))
    CountingFile.total = 0
    info = inspect(path)
    assert info.format == fmt
    assert CountingFile.total < 100_000


# --- tables and types -------------------------------------------------------------------


def test_invalid_carries_reason() -> None:
    error = Invalid("truncated JPEG (no end marker)")
    assert error.reason == str(error) == "truncated JPEG (no end marker)"


def test_image_info_is_frozen() -> None:
    info = ImageInfo("png", 1, 2)
    with pytest.raises(AttributeError):
        info.width = 3  # type: ignore[misc]


# --- properties: never anything but ImageInfo or Invalid -----------------------------------

MAGICS = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x10\x00\x00\x00WEBP"]
MAGICS += [b"II*\x00", b"BM", b"\x00\x00\x01\x00", b"\x00\x00\x00\x18ftypavif", b"<svg>"]
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(head=st.binary(max_size=2048))
def test_sniff_is_total(head: bytes) -> None:
    assert sniff(head) in (*get_args(ImageFormat), None)


@PROPERTY
@given(value=st.none() | st.text(max_size=60))
def test_content_type_allows_is_total(value: str | None) -> None:
    assert content_type_allows(value) in (True, False)


@PROPERTY
@given(magic=st.sampled_from(MAGICS), rest=st.binary(max_size=600))
def test_inspect_on_arbitrary_bytes(tmp_path: Path, magic: bytes, rest: bytes) -> None:
    path = write(tmp_path, magic + rest)
    try:
        info = inspect(path)
    except Invalid as error:
        assert error.reason
    else:
        assert info.format in get_args(ImageFormat)


@PROPERTY
@given(
    name=st.sampled_from([n for n in SAMPLES if n != "avif" or HAS_AVIF]),
    edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
    keep=st.none() | st.integers(0, 1 << 20),
)
def test_inspect_on_damaged_images(
    tmp_path: Path, name: str, edits: list[tuple[int, int]], keep: int | None
) -> None:
    data = bytearray(sample(name))
    for position, value in edits:
        data[position % len(data)] = value
    if keep is not None:
        data = data[: keep % (len(data) + 1)]
    try:
        info = inspect(write(tmp_path, bytes(data)))
    except Invalid as error:
        assert error.reason
    else:
        assert info.format in get_args(ImageFormat)
