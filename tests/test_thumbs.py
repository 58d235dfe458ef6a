"""The thumbnail engine: every kind of real-world image, bad input, paths, the pool.

Every image is generated here with Pillow; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import struct
import time
import warnings
import zlib
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image, ImageCms, ImageDraw

from mirror.config import ThumbnailsConfig
from mirror.keep.store import inside
from mirror.pixels.imaging import working_mode
from mirror.pixels.spec import ALGORITHM_VERSION, ThumbResult, ThumbSpec, thumb_path
from mirror.pixels.thumbnails import ThumbPool, make_thumbnails

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)
Image.init()  # registers every plugin, so SAVE is complete
AVIF = "AVIF" in Image.SAVE
FORMATS = ["webp", "jpeg", "png", pytest.param("avif", marks=pytest.mark.skipif(
    not AVIF, reason="this Pillow cannot write AVIF"))]  # fmt: skip


# --- helpers ------------------------------------------------------------------------


def save(path: Path, image: Image.Image, fmt: str, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **options)
    return path


def run(tmp_path: Path, source: Path, relative: str, spec: ThumbSpec) -> ThumbResult:
    return make_thumbnails(source, relative, tmp_path / "thumbs", spec, fsync=False)


def opened(tmp_path: Path, result: ThumbResult, index: int = 0) -> Image.Image:
    assert result.status == "made", result.reason
    image = Image.open(tmp_path / "thumbs" / result.files[index])
    image.load()
    return image


def close(actual: tuple[int, ...] | float, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(actual, tuple)
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def thumb_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "thumbs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def swapped_primaries_profile() -> bytes:
    """sRGB with its red and green primaries swapped: RGB red means sRGB green."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = int.from_bytes(data[128:132], "big")
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    data[red + 4 : red + 12], data[green + 4 : green + 12] = (
        data[green + 4 : green + 12],
        data[red + 4 : red + 12],
    )
    return bytes(data)


def quadrants(size: tuple[int, int]) -> Image.Image:
    """Blue, with the top-left quarter red: shows any flip or rotation."""
    image = Image.new("RGB", size, BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1] // 2 - 1), fill=RED)
    return image


# What the source must hold so that orientation o displays `quadrants`: the
# inverse of the transposition that undoes o.
UNDO = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# --- orientation and colour -----------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    shown = quadrants((120, 80))
    method = UNDO[orientation]
    stored = shown if method is None else shown.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    source = save(tmp_path / "a.jpg", stored, "JPEG", quality=95, exif=exif.tobytes())

    result = run(tmp_path, source, "a.jpg", ThumbSpec(sizes=(60,), format="png"))

    assert (result.width, result.height) == (120, 80)
    thumb = opened(tmp_path, result)
    assert thumb.size == (60, 40)
    assert close(thumb.getpixel((3, 3)), RED)
    assert close(thumb.getpixel((56, 36)), BLUE)
    assert not thumb.getexif()


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours(tmp_path: Path) -> None:
    image = Image.new("CMYK", (200, 100), (0, 255, 255, 0))  # red
    ImageDraw.Draw(image).rectangle((100, 0, 199, 99), fill=(255, 0, 0, 0))  # cyan
    # Pillow writes CMYK JPEGs the Adobe way (inverted, with an APP14 marker).
    source = save(tmp_path / "cmyk.jpg", image, "JPEG", quality=95)

    result = run(tmp_path, source, "cmyk.jpg", ThumbSpec(sizes=(100,), format="jpeg"))

    thumb = opened(tmp_path, result)
    assert thumb.mode == "RGB"
    assert close(thumb.getpixel((10, 25)), RED)
    assert close(thumb.getpixel((90, 25)), (0, 255, 255))


def test_icc_profile_is_converted_to_srgb_and_dropped(tmp_path: Path) -> None:
    icc = swapped_primaries_profile()
    source = save(tmp_path / "p3.png", Image.new("RGB", (50, 50), RED), "PNG", icc_profile=icc)

    result = run(tmp_path, source, "p3.png", ThumbSpec(sizes=(20,), format="png"))

    thumb = opened(tmp_path, result)
    assert close(thumb.getpixel((5, 5)), GREEN, 10)  # the profile's red is sRGB green
    assert "icc_profile" not in thumb.info


