"""What the commands print reads right: "1 host", not "1 hosts"; table columns
stay aligned under file names in wide (CJK) characters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from seedsite import jpeg

from faultserver import FaultServer
from mirror.cli import main
from mirror.wording import counted, ljust, width

# A count of one before a plural noun, maybe with one word between ("1 unreadable posts").
ONE_PLURAL = re.compile(
    r"(?<![\d./,])1 (?:[a-z-]+ )?(posts|hosts|images|references|URLs|files|problems|edits"
    r"|thumbnails|re-checks|sources|attempts|bytes)\b"
)


def test_counted_is_singular_for_one_only() -> None:
    assert [counted(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
    assert counted(1, "unreadable post") == "1 unreadable post"


def test_width_counts_terminal_columns() -> None:
    assert width("a.md") == 4
    assert width("日本語.md") == 9  # three wide characters, two columns each
    assert width("e\u0301") == 1  # a combining accent takes no column
    assert ljust("日本", 6) == "日本  "


def test_one_of_everything_is_said_in_the_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultServer() as server:
        good = server.file("/one.jpg", jpeg(10))
        bad = server.status("/busy.jpg", 503)  # transient: "after 1 attempt" (retries = 0)
        site = tmp_path / "blog"
        (site / "source" / "_posts").mkdir(parents=True)
        (site / "source" / "_posts" / "p.md").write_text(f"![]({good})\n![]({bad})\n")
        (site / "source" / "_posts" / "q.md").write_text("---\ntitle: [\n---\n")
        (site / "gallery-mirror.toml").write_text(
            "[download]\nallow_private = true\nretries = 0\nfsync = false\n"
        )
        said = []
        for argv in (
            ["scan"], ["report"], ["fetch"], ["thumbs", "--force"], ["backup"],
            ["rewrite"], ["verify"], ["revert", "--dry-run"], ["report", "--check"],
        ):  # fmt: skip
            main([*argv, "--site", str(site)])
            out, err = capsys.readouterr()
            said.append(f"$ {' '.join(argv)}\n{out}{err}")
    text = "\n".join(said)

    # the counts are there, in the singular
    assert "1 host" in text and "1 unreadable post" in text and "after 1 attempt" in text
    assert not ONE_PLURAL.findall(text), text


def test_table_columns_stay_aligned_under_wide_file_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    posts = tmp_path / "source" / "_posts"
    posts.mkdir(parents=True)
    (posts / "a.md").write_text("![](https://h.example/a.jpg)\n")
    (posts / "旅行日記.md").write_text("![](https://h.example/b.jpg)\n")

    assert main(["scan", "--site", str(tmp_path)]) == 0

    rows = [line for line in capsys.readouterr().out.splitlines() if "markdown" in line]
    assert len(rows) == 2
    assert len({width(row.split("markdown")[0]) for row in rows}) == 1, rows
