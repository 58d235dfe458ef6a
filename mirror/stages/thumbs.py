"""The thumbnail stage: which mirrored files need thumbnails, making them, recording them.

A file's thumbnails are up to date when the ``thumbnails`` table (migration
``0004_create_thumbnails``) holds the file's current sha256 and the current
settings' fingerprint, and every file it lists still exists. Anything else is
rebuilt: a new or replaced image, changed sizes/format/quality, a deleted
thumbnail. A failed or skipped file is not retried until one of those
changes (the same bytes with the same settings would fail again), or with
``thumbs --force``. Thumbnails a rebuild no longer names (another format or
size) are moved to the trash, as ``backup --prune`` moves files.

``fetch`` makes the thumbnails of each file it downloads once the file is in
place (:func:`make_one`; an image that cannot be decoded fails its URL) and
calls :func:`catch_up` for files mirrored earlier; ``thumbs`` runs
:func:`rebuild` on its own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mirror.config import Config
from mirror.errors import ConfigError, MirrorError
from mirror.keep import thumbrows
from mirror.keep.site import Site
from mirror.keep.state import State
from mirror.keep.store import TRASH_DIR_NAME, inside, remove_partials, to_trash
from mirror.pixels.spec import ThumbResult, ThumbSpec, ThumbsUnwritable, thumb_path

if TYPE_CHECKING:
    from mirror.pixels.thumbnails import ThumbPool


@dataclass(frozen=True, slots=True)
class Made:
    """The thumbnails of one mirrored file."""

    path: str  # the original, relative to mirror.dir
    result: ThumbResult


@dataclass(frozen=True, slots=True)
class ThumbsResult:
    done: tuple[Made, ...]
    up_to_date: int
    elapsed: float
    trashed: int  # old thumbnails no setting asks for any more, moved to the trash
    interrupted: bool = False

    def having(self, status: str) -> tuple[Made, ...]:
        return tuple(m for m in self.done if m.result.status == status)


def pool() -> ThumbPool:
    """The workers that make thumbnails. Pillow is imported here, when an image
    is to be made: a run with none to make never imports it."""
    from mirror.pixels.thumbnails import ThumbPool

    return ThumbPool()


def spec_of(config: Config) -> ThumbSpec:
    try:
        return ThumbSpec.from_config(config.thumbnails, config.download.max_pixels)
    except ValueError as exc:  # e.g. "avif" with a Pillow built without AVIF
        raise ConfigError(f"invalid value for 'thumbnails.format': {exc}") from exc


def thumbs_root(config: Config) -> Path:
    return config.mirror_dir / config.thumbnails.dir


def unwritable(config: Config, exc: ThumbsUnwritable) -> MirrorError:
    """The error that stops the run, naming the setting that places the files."""
    named = exc.filename2 or exc.filename  # a rename's target, not its temporary file
    which = f"{named}: " if named else ""
    return MirrorError(
        f"cannot write thumbnails under {thumbs_root(config)} (thumbnails.dir):"
        f" {which}{exc.strerror or exc}"
    )


WORKER_DIED = "the thumbnail worker died decoding it (out of memory?)"


async def make_one(pool: ThumbPool, config: Config, spec: ThumbSpec, path: str) -> ThumbResult:
    """The thumbnails of one mirrored file, ``path`` relative to ``mirror.dir``.

    A worker that dies on the image (killed for memory, a decoder crash)
    breaks ``pool``: the image fails with :data:`WORKER_DIED`, and the caller
    must start a new pool. Thumbnails that cannot be written stop the run.
    """
    source = inside(config.mirror_dir, PurePosixPath(path))
    try:
        return await pool.make(source, path, thumbs_root(config), spec, fsync=config.download.fsync)
    except BrokenExecutor:  # the process pool's workers died
        return ThumbResult("failed", WORKER_DIED)
    except ThumbsUnwritable as exc:
        raise unwritable(config, exc) from exc


def record(state: State, path: str, sha256: str, spec: ThumbSpec, result: ThumbResult) -> None:
    """Remember what ``path``'s thumbnails were made from (inside the caller's transaction)."""
    thumbrows.record(
        state, path, sha256, spec.fingerprint, result.status, result.reason, result.files
    )


def trash_stale(state: State, config: Config, path: str, spec: ThumbSpec) -> int:
    """Move ``path``'s recorded thumbnails that ``spec`` no longer names (another
    format or size) to the trash, as prune moves files; return how many moved.

    Called before the new thumbnails are recorded: once the row lists only
    those, nothing would remember the old files."""
    wanted = {thumb_path(path, size, spec).as_posix() for size in spec.sizes}
    trash = config.state_dir / TRASH_DIR_NAME / config.thumbnails.dir
    root = thumbs_root(config)
    return sum(
        to_trash(root / old, trash / old)
        for old in thumbrows.files_of(state, path)
        if old not in wanted
    )


def due(
    state: State, config: Config, spec: ThumbSpec, *, force: bool
) -> tuple[list[tuple[str, str]], int]:
    """``(path, sha256)`` of the mirrored files whose thumbnails must be (re)made,
    and how many are up to date. Each file once, however many URLs share it."""
    files = state.mirrored_files()
    made = {row.path: row for row in thumbrows.rows(state)}
    root = thumbs_root(config)
    todo: list[tuple[str, str]] = []
    for path, sha256 in sorted(files.items()):
        known = made.get(path)
        current = (
            known is not None
            and (known.sha256, known.fingerprint) == (sha256, spec.fingerprint)
            and all(os.path.isfile(os.path.join(root, name)) for name in known.files)
        )
        if force or not current:
            todo.append((path, sha256))
    return todo, len(files) - len(todo)


def catch_up(
    site: Site,
    pool: Callable[[], ThumbPool],
    *,
    force: bool = False,
    on_plan: Callable[[int], None] | None = None,
    on_made: Callable[[Made], None] | None = None,
) -> ThumbsResult:
    """(Re)make every thumbnail that is due, recording each as it finishes.

    ``pool`` is called only when something is due: starting the workers costs
    a few tenths of a second that a run with nothing to do should not pay.
    """
    config, state = site.config, site.state
    started = time.monotonic()
    spec = spec_of(config)
    todo, current = due(state, config, spec, force=force)
    if on_plan is not None:
        on_plan(len(todo))
    if not todo:
        return ThumbsResult((), current, time.monotonic() - started, 0)
    hashes = dict(todo)
    jobs = ((inside(config.mirror_dir, PurePosixPath(path)), path) for path, _ in todo)
    done: list[Made] = []
    trashed = 0
    interrupted = False
    results: Iterator[tuple[str, ThumbResult]] = pool().map(
        jobs, thumbs_root(config), spec, fsync=config.download.fsync
    )
    try:
        for path, result in results:
            trashed += trash_stale(state, config, path, spec)
            with state.transaction():
                record(state, path, hashes[path], spec, result)
            made = Made(path, result)
            done.append(made)
            if on_made is not None:
                on_made(made)
    except KeyboardInterrupt:
        interrupted = True
    except ThumbsUnwritable as exc:
        raise unwritable(config, exc) from exc
    return ThumbsResult(tuple(done), current, time.monotonic() - started, trashed, interrupted)


def rebuild(
    site: Site,
    *,
    force: bool = False,
    on_plan: Callable[[int], None] | None = None,
    on_made: Callable[[Made], None] | None = None,
) -> ThumbsResult:
    """``gallery-mirror thumbs``: thumbnails for everything mirrored, without fetching."""
    if not site.config.thumbnails.enabled:
        raise ConfigError(
            "thumbnails are turned off (thumbnails.enabled = false): set it to true to make them"
        )
    remove_partials(thumbs_root(site.config))
    with contextlib.ExitStack() as stack:
        return catch_up(
            site, lambda: stack.enter_context(pool()),
            force=force, on_plan=on_plan, on_made=on_made,
        )  # fmt: skip
