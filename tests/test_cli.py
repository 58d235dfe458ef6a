"""The command line as a user meets it: real sites in tmp_path, real output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.cli import build_parser, main

SEED = Path(__file__).parent / "data" / "deepseek-post.md"
EXAMPLE = Path(__file__).parents[1] / "examples" / "hexo-blog"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    posts = tmp_path / "blog" / "source" / "_posts"
    posts.mkdir(parents=True)
    shutil.copy(SEED, posts / "deepseek-post.md")
    return tmp_path / "blog"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_table(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", "--site", str(site))
    assert code == 0
    assert "source/_posts/deepseek-post.md:9:10  front_matter" in out
    assert out.count("(repaired: scheme 'httpss://' -> 'https://')") == 5
    assert "1 post, 6 image references to 5 distinct URLs on 1 host; 5 repaired" in out


def test_scan_json_follows_the_contract(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", "--json", "--site", str(site))
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == 1
    kinds = {"front_matter", "gallery", "markdown", "html", "tag", "shortcode", "reference"}
    assert len(doc["refs"]) == 6
    for ref in doc["refs"]:
        assert {"post", "line", "kind", "raw", "url"} <= ref.keys()
        assert ref["post"] == "source/_posts/deepseek-post.md"
        assert ref["kind"] in kinds
        data = (site / ref["post"]).read_bytes()
        assert data[ref["start"] : ref["end"]].decode() == ref["raw"]
    assert [r["line"] for r in doc["refs"]] == [9, 14, 15, 16, 17, 18]
    assert len(doc["urls"]) == 5
    for url in doc["urls"]:
        assert {"url", "status", "path", "error"} <= url.keys()
        assert url["status"] == "pending" and url["path"] is None and url["error"] is None
    summary = doc["summary"]
    assert (summary["posts"], summary["refs"], summary["urls"]) == (1, 6, 5)
    assert (summary["pending"], summary["mirrored"], summary["failed"]) == (5, 0, 0)


def test_global_options_after_the_command(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "-v", "--site", str(site), "-q")
    assert code == 0
    assert "detected a Hexo site" in err


def test_verbose_lists_skipped_text(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "source" / "_posts" / "t.md").write_text("---\ncover: /{year}/{month}/c.png\n---\n")
    code, out, _ = run(capsys, "-v", "scan", "--site", str(site))
    assert code == 0
    assert "source/_posts/t.md:2  template placeholder: /{year}/{month}/c.png" in out
    _, out, _ = run(capsys, "scan", "--json", "--site", str(site))
    assert json.loads(out)["skipped"] == [
        {
            "post": "source/_posts/t.md",
            "line": 2,
            "raw": "/{year}/{month}/c.png",
            "reason": "template placeholder",
        }
    ]


def test_quiet_prints_only_the_summary(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "-q", "--site", str(site), "scan")
    assert out.strip().splitlines() == [out.strip()]
    assert out.startswith("1 post, 6 image references")


def test_unreadable_post_exits_1_and_is_named(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (site / "source" / "_posts" / "broken.md").write_bytes(b"---\ntitle: x\n\xff\xfe\n---\n")
    code, out, _ = run(capsys, "scan", "--site", str(site))
    assert code == 1
    assert "source/_posts/broken.md: not valid UTF-8" in out
    assert "6 image references" in out  # the good post is still scanned


def test_unknown_config_key_exits_2_naming_file_key_and_line(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (site / "gallery-mirror.toml").write_text("[download]\nretries = 2\nretrys = 3\n")
    code, out, err = run(capsys, "scan", "--site", str(site))
    assert code == 2
    assert out == ""
    assert "gallery-mirror.toml:3: unknown key 'download.retrys'" in err
    assert "did you mean 'retries'" in err


def test_wrong_type_exits_2(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "gallery-mirror.toml").write_text('[download]\nconcurrency = "many"\n')
    code, _, err = run(capsys, "scan", "--site", str(site))
    assert code == 2
    assert "gallery-mirror.toml:2:" in err and "download.concurrency" in err


def test_invalid_toml_exits_2_with_line(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "gallery-mirror.toml").write_text("[site]\nposts = [\n")
    code, _, err = run(capsys, "scan", "--site", str(site))
    assert code == 2
    assert "gallery-mirror.toml:" in err and "invalid TOML" in err


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-c", str(tmp_path / "nope.toml"), "scan")
    assert code == 2
    assert "nope.toml" in err


def test_config_posts_globs_are_used(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "drafts").mkdir()
    (site / "drafts" / "d.md").write_text("![a](https://h.example.com/d.png)\n")
    config = site / "cfg.toml"
    config.write_text('[site]\nposts = ["drafts/*.md"]\n')
    code, out, _ = run(capsys, "-c", str(config), "scan", "--json")
    assert code == 0
    assert [r["post"] for r in json.loads(out)["refs"]] == ["drafts/d.md"]


def test_bad_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["scan", "--frobnicate"])
    assert exc.value.code == 2


def test_python_dash_m_and_console_script_on_the_example(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    for command in (
        [sys.executable, "-m", "mirror"],
        [str(Path(sys.executable).parent / "gallery-mirror")],
    ):
        done = subprocess.run(
            [*command, "scan", "--site", str(EXAMPLE)],
            capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "2 posts, 16 image references to 12 distinct URLs" in done.stdout
        assert "never-fetched" not in done.stdout and "not-this-one" not in done.stdout


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    parser = build_parser()
    commands = next(
        a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"
    ).choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        assert sub.description, name
        assert f"gallery-mirror {name}" in readme, name


def test_json_help_points_at_the_readme_not_at_a_contract_users_never_saw() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "### JSON output (schema 1)" in readme
    commands = next(
        a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"
    ).choices  # type: ignore[union-attr]
    helps = {name: sub.format_help() for name, sub in commands.items()}
    assert not [name for name, text in helps.items() if "contract" in text]
    for name in ("scan", "verify", "report"):
        assert "JSON (schema 1, documented in the README)" in " ".join(helps[name].split()), name


def test_version_works_after_the_command_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["scan", "--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("gallery-mirror ")


def test_an_unwritable_output_file_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    target = tmp_path / "a-file" / "report.json"
    (tmp_path / "source" / "_posts").mkdir(parents=True)
    code = main(["report", "--json", str(target), "--site", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "gallery-mirror: error: " in err and "Traceback" not in err
    assert f"the directory {tmp_path / 'a-file'} is not a directory" in err


@pytest.mark.parametrize("flags", [(), ("--json",)], ids=["table", "json"])
def test_a_reader_that_stopped_reading_is_not_an_error(site: Path, flags: tuple[str, ...]) -> None:
    """`gallery-mirror scan | head`: quiet, and 141 (128 + SIGPIPE) as `cat` would exit."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line: every write fails
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mirror", "scan", *flags, "--site", str(site)],
            stdout=write, stderr=subprocess.PIPE, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.stderr == b""
    assert done.returncode == 141
