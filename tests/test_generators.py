"""The example Hugo and Jekyll sites, migrated offline and built by the real generators.

Each example is copied, its image hosts served from 127.0.0.1 by a real HTTP
server, migrated with the CLI, verified, then built with ``hugo`` or
``jekyll``: every image the rewrite pointed at the mirror must be a file in the
built output (``public/``, ``_site/``), as a browser resolves the URL from its
page. Where a generator is not installed the build test skips loudly
(``.ci/run`` installs both and sets GALLERY_MIRROR_REQUIRE_GENERATORS, which
turns the skip into a failure); verify's own site-view check still runs.
"""

from __future__ import annotations

import functools
import os
import posixpath
import shutil
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from mirror.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOSTS = ("imgcdn.yaerxing.com", "img.example.com")
# name -> (example folder, generator binary, its build command, output folder, base path)
SITES = {
    "hugo": ("hugo-site", "hugo", ["hugo", "--quiet", "-d", "public"], "public", "/blog"),
    "jekyll": (
        "jekyll-site",
        "jekyll",
        ["jekyll", "build", "-q", "-d", "_site"],
        "_site",
        "/myblog",
    ),
}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def images() -> Iterator[str]:
    """The examples' image hosts, served from 127.0.0.1: the base URL."""
    handler = functools.partial(_Quiet, directory=str(EXAMPLES / "images"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        thread.join()


def copy_example(name: str, tmp_path: Path, images: str) -> Path:
    site = tmp_path / SITES[name][0]
    shutil.copytree(EXAMPLES / SITES[name][0], site)
    origins = "".join(f'"{host}" = ["{images}/{host}"]\n' for host in HOSTS)
    (site / "gallery-mirror.toml").write_text(
        f"[download]\nallow_private = true\nfsync = false\n[download.origins]\n{origins}"
    )
    return site


def posts_of(site: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(site.rglob("*.md"))}


def migrated_urls(site: Path, prefix: str) -> set[str]:
    """Every URL under ``prefix`` the posts hold (with a fragment, as written)."""
    found = set()
    for data in posts_of(site).values():
        text = data.decode()
        start = 0
        while (at := text.find(prefix, start)) >= 0:
            end = at
            while end < len(text) and text[end] not in " \"')\n>":
                end += 1
            found.add(text[at:end])
            start = end
    return found


@pytest.mark.parametrize("name", sorted(SITES))
def test_migrate_verify_and_revert_an_example(
    name: str, tmp_path: Path, images: str, capsys: pytest.CaptureFixture[str]
) -> None:
    site = copy_example(name, tmp_path, images)
    before = posts_of(site)
    assert main(["--no-progress", "migrate", "--site", str(site)]) == 0
    base = SITES[name][4]
    rewritten = migrated_urls(site, f"{base}/images/mirror/")
    assert len(rewritten) >= 5
    assert any(url.endswith("#pic_center") for url in rewritten)
    assert main(["verify", "--site", str(site)]) == 0
    assert "0 problems" in capsys.readouterr().out
    assert main(["revert", "--site", str(site)]) == 0
    assert posts_of(site) == before


@pytest.mark.parametrize("name", sorted(SITES))
def test_every_rewritten_image_is_in_the_built_site(name: str, tmp_path: Path, images: str) -> None:
    _, binary, command, output, base = SITES[name]
    if shutil.which(binary) is None:
        message = (
            f"{binary.upper()} IS NOT INSTALLED: the example {name} site is NOT built"
            f" (apt-get install {binary}; .ci/run installs it and requires it)"
        )
        if os.environ.get("GALLERY_MIRROR_REQUIRE_GENERATORS"):
            pytest.fail(message)
        pytest.skip(message)
    site = copy_example(name, tmp_path, images)
    assert main(["--no-progress", "migrate", "--site", str(site)]) == 0
    rewritten = migrated_urls(site, f"{base}/images/mirror/")
    built = subprocess.run(
        command, cwd=site, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "JEKYLL_ENV": "production"},
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    out = site / output
    seen = {}
    for page in sorted(out.rglob("*.html")):
        page_url = base + "/" + page.relative_to(out).as_posix()
        for src in image_urls(page.read_text(encoding="utf-8")):
            seen[urljoin(page_url, src)] = page
    # Every rewritten reference made it into a page, and the page's URL finds the file.
    assert {urljoin("/", u) for u in rewritten} <= set(seen), sorted(seen)
    missing = [
        f"{page.relative_to(out)}: {url}"
        for url, page in seen.items()
        if not urlsplit(url).scheme and not served(out, base, url).is_file()
    ]
    assert missing == []
    # The page bundle's own image stayed relative and is published beside its page.
    if name == "hugo":
        assert "/blog/posts/kyoto/cover.jpg" in seen


def served(out: Path, base: str, url: str) -> Path:
    path = posixpath.normpath(unquote(urlsplit(url).path))
    assert path.startswith(base + "/"), f"{url} is outside the site's base path {base}"
    return out / path[len(base) + 1 :]


def image_urls(html: str) -> list[str]:
    parser = _Images()
    parser.feed(html)
    return parser.found


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("img", "source"):
            return
        for name, value in attrs:
            if value and name == "src":
                self.found.append(value)
            elif value and name == "srcset":
                self.found += [part.split()[0] for part in value.split(",") if part.strip()]


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        # Hexo's values carried over to a Hugo site: static/ is what Hugo serves
        (
            '[mirror]\ndir = "source/images/mirror"\n'
            '[rewrite]\nlocal_prefix = "/blog/images/mirror"\n',
            "the built site will look for /blog/images/mirror/img.example.com/lisbon/tram.jpg"
            " at static/images/mirror/img.example.com/lisbon/tram.jpg: no such file",
        ),
        # the base path of baseURL forgotten
        (
            '[mirror]\ndir = "static/images/mirror"\n[rewrite]\nlocal_prefix = "/images/mirror"\n',
            "the built site will look for /images/mirror/img.example.com/lisbon/tram.jpg,"
            " outside its base path /blog (baseURL in hugo.toml)",
        ),
    ],
)
def test_verify_checks_the_built_sites_view(
    tmp_path: Path, images: str, capsys: pytest.CaptureFixture[str], toml: str, words: str
) -> None:
    site = copy_example("hugo", tmp_path, images)
    with (site / "gallery-mirror.toml").open("a") as config:
        config.write(toml)
    assert main(["--no-progress", "migrate", "--site", str(site)]) == 0
    capsys.readouterr()
    assert main(["verify", "--site", str(site)]) == 1
    out = capsys.readouterr().out
    assert f"content/posts/lisbon.md:9: {words}" in out, out


