"""Layout-aware defaults: where each generator serves files, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.cli import main
from mirror.config import load_config
from mirror.errors import ConfigError
from mirror.scanner.layout import detect, settle


def site_of(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def settled(root: Path) -> tuple[str, str]:
    config = settle(load_config(None, site=root)).config
    return config.mirror.dir, config.rewrite.local_prefix


HEXO = {"source/_posts/a.md": "x\n"}
MIRROR = "images/mirror"
HUGO = {"content/posts/a.md": "x\n"}
JEKYLL = {"_posts/2020-01-01-a.md": "x\n"}
BLOG = 'baseURL = "https://e.org/blog/"\n'


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (HEXO, ("source/images/mirror", "/images/mirror")),
        ({**HEXO, "_config.yml": "root: /blog/\n"}, ("source/" + MIRROR, "/blog/" + MIRROR)),
        ({**HEXO, "_config.yml": "source_dir: src\nroot: /\n"}, ("src/" + MIRROR, "/" + MIRROR)),
        (HUGO, ("static/images/mirror", "/images/mirror")),
        ({**HUGO, "hugo.toml": 'baseURL = "https://e.org/"\n'}, ("static/" + MIRROR, "/" + MIRROR)),
        ({**HUGO, "hugo.toml": BLOG}, ("static/" + MIRROR, "/blog/" + MIRROR)),
        ({**HUGO, "config.yaml": "baseurl: https://e.org/b\nstaticDir: assets-static\n"},
         ("assets-static/images/mirror", "/b/images/mirror")),
        ({**HUGO, "hugo.json": '{"baseURL": "https://e.org/j/", "staticDir": ["s1", "s2"]}'},
         ("s1/images/mirror", "/j/images/mirror")),
        ({**HUGO, "config/_default/hugo.toml": 'baseURL = "https://e.org/d/"\n'},
         ("static/images/mirror", "/d/images/mirror")),
        # canonifyURLs: Hugo puts baseURL (path and all) in front of "/..." itself
        ({**HUGO, "config.toml": 'baseURL = "https://e.org/c/"\ncanonifyURLs = true\n'},
         ("static/images/mirror", "/images/mirror")),
        (JEKYLL, ("images/mirror", "/images/mirror")),
        ({**JEKYLL, "_config.yml": "baseurl: /myblog\n"}, (MIRROR, "/myblog/" + MIRROR)),
        ({**JEKYLL, "_config.yml": 'baseurl: ""\n'}, ("images/mirror", "/images/mirror")),
        ({"notes/a.md": "x\n"}, ("images/mirror", "/images/mirror")),
    ],
)  # fmt: skip
def test_defaults_follow_the_generator(
    tmp_path: Path, files: dict[str, str], expected: tuple[str, str]
) -> None:
    assert settled(site_of(tmp_path, files)) == expected


def test_a_value_the_user_sets_wins(tmp_path: Path) -> None:
    site = site_of(tmp_path, {**HUGO, "hugo.toml": 'baseURL = "https://e.org/blog/"\n'})
    config = site / "gallery-mirror.toml"
    config.write_text('[mirror]\ndir = "static/pics"\n')
    assert settled(site) == ("static/pics", "/blog/pics")  # the prefix follows the dir
    config.write_text('[rewrite]\nlocal_prefix = "/blog/img/m"\n')
    assert settled(site) == ("static/img/m", "/blog/img/m")  # the dir follows the prefix
    config.write_text('[mirror]\ndir = "x/m"\n[rewrite]\nlocal_prefix = "/anything"\n')
    assert settled(site) == ("x/m", "/anything")  # both set: the user's server
    config.write_text('[rewrite]\nlocal_prefix = "https://img.example.org/m"\n')
    assert settled(site) == ("static/images/mirror", "https://img.example.org/m")


@pytest.mark.parametrize(
    ("files", "mirror_dir", "words"),
    [
        (HUGO, "public/m", "Hugo does not serve that folder (it copies static/ as it is"),
        (HUGO, "content/m", "use 'static/images/mirror'"),
        (HEXO, "images/m", "use 'source/images/mirror'"),
        (HEXO, "source/_drafts/m", "names starting with '_'"),
        (JEKYLL, "_data/m", "Jekyll does not serve that folder"),
        ({**JEKYLL, "_config.yml": "exclude: [private]\n"}, "private/m", "exclude:"),
    ],
)
def test_a_mirror_dir_the_generator_does_not_serve_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    mirror_dir: str,
    words: str,
) -> None:
    site = site_of(tmp_path, files)
    (site / "gallery-mirror.toml").write_text(f'[mirror]\ndir = "{mirror_dir}"\n')
    assert main(["scan", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert f"invalid value for 'mirror.dir' ('{mirror_dir}')" in err
    assert words in err


def test_jekyll_serves_included_underscore_folders(tmp_path: Path) -> None:
    site = site_of(tmp_path, {**JEKYLL, "_config.yml": "include: [_pics]\n"})
    (site / "gallery-mirror.toml").write_text('[mirror]\ndir = "_pics/m"\n')
    assert settled(site) == ("_pics/m", "/_pics/m")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[rewrite]\nlocal_prefix = "images/mirror"\n', "rewrite.local_prefix"),
        ('[rewrite]\ncdn_base = "https://cdn.example.com/g?v=1"\n', "rewrite.cdn_base"),
        ('[rewrite]\ncdn_base = "https://cdn.example.com/g#top"\n', "rewrite.cdn_base"),
    ],
)
def test_what_cannot_work_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, key: str
) -> None:
    site = site_of(tmp_path, HEXO)
    (site / "gallery-mirror.toml").write_text(toml)
    assert main(["scan", "--site", str(site)]) == 2
    assert f"gallery-mirror.toml:2: invalid value for '{key}'" in capsys.readouterr().err


def test_verbose_says_where_each_value_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_of(tmp_path, {**HUGO, "hugo.toml": 'baseURL = "https://e.org/blog/"\n'})
    assert main(["-v", "scan", "--site", str(site)]) == 0
    err = capsys.readouterr().err
    assert "layout: Hugo (content/ exists)" in err
    assert "layout: mirror.dir = static/images/mirror (Hugo serves static/ at baseURL)" in err
    assert "layout: rewrite.local_prefix = /blog/images/mirror (baseURL in hugo.toml" in err
    (site / "gallery-mirror.toml").write_text('[mirror]\ndir = "static/x"\n')
    assert main(["-v", "scan", "--site", str(site)]) == 0
    toml = site / "gallery-mirror.toml"
    assert f"mirror.dir = static/x (set in {toml})" in capsys.readouterr().err


def test_an_unreadable_generator_config_leaves_its_defaults_with_a_note(tmp_path: Path) -> None:
    site = site_of(tmp_path, {**HUGO, "hugo.toml": "baseURL = \n"})
    layout = detect(site)
    assert (layout.served, layout.base_path) == ("static", "")
    assert layout.notes and layout.notes[0].startswith("hugo.toml: cannot read it")


@pytest.mark.parametrize(
    ("files", "url_path", "expected"),
    [
        ({**HUGO, "hugo.toml": BLOG}, "/blog/images/a%20b.png", "static/images/a b.png"),
        ({**HUGO, "hugo.toml": BLOG}, "/images/a.png", None),
        ({**JEKYLL, "_config.yml": "baseurl: /my\n"}, "/my/images/a.png?x#y", "images/a.png"),
        (HEXO, "/images/../../etc/passwd", "source/etc/passwd"),  # as a browser resolves it
    ],
)  # fmt: skip
def test_the_site_view_of_a_url_path(
    tmp_path: Path, files: dict[str, str], url_path: str, expected: str | None
) -> None:
    assert detect(site_of(tmp_path, files)).site_file(url_path) == expected


def test_settle_refuses_a_served_folder_outside_the_root(tmp_path: Path) -> None:
    site = site_of(tmp_path, {**HUGO, "hugo.toml": 'staticDir = "../elsewhere"\n'})
    with pytest.raises(ConfigError, match="outside the site root"):
        settled(site)


def test_plain_markdown_says_what_it_assumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = site_of(tmp_path, {"notes/a.md": "x\n"})
    assert main(["scan", "--site", str(site)]) == 0
    assert "the site root is served at /" in capsys.readouterr().err
    assert main(["-q", "scan", "--site", str(site)]) == 0
    assert capsys.readouterr().err == ""
    toml = '[mirror]\ndir = "m"\n[rewrite]\nlocal_prefix = "/m"\n'
    (site / "gallery-mirror.toml").write_text(toml)
    assert main(["scan", "--site", str(site)]) == 0
    assert capsys.readouterr().err == ""
