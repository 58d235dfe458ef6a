"""Thumbnails of mirrored images: one decode per image, every size, atomic files.

:func:`make_thumbnails` is a plain top-level function so that it can run in a
process pool (:class:`ThumbPool`): decoding is CPU-bound and Pillow's decoders
hold the GIL for part of their work. For one source it

1. checks the file with :func:`mirror.pixels.validate.inspect` (magic bytes, a
   complete file, the pixel count against ``max_pixels``) *before* Pillow
   decodes anything, so a decompression bomb costs a few header reads;
2. opens it with Pillow restricted to the sniffed format (a file never reaches
   a decoder it was not sniffed as, such as EPS, which runs Ghostscript);
3. decodes once, JPEG at the smallest DCT scale that still covers the largest
   size (``draft``), and makes every size from that decode, largest first,
   reducing by an integer factor before the bicubic resampling;
4. converts the small results, not the decode, to sRGB and to the output's
   mode, applies the EXIF orientation and encodes without metadata
   (:mod:`mirror.pixels.imaging` holds those pixel steps);
5. writes each size with :class:`mirror.keep.store.AtomicFile` only once every size
   has been encoded, so a failing image leaves no file, and an earlier set of
   thumbnails at those paths stays as it was.

A bad image is a value, not an exception: :class:`ThumbResult` says "made",
"skipped" (SVG, ICO: no raster to shrink) or "failed" with the reason. What
does raise is an error of the run rather than of the image: the thumbnail
directory cannot be written (disk full, permissions), or ``relative`` is not a
safe relative path.

Paths
-----
:func:`thumb_path` gives ``<size>/<relative><ext>``: the original's relative
path with the output format's extension *appended* (``a/b.png`` ->
``480/a/b.png.webp``), or unchanged for ``format = "same"``. Appending keeps
the mapping injective: replacing the extension would send ``a.png`` and
``a.jpg`` to one ``a.webp``, and even "replace only when it differs" sends
``a.png`` and an original named ``a.png.webp`` (which the ``url`` layout can
produce) to one file. The rewrite stage finds a thumbnail by appending too.

Sizes
-----
A thumbnail is never larger than its original: its longest side is
``min(size, longest side of the original)``. An original smaller than a size
still gets a file at that size's path (the same image again), so a template
can rely on ``<size>/...`` existing for every mirrored raster image.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Final

from PIL import ExifTags, Image, ImageSequence

from mirror.formats import FORMATS, ImageFormat
from mirror.keep.store import AtomicFile, inside
from mirror.pixels.imaging import (
    ANIMATED_FORMATS,
    encode,
    encode_animation,
    fit,
    orient,
    orientation_swaps,
    shrink,
    to_srgb,
    working_mode,
)
from mirror.pixels.spec import OUTPUTS, ThumbResult, ThumbSpec, ThumbsUnwritable, thumb_path
from mirror.pixels.validate import Invalid, inspect

__all__ = ["ThumbPool", "make_thumbnails"]

# Valid images that get no thumbnail, and why.
_SKIPPED: Final[Mapping[ImageFormat, str]] = MappingProxyType(
    {
        "svg": "SVG is a vector image (no thumbnail needed)",
        "ico": "ICO icons get no thumbnail",
    }
)


class _Refused(Exception):
    """The image gets no thumbnail; carries the result to return."""

    def __init__(self, result: ThumbResult) -> None:
        super().__init__(result.reason)
        self.result = result


@dataclass(frozen=True, slots=True)
class _Rendered:
    encoded: Mapping[int, bytes]  # size -> file contents
    width: int
    height: int


def make_thumbnails(
    source: Path,
    relative: str,
    thumbs_root: Path,
    spec: ThumbSpec,
    *,
    fsync: bool = True,
) -> ThumbResult:
    """Make every size of ``spec`` for one image; see the module docstring.

    ``source`` is the file to read (it may be a temporary download);
    ``relative`` is the original's path in the mirror, which alone names
    the thumbnails (:func:`thumb_path`).

    Pillow's warnings are silenced here, not globally: a DecompressionBomb-
    Warning below our own limit, odd palette transparency and broken EXIF
    say nothing the result does not. ``catch_warnings`` swaps the process's
    filter list, so call this from one thread per process (the pool does).
    """
    paths = [thumb_path(relative, size, spec) for size in spec.sizes]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rendered = _render(source, spec)
    except _Refused as refused:
        return refused.result
    targets = [inside(thumbs_root, path) for path in paths]
    written: list[Path] = []
    try:
        for size, target in sorted(zip(spec.sizes, targets, strict=True), reverse=True):
            with AtomicFile(target, fsync=fsync) as out:
                out.write(rendered.encoded[size])
            written.append(target)
    except BaseException as exc:
        # No partial set: what this call renamed into place goes too.
        for target in written:
            target.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            cause = (exc.errno, exc.strerror or str(exc), exc.filename, None, exc.filename2)
            raise ThumbsUnwritable(*cause) from exc
        raise
    files = tuple(path.as_posix() for path in paths)
    return ThumbResult("made", None, files, rendered.width, rendered.height)


def _render(source: Path, spec: ThumbSpec) -> _Rendered:
    """Every size of ``source``, encoded; raises _Refused for a bad image."""
    try:
        info = inspect(source, max_pixels=spec.max_pixels)
    except Invalid as exc:
        raise _Refused(ThumbResult("failed", exc.reason)) from None
    except OSError as exc:
        raise _Refused(ThumbResult("failed", f"cannot read the file: {exc}")) from None
    if info.format in _SKIPPED:
        raise _Refused(ThumbResult("skipped", _SKIPPED[info.format], (), info.width, info.height))
    decoder = FORMATS[info.format].pillow
    if decoder is None or decoder not in Image.registered_extensions().values():
        # A valid image all the same (HEIC; AVIF on a Pillow built without it):
        # it is kept without thumbnails, not refused.
        reason = f"this Pillow cannot decode {info.format.upper()} images"
        raise _Refused(ThumbResult("skipped", reason, (), info.width, info.height))
    writer = decoder if spec.format == "same" else OUTPUTS[spec.format][0]
    try:
        with Image.open(source, formats=[decoder]) as image:
            return _render_image(image, writer, spec)
    except _Refused:
        raise
    except Exception as exc:  # Pillow raises many kinds for corrupt data
        reason = f"cannot decode this {decoder} image: {exc or type(exc).__name__}"
        raise _Refused(ThumbResult("failed", reason, (), info.width, info.height)) from None


def _render_image(image: Image.Image, writer: str, spec: ThumbSpec) -> _Rendered:
    width, height = image.size
    # A GIF frame may outgrow the logical screen that inspect() checked.
    if width * height > spec.max_pixels:
        reason = f"image too large: {width}x{height} pixels exceeds the limit of {spec.max_pixels}"
        raise _Refused(ThumbResult("failed", reason))
    boxes = sorted(spec.sizes, reverse=True)
    sizes = [fit(image.size, box) for box in boxes]
    animate = spec.animated and writer in ANIMATED_FORMATS and getattr(image, "is_animated", False)
    if not animate:
        # JPEG: decode at the smallest DCT scale (1/8 to 1/1) still covering
        # the largest size; every other format ignores draft().
        image.draft(image.mode, sizes[0])
    # Decode before reading the EXIF: for PNG that read decodes the image (the
    # eXIf chunk may follow the pixels), and its errors must not be mistaken
    # for a broken EXIF block.
    image.load()
    orientation = _orientation(image)
    if orientation_swaps(orientation):
        width, height = height, width
    make = _animation if animate else _still
    # An original smaller than several boxes has one size for all of them: made once.
    distinct = list(dict.fromkeys(sizes))
    encoded = dict(zip(distinct, make(image, distinct, orientation, writer, spec), strict=True))
    return _Rendered(
        {box: encoded[size] for box, size in zip(boxes, sizes, strict=True)}, width, height
    )


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a broken EXIF block must not cost the image
        return 1
    return value if isinstance(value, int) else 1


def _still(
    image: Image.Image,
    sizes: list[tuple[int, int]],
    orientation: int,
    writer: str,
    spec: ThumbSpec,
) -> list[bytes]:
    """One frame at every size (largest first), from one decode."""
    icc = image.info.get("icc_profile")
    base = working_mode(image)
    return [
        encode(_small(base, size, icc, orientation), writer,
               quality=spec.quality, background=spec.background)
        for size in sizes
    ]  # fmt: skip


def _small(
    image: Image.Image, size: tuple[int, int], icc: bytes | None, orientation: int
) -> Image.Image:
    """``image`` at ``size``, then in sRGB and upright: both on the small image."""
    return orient(to_srgb(shrink(image, size), icc), orientation)


def _animation(
    image: Image.Image,
    sizes: list[tuple[int, int]],
    orientation: int,
    writer: str,
    spec: ThumbSpec,
) -> list[bytes]:
    """Every frame at every size (largest first), each frame decoded once."""
    icc = image.info.get("icc_profile")
    frames: list[list[Image.Image]] = [[] for _ in sizes]
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        durations.append(int(frame.info.get("duration", 0)))
        # RGBA for every frame: later GIF frames decode to RGB(A), the first to P.
        rgba = frame.convert("RGBA")
        for index, size in enumerate(sizes):
            frames[index].append(_small(rgba, size, icc, orientation))
    loop = image.info.get("loop")
    return [
        encode_animation(resized, durations, loop, writer, quality=spec.quality)
        for resized in frames
    ]


# --- the pool --------------------------------------------------------------------


def _start_method() -> str:
    """fork while this process has one thread; else forkserver where it exists
    (Linux, macOS), else spawn (Windows).

    fork starts the workers in ~0.1 s and they share the Pillow already
    imported; forkserver took 0.3-0.6 s. But a child forked while another
    thread holds a lock (logging, an allocator, OpenSSL) can deadlock, and the
    fetch stage runs asyncio with threads: then the fork server, started once
    from a clean single-threaded process, forks each worker instead.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _leave_signals_to_the_parent() -> None:
    """In each worker: Ctrl-C and SIGTERM (which reach the whole process group,
    or a systemd unit's whole cgroup) are the parent's to handle; it stops
    the pool itself. A worker killed by them would break the pool mid-run and
    print a traceback over the summary."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class ThumbPool:
    """Worker processes for :func:`make_thumbnails`, one per core by default.

    ::

        with ThumbPool() as pool:
            result = await pool.make(temp_file, "host/a.jpg", thumbs_root, spec)
            for relative, result in pool.map(jobs, thumbs_root, spec): ...

    An exception raised in a worker (the thumbnail directory cannot be
    written) is raised by ``make``/``map``; a worker that dies (killed for
    memory) breaks the pool, which then raises BrokenProcessPool.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else os.cpu_count() or 1
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        context = multiprocessing.get_context(_start_method())
        if isinstance(context, multiprocessing.context.ForkServerContext):
            context.set_forkserver_preload([__name__])
        self._executor = ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_leave_signals_to_the_parent
        )

    async def make(
        self,
        source: Path,
        relative: str,
        thumbs_root: Path,
        spec: ThumbSpec,
        *,
        fsync: bool = True,
    ) -> ThumbResult:
        """:func:`make_thumbnails` in a worker, awaited without blocking the loop."""
        loop = asyncio.get_running_loop()
        call = functools.partial(make_thumbnails, source, relative, thumbs_root, spec, fsync=fsync)
        return await loop.run_in_executor(self._executor, call)

    def map(
        self,
        jobs: Iterable[tuple[Path, str]],
        thumbs_root: Path,
        spec: ThumbSpec,
        *,
        fsync: bool = True,
    ) -> Iterator[tuple[str, ThumbResult]]:
        """``(relative, result)`` for each ``(source, relative)``, as each finishes.

        ``jobs`` is read lazily, a few per worker ahead, so a long list (or a
        generator over the state) is never queued whole. Closing the iterator
        early cancels what has not started.
        """
        pending: dict[Future[ThumbResult], str] = {}
        ahead = 4 * self.workers
        try:
            for source, relative in jobs:
                future = self._executor.submit(
                    make_thumbnails, source, relative, thumbs_root, spec, fsync=fsync
                )
                pending[future] = relative
                if len(pending) >= ahead:
                    yield from _collect(pending)
            while pending:
                yield from _collect(pending)
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        """Stop the workers after the calls already running; drop queued ones."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ThumbPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _collect(pending: dict[Future[ThumbResult], str]) -> Iterator[tuple[str, ThumbResult]]:
    """Wait for at least one future; yield and forget each finished one."""
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        yield pending.pop(future), future.result()
