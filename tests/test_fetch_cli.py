"""`gallery-mirror fetch` end to end: a real site, a real server, a real state file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from seedsite import SEED_FILES, SEED_PATH, jpeg

from faultserver import FaultServer
from mirror.cli import main
from mirror.keep import store
from mirror.keep.lock import SiteLock
from mirror.stages import fetch as fetching


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def requests(server: FaultServer) -> int:
    return sum(server.hits.values())


def test_fetch_mirrors_the_seed_post(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "fetch", "--site", str(site))
    assert code == 0, out
    assert out.startswith("Mirrored 5 new images")
    mirror = site / "source" / "images" / "mirror" / "imgcdn.yaerxing.com" / SEED_PATH.strip("/")
    assert sorted(p.name for p in mirror.iterdir()) == SEED_FILES
    assert requests(server) == 5  # the headimg and gallery image 1 are one URL
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        rows = db.execute("SELECT status, source FROM urls").fetchall()
    assert rows == [("mirrored", "alternative")] * 5


def mirrored_rows(site: Path) -> int:
    with contextlib.closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db:
        (rows,) = db.execute("SELECT count(*) FROM urls WHERE status = 'mirrored'").fetchone()
    return int(rows)


@pytest.fixture
def synced_site(site: Path) -> Path:
    """The seed site with fsync on (the suite's sites turn it off for speed)."""
    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text().replace("fsync = false", "fsync = true"))
    return site


