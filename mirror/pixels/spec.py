"""What the thumbnail stage makes, and what it made: the settings (:class:`ThumbSpec`,
with the fingerprint the state keeps), the result of one image and where each
thumbnail goes (:func:`thumb_path`; the appended extension is explained in
:mod:`mirror.pixels.thumbnails`).

Apart from the making because a run with nothing to make still asks whether
each thumbnail is current, and that needs no Pillow, whose import would be a
good part of such a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Final, Literal, get_args

from mirror.config import DEFAULT_MAX_PIXELS, ThumbFormat, ThumbnailsConfig
from mirror.formats import FORMATS

ALGORITHM_VERSION: Final = 1
"""Part of every fingerprint: raise it when a change here changes the output."""

OutputFormat = ThumbFormat
Status = Literal["made", "skipped", "failed"]

# Output format -> (Pillow writer, extension appended to the original's name).
OUTPUTS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        fmt: (str(FORMATS[fmt].pillow), FORMATS[fmt].extension)
        for fmt in get_args(OutputFormat)
        if fmt != "same"
    }
)


def _avif_writable() -> bool:
    from PIL import Image  # only for this setting: the spec itself needs no Pillow

    Image.init()  # registers every plugin, so SAVE is complete
    return "AVIF" in Image.SAVE


_DEFAULTS: Final = ThumbnailsConfig()  # [thumbnails] as documented: the spec's defaults


@dataclass(frozen=True, slots=True)
class ThumbSpec:
    """What to make: every setting of the thumbnail stage, checked.

    Raises ValueError for sizes that are empty, unsorted, repeated or below
    1, a quality outside 1-100, a colour component outside 0-255, a
    ``max_pixels`` below 1, an unknown format, and ``"avif"`` when this
    Pillow cannot write AVIF.
    """

    sizes: tuple[int, ...]
    format: OutputFormat = _DEFAULTS.format
    quality: int = _DEFAULTS.quality
    background: tuple[int, int, int] = _DEFAULTS.background
    animated: bool = _DEFAULTS.animated
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        sizes = self.sizes
        if not sizes or list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
            raise ValueError(f"sizes must be ascending, distinct and >= 1, got {sizes}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be from 1 to 100, got {self.quality}")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise ValueError(f"background must be (r, g, b) from 0 to 255, got {self.background}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.format not in get_args(OutputFormat):
            raise ValueError(f"unknown thumbnail format {self.format!r}")
        if self.format == "avif" and not _avif_writable():
            raise ValueError('thumbnail format "avif" needs a Pillow built with AVIF support')

    @classmethod
    def from_config(cls, thumbnails: ThumbnailsConfig, max_pixels: int) -> ThumbSpec:
        """The spec for ``[thumbnails]``, with ``download.max_pixels`` as the limit."""
        return cls(
            sizes=thumbnails.sizes,
            format=thumbnails.format,
            quality=thumbnails.quality,
            background=thumbnails.background,
            animated=thumbnails.animated,
            max_pixels=max_pixels,
        )

    @property
    def fingerprint(self) -> str:
        """The settings that shape the output, as a short stable string.

        Stored beside each source's sha256 in the state: a thumbnail is
        rebuilt when either changes. Settings that cannot change a byte of
        the output are left out so that changing them rebuilds nothing:
        quality for PNG (lossless), the background unless the output is JPEG
        (the only format that flattens; "same" never does, as every source
        format with transparency can hold it), ``animated`` unless the output
        can animate, and ``max_pixels`` (it decides *whether* an image gets
        thumbnails, not what they look like; the state keeps failures apart).
        """
        parts = [f"v{ALGORITHM_VERSION}", self.format, ",".join(map(str, self.sizes))]
        if self.format != "png":
            parts.append(f"q{self.quality}")
        if self.format == "jpeg":
            parts.append("bg{:02x}{:02x}{:02x}".format(*self.background))
        if self.format in ("webp", "same") and self.animated:
            parts.append("animated")
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class ThumbResult:
    """What :func:`make_thumbnails` did for one image.

    ``files`` are the thumbnails written, posix paths relative to the
    thumbnails root, in the order of ``spec.sizes``; empty unless "made".
    ``width`` and ``height`` are the original's, after the EXIF orientation,
    when they are known (always when "made").
    """

    status: Status
    reason: str | None = None
    files: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None


def thumb_path(relative: str, size: int, spec: ThumbSpec) -> PurePosixPath:
    """Where the ``size`` thumbnail of ``relative`` goes, below the thumbnails root.

    ``<size>/<relative><ext>``; see the module docstring for why the
    extension is appended. Raises ValueError for a ``relative`` that is
    absolute, empty or holds ``..``.
    """
    rel = PurePosixPath(relative)
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        raise ValueError(f"not a safe relative path: {relative!r}")
    name = rel.name if spec.format == "same" else rel.name + OUTPUTS[spec.format][1]
    return PurePosixPath(str(size), *rel.parts[:-1], name)


class ThumbsUnwritable(OSError):
    """The thumbnail files cannot be written (full disk, permissions, a file or
    a broken link where a folder must be): every image would fail alike, so
    this stops the run rather than failing one image. An ``OSError`` with the
    cause's errno, text and file name, so that it crosses the process pool."""
