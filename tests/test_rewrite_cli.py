"""`gallery-mirror rewrite`, `revert` and `verify`: flags, output and exit codes."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from rewritehelp import HOSTS, MIRROR, POSTS, fetch, make_site, serve, tree

from faultserver import FaultServer
from mirror.cli import main
from mirror.keep.lock import SiteLock
from mirror.stages import rewrite as rewriting

A, B = (f"https://{HOSTS[0]}/{n}.jpg" for n in "ab")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        serve(running, "a.jpg", "b.jpg")
        yield running


@pytest.fixture
def site(tmp_path: Path, server: FaultServer) -> Path:
    made = make_site(tmp_path, server, {"p.md": f"---\ncover: {A}\n---\n![]({B})\n".encode()})
    fetch(made)
    return made


def run(capsys: pytest.CaptureFixture[str], site: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--site", str(site)])
    out, err = capsys.readouterr()
    return code, out, err


def test_rewrite_verify_revert(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (site / POSTS / "p.md").read_bytes()
    before = tree(site)
    code, out, _ = run(capsys, site, "rewrite", "--dry-run")
    assert code == 0 and "+cover: /images/mirror/img.example.com/a.jpg" in out
    assert tree(site) == before
    code, out, _ = run(capsys, site, "rewrite")
    assert code == 0 and "Rewrote 2 references in 1 post" in out and "Journal run 1" in out
    assert run(capsys, site, "verify")[0] == 0
    code, out, _ = run(capsys, site, "revert", "--dry-run")
    assert code == 0 and f"+cover: {A}" in out
    code, out, _ = run(capsys, site, "revert")
    assert code == 0 and (site / POSTS / "p.md").read_bytes() == original


def test_exit_1_when_a_post_is_not_written(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / POSTS / "p.md").chmod(0o444)
    code, out, _ = run(capsys, site, "rewrite")
    assert code == 1 and "source/_posts/p.md: the file is read-only" in out


def test_exit_1_when_revert_is_partial(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, site, "rewrite")
    path = site / POSTS / "p.md"
    path.write_text(path.read_text().replace("/images/mirror/img.example.com/b.jpg", "/b.png"))
    code, out, _ = run(capsys, site, "revert")
    assert code == 1 and "source/_posts/p.md (run 1, 1 of 2 edits undone)" in out


def test_verify_json_and_exit_1(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, site, "rewrite")
    (site / MIRROR / HOSTS[0] / "a.jpg").unlink()
    code, out, _ = run(capsys, site, "verify", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["schema"] == 1
    assert doc["summary"] == {
        "posts": 1, "refs": 2, "urls": 2, "pending": 0, "mirrored": 2, "failed": 0,
        "files_checked": 2, "problems": 2, "unreadable": 0,
    }  # fmt: skip
    assert {"post", "line", "kind", "raw", "url", "ok"} == set(doc["refs"][0])
    assert [r["ok"] for r in doc["refs"]] == [False, True]
    assert {"url", "status", "path", "error"} == set(doc["urls"][0])
    assert [p["kind"] for p in doc["problems"]] == ["file", "reference"]


def test_verify_names_each_unreadable_post_and_counts_it(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, site, "rewrite")
    (site / POSTS / "broken.md").write_bytes(b"---\ntitle: x\n\xff\n---\n")
    reason = "unreadable: not valid UTF-8 (byte 13, line 3): invalid start byte"
    code, out, _ = run(capsys, site, "verify")
    assert code == 1
    assert out.splitlines() == [
        f"source/_posts/broken.md: {reason}",
        "Checked 2 mirrored files and 2 rewritten references: 1 problem, 1 post unreadable.",
    ]
    code, out, _ = run(capsys, site, "verify", "--json")
    doc = json.loads(out)
    assert code == 1 and (doc["summary"]["problems"], doc["summary"]["unreadable"]) == (1, 1)
    assert doc["problems"] == [
        {"kind": "post", "where": "source/_posts/broken.md", "url": None, "detail": reason}
    ]


def test_lock_held_exits_3(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SiteLock(site / ".gallery-mirror"):
        for command in ("rewrite", "revert"):
            code, _, err = run(capsys, site, command)
            assert code == 3 and "lock" in err, command


@pytest.mark.parametrize(
    ("argv", "toml", "named"),
    [
        (("rewrite", "--to", "cdn"), "", "rewrite.cdn_base"),
        (("rewrite", "--check-target"), "", "--check-target"),
        (("rewrite",), '[rewrite]\nlocal_prefix = "im ages"\n', "rewrite.local_prefix"),
    ],
)
def test_usage_errors_exit_2(
    site: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], toml: str, named: str
) -> None:
    config = site / "gallery-mirror.toml"
    config.write_text(config.read_text() + toml)
    code, out, err = run(capsys, site, *argv)
    assert code == 2 and out == "" and named in err


def test_ctrl_c_says_how_many_posts_were_written_and_that_revert_undoes_them(
    tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    posts = {f"p{n}.md": f"![]({A})\n".encode() for n in range(3)}
    site = make_site(tmp_path, server, posts)
    fetch(site)
    written, write_post = [], rewriting.write_post

    def write_then_ctrl_c(path: Path, expected: bytes, data: bytes) -> str | None:
        if len(written) == 2:  # Ctrl-C as the third post is about to be written
            signal.raise_signal(signal.SIGINT)
        written.append(path.name)
        return write_post(path, expected, data)

    monkeypatch.setattr(rewriting, "write_post", write_then_ctrl_c)
    code, out, err = run(capsys, site, "rewrite")

    assert code == 130
    assert out.startswith("Interrupted: Rewrote 2 references in 2 posts")
    assert (
        "gallery-mirror: interrupted after rewriting 2 posts (journal run 1);"
        " `gallery-mirror revert` undoes them" in err
    )
    assert [(site / POSTS / name).read_bytes() != posts[name] for name in posts] == [
        True, True, False,
    ]  # fmt: skip
    monkeypatch.undo()
    assert run(capsys, site, "revert")[0] == 0
    assert all((site / POSTS / name).read_bytes() == data for name, data in posts.items())