def test_unreadable_icc_profile_is_ignored(tmp_path: Path) -> None:
    source = save(
        tmp_path / "a.png", Image.new("RGB", (50, 50), RED), "PNG", icc_profile=b"not a profile"
    )
    result = run(tmp_path, source, "a.png", ThumbSpec(sizes=(20,), format="png"))
    assert opened(tmp_path, result).getpixel((5, 5)) == RED


# --- transparency -----------------------------------------------------------------------


def half_transparent(mode: str) -> Image.Image:
    """Left half opaque red (or grey 100), right half fully transparent."""
    if mode == "P":
        image = Image.new("P", (80, 40), 0)
        image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
        ImageDraw.Draw(image).rectangle((40, 0, 79, 39), fill=1)
        image.info["transparency"] = 1
        return image
    opaque, clear = ((100, 255), (0, 0)) if mode == "LA" else ((*RED, 255), (0, 0, 0, 0))
    image = Image.new(mode, (80, 40), clear)
    ImageDraw.Draw(image).rectangle((0, 0, 39, 39), fill=opaque)
    return image


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA"])
@pytest.mark.parametrize("fmt", ["webp", "png", *(["avif"] if AVIF else [])])
def test_transparency_is_kept_where_the_format_holds_it(
    tmp_path: Path, mode: str, fmt: str
) -> None:
    source = save(tmp_path / "a.png", half_transparent(mode), "PNG")

    result = run(tmp_path, source, "a.png", ThumbSpec(sizes=(40,), format=fmt))  # type: ignore[arg-type]

    thumb = opened(tmp_path, result).convert("RGBA")
    assert thumb.getpixel((35, 10))[3] == 0
    assert thumb.getpixel((5, 10))[3] == 255


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA"])
def test_transparency_is_flattened_on_the_background_for_jpeg(tmp_path: Path, mode: str) -> None:
    source = save(tmp_path / "a.png", half_transparent(mode), "PNG")
    spec = ThumbSpec(sizes=(40,), format="jpeg", background=(0, 128, 255))

    thumb = opened(tmp_path, run(tmp_path, source, "a.png", spec))

    assert thumb.mode == "RGB"
    assert close(thumb.getpixel((35, 10)), (0, 128, 255))
    assert close(thumb.getpixel((3, 10)), (100, 100, 100) if mode == "LA" else RED)


def test_palette_with_transparency_in_bytes(tmp_path: Path) -> None:
    image = half_transparent("P")
    image.info["transparency"] = bytes([255, 0])  # entry 1 transparent, as a tRNS table
    source = save(tmp_path / "a.png", image, "PNG")

    thumb = opened(tmp_path, run(tmp_path, source, "a.png", ThumbSpec(sizes=(40,))))

    assert thumb.mode == "RGBA"
    assert thumb.getpixel((35, 10))[3] == 0


# --- modes --------------------------------------------------------------------------------


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    image = Image.new("I;16", (256, 16))
    image.putdata([x * 257 for x in range(256)] * 16)  # a ramp over the whole 16-bit range
    source = save(tmp_path / "deep.png", image, "PNG")
    assert Image.open(source).mode.startswith("I")  # what the test is about

    thumb = opened(
        tmp_path, run(tmp_path, source, "deep.png", ThumbSpec(sizes=(256,), format="png"))
    )

    assert thumb.mode == "L"
    assert thumb.getpixel((0, 8)) < 10
    assert 118 < thumb.getpixel((128, 8)) < 138  # type: ignore[operator]
    assert thumb.getpixel((255, 8)) > 245  # type: ignore[operator]


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", [0, 32768, 65535], [0, 128, 255]),  # 16-bit data in a 32-bit mode
        ("I", [0, 100, 200], [0, 100, 200]),  # already 8-bit values
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),  # 0-1 floats
        ("1", [0, 1, 1], [0, 255, 255]),
    ],
)
def test_working_mode_scales_deep_modes_to_8_bits(
    mode: str, values: list[float], expected: list[int]
) -> None:
    image = Image.new(mode, (3, 1))
    image.putdata(values)
    result = working_mode(image)
    assert result.mode == "L"
    assert [result.getpixel((x, 0)) for x in range(3)] == pytest.approx(expected, abs=1)