def test_bundles_take_their_remote_images_in(tmp_path: Path, images: str) -> None:
    site = copy_example("hugo", tmp_path, images)
    with (site / "gallery-mirror.toml").open("a") as config:
        config.write("[mirror]\nbundles = true\n")
    bundle = site / "content/posts/kyoto"
    # Another file already holds the name: the copy gets the hash in its name.
    (bundle / "pastel-de-nata.jpg").write_bytes(b"not the same image")
    own = (bundle / "cover.jpg").read_bytes()
    before = posts_of(site)
    assert main(["--no-progress", "migrate", "--site", str(site)]) == 0
    text = (bundle / "index.md").read_text()
    copied = next(bundle.glob("pastel-de-nata~*.jpg"))
    assert f"![pastry]({copied.name})" in text
    assert "![cover](cover.jpg)" in text  # the bundle's own image, never fetched
    assert (bundle / "cover.jpg").read_bytes() == own
    assert (
        copied.read_bytes()
        == (EXAMPLES / "images/img.example.com/lisbon/pastel-de-nata.jpg").read_bytes()
    )
    # A post that is no bundle goes to the mirror as before.
    assert (
        "/blog/images/mirror/img.example.com/lisbon/tram.jpg"
        in (site / "content/posts/lisbon.md").read_text()
    )
    if shutil.which("hugo") is not None:
        subprocess.run(["hugo", "--quiet"], cwd=site, check=True, capture_output=True)
        page = (site / "public/posts/kyoto/index.html").read_text()
        assert f'src="{copied.name}"' in page
        assert (site / "public/posts/kyoto" / copied.name).is_file()
    assert main(["revert", "--site", str(site)]) == 0
    assert posts_of(site) == before


def test_hexo_post_asset_folders_are_bundles(tmp_path: Path, images: str) -> None:
    site = tmp_path / "blog"
    posts = site / "source/_posts"
    (posts / "trip").mkdir(parents=True)
    (site / "_config.yml").write_text("post_asset_folder: true\n")
    (posts / "trip/local.png").write_bytes(b"x")
    post = posts / "trip.md"
    post.write_text(
        "---\ntitle: t\ncover: https://img.example.com/lisbon/cover.jpg\n---\n"
        "![](local.png)\n![](https://img.example.com/lisbon/tram.jpg)\n"
        "{% img https://img.example.com/lisbon/tiles.png %}\n"
    )
    origins = f'"img.example.com" = ["{images}/img.example.com"]\n'
    (site / "gallery-mirror.toml").write_text(
        "[mirror]\nbundles = true\n[download]\nallow_private = true\nfsync = false\n"
        f"[download.origins]\n{origins}"
    )
    assert main(["--no-progress", "migrate", "--site", str(site)]) == 0
    assert post.read_text() == (
        "---\ntitle: t\ncover: /images/mirror/img.example.com/lisbon/cover.jpg\n---\n"
        "![](local.png)\n![](tram.jpg)\n"
        "{% img /images/mirror/img.example.com/lisbon/tiles.png %}\n"
    )  # front matter and {% img %} (which needs a root path) stay on the mirror
    assert (posts / "trip/tram.jpg").is_file()
