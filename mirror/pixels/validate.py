"""Decide whether a downloaded file is a complete, sane image, cheaply.

The fetch stage writes a response body to a temporary name and calls
:func:`inspect` before renaming it into place. A file that fails raises
:class:`Invalid`, whose ``reason`` is the short text shown to the user and
stored as the URL's ``error``. ``inspect`` checks, in this order:

1. size: the file has exactly ``expected_size`` bytes (the Content-Length), so
   a connection that dropped early is caught before anything else;
2. magic bytes: :func:`sniff` must name a format; otherwise the reason says
   what the bytes look like (HTML page, JSON, plain text, empty file, ...),
   and the Content-Type when that says more. The bytes decide, not the
   header: a complete image sent as ``text/plain``, ``text/html`` (a
   script's default), ``application/octet-stream`` or with no type at all
   is kept, and :func:`content_type_note` says what the server called it
   (:func:`content_type_allows` tells a probe, which has not seen the bytes,
   whether a header may announce an image at all);
3. completeness: the format's own end marker or declared sizes, which
   catches an image truncated at the origin (where Content-Length agrees
   with the short body);
4. header: the dimensions, compared with ``max_pixels``. For JPEG, PNG, GIF
   and TIFF they come from Pillow's header parser, which reads the header
   only and allocates no canvas. For BMP and ICO our own parse (which checks
   their completeness anyway) compares them first, before anything could
   allocate, and Pillow's parse follows as the second opinion; WebP,
   AVIF/HEIC and SVG are not given to Pillow at all (below).

Nothing here decodes pixels, and every read is bounded: the first
``SNIFF_BYTES``, the last ``MAX_TRAILING_PADDING`` + a few bytes, and the
header structures (what Pillow reads of a JPEG, PNG, GIF or TIFF header, a
BMP's headers, an ICO's directory, an AVIF/HEIC ``meta`` box of at most
1 MiB, ...).

Tolerances (otherwise the file must end exactly where the format says):

* After the end marker (JPEG ``FFD9``, PNG ``IEND`` chunk, GIF ``00 3B``,
  the end the WebP RIFF header declares, the closing ``</svg>``) up to
  ``MAX_TRAILING_PADDING`` (16 KiB) of zero bytes and ASCII whitespace are
  accepted: some cameras and CDNs pad files to a block size, and some servers
  append a newline. Any other trailing byte is refused: for JPEG, appended
  junk cannot be told from a truncated file without reading the whole scan,
  so the rule is the same for every format. A known casualty: phone "motion
  photos" (a JPEG with an MP4 appended) are refused as truncated.
* A GIF must end with a block terminator followed by the trailer (``00 3B``),
  not just ``3B``, which a cut inside LZW data leaves one time in 256. It is
  still a heuristic: a cut that happens to leave ``00 3B`` at the end (the
  first data bytes of a frame often are) passes; being sure would mean
  walking every 255-byte sub-block, that is reading the whole file.
* AVIF/HEIC: the top-level boxes must tile the file exactly, and ``meta`` and
  ``mdat`` (or an ``idat`` inside ``meta``) must be there, so a cut between
  two boxes is caught too. Zero padding of 8 bytes or more parses as a box of
  size 0 ("to the end of the file") and so is accepted; 1 to 7 bytes are a
  cut box header.
* BMP has no end marker; its header gives the pixel-data size (uncompressed:
  row stride x height), and a shorter file is truncated. Bytes after the
  pixel data are allowed, as BMP writers are sloppy with sizes.
* ICO: every image the directory lists must lie inside the file. TIFF: the
  first IFD and every strip or tile of the first image must lie inside the
  file (the IFD is read with Pillow's header parser).

The pixel limit, ``mirror.config.DEFAULT_MAX_PIXELS = 178_956_970`` (the
default of ``download.max_pixels``), is the point where
Pillow itself (with its default ``Image.MAX_IMAGE_PIXELS``) refuses to open
an image, so whatever passes here can be opened by the thumbnail stage
without raising; it is about 13,000 x 13,000, more than any photo or panorama
a blog shows. Between Pillow's warning threshold (89,478,485) and that limit
Pillow emits a ``DecompressionBombWarning``, which is silenced here and which
the thumbnail stage should silence too. The limit is ours, compared with
``width * height``; the global ``Image.MAX_IMAGE_PIXELS`` is never touched.
Pillow's own check still runs inside ``Image.open``, so for the formats parsed
with Pillow a ``max_pixels`` above Pillow's global limit has no effect; an
image over that limit is named by its pixel count alone where Pillow's parse
is the only one (JPEG, PNG, GIF, TIFF), as Pillow's error gives no more.

Where Pillow's header parser is not cheap it is not used: for WebP,
``Image.open`` reads the whole file and allocates the full canvas; for AVIF it
reads the whole file into a libavif decoder, and HEIC has no plugin at all
unless pillow-heif is installed. Those dimensions come from the format's own
header (the VP8/VP8L/VP8X chunk; the largest ``ispe`` box), so HEIC gets a
size and a pixel check even without a plugin; an AVIF/HEIC file without an
``ispe`` box is trusted on its sniff and gets ``None`` dimensions.

SVG is text: it is recognized by its root element and must end with a closing
``</svg>`` tag (or a self-closing root), but it is not parsed, so it is not
checked for well-formedness, entity bombs or scripts, and it gets no
dimensions; whatever renders it later must treat it as untrusted XML.

Validation does not decode pixels, so an image whose header and end marker are
intact but whose compressed data is corrupt passes; the thumbnail stage finds
that out when it decodes. ``OSError`` from reading the file itself propagates:
that is a local problem, not a bad image.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Literal

from PIL import Image, TiffImagePlugin

from mirror.config import DEFAULT_MAX_PIXELS
from mirror.formats import FORMATS, ImageFormat
from mirror.wording import counted

__all__ = [
    "MAX_TRAILING_PADDING",
    "SNIFF_BYTES",
    "ImageInfo",
    "Invalid",
    "content_type_allows",
    "content_type_note",
    "inspect",
    "not_an_image",
    "sniff",
]

# How many leading bytes sniff() looks at: SVG may start with an XML
# declaration, a DOCTYPE and comments before its root element.
SNIFF_BYTES: Final = 1024

# Zero bytes and ASCII whitespace allowed after a format's end marker.
MAX_TRAILING_PADDING: Final = 16 * 1024

_PADDING = b"\x00\t\n\x0b\x0c\r "

# Formats whose Pillow header parse is cheap (reads the header, allocates
# nothing), with the one Pillow plugin each may use; the others are checked
# with our own header parse only.
# Where Pillow's header parser is cheap (see the module docstring): not for
# WebP and AVIF, which it reads whole.
_PILLOW_HEADERS: Final[frozenset[ImageFormat]] = frozenset(
    {"jpeg", "png", "gif", "bmp", "tiff", "ico"}
)

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# HEIF brands for HEVC-coded images and sequences, plus the generic HEIF
# still-image and sequence brands (an AVIF also carries "avif", checked first).
_HEIC_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # length 0, type, and its fixed CRC
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
# Sizes of the BMP info headers that exist (core, v1..v5, OS/2 2.x variants).
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_MAX_BOXES = 4096
_MAX_META_BYTES = 1024 * 1024
_WARNINGS_LOCK = threading.Lock()

# Markup sniffing works on the decoded first SNIFF_BYTES. The prolog an SVG
# may have before its root: whitespace, the XML declaration and other
# processing instructions, comments, and a DOCTYPE naming svg (with an
# optional internal subset, as Illustrator writes). One character of
# whitespace per repetition, so the loop cannot backtrack badly.
_SVG_PROLOG = re.compile(
    r"(?:\s|<\?.*?\?>|<!--.*?-->|<!DOCTYPE\s+(?:\w+:)?svg\b[^\[>]*(?:\[.*?\])?\s*>)*",
    re.IGNORECASE | re.DOTALL,
)
_SVG_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?svg(?:[\s>/]|\Z)", re.IGNORECASE)
_HTML_PROLOG = re.compile(r"(?:\s|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body|title|meta|script)\b", re.IGNORECASE)
# The end of a complete SVG: the root's closing tag, or a self-closing root,
# then only whitespace and comments.
_SVG_END = re.compile(
    r"(?:</(?:[A-Za-z_][\w.-]*:)?svg\s*>|<(?:[A-Za-z_][\w.-]*:)?svg\b[^<>]*/>)"
    r"(?:\s|<!--.*?-->)*\Z",
    re.IGNORECASE | re.DOTALL,
)

# Other things a URL may serve instead of an image, named in the reason.
_OTHER_MAGIC: Final = (
    (b"%PDF-", "not an image (PDF document)"),
    (b"PK\x03\x04", "not an image (ZIP archive)"),
    (b"\x1f\x8b", "not an image (gzip data)"),
    (b"\xff\x0a", "unsupported image format (JPEG XL)"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "unsupported image format (JPEG XL)"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "unsupported image format (JPEG 2000)"),
    (b"\xff\x4f\xff\x51", "unsupported image format (JPEG 2000)"),
    (b"8BPS", "unsupported image format (Photoshop)"),
)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What a valid file is: its format and, where known, its size in pixels."""

    format: ImageFormat
    width: int | None  # None for SVG, and for AVIF/HEIC without an ispe box
    height: int | None


