"""After a rewrite, every output counts the mirror's own links the same way.

The example blog is migrated from a real server, then pointed at the local
mirror or at the CDN; ``scan --json``, ``report`` (text, Markdown, JSON,
HTML) and ``backup`` (text and JSON) must give the numbers they gave before
the rewrite: every image mirrored, with its bytes.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rcloneservers import rclone_binary

from faultserver import FaultServer
from mirror.cli import main

EXAMPLE = Path(__file__).parents[1] / "examples" / "hexo-blog"
IMAGES = Path(__file__).parents[1] / "examples" / "images"
HOSTS = ("imgcdn.yaerxing.com", "img.example.com")
CDN = "https://cdn.example.org/gallery"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        for file in sorted(f for f in IMAGES.rglob("*") if f.is_file()):
            running.file("/" + file.relative_to(IMAGES).as_posix(), file.read_bytes())
        yield running


@pytest.fixture
def site(tmp_path: Path, server: FaultServer) -> Path:
    site = tmp_path / "hexo-blog"
    shutil.copytree(EXAMPLE, site)
    origins = "".join(f'"{host}" = ["{server.base}/{host}"]\n' for host in HOSTS)
    (site / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nretries = 0\nfsync = false\n"
        f'[download.origins]\n{origins}[rewrite]\ncdn_base = "{CDN}"\n'
    )
    return site


def run(capsys: pytest.CaptureFixture[str], site: Path, *argv: str) -> str:
    code = main([*argv, "--site", str(site), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def numbers(capsys: pytest.CaptureFixture[str], site: Path, tmp_path: Path) -> dict[str, object]:
    """What each output says of the mirrored images."""
    scan = json.loads(run(capsys, site, "scan", "--json"))
    text = run(capsys, site, "report")
    md = run(capsys, site, "report", "--format", "md")
    run(
        capsys,
        site,
        "report",
        "--json",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    )
    report = json.loads((tmp_path / "r.json").read_text())
    html = (tmp_path / "r.html").read_text()
    backup_line = run(capsys, site, "backup", "--json", str(tmp_path / "b.json")).splitlines()[-1]
    backup = json.loads((tmp_path / "b.json").read_text())["summary"]
    return {
        "scan statuses": sorted({u["status"] for u in scan["urls"]}),
        "scan paths": sorted(u["path"] for u in scan["urls"]),
        "scan summary": {k: scan["summary"][k] for k in ("urls", "mirrored", "pending", "failed")},
        "report urls": sorted((u["status"], u["path"], u["size"]) for u in report["urls"]),
        "report summary": {
            k: report["summary"][k] for k in ("urls", "mirrored", "pending", "bytes_mirrored")
        },
        "already": report["migrate"]["already_mirrored"],
        "text": re.findall(r"^URLs: .*|^Mirrored: [^.]*\.\d* ?\w*|Would fetch .*", text, re.M),
        "md": re.findall(r"URLs: .*|Mirrored: [^.]*\.\d* ?\w*", md),
        "html": re.findall(r'data-count="mirrored">\d+|Mirrored: [^.]*\.\d* ?\w*', html),
        "backup": (backup["unchanged"], backup["already"]),
        "backup line": re.findall(r"\d+ unchanged, \d+ already mirrored", backup_line),
    }


@pytest.mark.parametrize("to", ["local", "cdn"])
def test_numbers_agree_after_a_rewrite(
    to: str, site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if to == "cdn":  # a CDN rewrite needs the files published there (a local folder here)
        rclone_binary()
        toml = site / "gallery-mirror.toml"
        toml.write_text(toml.read_text() + f'[publish]\nremote = "{tmp_path / "cdn"}"\n')
    run(capsys, site, "fetch")
    if to == "cdn":
        run(capsys, site, "publish")
    before = numbers(capsys, site, tmp_path)
    assert before["scan summary"] == {"urls": 12, "mirrored": 12, "pending": 0, "failed": 0}
    assert before["backup"] == (0, 12) and before["backup line"] == [
        "0 unchanged, 12 already mirrored"
    ]
    assert "Would fetch 0 images (12 already mirrored)." in str(before["text"])

    run(capsys, site, "rewrite", "--to", to)
    assert CDN in (site / "source" / "_posts" / "deepseek-post.md").read_text() or to == "local"
    assert numbers(capsys, site, tmp_path) == before


def test_an_own_link_to_no_mirrored_file_is_failed_everywhere(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CDN link the state has no file for: no fetch can bring it, so not pending."""
    post = site / "source" / "_posts" / "deepseek-post.md"
    post.write_text(post.read_text() + f"\n![lost]({CDN}/nowhere/lost.jpg)\n")
    scan = json.loads(run(capsys, site, "scan", "--json"))
    lost = next(u for u in scan["urls"] if u["url"].endswith("lost.jpg"))
    reason = "no mirrored file nowhere/lost.jpg in the state"
    assert (lost["status"], lost["error"]) == ("failed", reason)
    assert main(["report", "--site", str(site), "--json", str(tmp_path / "r.json")]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    lost = next(u for u in report["urls"] if u["url"].endswith("lost.jpg"))
    assert (lost["status"], lost["error"]) == ("failed", reason)
    assert f"failed  {CDN}/nowhere/lost.jpg\n" in capsys.readouterr().out
