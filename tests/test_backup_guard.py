"""`backup` keeps guarding the mirror after `migrate`: the posts point at it, it is the
only copy. Real files, a real server on 127.0.0.1, a real state; the clock is injected
for the re-hash schedule."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import test_backup as nightly_job

from faultserver import FaultServer
from mirror.cli import main
from mirror.config import load_config
from mirror.keep import store
from mirror.keep.site import open_site
from mirror.stages import scan as scanning
from mirror.stages.backup import BackupResult, backup

jpeg = nightly_job.jpeg
T0 = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def server() -> FaultServer:  # type: ignore[misc]  # a generator fixture, as test_backup's
    with FaultServer() as running:
        yield running


def migrated(tmp_path: Path, server: FaultServer, toml: str = "") -> Path:
    """Three images mirrored and the post rewritten to them: it names no source any more."""
    site = nightly_job.make_site(tmp_path, server, toml=toml)
    assert main(["migrate", "--site", str(site), "-q"]) == 0
    post = (site / "source" / "_posts" / "p.md").read_text()
    assert server.base not in post and "/images/mirror/" in post
    return site


def mirror_file(site: Path, n: int) -> Path:
    (found,) = (site / "source" / "images" / "mirror").glob(f"*/b/{n}.jpg")
    return found


def run(capsys: pytest.CaptureFixture[str], site: Path, *flags: str) -> tuple[int, str]:
    return nightly_job.backup(capsys, site, *flags)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row(site: Path, n: int) -> tuple[str, str, str | None]:
    """The state's sha256, history and file problem of image ``n``."""
    with closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db:
        found = db.execute(
            "SELECT sha256, history, file_problem FROM urls WHERE url LIKE ?", (f"%/b/{n}.jpg",)
        ).fetchone()
    return found  # type: ignore[no-any-return]


def test_a_deleted_file_is_restored_with_its_hash_and_the_next_run_exits_0(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server)
    capsys.readouterr()
    gone = mirror_file(site, 1)
    path = gone.relative_to(site / "source" / "images" / "mirror").as_posix()
    gone.unlink()
    report = tmp_path / "run.json"
    code, out = run(capsys, site, "--json", str(report))
    assert code == 1  # the run found a problem, and says so to the scheduler
    assert f"missing: {server.base}/b/1.jpg: {path} is gone\n" in out
    assert f"repaired: {server.base}/b/1.jpg: {path} (the recorded bytes, from the origin)" in out
    assert "1 missing, 0 changed on disk, 1 repaired, 0 unrepairable" in out
    assert gone.read_bytes() == jpeg(40) and row(site, 1)[0] == sha(jpeg(40))
    data = json.loads(report.read_text())
    assert data["summary"]["missing"] == 1 and data["summary"]["repaired"] == 1
    (item,) = data["files"]
    assert item["path"] == path and item["problem"] == "missing" and item["repair"] == "same"
    assert item["posts"] == ["source/_posts/p.md:2"]
    code, out = run(capsys, site)
    assert code == 0 and "missing" not in out
    assert main(["verify", "--site", str(site)]) == 0


def test_appended_bytes_are_found_by_the_stat_and_repaired(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server)
    capsys.readouterr()
    grown = mirror_file(site, 2)
    with grown.open("ab") as f:
        f.write(b"junk")
    before = nightly_job.requests(server)
    code, out = run(capsys, site)
    assert code == 1 and "changed on disk: " in out and " bytes recorded" not in out
    assert f"has {len(jpeg(80)) + 4} bytes, {len(jpeg(80))} recorded" in out
    assert grown.read_bytes() == jpeg(80)
    assert nightly_job.requests(server) == before + 1  # the repair only
    kept = list((site / ".gallery-mirror" / "versions").rglob("2.jpg.*"))
    assert [k.read_bytes() for k in kept] == [jpeg(80) + b"junk"]  # never overwritten silently
    assert run(capsys, site)[0] == 0


def nightly_at(site: Path, when: datetime, *, verify: bool = False) -> BackupResult:
    """One `backup` as the stage runs it, at ``when``."""
    config = load_config(None, site=site)
    with open_site(config, write=True) as session:
        return backup(session, lambda: scanning.scan(config), verify=verify, clock=lambda: when)


