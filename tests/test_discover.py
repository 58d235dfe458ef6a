"""Which files are posts: the detected layout, configured globs, and what is never a post.

Every test builds a real site tree in ``tmp_path``; each file that must not be
scanned holds an image too, so scanning it by mistake shows in the results.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mirror.cli import main
from mirror.config import DEFAULT_FRONT_MATTER_KEYS, load_config
from mirror.models import ScanResult
from mirror.scanner.discover import _walk, detect_globs, discover, translate_glob
from mirror.scanner.site import scan_site
from mirror.stages import scan as scanning

HEXO_GLOBS = (
    "source/_posts/**/*.md",
    "source/_posts/**/*.markdown",
    "source/*.md",
    "source/[!_]*/**/*.md",
)
HUGO_GLOBS = ("content/**/*.md", "content/**/*.markdown")
JEKYLL_GLOBS = ("_posts/**/*.md", "_posts/**/*.markdown")


def tree(root: Path, *files: str) -> Path:
    """Create ``files`` under ``root``, each a post with one image named after its path."""
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {name}\n\n![x](https://img.example.com/{name}.jpg)\n", "utf-8")
    return root


def image_of(post: str) -> str:
    return f"https://img.example.com/{post}.jpg"


def scanned(result: ScanResult) -> list[str]:
    return [p.post for p in result.posts]


def run_cli(site: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["scan", "--site", str(site), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def cli_posts(site: Path, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """The posts whose image the CLI reported (every test post holds exactly one)."""
    code, out, _ = run_cli(site, capsys, "--json")
    assert code == 0
    report = json.loads(out)
    posts = {r["post"] for r in report["refs"]} | {r["post"] for r in report["local_refs"]}
    assert report["summary"]["posts"] == len(posts)
    for ref in report["refs"]:
        assert ref["url"] == image_of(ref["post"])
    return posts


# --- detection ------------------------------------------------------------------------------

LAYOUTS = [
    pytest.param(
        (
            "source/_posts/a.md",
            "source/_posts/2024/b.markdown",
            "source/_posts/deep/er/c.md",
            "source/about/index.md",
        ),
        (
            "source/_drafts/draft.md",  # [!_]*: drafts, data and other _folders are not pages
            "source/_data/menu.md",
            "source/_posts/notes.txt",
            "themes/landscape/README.md",
            "README.md",
            "node_modules/hexo/README.md",
            "scaffolds/post.md",
        ),
        HEXO_GLOBS,
        "Hexo",
        id="hexo",
    ),
    pytest.param(
        ("content/_index.md", "content/posts/a.md", "content/posts/b/index.markdown"),
        (
            "README.md",
            "archetypes/default.md",
            "themes/ananke/exampleSite/content/about.md",
            "layouts/partials/x.md",
        ),
        HUGO_GLOBS,
        "Hugo",
        id="hugo",
    ),
    pytest.param(
        ("_posts/2020-01-01-a.md", "_posts/2021/2021-02-02-b.markdown"),
        ("_drafts/c.md", "about.md", "README.md", "_site/index.md", "vendor/bundle/x.md"),
        JEKYLL_GLOBS,
        "Jekyll",
        id="jekyll",
    ),
    pytest.param(
        ("b.md", "notes/a.md", "deep/x/y/c.md"),
        (
            "notes/a.markdown",  # the fallback is **/*.md only
            "notes/a.txt",
            "node_modules/pkg/readme.md",
            ".gallery-mirror/backup/b.md",
            ".git/x.md",
            ".venv/lib/site.md",
        ),
        ("**/*.md",),
        "no Hexo, Hugo or Jekyll layout",
        id="fallback",
    ),
]


@pytest.mark.parametrize(("posts", "others", "globs", "words"), LAYOUTS)
def test_layout_is_detected(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    posts: tuple[str, ...],
    others: tuple[str, ...],
    globs: tuple[str, ...],
    words: str,
) -> None:
    site = tree(tmp_path / "site", *posts, *others)
    detected_globs, detected = detect_globs(site)
    assert detected_globs == globs
    assert words in detected
    assert discover(site, None).posts == tuple(sorted(posts))

    result = scan_site(site, posts=None, front_matter_keys=DEFAULT_FRONT_MATTER_KEYS)
    assert result.globs == globs
    assert result.detected == detected
    assert scanned(result) == sorted(posts)
    assert sorted(r.url for r in result.refs) == sorted(image_of(p) for p in posts)

    assert cli_posts(site, capsys) == set(posts)


def test_hexo_wins_over_hugo_and_jekyll_folders(tmp_path: Path) -> None:
    site = tree(tmp_path, "source/_posts/a.md", "content/b.md", "_posts/c.md")
    assert detect_globs(site)[0] == HEXO_GLOBS
    assert discover(site, None).posts == ("source/_posts/a.md",)
    (site / "source/_posts/a.md").unlink()
    (site / "source/_posts").rmdir()
    assert detect_globs(site)[0] == HUGO_GLOBS


def test_a_file_named_like_a_layout_folder_is_not_one(tmp_path: Path) -> None:
    site = tree(tmp_path, "notes/a.md")
    (site / "source").mkdir()
    (site / "source/_posts").write_text("not a folder")
    (site / "content").write_text("not a folder")
    assert detect_globs(site)[0] == ("**/*.md",)
    assert discover(site, None).posts == ("notes/a.md",)


@pytest.mark.parametrize(
    ("layout", "words", "globs"),
    [
        ("source/_posts/a.md", "detected a Hexo site", HEXO_GLOBS),
        ("content/a.md", "detected a Hugo site", HUGO_GLOBS),
        ("_posts/a.md", "detected a Jekyll site", JEKYLL_GLOBS),
        ("a.md", "no Hexo, Hugo or Jekyll layout found", ("**/*.md",)),
    ],
)
def test_verbose_says_what_was_detected_on_stderr(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    layout: str,
    words: str,
    globs: tuple[str, ...],
) -> None:
    site = tree(tmp_path, layout)
    code, out, err = run_cli(site, capsys, "-v")
    assert code == 0
    (line,) = [line for line in err.splitlines() if words in line]
    assert line.endswith(", ".join(globs))
    assert words not in out
    assert "1 post, 1 image reference" in out

    code, out, err = run_cli(site, capsys)
    assert code == 0
    assert words not in err + out  # only under -v


# --- configured globs -----------------------------------------------------------------------


def test_configured_posts_override_detection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tree(tmp_path, "source/_posts/a.md", "notes/n1.md", "notes/sub/n2.md", "notes/n3.txt")
    (site / "gallery-mirror.toml").write_text('[site]\nposts = ["notes/*.md"]\n', "utf-8")
    result = scanning.scan(load_config(None, site=site))
    assert result.globs == ("notes/*.md",)
    assert result.detected == "configured in site.posts"
    assert scanned(result) == ["notes/n1.md"]

    assert cli_posts(site, capsys) == {"notes/n1.md"}
    code, _, err = run_cli(site, capsys, "-v")
    assert code == 0
    assert "posts: configured in site.posts: notes/*.md" in err
    # The posts are the user's; the generator still decides where the mirror is served.
    assert "Hexo" not in "".join(line for line in err.splitlines() if line.startswith("posts:"))


def test_several_configured_globs_find_each_post_once(tmp_path: Path) -> None:
    site = tree(tmp_path, "source/_posts/a.md", "source/_posts/x/b.md", "pages/c.md")
    globs = ["source/_posts/**/*.md", "source/**/*.md", "pages/*.md", "**/a.md"]
    found = discover(site, globs)
    assert found.posts == ("pages/c.md", "source/_posts/a.md", "source/_posts/x/b.md")
    assert found.globs == tuple(globs)


def test_glob_written_with_dot_slash(tmp_path: Path) -> None:
    # posts = ["source/_posts/*.md", "./source/_posts/*.md"]: the file is scanned (and
    # would be rewritten) twice, once as "./source/_posts/a.md".
    site = tree(tmp_path, "source/_posts/a.md")
    assert discover(site, ["./source/_posts/*.md"]).posts == ("source/_posts/a.md",)
    assert discover(site, ["source/_posts/*.md", "./source/_posts/*.md"]).posts == (
        "source/_posts/a.md",
    )


def test_hexo_page_at_the_top_of_source(tmp_path: Path) -> None:
    # source/about/index.md is scanned (source/[!_]*/**/*.md) but Hexo renders
    # source/404.md just the same, and its images are missed.
    site = tree(tmp_path, "source/_posts/a.md", "source/about/index.md", "source/404.md")
    assert discover(site, None).posts == (
        "source/404.md",
        "source/_posts/a.md",
        "source/about/index.md",
    )


# --- never posts ----------------------------------------------------------------------------

NEVER = (
    "source/images/mirror/img.example.com/readme.md",
    ".gallery-mirror/backups/source/_posts/a.md",
    "node_modules/hexo-theme/README.md",
    "source/node_modules/x.md",
)


@pytest.mark.parametrize("config", ["", '[site]\nposts = ["**/*.md"]\n'], ids=["hexo", "all-md"])
def test_mirror_state_and_node_modules_are_never_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str
) -> None:
    site = tree(tmp_path, "source/_posts/a.md", "source/about/index.md", *NEVER)
    if config:
        (site / "gallery-mirror.toml").write_text(config, "utf-8")
    expected = {"source/_posts/a.md", "source/about/index.md"}
    assert set(scanned(scanning.scan(load_config(None, site=site)))) == expected
    assert cli_posts(site, capsys) == expected


def test_configured_mirror_dir_is_never_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tree(tmp_path, "posts/a.md", "static/mirror/h/x.md", "static/other.md")
    (site / "gallery-mirror.toml").write_text(
        '[site]\nposts = ["**/*.md"]\n[mirror]\ndir = "static/mirror"\n', "utf-8"
    )
    assert cli_posts(site, capsys) == {"posts/a.md", "static/other.md"}


def test_fallback_without_config_skips_mirror_and_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No layout folder: the fallback **/*.md walks everything, the mirror dir included.
    site = tree(tmp_path, "notes/a.md", "images/mirror/h/x.md", ".gallery-mirror/y.md")
    assert detect_globs(site)[0] == ("**/*.md",)
    assert cli_posts(site, capsys) == {"notes/a.md"}


# --- translate_glob ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("**/*.md", "a.md", True),
        ("**/*.md", "x/y/a.md", True),
        ("**/*.md", "x/y/a.markdown", False),
        ("**/*.md", "a.md.bak", False),
        ("*.md", "a.md", True),
        ("*.md", "x/a.md", False),
        ("*.md", ".md", True),
        ("a.md", "aXmd", False),  # the dot is literal
        ("source/[!_]*/**/*.md", "source/about/index.md", True),
        ("source/[!_]*/**/*.md", "source/about/x/y/index.md", True),
        ("source/[!_]*/**/*.md", "source/_drafts/a.md", False),
        ("source/[!_]*/**/*.md", "source/_posts/a.md", False),
        ("source/[!_]*/**/*.md", "source/index.md", False),
        ("source/_posts/**/*.md", "source/_posts/a.md", True),
        ("source/_posts/**/*.md", "source/_posts/2024/03/a.md", True),
        ("source/_posts/**/*.md", "source/_postsx/a.md", False),
        ("source/_posts/**/*.md", "other/source/_posts/a.md", False),
        ("?.md", "a.md", True),
        ("?.md", "ab.md", False),
        ("?.md", "/.md", False),
        ("[ab].md", "b.md", True),
        ("[ab].md", "c.md", False),
        ("[!ab].md", "c.md", True),
        ("[!ab].md", "/.md", False),  # a negated class never matches the separator
        ("posts/**", "posts/a/b.md", True),
        ("posts/**", "other/a.md", False),
        ("a+b (1).md", "a+b (1).md", True),  # regex characters are literal
        ("a+b (1).md", "aab 1.md", False),
    ],
)
def test_translate_glob(glob: str, path: str, matches: bool) -> None:
    assert (re.fullmatch(translate_glob(glob), path) is not None) is matches


# --- symlinks -------------------------------------------------------------------------------


def test_symlinked_posts_directory_is_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tree(tmp_path / "shared", "posts/a.md", "posts/2024/b.md")
    site = tmp_path / "site"
    (site / "source").mkdir(parents=True)
    os.symlink(shared / "posts", site / "source/_posts")  # the whole posts folder linked in
    assert detect_globs(site)[0] == HEXO_GLOBS
    assert discover(site, None).posts == ("source/_posts/2024/b.md", "source/_posts/a.md")
    result = scan_site(site, posts=None, front_matter_keys=DEFAULT_FRONT_MATTER_KEYS)
    assert sorted(r.url for r in result.refs) == [
        image_of("posts/2024/b.md"),
        image_of("posts/a.md"),
    ]
    code, out, _ = run_cli(site, capsys)
    assert code == 0 and "2 posts, 2 image references" in out


def test_symlinked_folder_inside_posts_is_followed(tmp_path: Path) -> None:
    extra = tree(tmp_path / "elsewhere", "series/part1.md")
    site = tree(tmp_path / "site", "source/_posts/a.md")
    os.symlink(extra / "series", site / "source/_posts/series")
    found = discover(site, None)
    assert found.posts == ("source/_posts/a.md", "source/_posts/series/part1.md")
    assert found.notes == ()
    result = scan_site(site, posts=None, front_matter_keys=DEFAULT_FRONT_MATTER_KEYS)
    assert sorted(r.url for r in result.refs) == [
        image_of("series/part1.md"),
        image_of("source/_posts/a.md"),
    ]


def test_a_linked_folder_inside_a_wider_glob_keeps_the_posts_own_names(tmp_path: Path) -> None:
    """Hexo's globs walk source/_posts and source/: a link in source/ to a folder of
    posts names each post twice, and the post's own name is the one kept."""
    (tmp_path / "source" / "_posts" / "2019").mkdir(parents=True)
    (tmp_path / "source" / "_posts" / "2019" / "x.md").write_text("x\n")
    (tmp_path / "source" / "_posts" / "y.md").write_text("y\n")
    os.symlink("_posts/2019", tmp_path / "source" / "archive")
    found = discover(tmp_path, None)
    assert found.posts == ("source/_posts/2019/x.md", "source/_posts/y.md")
    assert found.notes == (
        "source/archive/x.md: same file as source/_posts/2019/x.md, scanned once",
    )


def test_a_glob_outside_the_others_bases_finds_its_posts(tmp_path: Path) -> None:
    site = tmp_path / "blog"
    site.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (site / "a.md").write_text("a\n")
    (tmp_path / "elsewhere" / "s.md").write_text("s\n")
    assert discover(site, ["*.md", "../elsewhere/*.md"]).posts == ("../elsewhere/s.md", "a.md")


def test_a_folder_an_earlier_base_listed_gives_its_files_once(tmp_path: Path) -> None:
    """Hexo's source/ holds source/_posts/: the posts were matched against every
    glob by the first walk; the second lists the folder for its own notes only."""
    (tmp_path / "source" / "_posts" / "2019").mkdir(parents=True)
    (tmp_path / "source" / "_posts" / "2019" / "a.md").write_text("a\n")
    (tmp_path / "source" / "about.md").write_text("b\n")
    walked: set[str] = set()
    notes: list[str] = []
    first = [rel for rel, _ in _walk(tmp_path, "source/_posts", set(), walked, notes)]
    assert first == ["source/_posts/2019/a.md"]
    assert [rel for rel, _ in _walk(tmp_path, "source", set(), walked, notes)] == [
        "source/about.md"
    ]
