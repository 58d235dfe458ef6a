"""Posts that are broken, hostile or odd: the scan reports them and goes on.

Every case is a real Hexo site in ``tmp_path`` with two good posts beside the
bad one, scanned both through ``scan_site`` and through the CLI
(``gallery-mirror scan``). A post that cannot be read is a problem of that
post (exit code 1), never a crash: no traceback, and the good posts are still
scanned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mirror.cli import main
from mirror.config import DEFAULT_FRONT_MATTER_KEYS
from mirror.models import PostScan, ScanResult
from mirror.scanner.post import scan_post
from mirror.scanner.site import scan_site

POSTS = "source/_posts"
KEYS = frozenset(DEFAULT_FRONT_MATTER_KEYS)
GOOD = """---
title: 好文章 {name}
headimg: https://img.example.com/{name}/head.jpg
---

{{% gallery stretch::6::two %}}
![](httpss://img.example.com/{name}/1.jpg)
![](https://img.example.com/{name}/2.jpg)
{{% endgallery %}}
正文。
"""
GOOD_POSTS = ("a-good.md", "z-good.md")
GOOD_URLS = {
    f"https://img.example.com/{name.removesuffix('.md')}/{file}"
    for name in GOOD_POSTS
    for file in ("head.jpg", "1.jpg", "2.jpg")
}


# --- helpers ------------------------------------------------------------------------------


def make_site(tmp_path: Path) -> Path:
    """A Hexo site with two good posts of three references each."""
    site = tmp_path / "blog"
    posts = site / POSTS
    posts.mkdir(parents=True)
    for name in GOOD_POSTS:
        (posts / name).write_text(GOOD.format(name=name.removesuffix(".md")), encoding="utf-8")
    return site


def scan(site: Path) -> ScanResult:
    return scan_site(site, posts=None, front_matter_keys=DEFAULT_FRONT_MATTER_KEYS)


def post_scan(result: ScanResult, name: str) -> PostScan:
    matches = [p for p in result.posts if p.post == f"{POSTS}/{name}"]
    assert len(matches) == 1, [p.post for p in result.posts]
    return matches[0]


def assert_good_posts_scanned(result: ScanResult) -> None:
    good = [r for r in result.refs if r.post.endswith("-good.md")]
    assert len(good) == 6
    assert {r.url for r in good} == GOOD_URLS
    for name in GOOD_POSTS:
        assert post_scan(result, name).problems == ()


def run_cli(site: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["scan", "--site", str(site), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def cli_json(site: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code, out, _ = run_cli(site, capsys, "--json")
    return code, json.loads(out)


def check_spans(data: bytes, scan: PostScan) -> None:
    for ref in scan.refs:
        assert data[ref.start : ref.end].decode("utf-8") == ref.raw
        assert ref.line == data.count(b"\n", 0, ref.start) + 1


# --- posts that cannot be read ----------------------------------------------------------------

BAD_YAML = b"""---
title: ok
tags: a: b
headimg: https://img.example.com/bad/head.jpg
---

![body](https://img.example.com/bad/body.jpg)
"""


def _bad_yaml(posts: Path) -> None:
    (posts / "bad-yaml.md").write_bytes(BAD_YAML)


def _latin1(posts: Path) -> None:
    text = "---\ntitle: Café\n---\n![a](https://img.example.com/l/a.jpg)\n"
    (posts / "latin1.md").write_bytes(text.encode("latin-1"))


def _binary(posts: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    (posts / "x.md").write_bytes(
        png + b"![a](https://img.example.com/x/a.jpg)\n" + bytes(range(256))
    )


def _dangling(posts: Path) -> None:
    os.symlink("missing.md", posts / "gone.md")


def _self_loop(posts: Path) -> None:
    os.symlink("loop.md", posts / "loop.md")


# (post, how to make it, words the reason must hold)
UNREADABLE = [
    pytest.param("bad-yaml.md", _bad_yaml, ("YAML", "line 3"), id="malformed-yaml"),
    pytest.param("latin1.md", _latin1, ("UTF-8", "line 2"), id="invalid-utf8"),
    pytest.param("x.md", _binary, ("binary",), id="binary-nul-bytes"),
    pytest.param("gone.md", _dangling, ("cannot be read", "No such file"), id="dangling-symlink"),
    pytest.param("loop.md", _self_loop, ("cannot be read", "loop"), id="self-loop-symlink"),
]


@pytest.mark.parametrize(("name", "make", "words"), UNREADABLE)
def test_unreadable_post_is_a_problem_of_that_post(
    tmp_path: Path, name: str, make: Callable[[Path], None], words: tuple[str, ...]
) -> None:
    site = make_site(tmp_path)
    make(site / POSTS)
    result = scan(site)
    assert [p.post for p in result.unreadable] == [f"{POSTS}/{name}"]
    (reason,) = post_scan(result, name).problems
    for word in words:
        assert word in reason, reason
    assert_good_posts_scanned(result)


@pytest.mark.parametrize(("name", "make", "words"), UNREADABLE)
def test_cli_reports_unreadable_post_and_exits_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    make: Callable[[Path], None],
    words: tuple[str, ...],
) -> None:
    site = make_site(tmp_path)
    make(site / POSTS)
    code, out, _ = run_cli(site, capsys)
    assert code == 1
    (line,) = [line for line in out.splitlines() if f"{POSTS}/{name}:" in line and words[0] in line]
    for word in words:
        assert word in line
    assert "1 unreadable post" in out
    assert out.count("img.example.com/a-good/") == 3 and out.count("img.example.com/z-good/") == 3

    code, report = cli_json(site, capsys)
    assert code == 1
    problems = report["problems"]
    assert isinstance(problems, list)
    assert [p["post"] for p in problems] == [f"{POSTS}/{name}"]
    assert all(word in problems[0]["reason"] for word in words)
    summary = report["summary"]
    assert isinstance(summary, dict)
    assert summary["unreadable"] == 1
    assert summary["posts"] == 3


def test_malformed_yaml_still_yields_body_images(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    _bad_yaml(site / POSTS)
    bad = post_scan(scan(site), "bad-yaml.md")
    body = [r for r in bad.refs if r.kind != "front_matter"]
    assert [(r.raw, r.line, r.kind) for r in body] == [
        ("https://img.example.com/bad/body.jpg", 7, "markdown")
    ]
    check_spans(BAD_YAML, bad)


def test_malformed_toml_front_matter_names_its_line(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    data = (
        b'+++\ntitle = "x"\ndate = = 2\nimages = ["https://h/a.jpg"]\n+++\n![b](https://h/b.jpg)\n'
    )
    (site / POSTS / "toml.md").write_bytes(data)
    result = scan(site)
    toml = post_scan(result, "toml.md")
    (reason,) = toml.problems
    assert "TOML" in reason and "line 3" in reason, reason
    assert [(r.raw, r.line) for r in toml.refs] == [("https://h/b.jpg", 6)]
    assert_good_posts_scanned(result)


# --- a loop, a pipe, and files that are odd but fine ---------------------------------------------


def test_directory_symlink_loop_ends_and_finds_each_post_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path)
    sub = site / POSTS / "sub"
    sub.mkdir()
    (sub / "deep.md").write_text("![d](https://img.example.com/deep/d.jpg)\n", encoding="utf-8")
    os.symlink("..", sub / "back")  # source/_posts/sub/back -> source/_posts
    result = scan(site)
    assert [p.post for p in result.posts] == [
        f"{POSTS}/a-good.md",
        f"{POSTS}/sub/deep.md",
        f"{POSTS}/z-good.md",
    ]
    assert result.unreadable == ()
    assert any("sub/back" in note and "loop" in note for note in result.notes), result.notes
    assert_good_posts_scanned(result)
    assert [r.url for r in post_scan(result, "sub/deep.md").refs] == [
        "https://img.example.com/deep/d.jpg"
    ]

    code, out, err = run_cli(site, capsys, "-v")
    assert code == 0
    assert "sub/back" in err and "loop" in err
    assert "3 posts, 7 image references" in out


def test_link_to_an_ancestor_does_not_scan_a_page_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # source/_posts/up -> .. (source/): the Hexo glob source/[!_]*/**/*.md finds the page
    # source/about/index.md, and source/_posts/**/*.md finds it again through the link,
    # as source/_posts/up/about/index.md. Two rewrites of one file by stale offsets.
    site = make_site(tmp_path)
    (site / "source/about").mkdir()
    (site / "source/about/index.md").write_text("![a](https://img.example.com/about/a.jpg)\n")
    os.symlink("..", site / POSTS / "up")
    result = scan(site)
    assert_good_posts_scanned(result)
    real = {(site / p.post).resolve() for p in result.posts}
    assert len(real) == len(result.posts), [p.post for p in result.posts]
    code, out, _ = run_cli(site, capsys)
    assert code == 0 and "3 posts, 7 image references" in out


def test_named_pipe_does_not_hang_the_scan(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    fifo = site / POSTS / "pipe.md"
    os.mkfifo(fifo)
    done: list[ScanResult] = []
    worker = threading.Thread(target=lambda: done.append(scan(site)), daemon=True)
    worker.start()
    worker.join(timeout=2)
    blocked = worker.is_alive()
    if blocked:  # let the blocked read see end-of-file, so the thread can finish
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=10)
    assert not blocked, "the scan blocked reading a named pipe"
    assert_good_posts_scanned(done[0])


def test_empty_file_is_neither_a_reference_nor_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path)
    (site / POSTS / "empty.md").write_bytes(b"")
    result = scan(site)
    assert post_scan(result, "empty.md") == PostScan(f"{POSTS}/empty.md")
    assert result.unreadable == ()
    assert_good_posts_scanned(result)
    code, out, _ = run_cli(site, capsys)
    assert code == 0
    assert "3 posts, 6 image references" in out and "0 unreadable posts" in out


@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n"], ids=["no-newline", "newline", "blank"])
def test_front_matter_only(tmp_path: Path, capsys: pytest.CaptureFixture[str], tail: bytes) -> None:
    site = make_site(tmp_path)
    data = b"---\ntitle: x\nheadimg: https://img.example.com/fm/h.jpg\n---" + tail
    (site / POSTS / "fm.md").write_bytes(data)
    result = scan(site)
    fm = post_scan(result, "fm.md")
    assert fm.problems == ()
    assert [(r.raw, r.line, r.column, r.kind) for r in fm.refs] == [
        ("https://img.example.com/fm/h.jpg", 3, 10, "front_matter")
    ]
    check_spans(data, fm)
    code, out, _ = run_cli(site, capsys)
    assert code == 0 and "3 posts, 7 image references" in out


def test_front_matter_without_closing_line_is_body_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path)
    data = (
        b"---\ntitle: x\nheadimg: https://img.example.com/open/h.jpg\n\n"
        b"![a](https://img.example.com/open/a.jpg)\n"
    )
    (site / POSTS / "open.md").write_bytes(data)
    result = scan(site)
    post = post_scan(result, "open.md")
    # Hexo reads it all as content: the headimg line is text, the image is found.
    assert [(r.raw, r.line, r.kind) for r in post.refs] == [
        ("https://img.example.com/open/a.jpg", 5, "markdown")
    ]
    check_spans(data, post)
    assert_good_posts_scanned(result)
    code, _, _ = run_cli(site, capsys)
    assert code == 0


def test_bom_and_crlf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path)
    text = (
        "---\r\ntitle: 标题\r\nheadimg: https://img.example.com/w/h.jpg\r\n---\r\n\r\n"
        '中文 ![图](https://img.example.com/w/a.jpg) and <img src="https://img.example.com/w/b.jpg">\r\n'
        "\r\n{% img /images/w/c.jpg 300 %}\r\n"
        "```\r\n![code](https://img.example.com/w/code.jpg)\r\n```\r\n"
        "[![t](https://img.example.com/w/t.jpg)](https://img.example.com/w/full.jpg)\r\n"
    )
    data = b"\xef\xbb\xbf" + text.encode("utf-8")
    (site / POSTS / "windows.md").write_bytes(data)
    result = scan(site)
    post = post_scan(result, "windows.md")
    assert post.problems == ()
    check_spans(data, post)
    assert [(r.raw, r.line, r.column) for r in post.refs] == [
        ("https://img.example.com/w/h.jpg", 3, 10),
        ("https://img.example.com/w/a.jpg", 6, 9),  # after "中文 ![图]("
        ("https://img.example.com/w/b.jpg", 6, 56),
        ("/images/w/c.jpg", 8, 8),
        ("https://img.example.com/w/t.jpg", 12, 7),
        ("https://img.example.com/w/full.jpg", 12, 41),
    ]
    code, report = cli_json(site, capsys)
    assert code == 0
    refs = report["refs"]
    assert isinstance(refs, list)
    lines = {(r["raw"], r["line"]) for r in refs if r["post"] == f"{POSTS}/windows.md"}
    assert lines == {
        ("https://img.example.com/w/h.jpg", 3),
        ("https://img.example.com/w/a.jpg", 6),
        ("https://img.example.com/w/b.jpg", 6),
        ("https://img.example.com/w/t.jpg", 12),
        ("https://img.example.com/w/full.jpg", 12),
    }


# --- size ---------------------------------------------------------------------------------------

FILLER = (
    "这是一段很长的中文文字\uff0c用来模拟真实的博客文章内容\uff0c里面有很多很多的字。"
    "Some English text follows, with `inline code`, **bold** and a [link](https://example.com/p). "
) * 10
# Eight lines a paragraph; the three references stand on lines 3, 5 and 7 of it.
PARAGRAPH = (
    "## 第{i}节\n\n"
    + FILLER
    + '![图 {i}](https://img.example.com/big/{i}/a.jpg "t")\n\n'
    + FILLER
    + '<img src="https://cdn.example.com/big/{i}/b.png?x=1&amp;y=2"> '
    + FILLER
    + "\n\n{{% img /images/big/{i}/c.jpg 300 %}}\n\n"
)


def test_20_mb_post(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path)
    chunks = [b"---\nheadimg: https://img.example.com/big/head.jpg\n---\n"]
    size = len(chunks[0])
    while size < 20 * 1024 * 1024:
        chunks.append(PARAGRAPH.format(i=len(chunks) - 1).encode("utf-8"))
        size += len(chunks[-1])
    count = len(chunks) - 1
    data = b"".join(chunks)
    (site / POSTS / "big.md").write_bytes(data)

    started = time.perf_counter()
    result = scan(site)
    elapsed = time.perf_counter() - started
    big = post_scan(result, "big.md")
    assert big.problems == ()
    assert len(big.refs) == 1 + 3 * count
    head, *body = big.refs
    assert (head.raw, head.line) == ("https://img.example.com/big/head.jpg", 2)
    for n, ref in enumerate(body):
        i, k = divmod(n, 3)
        raw = (
            f"https://img.example.com/big/{i}/a.jpg",
            f"https://cdn.example.com/big/{i}/b.png?x=1&amp;y=2",
            f"/images/big/{i}/c.jpg",
        )[k]
        assert (ref.raw, ref.line) == (raw, 4 + 8 * i + (2, 4, 6)[k]), ref
        assert data[ref.start : ref.end] == raw.encode()
    assert_good_posts_scanned(result)
    assert elapsed < 60, f"scanning 20 MB took {elapsed:.1f} s"

    code, out, _ = run_cli(site, capsys, "-q")
    assert code == 0
    assert f"3 posts, {6 + 1 + 2 * count} image references" in out  # c.jpg is site-relative
    assert f"and {count} to site-relative paths (never fetched)" in out


def test_many_fenced_blocks_scan_in_linear_time() -> None:
    # Each fence search also looks for "~~~" to the end of the post: a 20 MB post of
    # paragraphs that each hold a fenced block took over 9 minutes.
    block = "Some text of a paragraph, with words.\n\n```js\nlet x = 1;\n```\n\n"
    fenced = (block * 7_000).encode()
    plain = fenced.replace(b"```", b"'''")
    timings = []
    for data in (plain, fenced):
        started = time.perf_counter()
        scan_post(data, "p.md", KEYS)
        timings.append(time.perf_counter() - started)
    assert timings[1] < 0.25 + 20 * timings[0], timings


# --- the real command, in its own process ----------------------------------------------------


def test_every_bad_post_at_once_through_the_real_command(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    posts = site / POSTS
    for make in (_bad_yaml, _latin1, _binary, _dangling, _self_loop):
        make(posts)
    (posts / "empty.md").write_bytes(b"")
    os.symlink("..", posts / "up")  # a directory loop
    run = subprocess.run(
        [sys.executable, "-m", "mirror", "scan", "--site", str(site), "-v"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in run.stderr + run.stdout
    assert run.returncode == 1
    for name in ("bad-yaml.md", "latin1.md", "x.md", "gone.md", "loop.md"):
        assert f"{POSTS}/{name}:" in run.stdout
    assert "up" in run.stderr and "loop" in run.stderr
    assert "8 posts, 7 image references" in run.stdout  # 6 good + the bad YAML's body image
    assert "5 unreadable posts" in run.stdout