def flip_a_byte(file: Path) -> None:
    """Rot: one byte differs, the size and mtime stay."""
    info = file.stat()
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_a_flipped_byte_is_found_by_the_scheduled_rehash_within_the_period(
    tmp_path: Path, server: FaultServer
) -> None:
    # A period of 3000 days over 3 small files: one file per run, the longest unchecked first.
    site = nightly_job.make_site(tmp_path, server, toml="[backup]\nverify_after = 3000\n")
    assert not nightly_at(site, T0).fetched.failed  # all three recorded as checked at T0
    rotten = mirror_file(site, 2)  # the last in path order: hashed last
    flip_a_byte(rotten)
    for day in (1, 2):  # the stat check sees nothing; the schedule hashes 0.jpg, then 1.jpg
        result = nightly_at(site, T0 + timedelta(days=day))
        assert result.guarded.hashed == 1 and not result.guarded.problems
    result = nightly_at(site, T0 + timedelta(days=3))
    (found,) = result.guarded.problems
    assert found.problem == "changed on disk" and "same size and mtime" in found.detail
    assert found.repair == "same" and rotten.read_bytes() == jpeg(80)


def test_every_file_unchecked_for_the_period_is_rehashed(
    tmp_path: Path, server: FaultServer
) -> None:
    site = nightly_job.make_site(tmp_path, server, toml="[backup]\nverify_after = 3000\n")
    nightly_at(site, T0)
    flip_a_byte(mirror_file(site, 2))
    result = nightly_at(site, T0 + timedelta(days=3001))
    assert result.guarded.hashed == 2 and len(result.guarded.problems) == 1


def test_the_rehash_takes_turns_over_files_no_post_uses_and_leaves_them_to_prune(
    tmp_path: Path, server: FaultServer
) -> None:
    """The share is chosen before the scan (to be read beside it): among every
    mirrored file. One no post uses any more is hashed in its turn; not as
    recorded, it is no problem of the night's: --prune moves it away."""
    site = nightly_job.make_site(tmp_path, server, toml="[backup]\nverify_after = 3000\n")
    nightly_at(site, T0)
    post = site / "source" / "_posts" / "p.md"
    text = post.read_text()
    post.write_text("".join(text.splitlines(keepends=True)[1:]))  # 0.jpg unused
    flip_a_byte(mirror_file(site, 0))
    result = nightly_at(site, T0 + timedelta(days=1))  # 0.jpg's turn: first in path order
    assert result.guarded.checked == 2 and result.guarded.hashed == 0
    assert not result.guarded.problems and mirror_file(site, 0).read_bytes() != jpeg(0)
    result = nightly_at(site, T0 + timedelta(days=2))  # out of the turns: 1.jpg's now
    assert result.guarded.hashed == 1 and not result.guarded.problems
    post.write_text(text)  # used again: read for its recorded problem, and repaired
    (found,) = nightly_at(site, T0 + timedelta(days=3)).guarded.problems
    assert found.repair == "same" and mirror_file(site, 0).read_bytes() == jpeg(0)


def test_verify_rehashes_everything_now(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server, toml="[backup]\nverify_after = 3000\n")
    rotten = mirror_file(site, 2)
    flip_a_byte(rotten)
    capsys.readouterr()
    code, out = run(capsys, site, "--verify")
    assert code == 1 and "changed on disk: " in out and "(same size and mtime)" in out
    assert "3 files checked (2 re-hashed" in out  # the third was repaired, not found good
    assert rotten.read_bytes() == jpeg(80)
    assert run(capsys, site, "--verify")[0] == 0


def test_a_file_no_source_gives_back_is_reported_every_run_with_its_posts(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server)
    mirror_file(site, 0).unlink()
    server.status("/b/0.jpg", 404)
    capsys.readouterr()
    for _ in range(2):
        code, out = run(capsys, site)
        assert code == 1
        assert f"unrepairable: {server.base}/b/0.jpg: " in out
        assert "HTTP 404" in out and "used by source/_posts/p.md:1" in out
        assert "0 failed" in out  # one report per file, not a second by the fetch
    assert row(site, 0)[2] is not None  # the problem is in the state until fixed
    server.file("/b/0.jpg", jpeg(0))
    code, out = run(capsys, site)
    assert code == 1 and f"repaired: {server.base}/b/0.jpg" in out
    assert row(site, 0)[2] is None and run(capsys, site)[0] == 0


