"""The quick start's main job, offline: migrate a copy of an example blog.

``demo.py [hexo|hugo|jekyll] [--keep]``: the Hexo blog (the default), the Hugo
site or the Jekyll site beside it. The example posts point at
imgcdn.yaerxing.com and img.example.com. This script copies the blog to a
scratch directory, serves the images bundled in
``examples/images/<host>/...`` from 127.0.0.1, maps both hosts to that server
with ``[download.origins]`` (the only thing a real run would not need), and
runs ``migrate --dry-run``, then ``migrate``, as a user would.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mirror.cli import main
from mirror.config import load_config
from mirror.scanner.layout import settle

HERE = Path(__file__).resolve().parent
HOSTS = ("imgcdn.yaerxing.com", "img.example.com")
SITES = {"hexo": "hexo-blog", "hugo": "hugo-site", "jekyll": "jekyll-site"}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # the tool's own output is the demo


def run(*argv: str) -> int:
    print(f"\n$ gallery-mirror {' '.join(argv)}", flush=True)
    code = main(list(argv))
    print(f"(exit {code})", flush=True)
    return code


def demo(scratch: Path, name: str = "hexo-blog") -> int:
    site = scratch / name
    shutil.copytree(HERE / name, site)
    for post in site.rglob("*.md"):  # a read-only checkout must not make the demo fail
        post.chmod(post.stat().st_mode | 0o200)
    handler = functools.partial(_Quiet, directory=str(HERE / "images"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        origins = "".join(f'"{host}" = ["{base}/{host}"]\n' for host in HOSTS)
        (site / "gallery-mirror.toml").write_text(
            "# The demo's image hosts are served from 127.0.0.1 by examples/demo.py.\n"
            f"[download]\nallow_private = true\n\n[download.origins]\n{origins}",
            encoding="utf-8",
        )
        print(f"A copy of the example blog: {site}")
        run("migrate", "--dry-run", "--site", str(site))
        code = run("-v", "--no-progress", "migrate", "--site", str(site))
        server.shutdown()
    mirror = settle(load_config(None, site=site)).config.mirror_dir
    print(f"\nThe mirrored files, under {mirror}:")
    for path in sorted(p for p in mirror.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(mirror)}  ({path.stat().st_size} bytes)")
    return code


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = "--keep" in args
    chosen = [a for a in args if a != "--keep"] or ["hexo"]
    if len(chosen) > 1 or chosen[0] not in SITES:
        sys.exit(f"usage: {sys.argv[0]} [hexo|hugo|jekyll] [--keep]")
    name = SITES[chosen[0]]
    scratch = Path(tempfile.mkdtemp(prefix="gallery-mirror-demo-"))
    try:
        code = demo(scratch, name)
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