class Invalid(Exception):
    """The file is not a complete, acceptable image.

    ``reason`` is short, user-facing text such as ``"not an image (HTML
    page)"`` or ``"truncated JPEG (no end marker)"``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- sniffing ----------------------------------------------------------------


def sniff(head: bytes) -> ImageFormat | None:
    """The image format the first bytes of a file name, or None.

    Pass at least 32 bytes; an SVG is recognized only if its root element
    starts within the first ``SNIFF_BYTES`` (1 KiB). Never raises.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    # Before ICO: an ftyp box of 256 bytes starts with ICO's magic too.
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head.startswith(_TIFF_MAGICS):
        return "tiff"
    # "BM" alone is too weak (any text may start so): require a known info
    # header size as well.
    if head.startswith(b"BM") and len(head) >= 18 and _u32le(head, 14) in _BMP_DIB_SIZES:
        return "bmp"
    if head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and _u16le(head, 4) > 0:
        return "ico"
    text = _markup_text(head)
    prolog = _SVG_PROLOG.match(text)
    if prolog is not None and _SVG_ROOT.match(text, prolog.end()):
        return "svg"
    return None


def _sniff_ftyp(head: bytes) -> ImageFormat | None:
    """AVIF or HEIC from an ISO-BMFF ftyp box's major and compatible brands."""
    box_size = _u32be(head, 0)
    if box_size < 16:  # size, type, major brand, minor version
        return None
    end = min(box_size, len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _HEIC_BRANDS:
        return "heic"
    return None  # an MP4 or QuickTime video, most likely


def _markup_text(head: bytes) -> str:
    """The head as text for markup sniffing; only ASCII matters there."""
    head = head[:SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16-le" if head.startswith(b"\xff\xfe") else "utf-16-be"
        return head[2:].decode(codec, errors="ignore")
    # Latin-1 never fails and keeps every ASCII byte as is; UTF-8 text in
    # comments or attributes only turns into other non-ASCII characters.
    return head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


def _describe(head: bytes) -> str:
    """The reason for a head that names no image format."""
    if not head:
        return "not an image (empty file)"
    text = _markup_text(head)
    prolog = _HTML_PROLOG.match(text)
    rest = text[prolog.end() if prolog else 0 :]
    if _HTML_START.match(rest) or "<html" in text[:SNIFF_BYTES].lower():
        return "not an image (HTML page)"
    for magic, reason in _OTHER_MAGIC:
        if head.startswith(magic):
            return reason
    if head[4:8] == b"ftyp":
        return "not an image (video)"
    if rest.startswith("<"):
        return "not an image (XML document)"
    if _is_text(head):
        return "not an image (JSON)" if rest[:1] in ("{", "[") else "not an image (plain text)"
    return "not an image"


def _is_text(head: bytes) -> bool:
    """Whether the head is UTF-8 (or UTF-16 with a BOM) without control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = _markup_text(head)
    else:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # The head may cut a multi-byte character in two at its end.
            if exc.start < len(head) - 3:
                return False
            text = head[: exc.start].decode("utf-8")
    return not any(c < " " and c not in "\t\n\r\f" for c in text.removeprefix("\ufeff"))


# --- Content-Type ------------------------------------------------------------

# Generic binary types that servers send when they do not know better.
_BINARY_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
# Servers without an SVG mapping send it as XML; sniffing still has to find an
# <svg> root, so an XML error page (S3's <Error>) fails there instead.
_XML_TYPES = frozenset({"text/xml", "application/xml"})


def content_type_allows(content_type: str | None) -> bool:
    """Whether a response with this Content-Type header may carry an image.

    True for ``image/*``, ``application/octet-stream``, ``binary/octet-stream``,
    the XML types (servers that do not know SVG), and a missing, empty or
    malformed header (which says nothing; the bytes decide). False for any
    other well-formed type: ``text/html``, ``text/plain``, ``application/json``
    mean an error page or a wrong URL. Parameters and case are ignored.
    """
    mime = _mime_of(content_type)
    if not mime or "/" not in mime or "*" in mime:
        return True
    return mime.startswith("image/") or mime in _BINARY_TYPES or mime in _XML_TYPES


def _mime_of(content_type: str | None) -> str:
    """``type/subtype`` of a Content-Type value, lower-cased, or ""."""
    if content_type is None:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def not_an_image(head: bytes, content_type: str | None) -> str:
    """The reason for a head that names no image format, with the Content-Type
    when the bytes alone say nothing more."""
    reason = _describe(head)
    mime = _mime_of(content_type)
    if reason == "not an image" and mime:
        return f"not an image (Content-Type {mime})"
    return reason


def content_type_note(content_type: str | None, fmt: ImageFormat) -> str | None:
    """What the server called an image whose bytes are ``fmt``, when not an image type.

    None for ``image/*`` (and SVG sent as XML); else e.g. ``"JPEG served as
    text/plain"``: the file is kept (the bytes decide), and the run says so.
    """
    mime = _mime_of(content_type)
    if mime.startswith("image/") or (fmt == "svg" and mime in _XML_TYPES):
        return None
    name = FORMATS[fmt].name
    return f"{name} served as {mime}" if mime else f"{name} served without a Content-Type"


# --- completeness ------------------------------------------------------------


def _check_complete(fp: IO[bytes], size: int, fmt: ImageFormat) -> None:
    name = FORMATS[fmt].name
    if fmt in ("jpeg", "png", "gif"):
        tail = _read_at(fp, max(0, size - MAX_TRAILING_PADDING - 16), MAX_TRAILING_PADDING + 16)
        body = _strip_padding(tail, name)
        if fmt == "jpeg" and not body.endswith(b"\xff\xd9"):
            raise Invalid("truncated JPEG (no end marker)")
        if fmt == "png" and not body.endswith(_PNG_IEND):
            if _PNG_IEND in tail:
                raise Invalid("PNG has trailing data after the IEND chunk")
            raise Invalid("truncated PNG (no IEND chunk)")
        if fmt == "gif" and not body.endswith(b"\x00\x3b"):
            raise Invalid("truncated GIF (no trailer)")
    elif fmt == "webp":
        _check_riff(fp, size)
    elif fmt in ("avif", "heic"):
        _check_bmff(fp, size, name)
    elif fmt == "bmp":
        _bmp_header(fp, size)
    elif fmt == "ico":
        _ico_entries(fp, size)
    elif fmt == "tiff":
        _check_tiff(fp, size)
    elif fmt == "svg":
        _check_svg_end(fp, size)


def _strip_padding(tail: bytes, name: str) -> bytes:
    body = tail.rstrip(_PADDING)
    if len(tail) - len(body) > MAX_TRAILING_PADDING:
        raise Invalid(f"truncated {name} (ends in more than {MAX_TRAILING_PADDING} padding bytes)")
    return body


def _check_padding_after(fp: IO[bytes], end: int, size: int, what: str) -> None:
    """Only padding may follow byte ``end`` (where the format's data ends)."""
    extra = size - end
    if extra <= 0:
        return
    if extra > MAX_TRAILING_PADDING or _read_at(fp, end, extra).strip(_PADDING):
        raise Invalid(f"{what} has {counted(extra, 'byte')} of trailing data")


def _check_riff(fp: IO[bytes], size: int) -> None:
    head = _read_at(fp, 0, 12)
    if len(head) < 12:
        raise Invalid("truncated WebP (header)")
    declared = _u32le(head, 4) + 8  # the size field excludes "RIFF" and itself
    if declared < 12:
        raise Invalid("unreadable WebP header (bad RIFF size)")
    if declared > size:
        raise Invalid(f"truncated WebP (RIFF header declares {declared} bytes, file has {size})")
    # An odd-sized last chunk is followed by one zero pad byte that some
    # writers leave out of the RIFF size: padding covers it.
    _check_padding_after(fp, declared, size, "WebP")


def _check_tiff(fp: IO[bytes], size: int) -> None:
    head = _read_at(fp, 0, 16)
    order: Literal["little", "big"] = "little" if head.startswith(b"II") else "big"
    # Writers that put the first IFD after the image data (Pillow's LZW, for
    # one) lose it to truncation; say so rather than "unreadable header".
    if int.from_bytes(head[2:4], order) == 43:  # BigTIFF: 64-bit offsets
        first_ifd = int.from_bytes(head[8:16], order) if len(head) >= 16 else size
    else:
        first_ifd = int.from_bytes(head[4:8], order) if len(head) >= 8 else size
    if first_ifd >= size:
        raise Invalid("truncated TIFF (no image directory)")
    _pillow_header(fp, size, "tiff", None)


def _check_svg_end(fp: IO[bytes], size: int) -> None:
    head = _read_at(fp, 0, 2)
    start = max(0, size - MAX_TRAILING_PADDING - 1024)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        start += start % 2  # stay on a UTF-16 code unit boundary
        tail = _read_at(fp, start, size - start)
        codec = "utf-16-le" if head == b"\xff\xfe" else "utf-16-be"
        text = tail.decode(codec, errors="ignore")
    else:
        text = _read_at(fp, start, size - start).decode("latin-1")
    if not _SVG_END.search(text.rstrip("\x00")):
        raise Invalid("truncated SVG (no closing </svg> tag)")


def _top_level_boxes(fp: IO[bytes], size: int, name: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each top-level ISO-BMFF box.

    Raises Invalid for a box that runs past the end of the file (truncation)
    or a broken box header: the boxes must tile the file exactly. Trailing
    zero padding of 8 bytes or more reads as a box of size 0 ("extends to the
    end of the file") and so is accepted; a shorter tail is a cut box header.
    """
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos >= size:
            return
        header = _read_at(fp, pos, 16)
        if len(header) < 8:
            raise Invalid(f"truncated {name} (incomplete box header at byte {pos})")
        box_size, box_type = _u32be(header, 0), header[4:8]
        header_len = 8
        if box_size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                raise Invalid(f"truncated {name} (box header)")
            box_size, header_len = struct.unpack_from(">Q", header, 8)[0], 16
        elif box_size == 0:  # the box extends to the end of the file
            box_size = size - pos
        if box_size < header_len:
            raise Invalid(f"corrupt {name} (bad box size at byte {pos})")
        if pos + box_size > size:
            label = box_type.decode("ascii", "replace")
            raise Invalid(
                f"truncated {name} (box '{label}' needs {pos + box_size} bytes, file has {size})"
            )
        yield box_type, pos + header_len, pos + box_size
        pos += box_size
    # Thousands of top-level boxes: not an image file anyone wrote; stop here
    # rather than walk on.


# --- header dimensions -------------------------------------------------------


def _header_dims(fp: IO[bytes], size: int, fmt: ImageFormat) -> tuple[int, int] | None:
    """Dimensions from the format's own header, where it is parsed anyway.

    None where Pillow's header parse alone decides (JPEG, PNG, GIF, TIFF)
    and for SVG. The value is an upper bound for ICO and AVIF/HEIC (the
    largest image the file holds).
    """
    if fmt == "webp":
        return _webp_dims(_read_at(fp, 0, 30))
    if fmt == "bmp":
        width, height, _ = _bmp_header(fp, size)
        return width, height
    if fmt == "ico":
        return max(((w, h) for w, h, _, _ in _ico_entries(fp, size)), key=_area)
    if fmt in ("avif", "heic"):
        return _bmff_dims(fp, size, FORMATS[fmt].name)
    return None


def _webp_dims(head: bytes) -> tuple[int, int]:
    """Canvas size from the first chunk, as libwebp reads it."""
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        return _u24le(head, 24) + 1, _u24le(head, 27) + 1
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = _u16le(head, 26) & 0x3FFF, _u16le(head, 28) & 0x3FFF
        if width and height:
            return width, height
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = _u32le(head, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise Invalid("unreadable WebP header")


def _bmp_header(fp: IO[bytes], size: int) -> tuple[int, int, int]:
    """(width, height, bytes the file needs) from a BMP's headers.

    Raises Invalid when the file is shorter than its pixel data.
    """
    header = _read_at(fp, 0, 54)
    if len(header) < 26:
        raise Invalid("truncated BMP (header)")
    data_offset, dib_size = _u32le(header, 10), _u32le(header, 14)
    if dib_size == 12:  # OS/2 core header: 16-bit sizes, never compressed
        width, height, bpp, compression, image_size = (
            _u16le(header, 18),
            _u16le(header, 20),
            _u16le(header, 24),
            0,
            0,
        )
    elif len(header) >= 38:
        width, height = struct.unpack_from("<ii", header, 18)
        bpp, compression, image_size = (
            _u16le(header, 28),
            _u32le(header, 30),
            _u32le(header, 34),
        )
    else:
        raise Invalid("truncated BMP (header)")
    height = abs(height)  # negative: rows stored top-down
    if width <= 0 or height == 0:
        raise Invalid(f"unreadable BMP header (size {width}x{height})")
    if compression in (0, 3, 6):  # uncompressed (RGB, BITFIELDS, ALPHABITFIELDS)
        stride = (width * bpp + 31) // 32 * 4
        needed = data_offset + stride * height
    else:  # RLE, or an embedded JPEG/PNG: the header gives the data size
        needed = data_offset + image_size
    if needed > size:
        raise Invalid(f"truncated BMP (pixel data needs {needed} bytes, file has {size})")
    return width, height, needed


def _ico_entries(fp: IO[bytes], size: int) -> list[tuple[int, int, int, int]]:
    """(width, height, offset, length) of every image in an ICO's directory.

    The directory stores sizes up to 256 in one byte; an embedded PNG states
    its own, which is what a decoder uses, so that is read instead.
    """
    count = _u16le(_read_at(fp, 0, 6).ljust(6, b"\x00"), 4)
    if count == 0:
        raise Invalid("unreadable ICO header (no images)")
    directory = _read_at(fp, 6, 16 * count)
    if len(directory) < 16 * count:
        raise Invalid("truncated ICO (directory)")
    entries = []
    for index in range(count):
        entry = directory[16 * index : 16 * index + 16]
        length, offset = _u32le(entry, 8), _u32le(entry, 12)
        if offset + length > size:
            raise Invalid(
                f"truncated ICO (image {index + 1} of {count} runs past the end of the file)"
            )
        width, height = entry[0] or 256, entry[1] or 256
        image_head = _read_at(fp, offset, 24)
        if image_head.startswith(_PNG_MAGIC) and image_head[12:16] == b"IHDR":
            width, height = _u32be(image_head, 16), _u32be(image_head, 20)
        entries.append((width, height, offset, length))
    return entries


def _check_bmff(fp: IO[bytes], size: int, name: str) -> bytes | None:
    """Check the top-level boxes; return the ``meta`` payload (None if over 1 MiB).

    Every box must end inside the file, and the boxes an image needs must be
    there: a cut that falls exactly between two boxes leaves a well-formed
    file that lacks ``meta`` or ``mdat``. (The image data may instead sit in an
    ``idat`` box inside ``meta``.)
    """
    meta: bytes | None = None
    has_meta = has_mdat = False
    for box_type, start, end in _top_level_boxes(fp, size, name):
        if box_type == b"meta":
            has_meta = True
            if end - start <= _MAX_META_BYTES:
                meta = _read_at(fp, start, end - start)
        elif box_type == b"mdat":
            has_mdat = True
    if not has_meta:
        raise Invalid(f"truncated {name} (no meta box)")
    # meta is a FullBox: its children start after 4 bytes of version and flags.
    if not has_mdat and meta is not None and not any(_boxes(meta, 4, len(meta), b"idat", name)):
        raise Invalid(f"truncated {name} (no mdat box)")
    return meta


def _bmff_dims(fp: IO[bytes], size: int, name: str) -> tuple[int, int] | None:
    """The largest ``ispe`` (image spatial extents) in the ``meta`` box.

    The largest rather than the primary item's: for a grid image (what phones
    write) that is the full canvas, and as an upper bound it is the safe
    number for the pixel limit. None if there is none, or meta is huge.
    """
    meta = _check_bmff(fp, size, name)
    if meta is None:
        return None
    found = [
        (_u32be(ispe, 4), _u32be(ispe, 8))
        for iprp in _boxes(meta, 4, len(meta), b"iprp", name)
        for ipco in _boxes(meta, *iprp, b"ipco", name)
        for ispe in (meta[s:e] for s, e in _boxes(meta, *ipco, b"ispe", name))
        if len(ispe) >= 12  # FullBox header, then 32-bit width and height
    ]
    return max(found, key=_area) if found else None


def _boxes(buf: bytes, start: int, end: int, wanted: bytes, name: str) -> Iterator[tuple[int, int]]:
    """(payload start, payload end) of each child box of type ``wanted``."""
    pos = start
    for _ in range(_MAX_BOXES):
        if pos + 8 > end:
            return
        box_size, box_type, header_len = _u32be(buf, pos), buf[pos + 4 : pos + 8], 8
        if box_size == 1 and pos + 16 <= end:
            box_size, header_len = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif box_size == 0:
            box_size = end - pos
        if box_size < header_len or pos + box_size > end:
            raise Invalid(f"corrupt {name} (bad box in the meta box)")
        if box_type == wanted:
            yield pos + header_len, pos + box_size
        pos += box_size


# --- Pillow ------------------------------------------------------------------


def _pillow_header(
    fp: IO[bytes], size: int, fmt: ImageFormat, max_pixels: int | None
) -> tuple[int, int]:
    """Dimensions from Pillow's header parser (no pixel decode).

    For TIFF, also checks that the first image's strips or tiles lie inside
    the file. Pillow's warnings are silenced: the DecompressionBombWarning
    below our own limit is expected (see the module docstring), and format
    warnings about odd metadata say nothing about whether the file is whole.
    """
    name = FORMATS[fmt].name
    fp.seek(0)
    try:
        # catch_warnings swaps the process-wide filter list (before Python
        # 3.14), and two threads interleaving it can leave one's filters in
        # place for good; the lock keeps our own calls from doing that. Header
        # parses are short, so serializing them costs little.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Image.open reads only the header; it is not closed, as that
            # would close our file.
            image = Image.open(fp, formats=[_pillow(fmt)])
            dims = image.size
            if isinstance(image, TiffImagePlugin.TiffImageFile):
                data_end = _tiff_data_end(image)
            else:
                data_end = None
    except Image.DecompressionBombError as exc:
        raise Invalid(_bomb_reason(str(exc), max_pixels)) from None
    except Exception as exc:  # Pillow raises many kinds for a bad header
        raise Invalid(f"unreadable {name} header") from exc
    if data_end is not None and data_end > size:
        raise Invalid(f"truncated TIFF (image data needs {data_end} bytes, file has {size})")
    return dims


def _tiff_data_end(image: TiffImagePlugin.TiffImageFile) -> int | None:
    """Where the first image's last strip or tile ends, per its IFD."""
    tags = image.tag_v2
    offsets = tags.get(273) or tags.get(324)  # StripOffsets, TileOffsets
    counts = tags.get(279) or tags.get(325)  # StripByteCounts, TileByteCounts
    if offsets is None or counts is None:
        return None
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    ends = [int(o) + int(c) for o, c in zip(offsets, counts, strict=False)]
    return max(ends, default=None)


def _bomb_reason(message: str, max_pixels: int | None) -> str:
    """Reason for Pillow's DecompressionBombError, from its message."""
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", message)
    if found is None:
        return "image too large (Pillow refuses it as a decompression bomb)"
    pixels, pillow_limit = int(found[1]), int(found[2])
    if max_pixels is not None and pixels <= max_pixels:
        # Under our limit but over Pillow's global one, which still applies.
        return f"image too large: {pixels} pixels exceeds Pillow's limit of {pillow_limit}"
    limit = pillow_limit if max_pixels is None else max_pixels
    return f"image too large: {pixels} pixels exceeds the limit of {limit}"


def _check_pixels(dims: tuple[int, int], max_pixels: int, name: str) -> None:
    width, height = dims
    if width <= 0 or height <= 0:
        raise Invalid(f"unreadable {name} header (size {width}x{height})")
    if width * height > max_pixels:
        raise Invalid(f"image too large: {width}x{height} pixels exceeds the limit of {max_pixels}")


# --- the whole check -----------------------------------------------------------


def inspect(
    path: Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    content_type: str | None = None,
    expected_size: int | None = None,
) -> ImageInfo:
    """Check a downloaded file; return what it is, or raise :class:`Invalid`.

    ``content_type`` only words the reason for bytes that are no image.
    ``expected_size`` is the response's Content-Length; pass it only when the
    body was not content-decoded (no ``Content-Encoding``), since then the
    header counts encoded bytes. The checks and their order are in the module
    docstring.
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    with path.open("rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        if expected_size is not None and size != expected_size:
            raise Invalid(f"declared {expected_size} bytes, got {size}")
        head = fp.read(SNIFF_BYTES)
        fmt = sniff(head)
        if fmt is None:
            raise Invalid(not_an_image(head, content_type))
        _check_complete(fp, size, fmt)
        if fmt == "svg":
            return ImageInfo(fmt, None, None)
        # Our own look first where there is one: it allocates nothing,
        # whatever the header claims.
        dims = _header_dims(fp, size, fmt)
        if dims is not None:
            _check_pixels(dims, max_pixels, FORMATS[fmt].name)
        if fmt in _PILLOW_HEADERS:
            dims = _pillow_header(fp, size, fmt, max_pixels)
            _check_pixels(dims, max_pixels, FORMATS[fmt].name)
    width, height = dims if dims is not None else (None, None)
    return ImageInfo(fmt, width, height)


# --- small helpers -------------------------------------------------------------


def _area(dims: tuple[int, int]) -> int:
    return dims[0] * dims[1]


def _read_at(fp: IO[bytes], offset: int, length: int) -> bytes:
    fp.seek(offset)
    return fp.read(length)


def _u16le(buf: bytes, offset: int) -> int:
    return int.from_bytes(buf[offset : offset + 2], "little")


def _u24le(buf: bytes, offset: int) -> int:
    return int.from_bytes(buf[offset : offset + 3], "little")


def _u32le(buf: bytes, offset: int) -> int:
    return int.from_bytes(buf[offset : offset + 4], "little")


def _u32be(buf: bytes, offset: int) -> int:
    return int.from_bytes(buf[offset : offset + 4], "big")


def _pillow(fmt: ImageFormat) -> str:
    plugin = FORMATS[fmt].pillow
    assert plugin is not None, f"{fmt} has no Pillow plugin"
    return plugin