# --- animation ------------------------------------------------------------------------------


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (60, 40), colour) for colour in (RED, GREEN, BLUE)]
    frames[0].save(
        path, "GIF", save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0
    )
    return path


def test_animated_gif_takes_the_first_frame_by_default(tmp_path: Path) -> None:
    source = animated_gif(tmp_path / "a.gif")

    thumb = opened(tmp_path, run(tmp_path, source, "a.gif", ThumbSpec(sizes=(30,), format="webp")))

    assert getattr(thumb, "n_frames", 1) == 1
    assert close(thumb.convert("RGB").getpixel((5, 5)), RED)


@pytest.mark.parametrize(("fmt", "writer"), [("webp", "WEBP"), ("same", "GIF")])
def test_animation_is_kept_when_asked(tmp_path: Path, fmt: str, writer: str) -> None:
    source = animated_gif(tmp_path / "a.gif")
    spec = ThumbSpec(sizes=(30,), format=fmt, animated=True)  # type: ignore[arg-type]

    thumb = opened(tmp_path, run(tmp_path, source, "a.gif", spec))

    assert thumb.format == writer
    assert thumb.size == (30, 20)
    assert thumb.n_frames == 3  # type: ignore[attr-defined]
    colours, durations = [], []
    for index in range(3):
        thumb.seek(index)
        colours.append(thumb.convert("RGB").getpixel((5, 5)))
        durations.append(thumb.info["duration"])
    assert all(close(c, e) for c, e in zip(colours, (RED, GREEN, BLUE), strict=True))
    assert durations == [100, 200, 300]
    assert thumb.info.get("loop") == 0


def test_animation_falls_back_to_the_first_frame_for_jpeg(tmp_path: Path) -> None:
    source = animated_gif(tmp_path / "a.gif")
    spec = ThumbSpec(sizes=(30,), format="jpeg", animated=True)
    thumb = opened(tmp_path, run(tmp_path, source, "a.gif", spec))
    assert close(thumb.getpixel((5, 5)), RED)


# --- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("original", [(1000, 500), (500, 1000), (300, 200), (1, 1), (480, 480)])
def test_longest_side_is_the_size_never_upscaled(tmp_path: Path, original: tuple[int, int]) -> None:
    source = save(tmp_path / "a.png", Image.new("RGB", original, RED), "PNG")

    result = run(tmp_path, source, "a.png", ThumbSpec(sizes=(100, 480), format="png"))

    assert len(result.files) == 2  # every size exists, even above the original's size
    for index, box in enumerate((100, 480)):
        width, height = opened(tmp_path, result, index).size
        assert max(width, height) == min(box, max(original))
        assert abs(width / height - original[0] / original[1]) < 0.03 * max(original) / min(
            original
        )


def test_a_thin_strip_keeps_both_sides_at_least_one(tmp_path: Path) -> None:
    source = save(tmp_path / "strip.png", Image.new("RGB", (10000, 10), RED), "PNG")
    result = run(tmp_path, source, "strip.png", ThumbSpec(sizes=(480,), format="png"))
    assert opened(tmp_path, result).size == (480, 1)


def test_progressive_jpeg_at_every_size(tmp_path: Path) -> None:
    source = save(tmp_path / "p.jpg", quadrants((1600, 1200)), "JPEG", progressive=True)
    assert Image.open(source).info.get("progressive")

    result = run(tmp_path, source, "p.jpg", ThumbSpec(sizes=(100, 480), format="jpeg"))

    assert (result.width, result.height) == (1600, 1200)
    small, large = opened(tmp_path, result, 0), opened(tmp_path, result, 1)
    assert (small.size, large.size) == ((100, 75), (480, 360))
    assert close(large.getpixel((10, 10)), RED)
    assert close(large.getpixel((470, 350)), BLUE)


