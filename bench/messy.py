"""The messy web job: a blog whose images sit on hosts that fail in every way.

One server process (``messyserver.py``) plays every host on the loopback
network, an address and a port each: fast, far (``delay`` per response),
silent (accepts, never answers), refused, limited (``rate`` requests a
second, then 429 + Retry-After), gone (404; a Wayback stand-in holds some
of its images) and flaky (503 to the first two requests of each URL). A
site of posts references images on all of them, each URL a distinct real JPEG.

``gallery-mirror fetch`` runs at its default ``[download]`` settings except
what the world needs (origins pointing the hosts at the server,
``allow_private``, ``wayback`` with the stand-in as ``wayback_base``;
thumbnails off: the job measures the network), then a second ``backup``
over the same world, which has nothing new to do. ``wget2`` fetches the
same URLs with the same timeout, tries and concurrency. Each tool gets a
fresh server, so that one's requests do not spend the other's 503s.

The floor comes from the world: the hosts run side by side, so the job
takes at least as long as its slowest host honestly needs: the limited
host's images at its rate, the far host's at ``per_host`` at a time, one
connect timeout to tell the silent host dead; whichever is longest.

Every command is stopped at ten times the floor (at least a minute; the
smoke test sets less): past that its exact time says nothing more, and the
bench must end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from bench import corpus, jobs
from bench.measure import Timed, timed
from mirror.config import DownloadConfig

NAME = "messy web"
DOMAIN = "messy.example"
_SERVER = Path(__file__).with_name("messyserver.py")
_POSTS = 20
_LIMIT_FACTOR = 10  # a command is stopped at this many times the floor
_LIMIT_LEAST = 60.0  # ... but not before this many seconds
_OURS_EXITS = (0, 1)  # 1: some image failed, as some must here
_WGET2_EXITS = (0, 4, 8)  # 4: network failure, 8: the server answered an error


@dataclass(frozen=True, slots=True)
class World:
    """How many images each host has, and how its faults are tuned.

    The defaults are the issue's world: 670 images, 520 of them rescuable.
    """

    fast: int = 200
    far: int = 100
    silent: int = 60
    refused: int = 60
    limited: int = 100
    gone: int = 100
    held: int = 70  # of gone's images, the ones the Wayback stand-in holds
    flaky: int = 50
    delay: float = 0.25  # far: seconds per response
    rate: int = 5  # limited: requests a second

    @classmethod
    def of(cls, images: int) -> World:
        """The default world's proportions at about ``images`` images (every host has some)."""
        base = cls()
        share = images / base.total
        counts = {
            f.name: max(1, round(getattr(base, f.name) * share))
            for f in fields(cls)
            if f.name not in ("delay", "rate")
        }
        counts["gone"] = max(2, counts["gone"])
        counts["held"] = min(counts["held"], counts["gone"] - 1)  # some are gone for good
        return replace(base, **counts)

    @property
    def hosts(self) -> dict[str, int]:
        """Host -> its image count, in the order the images are laid out."""
        return {
            "fast": self.fast, "far": self.far, "silent": self.silent, "refused": self.refused,
            "limited": self.limited, "gone": self.gone, "flaky": self.flaky,
        }  # fmt: skip

    @property
    def total(self) -> int:
        return sum(self.hosts.values())

    @property
    def rescuable(self) -> int:
        """Images a tool can get: all but the silent and refused hosts' and the gone ones."""
        return self.fast + self.far + self.limited + self.held + self.flaky

    def can_rescue(self, host: str, n: int) -> bool:
        return host in ("fast", "far", "limited", "flaky") or (host == "gone" and n < self.held)


@dataclass(frozen=True, slots=True)
class Row:
    tool: str
    rescued: int | None  # None: did not run
    run: Timed | None
    note: str = ""
    paced: bool = True  # compared with the floor


@dataclass(frozen=True, slots=True)
class Result:
    world: World
    download: DownloadConfig
    floor: list[tuple[str, float]]  # (what paces it, seconds), the longest first
    rows: list[Row]  # fetch, wget2, backup

    @property
    def seconds(self) -> float:
        return self.floor[0][1]


