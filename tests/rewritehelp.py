"""A blog that really fetched its images from the local fault server, for rewrite tests."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from PIL import Image

from faultserver import FaultServer
from mirror.config import Config, load_config
from mirror.keep.site import open_site
from mirror.output.revert import write_revert
from mirror.output.rewrite import write_rewrite
from mirror.output.verify import write_verify
from mirror.scanner.layout import settle
from mirror.stages import fetch as fetching
from mirror.stages import revert as reverting
from mirror.stages import rewrite as rewriting
from mirror.stages import scan as scanning
from mirror.stages import verify as verifying
from mirror.stages.revert import RevertResult
from mirror.stages.rewrite import RewriteResult
from mirror.stages.verify import VerifyResult

HOSTS = ("img.example.com", "pics.example.org")
POSTS = Path("source") / "_posts"
MIRROR = Path("source") / "images" / "mirror"


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (shade % 256, 40, 90)).save(out, "JPEG")
    return out.getvalue()


def make_site(
    root: Path, server: FaultServer, posts: dict[str, bytes], *, extra_toml: str = ""
) -> Path:
    """A Hexo blog with ``posts``; every host of ``HOSTS`` is served by ``server``."""
    (root / POSTS).mkdir(parents=True)
    for name, data in posts.items():
        (root / POSTS / name).write_bytes(data)
    origins = "".join(f'"{host}" = ["{server.base}/{host}"]\n' for host in HOSTS)
    (root / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nretries = 0\nfsync = false\n"
        f"[download.origins]\n{origins}{extra_toml}"
    )
    return root


def serve(server: FaultServer, *names: str, host: str = HOSTS[0]) -> None:
    """Serve a distinct JPEG at https://<host>/<name> (through the origin mapping)."""
    for n, name in enumerate(names):
        server.file(f"/{host}/{name}", jpeg(n * 37 + len(host)))


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its hash and mtime (a dry run must change neither)."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def local(host: str, name: str) -> str:
    return f"/images/mirror/{host}/{name}"


def config_of(site: Path) -> Config:
    """The config as the CLI settles it (mirror.dir and local_prefix from the layout)."""
    return settle(load_config(None, site=site)).config


def fetch(site: Path) -> None:
    """Mirror what the site's posts reference, as `gallery-mirror fetch` does."""
    config = config_of(site)
    with open_site(config, write=True) as opened:
        fetching.fetch(opened, scanning.scan(config))


def rewrite(site: Path, **options: Any) -> tuple[RewriteResult, str]:
    """The rewrite stage on the site as it is now, and what it prints."""
    config = config_of(site)
    with open_site(config, write=not options.get("dry_run", False)) as opened:
        result = rewriting.rewrite(opened, scanning.scan(config), **options)
    out = io.StringIO()
    write_rewrite(result, out)
    return result, out.getvalue()


def revert(site: Path, *, dry_run: bool = False) -> tuple[RevertResult, str]:
    with open_site(config_of(site), write=not dry_run) as opened:
        result = reverting.revert(opened, dry_run=dry_run)
    out = io.StringIO()
    write_revert(result, out)
    return result, out.getvalue()


def verify(site: Path) -> tuple[VerifyResult, str]:
    config = config_of(site)
    with open_site(config, write=False) as opened:
        result = verifying.verify(opened, scanning.scan(config))
    out = io.StringIO()
    write_verify(result, out)
    return result, out.getvalue()