# --- output formats and metadata ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "source_format", "name", "writer", "thumb_name"),
    [
        ("webp", "JPEG", "a.jpg", "WEBP", "a.jpg.webp"),
        ("jpeg", "PNG", "a.png", "JPEG", "a.png.jpg"),
        ("png", "JPEG", "a.jpg", "PNG", "a.jpg.png"),
        pytest.param("avif", "JPEG", "a.jpg", "AVIF", "a.jpg.avif", marks=pytest.mark.skipif(
            not AVIF, reason="this Pillow cannot write AVIF")),
        ("same", "JPEG", "a.jpg", "JPEG", "a.jpg"),
        ("same", "PNG", "a.png", "PNG", "a.png"),
        ("same", "WEBP", "a.webp", "WEBP", "a.webp"),
        ("same", "GIF", "a.gif", "GIF", "a.gif"),
        ("same", "BMP", "a.bmp", "BMP", "a.bmp"),
    ],
)  # fmt: skip
def test_every_output_format(
    tmp_path: Path, fmt: str, source_format: str, name: str, writer: str, thumb_name: str
) -> None:
    source = save(tmp_path / "src" / name, quadrants((200, 100)), source_format)
    spec = ThumbSpec(sizes=(50,), format=fmt)  # type: ignore[arg-type]

    result = run(tmp_path, source, f"host/{name}", spec)

    assert result.files == (f"50/host/{thumb_name}",)
    thumb = opened(tmp_path, result)
    assert thumb.format == writer
    assert thumb.size == (50, 25)
    assert close(thumb.convert("RGB").getpixel((3, 3)), RED, 60)


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_metadata_is_copied(tmp_path: Path, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 1
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}  # GPS latitude
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><secret>here</secret></x:xmpmeta>'
    source = save(
        tmp_path / "a.jpg",
        quadrants((300, 200)),
        "JPEG",
        exif=exif.tobytes(),
        xmp=xmp,
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
        comment=b"a comment",
    )
    assert Image.open(source).getexif().get_ifd(0x8825)  # the source does carry GPS

    result = run(tmp_path, source, "a.jpg", ThumbSpec(sizes=(100,), format=fmt))  # type: ignore[arg-type]

    thumb = opened(tmp_path, result)
    assert not thumb.getexif()
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"} & set(thumb.info)
    data = (tmp_path / "thumbs" / result.files[0]).read_bytes()
    for marker in (b"Exif", b"PhoneMaker", b"xmpmeta", b"a comment"):
        assert marker not in data


def test_grey_jpeg_to_webp(tmp_path: Path) -> None:
    source = save(tmp_path / "g.jpg", Image.new("L", (100, 100), 90), "JPEG")
    thumb = opened(tmp_path, run(tmp_path, source, "g.jpg", ThumbSpec(sizes=(40,))))
    assert close(thumb.convert("RGB").getpixel((5, 5)), (90, 90, 90), 5)


# --- bad input ----------------------------------------------------------------------------------


def test_decompression_bomb_fails_fast_without_decoding(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    bomb += png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b"")
    source = tmp_path / "bomb.png"
    source.write_bytes(bomb)

    started = time.perf_counter()
    result = run(tmp_path, source, "bomb.png", ThumbSpec(sizes=(480,)))

    assert time.perf_counter() - started < 2  # 10^10 pixels were never allocated
    assert result.status == "failed"
    assert result.reason is not None and "too large" in result.reason
    assert thumb_files(tmp_path) == []


