"""Pixel steps of a thumbnail: Pillow images in, Pillow images or bytes out.

No file system here; :mod:`mirror.pixels.thumbnails` opens the source, decides what to
make and writes the files. The steps, in the order ``thumbs`` runs them:

1. :func:`fit` computes the box-fitted size, never larger than the image;
2. :func:`working_mode` brings the decoded image to L, LA, RGB, RGBA or CMYK,
   the modes Pillow resizes well (P would be resized with NEAREST, 16-bit and
   float modes would clip);
3. :func:`shrink` resizes (bicubic), reducing by an integer factor first;
4. :func:`to_srgb` converts to sRGB with the embedded ICC profile, on the
   small image (see its docstring for why the profile is not carried over);
5. :func:`orient` applies the EXIF orientation, also on the small image;
6. :func:`encode` brings the image to a mode the output format holds
   (flattening transparency on the background colour for JPEG) and encodes
   it without any metadata.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from typing import Final

from PIL import Image, ImageCms

__all__ = [
    "ANIMATED_FORMATS",
    "encode",
    "encode_animation",
    "fit",
    "orient",
    "orientation_swaps",
    "shrink",
    "to_srgb",
    "working_mode",
]

# Pillow format names whose writers keep several frames (and which browsers
# animate); APNG and animated AVIF are read but not written as animations.
ANIMATED_FORMATS: Final = frozenset({"GIF", "WEBP"})

# EXIF orientation -> the transposition that undoes it; the same table as
# PIL.ImageOps.exif_transpose, which cannot be used here: it works on the
# decoded full-size image, and the thumbnail is a new image without the EXIF.
_ORIENTATIONS: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# reduce() by an integer factor, then resample over at least this factor: the
# result is indistinguishable from resampling the whole image (Pillow's docs)
# at a fraction of the cost for a large photo.
_REDUCING_GAP: Final = 3.0

# Bicubic, the filter of Pillow's own Image.thumbnail(). After the JPEG DCT
# scaling or reduce() the last step shrinks by less than 3x, where Lanczos
# and bicubic differ by ~50 dB PSNR (invisible) on the bench's PNG/GIF/WebP
# and ~0.3 dB against a full-size Lanczos on its photos, while bicubic's
# narrower kernel costs ~30% less: 1.5 ms of ~20 per photo, 3 ms per PNG.
_RESAMPLE: Final = Image.Resampling.BICUBIC

_SRGB: Final = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))

# The ICC colour space of a profile that fits each working mode.
_PROFILE_SPACE: Final = {"RGB": "RGB ", "RGBA": "RGB ", "CMYK": "CMYK"}

# Writers that take a one-channel (or one channel + alpha) image as it is.
_GREY_FORMATS: Final = frozenset({"JPEG", "PNG", "GIF", "TIFF", "BMP"})
_GREY_ALPHA_FORMATS: Final = frozenset({"PNG", "TIFF"})


def fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    """``size`` scaled so its longest side is ``box``; never enlarged, never 0."""
    width, height = size
    scale = min(1.0, box / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def orientation_swaps(orientation: int) -> bool:
    """Whether applying this EXIF orientation swaps width and height."""
    return orientation in (5, 6, 7, 8)


def orient(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (1-8; anything else is taken as 1)."""
    method = _ORIENTATIONS.get(orientation)
    return image if method is None else image.transpose(method)


def working_mode(image: Image.Image) -> Image.Image:
    """``image`` in L, LA, RGB, RGBA or CMYK, with its transparency kept.

    16-bit images are scaled to 8 bits rather than clipped (a plain
    ``convert("L")`` turns nearly every 16-bit pixel white). ``I`` holds
    whatever the decoder put there: values up to 255 are taken as 8-bit, up to
    65535 as 16-bit, anything larger is scaled by its maximum. ``F`` is scaled
    from 0-1 when it fits there, else like ``I``.
    """
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I;16"):
        return _scaled_to_l(image.convert("I"), 65535)
    if mode in ("I", "F"):
        _low, high = image.getextrema()
        assert isinstance(high, int | float)  # a one-band image: a pair of numbers
        if mode == "F" and high <= 1:
            return _scaled_to_l(image, 1)
        return _scaled_to_l(image, 255 if high <= 255 else 65535 if high <= 65535 else high)
    if mode == "La":
        return image.convert("LA")
    return image.convert("RGBA" if "A" in mode or "a" in mode else "RGB")