def floor(world: World, download: DownloadConfig) -> list[tuple[str, float]]:
    """What each slow host needs at the least, the longest first."""
    # A connect timeout tells a silent host dead, once there is one
    # (download.connect_timeout); until then only the whole timeout does.
    give_up = min(getattr(download, "connect_timeout", download.timeout), download.timeout)
    parts = [
        (f"limited host: {world.limited} images at {world.rate}/s", world.limited / world.rate),
        (
            f"far host: {world.far} images, {download.per_host} at a time, {world.delay:g} s each",
            math.ceil(world.far / download.per_host) * world.delay,
        ),
        (f"silent host: one {give_up:g} s timeout", give_up),
    ]
    return sorted(parts, key=lambda part: -part[1])


def run(
    work: Path, world: World, *, timeout: float | None = None, limit: float | None = None
) -> Result:
    """Measure the job once: gallery-mirror fetch, then backup, and wget2.

    ``timeout``: download.timeout, if not the default; ``limit``: the seconds
    at which a command is stopped, if not ten times the floor (at least a minute).
    """
    download = DownloadConfig() if timeout is None else DownloadConfig(timeout=timeout)
    paces = floor(world, download)
    if limit is None:
        limit = max(_LIMIT_LEAST, _LIMIT_FACTOR * paces[0][1])
    images, wanted = _images(work / "messy-images", world)
    site = work / "messy-site"
    shutil.rmtree(site, ignore_errors=True)
    rows = []
    with _server(images, world, 3 * limit + 120) as hosts:
        _site(site, world, hosts, timeout)
        fetch = timed(
            [*jobs.ours(), "-q", "--no-progress", "fetch", "--site", str(site)],
            limit=limit, allowed=_OURS_EXITS,
        )  # fmt: skip
        note = _stopped(fetch) or "goal: at most 2x"
        rows.append(Row("gallery-mirror fetch", _rescued(site, wanted), fetch, note))
        # A second run right after: nothing new, the dead URLs are not due yet.
        again = timed(
            [*jobs.ours(), "-q", "--no-progress", "backup", "--site", str(site)],
            limit=limit, allowed=_OURS_EXITS,
        )  # fmt: skip
        backup = Row(
            "gallery-mirror backup, second run", _rescued(site, wanted), again,
            _stopped(again) or "goal: under 2 s", paced=False,
        )  # fmt: skip
    rows.append(_wget2(work, images, world, download, wanted, limit))
    rows.append(backup)
    return Result(world, download, paces, rows)


def _stopped(run: Timed) -> str:
    return f"stopped at {run.wall:.0f} s, still running" if run.stopped else ""


def _images(root: Path, world: World) -> tuple[Path, set[str]]:
    """``root/<host>/<n>.jpg`` for every URL of the world, each a distinct
    JPEG, and the SHA-256 of the rescuable ones."""
    sources = corpus.small_images(root / "src", world.total)
    wanted: set[str] = set()
    seen: set[str] = set()
    index = 0
    for host, count in world.hosts.items():
        folder = root / host
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for n in range(count):
            source = sources[index]
            index += 1
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
            if digest in seen:  # two URLs, one image: a tool could not be counted right
                raise RuntimeError(f"{source} is a copy of another image of the world")
            seen.add(digest)
            (folder / f"{n}.jpg").symlink_to(source)
            if world.can_rescue(host, n):
                wanted.add(digest)
    return root, wanted


