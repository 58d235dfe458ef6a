"""`gallery-mirror migrate`: fetch then rewrite; its dry run writes nothing at all."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from rcloneservers import rclone_binary
from seedsite import SEED_FILES, SEED_PATH

from faultserver import FaultServer
from mirror.cli import main
from mirror.keep.lock import SiteLock

ROOT = Path(__file__).parents[1]


def tree(root: Path) -> dict[str, str]:
    """Every file under root with its hash and mtime: a dry run must change none."""
    return {
        str(
            p.relative_to(root)
        ): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mtime_ns}"
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_dry_run_lists_the_fetches_shows_the_diff_and_writes_nothing(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(site)
    code = main(["migrate", "--dry-run", "--site", str(site)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Would fetch 5 images (0 already mirrored).")
    expected = f"+![](/images/mirror/imgcdn.yaerxing.com{SEED_PATH}{SEED_FILES[1]})"
    assert expected in out
    assert "Would rewrite 6 references in 1 post " in out
    assert tree(site) == before and not (site / ".gallery-mirror").exists()
    assert sum(server.hits.values()) == 0


def test_migrate_fetches_then_rewrites_and_revert_undoes_it(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    post = site / "source" / "_posts" / "deepseek-post.md"
    original = post.read_bytes()
    assert main(["-q", "migrate", "--site", str(site)]) == 0
    out = capsys.readouterr().out
    assert "Mirrored 5 new images" in out and "Rewrote 6 references in 1 post " in out
    text = post.read_text(encoding="utf-8")
    assert "httpss://" not in text and "headimg: /images/mirror/imgcdn.yaerxing.com/" in text
    for name in SEED_FILES:
        assert f"/images/mirror/imgcdn.yaerxing.com{SEED_PATH}{name}" in text
    assert main(["verify", "--site", str(site)]) == 0
    assert main(["revert", "--site", str(site)]) == 0
    assert post.read_bytes() == original


def test_a_failed_image_is_not_rewritten_and_exits_1(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.status(SEED_PATH + SEED_FILES[2], 404)
    assert main(["-q", "migrate", "--site", str(site)]) == 1
    out = capsys.readouterr().out
    assert "Rewrote 5 references" in out and "fetch failed: HTTP 404" in out
    text = (site / "source" / "_posts" / "deepseek-post.md").read_text(encoding="utf-8")
    assert f"httpss://imgcdn.yaerxing.com{SEED_PATH}{SEED_FILES[2]}" in text


def test_the_quick_start_example_migrates_offline() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Mirrored 12 new images" in done.stdout
    assert "Rewrote 16 references in 2 posts" in done.stdout
    assert "+headimg: /images/mirror/imgcdn.yaerxing.com/upimage/" in done.stdout


def test_after_a_rewrite_to_a_cdn_the_cdn_copies_are_not_fetched(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rclone_binary()  # migrate --to cdn publishes first: to a local folder here
    toml = site / "gallery-mirror.toml"
    toml.write_text(
        toml.read_text() + '[rewrite]\ncdn_base = "https://cdn.example.com/g"\n'
        f'[publish]\nremote = "{site.parent / "cdn"}"\n'
    )
    assert main(["-q", "migrate", "--to", "cdn", "--site", str(site)]) == 0
    text = (site / "source" / "_posts" / "deepseek-post.md").read_text(encoding="utf-8")
    assert "https://cdn.example.com/g/imgcdn.yaerxing.com/upimage/" in text
    before = sum(server.hits.values())
    assert main(["-q", "fetch", "--site", str(site)]) == 0  # cdn.example.com is not asked
    assert "Mirrored 0 new images" in capsys.readouterr().out
    assert sum(server.hits.values()) == before


def test_migrate_takes_the_site_lock_once_for_both_steps(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with SiteLock(site / ".gallery-mirror"):
        assert main(["migrate", "--site", str(site)]) == 3
    assert sum(server.hits.values()) == 0
    assert main(["-q", "migrate", "--site", str(site)]) == 0  # one lock, not two in turn
