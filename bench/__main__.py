"""python -m bench: build the corpus, start the servers, run every job, print the table."""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import corpus, jobs, messy, servers
from bench.measure import CommandFailed, Sample, Summary, run, summarize

HERE = Path(__file__).parent
ROOT = HERE.parent


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = corpus.CorpusSpec(
        posts=args.posts, images=args.images, seed=args.seed,
        min_side=args.min_side, max_side=args.max_side,
    )  # fmt: skip
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    table = f"Machine: {_machine()}\n"
    # An editable install has no bytecode of the project (pip compiles a real
    # install), and PYTHONDONTWRITEBYTECODE would make every run compile it.
    compileall.compile_dir(ROOT / "mirror", quiet=1)
    # No other job's name starts with "mes": such a prefix selects the messy
    # web alone, which needs neither the corpus nor nginx.
    if not wanted or any(not w.startswith("mes") for w in wanted):
        table += _standard(work, spec, wanted, args)
    if not wanted or any(messy.NAME.startswith(w) for w in wanted):
        _say(f"{messy.NAME}: {args.messy_images} images, one run")
        world = messy.World.of(args.messy_images)
        result = messy.run(work, world, timeout=args.messy_timeout, limit=args.messy_limit)
        table += "\n" + messy.section(result)
    print(table, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    _say(f"written to {args.out}")
    return 0


def _standard(
    work: Path, spec: corpus.CorpusSpec, wanted: list[str], args: argparse.Namespace
) -> str:
    """Every job but the messy web, measured over the corpus: their table."""
    digest = hashlib.sha256(spec.key().encode()).hexdigest()[:12]
    images_root = work / f"images-{digest}"
    _say(f"corpus: {spec.posts} posts, {spec.images} images in {work}")
    started = time.perf_counter()
    items = corpus.build_images(images_root, spec)
    blog = work / "blog"
    shutil.rmtree(blog, ignore_errors=True)
    refs = corpus.build_posts(blog, spec, items)
    _say(f"corpus ready in {time.perf_counter() - started:.1f} s ({refs} image references)")

    with servers.nginx(images_root) as fast, servers.delayed(images_root, args.delay) as slow:
        todo = _jobs(work, blog, images_root, items, fast, slow, args, wanted)
        results = _measure(todo, work / "out", args.runs)
    return _table(results, spec, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--images", type=int, default=2_000)
    parser.add_argument("--thumb-jpegs", type=int, default=200, help="JPEGs in the thumbnail job")
    parser.add_argument("--box", type=int, default=400, help="thumbnail box, pixels")
    parser.add_argument("--seed", type=int, default=20250323)
    parser.add_argument("--min-side", type=int, default=1600)
    parser.add_argument("--max-side", type=int, default=4000)
    parser.add_argument("--delay", type=float, default=0.05, help="delay server, seconds")
    parser.add_argument(
        "--memory-sizes",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[2_000, 10_000],
        help="URL counts of the peak-memory jobs, comma-separated",
    )
    parser.add_argument(
        "--rewrite-refs", type=int, default=100_000, help="references in the rewrite job's post"
    )
    parser.add_argument(
        "--messy-images", type=int, default=670, help="images in the messy web (~78%% rescuable)"
    )
    parser.add_argument(
        "--messy-timeout",
        type=float,
        default=None,
        help="download.timeout in the messy web (default: gallery-mirror's; a smoke test's knob)",
    )
    parser.add_argument(
        "--messy-limit", type=float, default=None,
        help="stop each messy web command after this many seconds (default: 10x the floor, >= 60)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated job name prefixes")
    parser.add_argument("--work", type=Path, default=HERE / ".cache")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.md")
    return parser


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _jobs(
    work: Path,
    blog: Path,
    images_root: Path,
    items: list[corpus.ImageItem],
    fast: str,
    slow: str,
    args: argparse.Namespace,
    wanted: list[str],
) -> list[jobs.Job]:
    posts = sorted((blog / "source" / "_posts").glob("*.md"))
    post_mb = sum(p.stat().st_size for p in posts) / 1e6
    sizes = {i.path: (images_root / i.path).stat().st_size / 1e6 for i in items}
    lists = {}
    for label, base in (("nginx", fast), ("delay", slow)):
        lists[label] = work / f"urls-{label}.txt"
        lists[label].write_text("".join(f"{base}/{i.path}\n" for i in items))
    jpegs = [i for i in items if i.path.endswith(".jpg")][: args.thumb_jpegs]
    mix = [i for i in items if i.kind in ("png", "gif", "webp")]
    inputs = {}
    for label, chosen in (("jpeg", jpegs), ("mix", mix), ("all", items)):
        inputs[label] = work / f"thumb-inputs-{label}.txt"
        inputs[label].write_text("".join(f"{images_root / i.path}\n" for i in chosen))
    total = sum(sizes.values())
    fetch_posts = work / "fetch-posts"
    fetch_posts.mkdir(exist_ok=True)
    (fetch_posts / "all.md").write_text(
        "".join(f"![](https://{corpus.HOST}/{i.path})\n" for i in items)
    )
    # The peers' thumbnails are JPEG q85 in a box: ours are made the same way.
    same_thumbs = f'[thumbnails]\nsizes = [{args.box}]\nformat = "jpeg"\nquality = 85\n'
    no_thumbs = "[thumbnails]\nenabled = false\n"

    def config(name: str, base: str, extra: str, download: str = "") -> Path:
        path = work / f"{name}.toml"
        path.write_text(
            f"[download]\nallow_private = true\nconcurrency = 32\nper_host = 32\n{download}"
            f'[download.origins]\n"{corpus.HOST}" = ["{base}"]\n{extra}'
        )
        return path

    fetch_nginx = config("fetch-nginx", fast, no_thumbs)
    unsynced = config("fetch-nginx-unsynced", fast, no_thumbs, "fsync = false\n")
    fetch_delay = config("fetch-delay", slow, no_thumbs)
    whole = config("whole-delay", slow, same_thumbs)
    memory = _memory_corpus(work, images_root, fast, args.memory_sizes)
    one_post = _one_post_site(work / "one-post-site", images_root, fast, args.rewrite_refs)
    thumb_sites = {
        label: _mirrored_site(work / f"thumb-site-{label}", chosen, fast, same_thumbs)
        for label, chosen in (("jpeg", jpegs), ("mix", mix), ("all", items))
    }
    todo = [
        jobs.scan_job(blog, len(posts), post_mb),
        jobs.fetch_job(
            "nginx", lists["nginx"], len(items), total,
            jobs.ours_fetch(fetch_posts, fetch_nginx),
            jobs.ours_fetch(fetch_posts, unsynced, "gallery-mirror fetch, fsync off"),
        ),
        jobs.fetch_job(
            f"+{args.delay * 1000:.0f} ms server", lists["delay"], len(items), total,
            jobs.ours_fetch(fetch_posts, fetch_delay),
        ),
        jobs.thumbs_job(
            f"{len(jpegs)} JPEGs", inputs["jpeg"], len(jpegs),
            sum(sizes[i.path] for i in jpegs), args.box, jobs.ours_thumbs(thumb_sites["jpeg"]),
        ),
        jobs.thumbs_job(
            f"{len(mix)} PNG/GIF/WebP", inputs["mix"], len(mix),
            sum(sizes[i.path] for i in mix), args.box, jobs.ours_thumbs(thumb_sites["mix"]),
        ),
        # The whole job's thumbnail part alone: its floor, with the cores to itself.
        jobs.thumbs_job(
            f"all {len(items)} images", inputs["all"], len(items), total, args.box,
            jobs.ours_thumbs(thumb_sites["all"]), with_convert=False,
        ),
        jobs.whole_job(
            f"+{args.delay * 1000:.0f} ms server", lists["delay"], len(items), total, args.box,
            jobs.ours_fetch(fetch_posts, whole, "gallery-mirror fetch (thumbnails on)"),
        ),
        *(
            jobs.memory_job(
                f"{count} small images", urls, count, megabytes,
                jobs.ours_fetch(posts_dir, config(f"memory-{count}", fast, no_thumbs)),
            )
            for count, (urls, posts_dir, megabytes) in memory.items()
        ),
        jobs.rewrite_job(
            one_post, args.rewrite_refs,
            sum(p.stat().st_size for p in (one_post / "source" / "_posts").iterdir()) / 1e6,
        ),
        jobs.backup_job(_migrated_blog(work / "migrated-blog", blog, fast), len(posts), post_mb),
    ]  # fmt: skip
    return [j for j in todo if not wanted or any(j.name.startswith(w) for w in wanted)]


def _mirrored_site(site: Path, chosen: list[corpus.ImageItem], base: str, thumbs: str) -> Path:
    """A site whose images are mirrored already (fetched once, before any timing)."""
    post = "".join(f"![](https://{corpus.HOST}/{i.path})\n" for i in chosen)
    return _fetched_site(site, post, base, thumbs)


def _one_post_site(site: Path, images_root: Path, base: str, refs: int) -> Path:
    """One post of ``refs`` references to 100 small images, mirrored already.

    Each reference on a line of its own, as a long photo post has them; few
    and small images, so that the job measures the post, not the files.
    """
    small = images_root / "small"
    sources = corpus.small_images(small / "src", 16)
    links = small / "one-post"
    links.mkdir(parents=True, exist_ok=True)
    for n in range(100):
        if not (links / f"{n}.jpg").exists():
            (links / f"{n}.jpg").symlink_to(sources[n % len(sources)])
    post = "---\ntitle: One hundred thousand photos\n---\n\n" + "".join(
        f"Photo {n}: ![shot {n}](https://{corpus.HOST}/small/one-post/{n % 100}.jpg)\n"
        for n in range(refs)
    )
    shutil.rmtree(site, ignore_errors=True)
    return _fetched_site(site, post, base, "[thumbnails]\nenabled = false\n")


def _migrated_blog(site: Path, blog: Path, base: str) -> Path:
    """A copy of the bench blog, every image mirrored (with thumbnails), every
    post rewritten to the mirror and two nightly backups run (once, before any timing)."""
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(blog, site, symlinks=True)
    settings = (
        "[download]\nallow_private = true\nfsync = false\n"
        f'[download.origins]\n"{corpus.HOST}" = ["{base}"]\n'
    )
    (site / "gallery-mirror.toml").write_text(settings)
    # The same, but the re-hash share of each night (a file a night at most):
    # the stat checks alone, what the yardstick does.
    (site / jobs.STAT_ONLY).write_text(settings + "[backup]\nverify_after = 36500\n")
    subprocess.run(
        [*jobs.ours(), "-q", "--no-progress", "migrate", "--site", str(site)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    # The nights after the migration: the first scans the rewritten posts again
    # and keeps their scans, but not of posts written in its last two seconds
    # (mirror.keep.scancache), which the second keeps.
    for _ in range(2):
        subprocess.run(
            [*jobs.ours(), "-q", "--no-progress", "backup", "--site", str(site)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return site


def _fetched_site(site: Path, post: str, base: str, thumbs: str) -> Path:
    """A site of one post whose images are fetched (once, before any timing)."""
    posts = site / "source" / "_posts"
    posts.mkdir(parents=True, exist_ok=True)
    (posts / "all.md").write_text(post)
    toml = site / "gallery-mirror.toml"
    settings = (
        "[download]\nallow_private = true\nfsync = false\n"
        f'[download.origins]\n"{corpus.HOST}" = ["{base}"]\n'
    )
    toml.write_text(settings + "[thumbnails]\nenabled = false\n")
    subprocess.run(
        [*jobs.ours(), "-q", "fetch", "--site", str(site)], check=True, stdout=subprocess.DEVNULL
    )
    toml.write_text(settings + thumbs)
    return site


def _memory_corpus(
    work: Path, images_root: Path, base: str, counts: list[int]
) -> dict[int, tuple[Path, Path, float]]:
    """For each count, that many distinct URLs of small images (links to a few files).

    Small, so that the job measures what grows with the number of URLs (the
    plan, the tasks, the state) rather than the bytes in flight.
    """
    small = images_root / "small"
    sources = corpus.small_images(small / "src", 16)
    result = {}
    for count in counts:
        links = small / str(count)
        if not (links / f"{count - 1}.jpg").exists():
            shutil.rmtree(links, ignore_errors=True)
            links.mkdir(parents=True)
            for n in range(count):
                (links / f"{n}.jpg").symlink_to(sources[n % len(sources)])
        paths = [f"small/{count}/{n}.jpg" for n in range(count)]
        urls = work / f"urls-memory-{count}.txt"
        urls.write_text("".join(f"{base}/{p}\n" for p in paths))
        posts = work / f"memory-posts-{count}"
        posts.mkdir(exist_ok=True)
        (posts / "all.md").write_text("".join(f"![](https://{corpus.HOST}/{p})\n" for p in paths))
        megabytes = sum(sources[n % len(sources)].stat().st_size for n in range(count)) / 1e6
        result[count] = (urls, posts, megabytes)
    return result


Results = list[tuple[jobs.Job, list[tuple[jobs.Tool, Summary | None, str]]]]


def _measure(todo: list[jobs.Job], out: Path, runs: int) -> Results:
    samples: dict[tuple[int, int], list[Sample]] = {}
    errors: dict[tuple[int, int], str] = {}
    for n in range(runs):  # interleaved: a noisy moment hits every tool alike
        for j, job in enumerate(todo):
            for t, tool in enumerate(job.tools):
                if tool.command is None or (j, t) in errors:
                    continue
                with _fresh(out) as folder:
                    try:
                        sample = run(tool.command(folder))
                    except CommandFailed as exc:
                        errors[(j, t)] = str(exc)
                        continue
                    problem = job.check(folder)
                    if problem:
                        errors[(j, t)] = problem
                    else:
                        samples.setdefault((j, t), []).append(sample)
        _say(f"run {n + 1}/{runs} done")
    return [
        (
            job,
            [
                (
                    tool,
                    summarize(samples[(j, t)]) if (j, t) in samples and (j, t) not in errors
                    else None,
                    errors.get((j, t), tool.note),
                )
                for t, tool in enumerate(job.tools)
            ],
        )
        for j, job in enumerate(todo)
    ]  # fmt: skip


@contextlib.contextmanager
def _fresh(out: Path) -> Iterator[Path]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _table(results: Results, spec: corpus.CorpusSpec, args: argparse.Namespace) -> str:
    lines = [
        f"Corpus: {spec.posts} posts, {spec.images} images, seed {spec.seed};"
        f" {args.runs} interleaved runs; medians (min-max).",
        "",
        "| job | tool | wall s | files/s | MB/s | CPU s | peak RSS MB | time vs best peer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for job, rows in results:
        peers = [s.wall for t, s, _ in rows if s is not None and not (t.ours or t.reference)]
        best = min(peers) if peers else None
        for tool, s, note in rows:
            if s is None:
                lines.append(f"| {job.name} | {tool.name} | — | | | | | {note} |")
                continue
            ratio = f"{s.wall / best:.2f}x" if best and tool.ours else ""
            lines.append(
                f"| {job.name} | {tool.name} | {s.wall:.2f} ({s.wall_min:.2f}-{s.wall_max:.2f})"
                f" | {job.files / s.wall:.0f} | {job.megabytes / s.wall:.1f} | {s.cpu:.2f}"
                f" | {s.rss_mb:.0f} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


def _machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024**2:.0f} GiB"
    kernel = platform.release()
    versions = []
    for tool, flag in (("rg", "--version"), ("wget2", "--version"), ("aria2c", "--version")):
        path = shutil.which(tool)
        if path:
            first = subprocess.run([path, flag], capture_output=True, text=True, check=False)
            versions.append(first.stdout.splitlines()[0] if first.stdout else tool)
    python = platform.python_version()
    tools = f"; {'; '.join(versions)}" if versions else ""
    return f"{os.cpu_count()} cores ({cpu}){memory}, Linux {kernel}, Python {python}{tools}"


if __name__ == "__main__":
    raise SystemExit(main())