def test_pixel_limit_comes_from_the_spec(tmp_path: Path) -> None:
    source = save(tmp_path / "a.jpg", Image.new("RGB", (100, 100)), "JPEG")
    result = run(tmp_path, source, "a.jpg", ThumbSpec(sizes=(50,), max_pixels=9_999))
    assert result.status == "failed"
    assert result.reason is not None and "exceeds the limit of 9999" in result.reason


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    quadrants((400, 300)).save(out, "JPEG")
    return out.getvalue()


def corrupt_png() -> bytes:
    """Header and end marker intact, compressed pixels garbage: only a decode tells."""
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    garbage = random.Random(5).randbytes(500)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", garbage)
        + png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (jpeg_bytes()[:3000], "truncated"),
        (b"", "empty"),
        (random.Random(1).randbytes(4096), "not an image"),
        (corrupt_png(), "cannot decode"),
        (b"<html><body>404</body></html>", "HTML"),
    ],
    ids=["truncated-jpeg", "zero-bytes", "random-bytes", "corrupt-png", "html"],
)
def test_bad_input_fails_with_a_reason_and_no_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    source = tmp_path / "bad.jpg"
    source.write_bytes(content)

    result = run(tmp_path, source, "bad.jpg", ThumbSpec(sizes=(100, 480)))

    assert result.status == "failed"
    assert result.reason is not None and reason in result.reason, result.reason
    assert result.files == ()
    assert thumb_files(tmp_path) == []


def test_missing_source_fails(tmp_path: Path) -> None:
    result = run(tmp_path, tmp_path / "gone.jpg", "gone.jpg", ThumbSpec(sizes=(100,)))
    assert result.status == "failed"
    assert result.reason is not None and "cannot read" in result.reason


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'),
        ("favicon.ico", None),
    ],
)
def test_non_raster_images_are_skipped(tmp_path: Path, name: str, content: bytes | None) -> None:
    source = tmp_path / name
    if content is None:
        Image.new("RGBA", (32, 32), RED).save(source, "ICO")
    else:
        source.write_bytes(content)

    result = run(tmp_path, source, name, ThumbSpec(sizes=(100,)))

    assert result.status == "skipped"
    assert result.reason
    assert thumb_files(tmp_path) == []


def test_a_failed_rebuild_keeps_the_earlier_thumbnails(tmp_path: Path) -> None:
    good = save(tmp_path / "a.jpg", quadrants((200, 100)), "JPEG")
    made = run(tmp_path, good, "a.jpg", ThumbSpec(sizes=(50, 100)))
    before = {p: p.read_bytes() for p in thumb_files(tmp_path)}
    bad = tmp_path / "new-download.tmp"
    bad.write_bytes(jpeg_bytes()[:2000])

    assert run(tmp_path, bad, "a.jpg", ThumbSpec(sizes=(50, 100))).status == "failed"

    assert made.status == "made"
    assert {p: p.read_bytes() for p in thumb_files(tmp_path)} == before


def test_a_write_failure_leaves_no_partial_set(tmp_path: Path) -> None:
    source = save(tmp_path / "a.jpg", quadrants((400, 200)), "JPEG")
    spec = ThumbSpec(sizes=(50, 200))
    # A directory where the small thumbnail goes: the large one is written
    # first, then renaming the small one over the directory fails.
    (tmp_path / "thumbs" / "50" / "a.jpg.webp").mkdir(parents=True)

    with pytest.raises(OSError):
        run(tmp_path, source, "a.jpg", spec)

    assert not (tmp_path / "thumbs" / "200" / "a.jpg.webp").exists()
    assert [p.name for p in (tmp_path / "thumbs").rglob("*.part")] == []


def test_thumbnails_are_named_from_relative_not_from_source(tmp_path: Path) -> None:
    source = save(tmp_path / ".a.jpg.1234abcd.part", quadrants((200, 100)), "JPEG")
    result = run(tmp_path, source, "example.com/photos/a.jpg", ThumbSpec(sizes=(50,)))
    assert result.files == ("50/example.com/photos/a.jpg.webp",)
    assert (tmp_path / "thumbs/50/example.com/photos/a.jpg.webp").is_file()


# --- warnings ----------------------------------------------------------------------------------


