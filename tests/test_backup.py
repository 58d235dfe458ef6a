"""`gallery-mirror backup`: the unattended job, run as cron or systemd would run it."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.cli import main

ROOT = Path(__file__).parents[1]
UNITS = ROOT / "contrib" / "systemd"


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 150), (shade, 120, 60)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def make_site(tmp_path: Path, server: FaultServer, count: int = 3, toml: str = "") -> Path:
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    urls = [server.etag(f"/b/{n}.jpg", jpeg(40 * n), f"v{n}") for n in range(count)]
    (site / "source" / "_posts" / "p.md").write_text("".join(f"![]({u})\n" for u in urls))
    (site / "gallery-mirror.toml").write_text(
        f"[download]\nallow_private = true\nretries = 0\nfsync = false\n{toml}"
    )
    return site


def backup(capsys: pytest.CaptureFixture[str], site: Path, *flags: str) -> tuple[int, str]:
    code = main(["backup", "--site", str(site), *flags])
    return code, capsys.readouterr().out


def requests(server: FaultServer) -> int:
    return sum(server.hits.values())


def test_first_run_logs_each_new_image_and_a_summary_line(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server)
    code, out = backup(capsys, site)
    assert code == 0
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["new"] * 3
    assert re.fullmatch(
        r"backup: 3 new \(0\.0 MB\), 0 changed, 0 unchanged, 0 already mirrored, 0 failed,"
        r" 0 re-checks failed"
        r" \(0 sources newly gone\), 0 pruned, 3 thumbnails, in \d+\.\d s",
        lines[-1],
    )


def test_a_second_run_makes_no_requests(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server)
    backup(capsys, site)
    before = requests(server)
    code, out = backup(capsys, site)
    assert code == 0 and requests(server) == before
    assert out.startswith("backup: 0 new (0.0 MB), 0 changed, 0 unchanged, 3 already mirrored")


def test_refresh_honours_refresh_after_then_keeps_or_replaces(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server)
    backup(capsys, site)
    before = requests(server)
    backup(capsys, site, "--refresh")  # refresh_after = 7 days: nothing is due yet
    assert requests(server) == before

    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + "[backup]\nrefresh_after = 0\n")
    server.replace("/b/1.jpg", jpeg(250), etag="changed")
    code, out = backup(capsys, site, "--refresh")
    assert code == 0 and requests(server) == before + 3
    assert "changed: " in out and "2 unchanged" in out.splitlines()[-1]
    conditional = [h for h in server.headers["/b/0.jpg"] if "if-none-match" in h]
    assert conditional and conditional[-1]["if-none-match"] == '"v0"'
    kept = list((site / ".gallery-mirror" / "versions").rglob("1.jpg.*"))
    assert len(kept) == 1 and kept[0].read_bytes() == jpeg(40)


def test_a_source_that_dies_is_reported_once_as_gone(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, toml="[backup]\nrefresh_after = 0\n")
    backup(capsys, site)
    server.status("/b/2.jpg", 404)
    code, out = backup(capsys, site, "--refresh")
    assert code == 0  # the mirror is complete: the copy is kept, and the log says so
    assert f"gone: {server.base}/b/2.jpg: HTTP 404; the mirrored copy is kept" in out
    assert "0 failed, 1 re-check failed (1 source newly gone)" in out
    mirror = site / "source" / "images" / "mirror"
    assert list(mirror.glob("*/b/2.jpg"))  # the copy stays
    code, out = backup(capsys, site, "--refresh")
    assert code == 0 and "gone:" not in out and f"failed: {server.base}/b/2.jpg" in out


def test_quiet_prints_only_problems_and_json_has_the_run(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server)
    server.status("/b/0.jpg", 500)
    report = tmp_path / "run.json"
    code, out = backup(capsys, site, "-q", "--json", str(report))
    assert code == 1
    problems = [line for line in out.splitlines() if not line.startswith("backup:")]
    assert problems == [f"failed: {server.base}/b/0.jpg: HTTP 500 (after 1 attempt)"]
    data = json.loads(report.read_text())
    assert data["schema"] == 1 and data["exit_code"] == 1
    assert data["summary"]["new"] == 2 and data["summary"]["failed"] == 1
    assert data["failed"][0]["posts"] == ["source/_posts/p.md:1"]


def test_prune_waits_for_the_grace_period_then_moves_to_trash(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server)
    backup(capsys, site)
    post = site / "source" / "_posts" / "p.md"
    post.write_text("".join(post.read_text().splitlines(keepends=True)[1:]))  # drop 0.jpg
    mirror = site / "source" / "images" / "mirror"
    (original,) = mirror.glob("*/b/0.jpg")
    code, out = backup(capsys, site, "--prune")
    assert code == 0 and original.exists() and "0 pruned" in out  # 30 days of grace

    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + "[backup]\nprune_after = 0\n")
    code, out = backup(capsys, site, "--prune")
    assert code == 0 and "1 pruned" in out and "pruned: " in out
    assert not original.exists()
    trash = site / ".gallery-mirror" / "trash"
    assert (trash / original.relative_to(mirror)).read_bytes() == jpeg(0)
    assert list((trash / "_thumbs").rglob("0.jpg.webp"))
    assert not list(mirror.rglob("0.jpg*"))
    assert len(list(mirror.glob("*/b/*.jpg"))) == 2  # still referenced: kept


def test_prune_of_a_file_already_missing_says_so(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, toml="[backup]\nprune_after = 0\n")
    backup(capsys, site)
    post = site / "source" / "_posts" / "p.md"
    post.write_text("".join(post.read_text().splitlines(keepends=True)[2:]))  # drop 0 and 1
    mirror = site / "source" / "images" / "mirror"
    (gone,) = mirror.glob("*/b/0.jpg")
    gone.unlink()  # deleted by hand
    report = tmp_path / "run.json"
    code, out = backup(capsys, site, "--prune", "--json", str(report))
    assert code == 0 and "2 pruned" in out
    missing = gone.relative_to(mirror).as_posix()
    assert f"{missing} was already missing; its record is forgotten" in out
    assert f"{missing.replace('0.jpg', '1.jpg')} moved to .gallery-mirror/trash/" in out
    moved = {p["path"]: p["moved_to_trash"] for p in json.loads(report.read_text())["pruned"]}
    assert moved == {missing: False, missing.replace("0.jpg", "1.jpg"): True}
    trash = site / ".gallery-mirror" / "trash"
    assert not (trash / missing).exists() and (trash / missing.replace("0.jpg", "1.jpg")).exists()


def test_prune_never_runs_when_a_post_could_not_be_read(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, toml="[backup]\nprune_after = 0\n")
    backup(capsys, site)
    post = site / "source" / "_posts" / "p.md"
    post.write_bytes(b"\xff\xfe not UTF-8 \x00")
    code, out = backup(capsys, site, "--prune")
    assert code == 1
    assert "backup: not pruned: 1 post could not be read" in out
    assert len(list((site / "source" / "images" / "mirror").glob("*/b/*.jpg"))) == 3


def test_bad_config_exits_2(tmp_path: Path, server: FaultServer) -> None:
    site = make_site(tmp_path, server, toml="retrys = 3\n")
    assert main(["backup", "--site", str(site)]) == 2


def run_backup(site: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirror", "backup", "--site", str(site), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


HOLD = """
import sys, time
from pathlib import Path
from mirror.keep.lock import SiteLock
with SiteLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_process_is_refused_with_the_holders_pid_and_a_killed_holder_is_not(
    tmp_path: Path, server: FaultServer
) -> None:
    site = make_site(tmp_path, server)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(site / ".gallery-mirror")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        refused = run_backup(site)
        out, err = refused.communicate(timeout=30)
        assert refused.returncode == 3, err
        assert f"process {holder.pid} " in err and "started " in err
        assert requests(server) == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    # The kernel dropped the dead holder's lock: the next run just runs.
    after = run_backup(site)
    out, err = after.communicate(timeout=60)
    assert after.returncode == 0, err
    assert "3 new" in out