def test_repairs_stop_at_the_deadline_and_the_next_run_repairs(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server)
    gone = mirror_file(site, 1)
    gone.unlink()
    server.stall("/b/1.jpg", 30, jpeg(40))  # the source answers, in half a minute
    capsys.readouterr()
    report = tmp_path / "run.json"
    started = time.monotonic()
    code, out = run(capsys, site, "--max-time", "1", "--json", str(report))
    assert time.monotonic() - started < 10  # not the source's half a minute
    assert code == 1
    assert (
        "backup: stopped: the deadline passed (1 s after the start); 1 file not repaired yet" in out
    )
    data = json.loads(report.read_text())
    assert data["stopped"]["kind"] == "deadline" and data["summary"]["not_repaired"] == 1
    (item,) = data["files"]
    assert item["repair"] == "not tried" and not item["repaired"]
    assert row(site, 1)[2] is not None  # still a problem: the next run tries again
    server.file("/b/1.jpg", jpeg(40))
    code, out = run(capsys, site)
    assert code == 1 and f"repaired: {server.base}/b/1.jpg" in out
    assert gone.read_bytes() == jpeg(40) and run(capsys, site)[0] == 0


def test_prune_does_nothing_after_the_repairs_stopped(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server, toml="[backup]\nprune_after = 0\n")
    post = site / "source" / "_posts" / "p.md"
    lines = post.read_text().splitlines(keepends=True)
    post.write_text("".join(line for line in lines if "/b/2.jpg" not in line))  # 2: unused
    unused = mirror_file(site, 2)
    mirror_file(site, 1).unlink()
    server.stall("/b/1.jpg", 30, jpeg(40))
    capsys.readouterr()
    code, out = run(capsys, site, "--prune", "--max-time", "1")
    assert code == 1 and "backup: stopped: the deadline passed" in out
    assert "backup: not pruned: the run stopped early" in out
    assert unused.exists()


NIGHT = """
import sys
from mirror.cli import main
code = main(["-q", "--no-progress", "backup", "--site", sys.argv[1]])
heavy = ["asyncio", "aiohttp", "httpx", "tenacity", "PIL", "tqdm", "secrets", "difflib", "html"]
print(code, sorted(name for name in heavy if name in sys.modules))
"""


def test_a_night_with_nothing_to_do_imports_no_network_and_no_pillow(
    tmp_path: Path, server: FaultServer
) -> None:
    """They take longer to import than such a night takes altogether."""
    site = migrated(tmp_path, server)
    assert main(["-q", "backup", "--site", str(site)]) == 0  # the first night after
    night = subprocess.run(
        [sys.executable, "-c", NIGHT, str(site)], capture_output=True, text=True, check=True
    )
    assert night.stdout.split("\n")[-2] == "0 []", night.stderr
    mirror_file(site, 1).unlink()  # a repair: now the network is needed
    night = subprocess.run(
        [sys.executable, "-c", NIGHT, str(site)], capture_output=True, text=True, check=True
    )
    assert "'aiohttp'" in night.stdout.split("\n")[-2]