def _scaled_to_l(image: Image.Image, peak: float) -> Image.Image:
    factor = 255 / peak
    # point() on I and F images takes a linear function and stays in the mode.
    return image.point(lambda value: value * factor).convert("L")


def shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` resized to ``size`` (no copy when it already has that size)."""
    if image.size == size:
        return image
    return image.resize(size, _RESAMPLE, reducing_gap=_REDUCING_GAP)


def to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB(A) or CMYK pixels as sRGB, through the embedded profile if there is one.

    Thumbnails are converted to sRGB and carry no profile: sRGB is what a
    browser assumes for an untagged image, so a wide-gamut (Display P3, Adobe
    RGB) or CMYK source looks right everywhere, including viewers and image
    CDNs that ignore profiles; and a 0.5-3 KB profile is a large share of a
    20 KB thumbnail. A profile that cannot be read, or that does not match
    the pixels (a grey profile on RGB data), is ignored, as browsers do, and
    CMYK then goes through Pillow's plain conversion. L and LA are left as
    they are (a grey profile barely changes them).
    """
    space = _PROFILE_SPACE.get(image.mode)
    if space is None:
        return image
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    transform = _transform(icc, image.mode, space) if icc else None
    if transform is None:
        return image if image.mode == out_mode else image.convert(out_mode)
    return ImageCms.applyTransform(image, transform) or image


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, mode: str, space: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from ``icc`` to sRGB, or None if it does not apply.

    Cached: a site's photos share a handful of profiles, and building a
    transform costs more than applying it to a thumbnail.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space != space:
            return None
        # Perceptual intent: gamut mapping that keeps out-of-gamut colours
        # distinct (wide-gamut and CMYK sources), where colorimetric clips.
        return ImageCms.buildTransform(
            profile,
            _SRGB,
            mode,
            "RGBA" if mode == "RGBA" else "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _opaque(image: Image.Image) -> Image.Image:
    """Drop an alpha channel that is fully opaque (a smaller, faster file)."""
    if image.mode in ("RGBA", "LA"):
        # getchannel: getextrema() on a one-band image is a pair, not pairs.
        low, _high = image.getchannel("A").getextrema()
        if low == 255:
            return image.convert(image.mode[:-1])
    return image


def _for_format(image: Image.Image, fmt: str, background: tuple[int, int, int]) -> Image.Image:
    """``image`` (L, LA, RGB or RGBA) in a mode the ``fmt`` writer keeps as it is."""
    image = _opaque(image)
    if fmt == "JPEG" and image.mode in ("LA", "RGBA"):
        base = Image.new("RGBA", image.size, (*background, 255))
        return Image.alpha_composite(base, image.convert("RGBA")).convert("RGB")
    if image.mode == "LA" and fmt not in _GREY_ALPHA_FORMATS:
        return image.convert("RGBA")
    if image.mode == "L" and fmt not in _GREY_FORMATS:
        return image.convert("RGB")
    return image


def _options(fmt: str, quality: int) -> dict[str, object]:
    if fmt == "JPEG":
        return {"quality": quality, "optimize": True}
    if fmt in ("WEBP", "AVIF"):
        return {"quality": quality}
    return {}  # PNG, GIF, BMP, TIFF: lossless, quality does not apply


def encode(
    image: Image.Image, fmt: str, *, quality: int, background: tuple[int, int, int]
) -> bytes:
    """One still image as ``fmt`` (a Pillow format name), without metadata.

    ``info`` is emptied first: resize() copies it from the source, and
    Pillow before 11 (which pyproject allows) wrote a PNG's ICC profile from
    it; today's writers take metadata only from save()'s arguments.
    """
    image = _for_format(image, fmt, background)
    image.info = {}
    out = io.BytesIO()
    image.save(out, fmt, **_options(fmt, quality))
    return out.getvalue()


def encode_animation(
    frames: Sequence[Image.Image],
    durations: Sequence[int],
    loop: int | None,
    fmt: str,
    *,
    quality: int,
) -> bytes:
    """Frames (RGBA) as an animated ``fmt`` (GIF or WEBP), without metadata.

    ``loop`` is the source's loop count, None when it has none: a GIF without
    a loop extension plays once, which WebP spells ``loop=1``.
    """
    for frame in frames:
        frame.info = {}
    options = _options(fmt, quality)
    if loop is not None:
        options["loop"] = loop
    elif fmt == "WEBP":
        options["loop"] = 1
    out = io.BytesIO()
    frames[0].save(
        out,
        fmt,
        save_all=True,
        append_images=list(frames[1:]),
        duration=list(durations),
        **options,
    )
    return out.getvalue()