def test_sigterm_stops_cleanly_like_ctrl_c(tmp_path: Path, server: FaultServer) -> None:
    site = make_site(tmp_path, server, count=2)
    posts = site / "source" / "_posts" / "p.md"
    slow = [server.stall(f"/slow/{n}.jpg", 60, jpeg(n), before_headers=False) for n in range(3)]
    posts.write_text(posts.read_text() + "".join(f"![]({u})\n" for u in slow))
    running = run_backup(site, "--no-progress")
    deadline = time.monotonic() + 30
    mirror = site / "source" / "images" / "mirror"
    while len(list(mirror.glob("*/b/*.jpg"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    while sum(server.hits[f"/slow/{n}.jpg"] for n in range(3)) < 3:
        time.sleep(0.05)
    time.sleep(0.3)
    stopped = time.monotonic()
    running.send_signal(signal.SIGTERM)
    out, err = running.communicate(timeout=10)
    assert time.monotonic() - stopped < 2.0
    assert running.returncode == 128 + signal.SIGTERM, err
    assert "backup: interrupted; 2 new" in out
    assert not [p for p in mirror.rglob("*") if p.name.endswith(".part")]
    assert not list(mirror.glob("*/slow/*"))


# --- scheduling: the README's cron line and the systemd units


def test_readme_cron_line_runs_backup() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if "gallery-mirror backup" in line]
    cron = [line for line in lines if re.match(r"^(\S+\s+){5}cd ", line)]
    assert cron, "the README shows a crontab line"
    minute, hour, day, month, weekday = cron[0].split()[:5]
    assert minute.isdigit() and 0 <= int(minute) < 60 and hour.isdigit() and int(hour) < 24
    assert (day, month, weekday) == ("*", "*", "*")


def test_systemd_units_are_valid(tmp_path: Path) -> None:
    service = (UNITS / "gallery-mirror-backup.service").read_text()
    timer = (UNITS / "gallery-mirror-backup.timer").read_text()
    assert "ExecStart=" in service and " backup " in service and "Type=oneshot" in service
    assert "OnCalendar=" in timer and "WantedBy=timers.target" in timer
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units' keys were checked above only")
    blog = tmp_path / "blog"
    blog.mkdir()
    executable = Path(sys.executable).with_name("gallery-mirror")
    (tmp_path / "gallery-mirror-backup.service").write_text(
        service.replace("%h/.local/bin/gallery-mirror", str(executable)).replace(
            "%h/blog", str(blog)
        )
    )
    (tmp_path / "gallery-mirror-backup.timer").write_text(timer)
    units = [str(tmp_path / f"gallery-mirror-backup.{kind}") for kind in ("service", "timer")]
    quiet = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    done = subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, check=False, env=quiet
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_prune_keeps_files_that_rewritten_posts_point_at(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, toml="[backup]\nprune_after = 0\n")
    backup(capsys, site)
    assert main(["rewrite", "--site", str(site)]) == 0
    capsys.readouterr()
    text = (site / "source" / "_posts" / "p.md").read_text()
    assert "/images/mirror/" in text and server.base not in text
    code, out = backup(capsys, site, "--prune")
    assert code == 0 and "0 pruned" in out
    assert len(list((site / "source" / "images" / "mirror").glob("*/b/*.jpg"))) == 3
    assert main(["verify", "--site", str(site)]) == 0


def test_a_failed_recheck_keeps_the_copy_exits_0_and_waits_refresh_after(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, toml="[backup]\nrefresh_after = 0\n")
    backup(capsys, site)
    server.status("/b/1.jpg", 503)
    code, out = backup(capsys, site, "--refresh")
    assert code == 0  # nothing is lost: the copy is kept
    assert f"failed: {server.base}/b/1.jpg: HTTP 503 (after 1 attempt); the mirrored copy" in out
    assert "1 re-check failed" in out
    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text().replace("refresh_after = 0", "refresh_after = 7"))
    before = requests(server)
    backup(capsys, site, "--refresh")
    assert requests(server) == before  # checked (and failed) just now: not due again