@contextlib.contextmanager
def _server(root: Path, world: World, lifetime: float) -> Iterator[Mapping[str, str]]:
    """The world's server process; yields host -> "address:port". It also ends by itself
    after ``lifetime`` seconds, or when the bench is gone (its standard input closes)."""
    spec = {
        "root": str(root), "delay": world.delay, "rate": world.rate, "held": world.held,
        "lifetime": lifetime,
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(_SERVER), json.dumps(spec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{_SERVER.name} did not start (exit {process.wait(10)})")
        yield json.loads(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the server's signal to stop
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _url(host: str, n: int) -> str:
    return f"https://{host}.{DOMAIN}/{host}/{n}.jpg"


def _site(site: Path, world: World, hosts: Mapping[str, str], timeout: float | None) -> None:
    """Posts referencing every image of the world, mixed; the config maps the hosts."""
    urls = [_url(host, n) for host, count in world.hosts.items() for n in range(count)]
    random.Random(17).shuffle(urls)
    posts = site / "source" / "_posts"
    posts.mkdir(parents=True)
    for p in range(_POSTS):
        body = "".join(f"Photo {n}: ![]({url})\n\n" for n, url in enumerate(urls[p::_POSTS]))
        (posts / f"post-{p:02d}.md").write_text(f"---\ntitle: Trip {p}\n---\n\n{body}")
    origins = "".join(f'"{host}.{DOMAIN}" = ["http://{hosts[host]}"]\n' for host in world.hosts)
    (site / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nwayback = true\n"
        f'wayback_base = "http://{hosts["wayback"]}/web/2id_/"\n'
        + (f"timeout = {timeout}\n" if timeout is not None else "")
        + f"[download.origins]\n{origins}[thumbnails]\nenabled = false\n"
    )


def _wget2(
    work: Path, root: Path, world: World, download: DownloadConfig, wanted: set[str], limit: float
) -> Row:
    binary = jobs.find("wget2")
    tries = 1 + download.retries
    name = (
        f"wget2 --max-threads={download.concurrency} --timeout={download.timeout:g} --tries={tries}"
    )
    if binary is None:
        return Row(name, None, None, "not installed (bench/setup installs it)")
    out = work / "messy-wget2"
    shutil.rmtree(out, ignore_errors=True)
    with _server(root, world, limit + 120) as hosts:
        urls = work / "messy-urls.txt"
        urls.write_text(
            "".join(
                f"http://{hosts[host]}/{host}/{n}.jpg\n"
                for host, count in world.hosts.items()
                for n in range(count)
            )
        )
        got = timed(
            [binary, f"--max-threads={download.concurrency}", "-q", "--no-robots", "-x", "-nH",
             f"--timeout={download.timeout:g}", f"--tries={tries}",
             "-P", str(out), "-i", str(urls)],
            limit=limit, allowed=_WGET2_EXITS,
        )  # fmt: skip
    return Row(name, _rescued(out, wanted), got, _stopped(got))


def _rescued(folder: Path, wanted: set[str]) -> int:
    """How many of the rescuable images are below ``folder``, byte for byte."""
    found = {
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    }
    return len(found & wanted)


def section(result: Result) -> str:
    """The job's lines for the results file: the world, the floor, a row per tool."""
    world, download = result.world, result.download
    rescuable = world.rescuable
    paces = "; ".join(f"{what} {seconds:.1f} s" for what, seconds in result.floor)
    lines = [
        f"Messy web: {world.total} images on {len(world.hosts)} hosts, {rescuable} rescuable;"
        f" [download] defaults (timeout {download.timeout:g} s, {download.retries} retries,"
        f" {download.per_host} per host, {download.concurrency} in all); one run.",
        f"Floor {result.seconds:.1f} s, the longest of: {paces}.",
        "",
        "| job | tool | rescued | wall s | vs floor | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in result.rows:
        if row.run is None or row.rescued is None:
            lines.append(f"| {NAME} | {row.tool} | — | — | | {row.note} |")
            continue
        wall = f"> {row.run.wall:.0f}" if row.run.stopped else f"{row.run.wall:.2f}"
        ratio = f"{row.run.wall / result.seconds:.2f}x" if row.paced else ""
        ratio = f"> {ratio}" if ratio and row.run.stopped else ratio
        lines.append(
            f"| {NAME} | {row.tool} | {row.rescued}/{rescuable} | {wall} | {ratio} | {row.note} |"
        )
    return "\n".join(lines) + "\n"
