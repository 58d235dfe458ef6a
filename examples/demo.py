"""The quick start's main job, offline: migrate a copy of an example blog.

``demo.py [hexo|hugo|jekyll|cdn] [--keep]``: the Hexo blog (the default), the
Hugo site or the Jekyll site beside it. The example posts point at
imgcdn.yaerxing.com and img.example.com. This script copies the blog to a
scratch directory, serves the images bundled in
``examples/images/<host>/...`` from 127.0.0.1, maps both hosts to that server
with ``[download.origins]`` (the only thing a real run would not need), and
runs ``migrate --dry-run``, then ``migrate``, as a user would.

``cdn`` (``./scripts/example cdn``) does the Hexo blog's whole move to a CDN: it
starts ``rclone serve s3`` (with an access key) as the bucket and a plain
HTTP server over the bucket's storage as the CDN, runs ``migrate --to cdn``
(fetch, publish, rewrite), and GETs every rewritten URL from the CDN.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mirror.cli import main
from mirror.config import load_config
from mirror.net.rclone import find_rclone
from mirror.scanner.layout import settle
from mirror.stages.scan import scan

HERE = Path(__file__).resolve().parent
HOSTS = ("imgcdn.yaerxing.com", "img.example.com")
SITES = {"hexo": "hexo-blog", "hugo": "hugo-site", "jekyll": "jekyll-site", "cdn": "hexo-blog"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # the tool's own output is the demo


def run(*argv: str) -> int:
    print(f"\n$ gallery-mirror {' '.join(argv)}", flush=True)
    code = main(list(argv))
    print(f"(exit {code})", flush=True)
    return code


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()


@contextmanager
def s3_bucket(scratch: Path) -> Iterator[str]:
    """``rclone serve s3`` over ``scratch/s3``, with rclone's config naming it
    ``demo``; yields the S3 port. Only the demo's own rclone is configured."""
    rclone, storage = find_rclone(""), scratch / "s3"
    (storage / "blog-img").mkdir(parents=True)
    log = scratch / "serve-s3.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(rclone), "serve", "s3", "--addr", "127.0.0.1:0",
             "--auth-key", "DEMOKEY,demo-secret", str(storage)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        port = ""
        while not port and server.poll() is None:
            time.sleep(0.05)
            found = re.search(r"127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
            port = found.group(1) if found and found.group(1) != "0" else ""
        (scratch / "rclone.conf").write_text(
            "[demo]\ntype = s3\nprovider = Other\naccess_key_id = DEMOKEY\n"
            f"secret_access_key = demo-secret\nendpoint = http://127.0.0.1:{port}\n"
        )
        os.environ["RCLONE_CONFIG"] = str(scratch / "rclone.conf")
        yield port
    finally:
        server.terminate()
        server.wait()


def demo(scratch: Path, name: str = "hexo-blog", *, cdn: bool = False) -> int:
    site = scratch / name
    shutil.copytree(HERE / name, site)
    for post in site.rglob("*.md"):  # a read-only checkout must not make the demo fail
        post.chmod(post.stat().st_mode | 0o200)
    with serving(HERE / "images") as base:
        origins = "".join(f'"{host}" = ["{base}/{host}"]\n' for host in HOSTS)
        (site / "gallery-mirror.toml").write_text(
            "# The demo's image hosts are served from 127.0.0.1 by examples/demo.py.\n"
            f"[download]\nallow_private = true\n\n[download.origins]\n{origins}",
            encoding="utf-8",
        )
        print(f"A copy of the example blog: {site}")
        if cdn:
            return demo_cdn(scratch, site)
        run("migrate", "--dry-run", "--site", str(site))
        code = run("-v", "--no-progress", "migrate", "--site", str(site))
    mirror = settle(load_config(None, site=site)).config.mirror_dir
    print(f"\nThe mirrored files, under {mirror}:")
    for path in sorted(p for p in mirror.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(mirror)}  ({path.stat().st_size} bytes)")
    return code


def demo_cdn(scratch: Path, site: Path) -> int:
    """Mirror, publish to the local S3 bucket, rewrite to its HTTP view, GET every URL."""
    with s3_bucket(scratch), serving(scratch / "s3") as cdn_host:
        cdn = f"{cdn_host}/blog-img/gallery"
        with (site / "gallery-mirror.toml").open("a", encoding="utf-8") as toml:
            toml.write(
                f'\n[publish]\nremote = "demo:blog-img/gallery"\n\n[rewrite]\ncdn_base = "{cdn}"\n'
            )
        run("migrate", "--to", "cdn", "--dry-run", "--site", str(site))
        code = run("--no-progress", "migrate", "--to", "cdn", "--site", str(site))
        urls = sorted({r.url for r in scan(load_config(site=site)).refs if r.url.startswith(cdn)})
        print(f"\nGET each of the {len(urls)} rewritten URLs from the CDN ({cdn_host}):")
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    size = len(answer.read())
                    got = f"{answer.status} {answer.headers['Content-Type']}, {size} bytes"
            except OSError as exc:
                got, code = f"FAILED: {exc}", code or 1
            print(f"  {url.removeprefix(cdn)}: {got}")
    return code


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = "--keep" in args
    chosen = [a for a in args if a != "--keep"] or ["hexo"]
    if len(chosen) > 1 or chosen[0] not in SITES:
        sys.exit(f"usage: {sys.argv[0]} [hexo|hugo|jekyll|cdn] [--keep]")
    name = SITES[chosen[0]]
    scratch = Path(tempfile.mkdtemp(prefix="gallery-mirror-demo-"))
    try:
        code = demo(scratch, name, cdn=chosen[0] == "cdn")
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if keep:
        site = scratch / name
        print(f"\nKept: {site}. Look at the posts, then undo the rewrite with:\n"
              f"  .venv/bin/gallery-mirror revert --site {site}")  # fmt: skip
    else:
        print("\nThe scratch copy is deleted; run with --keep to keep it.")
    sys.exit(code)
