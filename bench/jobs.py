"""The jobs measured, each done by gallery-mirror and by the peers a user would script."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

_CEILING = Path(__file__).with_name("ceiling.py")
_IMAGE_SUFFIXES = frozenset({".jpg", ".png", ".gif", ".webp"})  # what the jobs write
# The regex a user would hand to ripgrep to find image URLs in posts.
URL_REGEX = r"""(?:https?|httpss|htps)://[^\s)"'<>]+"""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    command: Callable[[Path], list[str]] | None  # given a fresh output dir; None: not built yet
    ours: bool = False
    note: str = ""  # why it did not run, shown in the table
    reference: bool = False  # a yardstick, neither ours nor a peer: no ratio, not the best peer


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    files: int
    megabytes: float
    tools: tuple[Tool, ...] = field(default_factory=tuple)
    outputs: int = 0  # files each tool must leave in its output folder (0: none)

    def check(self, out: Path) -> str | None:
        """Why a run did not do the whole job, or None: a fast failure is no result."""
        if not self.outputs:
            return None
        made = sum(
            1
            for p in out.rglob("*")
            if p.suffix in _IMAGE_SUFFIXES and p.is_file() and p.stat().st_size > 0
        )
        return None if made == self.outputs else f"made {made} of {self.outputs} files"


def find(name: str, *fallbacks: str) -> str | None:
    for candidate in (*fallbacks, name):
        if Path(candidate).is_absolute() and Path(candidate).exists():
            return candidate
    return shutil.which(name)


def ours() -> list[str]:
    script = Path(sys.executable).with_name("gallery-mirror")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mirror"]


def peer(name: str, binary: str | None, build: Callable[[str, Path], list[str]]) -> Tool:
    if binary is None:
        return Tool(name, None, note="not installed (bench/setup installs it)")
    return Tool(name, lambda out: build(binary, out))


def scan_job(blog: Path, posts: int, megabytes: float) -> Job:
    source = blog / "source" / "_posts"
    return Job(
        "scan posts",
        posts,
        megabytes,
        (
            Tool("gallery-mirror", lambda out: [*ours(), "scan", "--site", str(blog), "-q"], True),
            peer(
                "rg -o", find("rg"),
                lambda rg, out: [rg, "-o", "--no-filename", "-e", URL_REGEX, str(source)],
            ),
        ),
    )  # fmt: skip


def ours_fetch(posts: Path, config: Path, name: str = "gallery-mirror fetch") -> Tool:
    """gallery-mirror fetch into a fresh site made in the output folder.

    The site's posts folder is a link to ``posts`` (one post listing every
    image, so that the job measures fetching, not scanning a blog), and the
    config maps the corpus host to the server with [download.origins].
    """
    return Tool(
        name,
        lambda out: ["sh", "-c",
                     f"mkdir -p {out}/source && ln -s {posts} {out}/source/_posts && "
                     f"{' '.join(ours())} -q -c {config} fetch --site {out}"],
        True,
    )  # fmt: skip


def ours_thumbs(site: Path) -> Tool:
    """gallery-mirror thumbs --force on a site whose images are already mirrored.

    The site's thumbnails folder is pointed at the fresh output folder, so
    that each run starts from nothing and its files are counted like the peers'.
    """
    thumbs = site / "source" / "images" / "mirror" / "_thumbs"
    return Tool(
        f"gallery-mirror thumbs, {os.cpu_count()} workers",
        lambda out: ["sh", "-c",
                     f"rm -rf {thumbs} && ln -s {out} {thumbs} && "
                     f"{' '.join(ours())} -q thumbs --force --site {site}"],
        True,
    )  # fmt: skip


def fetch_job(label: str, urls: Path, files: int, megabytes: float, *ours_tools: Tool) -> Job:
    return Job(
        f"fetch, {label}",
        files,
        megabytes,
        (
            *ours_tools,
            peer(
                "wget2 --max-threads=32", find("wget2"),
                lambda w, out: [w, "--max-threads=32", "-q", "--no-robots", "-x", "-nH",
                                "-P", str(out), "-i", str(urls)],
            ),
            peer(
                "aria2c -j32", find("aria2c"),
                lambda a, out: [a, "-j32", "-q", "--file-allocation=none",
                                "--auto-file-renaming=false", "--allow-overwrite=true",
                                "-d", str(out), "-i", str(urls)],
            ),
            Tool(
                f"reference: bare aiohttp + SHA-256, {os.cpu_count()} processes",
                lambda out: [sys.executable, str(_CEILING), str(urls), str(out)],
                reference=True,
            ),
        ),
        outputs=files,
    )  # fmt: skip