def test_a_full_disk_during_repairs_stops_the_run_cleanly(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = migrated(tmp_path, server)
    gone = mirror_file(site, 2)
    gone.unlink()
    capsys.readouterr()

    def full(self: store.AtomicFile) -> object:
        raise OSError(28, os.strerror(28))  # ENOSPC, as a write to a full disk gives it

    monkeypatch.setattr(store.AtomicFile, "__enter__", full)
    code, out = run(capsys, site)
    err = capsys.readouterr().err
    assert code == 1 and "error" not in err
    assert f"backup: stopped: no space left in {site / 'source' / 'images' / 'mirror'}" in out
    assert "1 file not repaired yet" in out
    assert not gone.exists() and row(site, 2)[2] is not None
    monkeypatch.undo()
    code, out = run(capsys, site)
    assert code == 1 and f"repaired: {server.base}/b/2.jpg" in out
    assert gone.read_bytes() == jpeg(80)


def test_other_bytes_from_the_source_go_to_the_path_and_the_old_hash_to_the_history(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server)
    broken = mirror_file(site, 1)
    with broken.open("ab") as f:
        f.write(b"x")
    server.replace("/b/1.jpg", jpeg(250), etag="new")
    capsys.readouterr()
    code, out = run(capsys, site)
    assert code == 1
    assert "the source now serves other bytes" in out and "stays in the record's history" in out
    assert broken.read_bytes() == jpeg(250)  # the post's path serves a good image
    recorded, history, problem = row(site, 1)
    assert recorded == sha(jpeg(250)) and problem is None
    assert [h["sha256"] for h in json.loads(history)] == [sha(jpeg(40))]
    kept = list((site / ".gallery-mirror" / "versions").rglob("1.jpg.*"))
    assert [k.read_bytes() for k in kept] == [jpeg(40) + b"x"]
    assert run(capsys, site)[0] == 0
    assert main(["verify", "--site", str(site)]) == 0


def test_repaired_files_get_their_thumbnails_again(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server)
    mirror = site / "source" / "images" / "mirror"
    (thumb,) = (mirror / "_thumbs").rglob("1.jpg.webp")
    mirror_file(site, 1).unlink()
    thumb.unlink()
    capsys.readouterr()
    code, out = run(capsys, site)
    assert code == 1 and "repaired: " in out and "1 thumbnail" in out
    assert thumb.is_file() and mirror_file(site, 1).read_bytes() == jpeg(40)


def test_refresh_reaches_the_recorded_sources_of_rewritten_posts(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = migrated(tmp_path, server, toml="[backup]\nrefresh_after = 0\n")
    server.replace("/b/1.jpg", jpeg(250), etag="changed")
    capsys.readouterr()
    code, out = run(capsys, site, "--refresh")
    assert code == 0 and f"changed: {server.base}/b/1.jpg: " in out
    assert "1 changed, 2 unchanged, 0 already mirrored" in out
    assert mirror_file(site, 1).read_bytes() == jpeg(250)
    conditional = [h for h in server.headers["/b/0.jpg"] if "if-none-match" in h]
    assert conditional and conditional[-1]["if-none-match"] == '"v0"'
    server.status("/b/2.jpg", 404)
    code, out = run(capsys, site, "--refresh")
    assert code == 0 and f"gone: {server.base}/b/2.jpg: HTTP 404; the mirrored copy is kept" in out


PAUSED = """
import sys, time
from mirror.cli import main
from mirror.stages import backup
real = backup._prune
def paused(*args, **kwargs):
    print("between fetch and prune", flush=True)
    time.sleep(float(sys.argv[2]))
    return real(*args, **kwargs)
backup._prune = paused
sys.exit(main(["backup", "--prune", "--site", sys.argv[1], "--no-progress"]))
"""


def test_the_lock_is_held_between_fetch_and_prune(tmp_path: Path, server: FaultServer) -> None:
    site = nightly_job.make_site(tmp_path, server, toml="[backup]\nprune_after = 0\n")
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED, str(site), "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        while line and line != "between fetch and prune\n":
            line = first.stdout.readline()
        assert line, first.stderr.read() if first.stderr else ""
        for command in ("backup", "fetch", "rewrite"):
            second = subprocess.run(
                [sys.executable, "-m", "mirror", command, "--site", str(site)],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert second.returncode == 3, second.stderr
            assert f"process {first.pid} " in second.stderr
    finally:
        first.kill()
        first.wait(10)


def test_a_row_from_before_the_upgrade_is_hashed_first_then_gets_its_mtime(
    tmp_path: Path, server: FaultServer
) -> None:
    site = nightly_job.make_site(tmp_path, server, toml="[backup]\nverify_after = 3000\n")
    nightly_at(site, T0)
    with closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db, db:
        db.execute("UPDATE urls SET mtime_ns = NULL, verified_at = NULL WHERE url LIKE '%/2.jpg'")
    rotten = mirror_file(site, 2)
    flip_a_byte(rotten)
    result = nightly_at(site, T0 + timedelta(days=1))
    (found,) = result.guarded.problems  # never hashed since the upgrade: first in line
    assert found.path.endswith("/b/2.jpg") and found.repair == "same"
    with closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db:
        (mtime,) = db.execute("SELECT mtime_ns FROM urls WHERE url LIKE '%/2.jpg'").fetchone()
    assert mtime == rotten.stat().st_mtime_ns