def test_pillow_warnings_do_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inputs that make Pillow warn: a palette with tRNS bytes, an image over
    # Pillow's bomb-warning threshold (lowered here), broken EXIF.
    palette = half_transparent("P")
    palette.info["transparency"] = bytes([255, 0])
    palette_png = save(tmp_path / "p.png", palette, "PNG")
    big = save(tmp_path / "big.png", Image.new("RGB", (60, 60), RED), "PNG")
    broken_exif = save(
        tmp_path / "e.jpg",
        quadrants((80, 40)),
        "JPEG",
        exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff",
    )
    # Every image here (3,200 or 3,600 pixels) now warns; 4,000 would fail.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)
    with warnings.catch_warnings(record=True) as seen:  # proof that they do warn
        warnings.simplefilter("always")
        Image.open(palette_png).convert("RGB")
        Image.open(big)
        Image.open(broken_exif).getexif()
    assert len(seen) >= 3, [str(w.message) for w in seen]
    filters = list(warnings.filters)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for source in (palette_png, big, broken_exif):
            result = run(tmp_path, source, source.name, ThumbSpec(sizes=(20,), format="jpeg"))
            assert result.status == "made", result.reason

    assert warnings.filters == filters  # nothing changed globally


# --- spec, fingerprint, paths ------------------------------------------------------------


def test_fingerprint_is_stable_and_readable() -> None:
    assert ThumbSpec(sizes=(480,)).fingerprint == f"v{ALGORITHM_VERSION}:webp:480:q82"
    assert ThumbSpec(sizes=(480,)).fingerprint == ThumbSpec(sizes=(480,)).fingerprint


def test_fingerprint_changes_with_each_setting_that_changes_the_output() -> None:
    base = ThumbSpec(sizes=(240, 480), format="jpeg")
    variants = [
        base,
        ThumbSpec(sizes=(480,), format="jpeg"),
        ThumbSpec(sizes=(240, 480), format="webp"),
        ThumbSpec(sizes=(240, 480), format="png"),
        ThumbSpec(sizes=(240, 480), format="same"),
        ThumbSpec(sizes=(240, 480), format="jpeg", quality=90),
        ThumbSpec(sizes=(240, 480), format="jpeg", background=(0, 0, 0)),
        ThumbSpec(sizes=(240, 480), format="webp", animated=True),
        ThumbSpec(sizes=(240, 480), format="same", animated=True),
    ]
    fingerprints = [spec.fingerprint for spec in variants]
    assert len(set(fingerprints)) == len(fingerprints)


def test_fingerprint_ignores_settings_that_cannot_change_the_output() -> None:
    png = ThumbSpec(sizes=(480,), format="png")
    assert ThumbSpec(sizes=(480,), format="png", quality=10).fingerprint == png.fingerprint
    webp = ThumbSpec(sizes=(480,), format="webp")
    assert ThumbSpec(sizes=(480,), background=(1, 2, 3)).fingerprint == webp.fingerprint
    assert ThumbSpec(sizes=(480,), max_pixels=10).fingerprint == webp.fingerprint
    jpeg = ThumbSpec(sizes=(480,), format="jpeg")
    assert ThumbSpec(sizes=(480,), format="jpeg", animated=True).fingerprint == jpeg.fingerprint


def test_spec_from_config() -> None:
    config = ThumbnailsConfig(
        enabled=True,
        dir="_thumbs",
        sizes=(240, 480),
        format="png",
        quality=70,
        background=(1, 2, 3),
        animated=True,
    )
    assert ThumbSpec.from_config(config, 1234) == ThumbSpec(
        sizes=(240, 480),
        format="png",
        quality=70,
        background=(1, 2, 3),
        animated=True,
        max_pixels=1234,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"sizes": ()},
        {"sizes": (480, 240)},
        {"sizes": (240, 240)},
        {"sizes": (0, 240)},
        {"quality": 0},
        {"quality": 101},
        {"background": (0, 0, 256)},
        {"max_pixels": 0},
        {"format": "gif"},
    ],
)
def test_spec_refuses_bad_settings(changes: dict[str, object]) -> None:
    settings: dict[str, object] = {"sizes": (240,), **changes}
    with pytest.raises(ValueError):
        ThumbSpec(**settings)  # type: ignore[arg-type]