def thumbs_job(
    label: str,
    inputs: Path,
    files: int,
    megabytes: float,
    box: int,
    ours_tool: Tool,
    *,
    with_convert: bool = True,
) -> Job:
    """``with_convert``: also ImageMagick, ~9x slower than the others (left out
    where it would take minutes per run)."""
    vips = find("vipsthumbnail")
    magick = find("convert", "/usr/bin/convert-im6.q16")  # /usr/local/bin/convert may be a stub
    convert = peer(
        "convert -thumbnail, 2 workers", magick,
        lambda m, out: ["xargs", "-r", "-a", str(inputs), "-P2", "-n", "1", "sh", "-c",
                        f'{m} "$0[0]" -thumbnail {box}x{box} -quality 85 '
                        f'"{out}/$(basename "$0").jpg"'],
    )  # fmt: skip
    return Job(
        f"thumbnails, {label}",
        files,
        megabytes,
        (
            ours_tool,
            peer(
                "vipsthumbnail, 2 workers", vips,
                lambda v, out: ["xargs", "-r", "-a", str(inputs), "-P2", "-n", "32", v,
                                "-s", str(box), "-o", f"{out}/%s.jpg[Q=85]"],
            ),
            *((convert,) if with_convert else ()),
        ),
        outputs=files,
    )  # fmt: skip


def whole_job(
    label: str, urls: Path, files: int, megabytes: float, box: int, ours_tool: Tool
) -> Job:
    wget2, vips = find("wget2"), find("vipsthumbnail")
    pipeline: Tool
    if wget2 is None or vips is None:
        pipeline = Tool("wget2 then vipsthumbnail", None, note="not installed")
    else:
        pipeline = Tool(
            "wget2 then vipsthumbnail",
            lambda out: ["sh", "-c",
                         f"{wget2} --max-threads=32 -q --no-robots -x -nH -P {out}/files "
                         f"-i {urls} && mkdir -p {out}/thumbs && find {out}/files -type f "
                         f"| xargs -P2 -n 32 {vips} -s {box} -o '{out}/thumbs/%s.jpg[Q=85]'"],
        )  # fmt: skip
    return Job(
        f"whole job (scan + fetch + thumbnails), {label}",
        files,
        megabytes,
        (ours_tool, pipeline),
        outputs=2 * files,  # the images and one thumbnail each
    )


def memory_job(label: str, urls: Path, files: int, megabytes: float, ours_tool: Tool) -> Job:
    """Peak memory as the number of URLs grows (small images: the plan, not the bytes)."""
    return Job(
        f"memory, {label}",
        files,
        megabytes,
        (
            ours_tool,
            peer(
                "wget2 --max-threads=32", find("wget2"),
                lambda w, out: [w, "--max-threads=32", "-q", "--no-robots", "-x", "-nH",
                                "-P", str(out), "-i", str(urls)],
            ),
        ),
        outputs=files,
    )  # fmt: skip


def rewrite_job(site: Path, refs: int, megabytes: float) -> Job:
    """One post of ``refs`` references, its images mirrored already: ``rewrite``
    (and its dry run) against the ``scan`` of the same site, the yardstick in
    the last column (goal: under 3x). The rewrite writes the post and the
    journal, so each run rewrites a fresh copy of the site in the output folder
    (the post, the state and the mirror's few small files)."""
    return Job(
        f"rewrite one post, {refs} references",
        1,
        megabytes,
        (
            Tool(
                "gallery-mirror rewrite",
                lambda out: ["sh", "-c",
                             f"cp -a {site}/. {out} && {' '.join(ours())} -q rewrite --site {out}"],
                True,
            ),
            Tool(
                "gallery-mirror rewrite --dry-run",
                lambda out: [*ours(), "-q", "rewrite", "--dry-run", "--site", str(site)],
                True,
            ),
            Tool(
                "yardstick: gallery-mirror scan",
                lambda out: [*ours(), "-q", "scan", "--site", str(site)],
            ),
        ),
    )  # fmt: skip


STAT_ONLY = "stat-only.toml"  # the bench blog's config, without the nightly re-hash share


def backup_job(site: Path, posts: int, megabytes: float) -> Job:
    """The nightly ``backup`` with nothing to do (nothing new, nothing due) on the
    bench blog, every image mirrored and every post rewritten to the mirror,
    against the least a nightly check can do: ``rg`` over the posts and a stat
    of every mirrored file (``find -printf '%s %T@'``), the yardstick in the last
    column (goal: at most 2x). Each run is the same no-op, so it runs in place.
    Twice: as configured, with the share of the files re-hashed each night
    (``backup.verify_after``, 30 days), and with the stat checks only, which
    is all the yardstick does."""
    posts_dir, mirror = site / "source" / "_posts", site / "source" / "images" / "mirror"
    links = r"""(?:https?://|/images/mirror/)[^\s)"'<>]+"""
    return Job(
        "no-op nightly backup, mirrored and rewritten",
        posts,
        megabytes,
        (
            Tool(
                "gallery-mirror backup (as configured: re-hashes 1/30 of the bytes a night)",
                lambda out: [*ours(), "-q", "--no-progress", "backup", "--site", str(site)],
                True,
            ),
            Tool(
                "gallery-mirror backup, stat checks only (backup.verify_after = 36500)",
                lambda out: [*ours(), "-q", "--no-progress", "backup", "--site", str(site),
                             "--config", str(site / STAT_ONLY)],
                True,
            ),
            peer(
                "yardstick: rg over the posts + find -printf over the mirror", find("rg"),
                lambda rg, out: ["sh", "-c",
                                 f"{rg} -o -e {shlex.quote(links)} {posts_dir} >/dev/null;"
                                 f" find {mirror} -printf '%s %T@\\n' >/dev/null"],
            ),
        ),
    )  # fmt: skip