IMAGE_DIR = Path("source/images/mirror/imgcdn.yaerxing.com", SEED_PATH.strip("/"))


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="directories cannot be fsynced here")
def test_renames_are_durable_before_the_state_records_them(
    synced_site: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced: list[tuple[Path, int]] = []  # each directory fsync, and the rows recorded then
    real = store._fsync_dir

    def spy(directory: Path) -> None:
        synced.append((directory, mirrored_rows(synced_site)))
        real(directory)

    monkeypatch.setattr(store, "_fsync_dir", spy)
    assert run(capsys, "fetch", "--site", str(synced_site))[0] == 0
    # The five images' directory once (not once per image), before any row.
    image_dir = synced_site / IMAGE_DIR
    assert [rows for directory, rows in synced if directory == image_dir] == [0]
    assert mirrored_rows(synced_site) == 5


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="directories cannot be fsynced here")
def test_a_failed_directory_fsync_records_nothing_it_covers(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # More images than one batch of rows: the batch's sync fails mid-run, and
    # the last flush (after the error) must not record that batch either.
    count = fetching._BATCH + 6
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    for n in range(count):
        server.file(f"/eio/{n}.jpg", jpeg(n % 250))
    (site / "source" / "_posts" / "p.md").write_text(
        "".join(f"![]({server.url(f'/eio/{n}.jpg')})\n" for n in range(count))
    )
    (site / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\n[thumbnails]\nenabled = false\n"
    )
    real = store._fsync_dir

    def failing(directory: Path) -> None:
        if directory.name == "eio":  # the images' own directory
            raise OSError(errno.EIO, "Input/output error", str(directory))
        real(directory)

    monkeypatch.setattr(store, "_fsync_dir", failing)
    code, _, err = run(capsys, "fetch", "--site", str(site))
    assert code == 1
    assert "/eio: Input/output error" in err
    assert mirrored_rows(site) == 0  # the files may vanish: no row says they are there


def test_a_second_run_makes_no_requests(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "fetch", "--site", str(site))[0] == 0
    before = requests(server)
    code, out, _ = run(capsys, "fetch", "--site", str(site))
    assert code == 0 and requests(server) == before
    assert "Mirrored 0 new images (0.0 MB), 5 already mirrored, 0 failed" in out


def test_a_deleted_file_is_fetched_again(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "fetch", "--site", str(site))
    mirror = site / "source" / "images" / "mirror" / "imgcdn.yaerxing.com" / SEED_PATH.strip("/")
    (mirror / SEED_FILES[2]).unlink()
    before = requests(server)
    code, out, _ = run(capsys, "fetch", "--site", str(site))
    assert code == 0 and requests(server) == before + 1
    assert out.startswith("Mirrored 1 new image") and (mirror / SEED_FILES[2]).exists()


def test_failures_exit_1_and_name_the_url_and_the_posts(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.status(SEED_PATH + SEED_FILES[1], 404)
    code, out, _ = run(capsys, "fetch", "--site", str(site))
    assert code == 1
    assert "Mirrored 4 new images" in out and "1 failed" in out
    assert "HTTP 404 (from " in out
    assert f"https://imgcdn.yaerxing.com{SEED_PATH}{SEED_FILES[1]}" in out
    assert "used by source/_posts/deepseek-post.md:15" in out
    assert not list(site.rglob("*.part"))


def test_another_run_holding_the_lock_exits_3(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SiteLock(site / ".gallery-mirror"):
        code, out, err = run(capsys, "fetch", "--site", str(site))
    assert code == 3 and out == ""
    assert "lock" in err


def test_hash_layout_names_files_by_content(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + '[mirror]\nlayout = "hash"\n')
    code, out, _ = run(capsys, "fetch", "--site", str(site))
    assert code == 0, out
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        rows = db.execute("SELECT path, sha256 FROM urls").fetchall()
    assert len(rows) == 5
    for path, digest in rows:
        assert path == f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"
        file = site / "source/images/mirror" / path
        assert hashlib.sha256(file.read_bytes()).hexdigest() == digest


def test_refresh_rechecks_and_replaces_what_changed(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "fetch", "--site", str(site))
    changed = jpeg(250)
    server.replace(SEED_PATH + SEED_FILES[0], changed, etag="v2")
    code, out, _ = run(capsys, "fetch", "--refresh", "--site", str(site))
    assert code == 0, out
    assert "Re-checked: 4 unchanged, 1 changed and replaced" in out
    assert requests(server) == 10
    mirror = site / "source/images/mirror/imgcdn.yaerxing.com" / SEED_PATH.strip("/")
    assert (mirror / SEED_FILES[0]).read_bytes() == changed
    (kept,) = (site / ".gallery-mirror" / "versions").rglob(SEED_FILES[0] + ".*")
    assert kept.read_bytes() == jpeg(0)
    code, out, _ = run(capsys, "fetch", "--site", str(site))
    assert requests(server) == 10 and "5 already mirrored" in out


def test_verbose_names_each_image_and_quiet_only_the_summary(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.status(SEED_PATH + SEED_FILES[1], 404)
    _, out, err = run(capsys, "fetch", "-v", "--site", str(site))
    assert err.count("mirrored: https://imgcdn.yaerxing.com/") == 4
    assert f"failed: https://imgcdn.yaerxing.com{SEED_PATH}{SEED_FILES[1]} (HTTP 404" in err
    (site / ".gallery-mirror" / "state.sqlite").unlink()
    shutil.rmtree(site / "source" / "images")
    _, out, err = run(capsys, "fetch", "-q", "--site", str(site))
    assert err == "" and out.startswith("Mirrored 4 new images")


def test_scan_json_reports_what_fetch_did_and_writes_nothing(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.status(SEED_PATH + SEED_FILES[1], 404)
    run(capsys, "fetch", "--site", str(site))
    state_dir = site / ".gallery-mirror"
    before = {p: p.read_bytes() for p in state_dir.iterdir() if p.is_file()}

    code, out, _ = run(capsys, "scan", "--json", "--site", str(site))
    assert code == 0
    doc = json.loads(out)
    by_url = {u["url"]: u for u in doc["urls"]}
    failed = by_url[f"https://imgcdn.yaerxing.com{SEED_PATH}{SEED_FILES[1]}"]
    assert (failed["status"], failed["path"]) == ("failed", None)
    assert "HTTP 404" in failed["error"]
    mirrored = by_url[f"https://imgcdn.yaerxing.com{SEED_PATH}{SEED_FILES[0]}"]
    assert mirrored["status"] == "mirrored" and mirrored["error"] is None
    assert (site / "source" / "images" / "mirror" / mirrored["path"]).is_file()
    summary = doc["summary"]
    assert (summary["mirrored"], summary["failed"], summary["pending"]) == (4, 1, 0)
    assert {p: p.read_bytes() for p in state_dir.iterdir() if p.is_file()} == before


def test_scan_before_any_fetch_creates_no_state(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "scan", "--json", "--site", str(site))
    assert code == 0 and json.loads(out)["summary"]["pending"] == 5
    assert not (site / ".gallery-mirror").exists()