def test_avif_is_refused_without_pillow_support(monkeypatch: pytest.MonkeyPatch) -> None:
    Image.init()
    monkeypatch.delitem(Image.SAVE, "AVIF", raising=False)
    with pytest.raises(ValueError, match="AVIF"):
        ThumbSpec(sizes=(240,), format="avif")


NAMES = ["a.png", "a.jpg", "a.png.webp", "a.webp", "a", "d/a.png", "d/a.png.webp", "a.jpg.jpg"]


@pytest.mark.parametrize("fmt", ["webp", "jpeg", "png", "same"])
def test_paths_are_injective_and_stay_inside_the_root(tmp_path: Path, fmt: str) -> None:
    spec = ThumbSpec(sizes=(240, 480), format=fmt)  # type: ignore[arg-type]
    paths = [thumb_path(name, size, spec) for name in NAMES for size in spec.sizes]
    assert len(set(paths)) == len(paths)
    for path in paths:
        assert inside(tmp_path, path).is_relative_to(tmp_path)
    assert thumb_path("d/a.png", 240, spec).parts[:2] == ("240", "d")


def test_path_mapping() -> None:
    webp, same = ThumbSpec(sizes=(480,)), ThumbSpec(sizes=(480,), format="same")
    assert thumb_path("h/a.png", 480, webp) == PurePosixPath("480/h/a.png.webp")
    assert thumb_path("h/a.png", 480, same) == PurePosixPath("480/h/a.png")


@pytest.mark.parametrize("relative", ["../a.jpg", "/etc/a.jpg", "", "a/../../b.jpg"])
def test_unsafe_relative_paths_are_refused(tmp_path: Path, relative: str) -> None:
    with pytest.raises(ValueError):
        thumb_path(relative, 480, ThumbSpec(sizes=(480,)))


# --- the pool -------------------------------------------------------------------------------------


def test_pool_makes_the_same_files_as_a_direct_call(tmp_path: Path) -> None:
    sources = [
        save(tmp_path / "src" / "a.jpg", quadrants((800, 600)), "JPEG"),
        save(tmp_path / "src" / "b.png", half_transparent("RGBA"), "PNG"),
        animated_gif(tmp_path / "src" / "c.gif"),
        save(tmp_path / "src" / "d.jpg", Image.new("CMYK", (300, 300), (0, 255, 255, 0)), "JPEG"),
    ]
    bad = tmp_path / "src" / "e.jpg"
    bad.write_bytes(b"")
    jobs = [(source, f"h/{source.name}") for source in [*sources, bad]]
    spec = ThumbSpec(sizes=(64, 256), format="webp", animated=True)

    direct = {rel: make_thumbnails(src, rel, tmp_path / "direct", spec) for src, rel in jobs}
    with ThumbPool(workers=2) as pool:
        pooled = dict(pool.map(jobs, tmp_path / "pooled", spec))

        async def one() -> ThumbResult:
            return await pool.make(sources[0], "h/a.jpg", tmp_path / "async", spec)

        from_async = asyncio.run(one())

    assert pooled == direct
    assert pooled["h/e.jpg"].status == "failed"
    for result in direct.values():
        for name in result.files:
            expected = (tmp_path / "direct" / name).read_bytes()
            assert (tmp_path / "pooled" / name).read_bytes() == expected
    assert from_async == direct["h/a.jpg"]
    assert (tmp_path / "async" / from_async.files[0]).read_bytes() == (
        tmp_path / "direct" / from_async.files[0]
    ).read_bytes()


def test_pool_size_defaults_to_the_cores() -> None:
    with ThumbPool() as pool:
        assert pool.workers == (os.cpu_count() or 1)
    with pytest.raises(ValueError):
        ThumbPool(workers=0)
