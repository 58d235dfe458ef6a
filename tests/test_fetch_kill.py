"""A fetch killed with SIGKILL mid-run, then run again, ends with the full mirror.

A real process is killed while some downloads are done and others hang; the
rerun must clean up, fetch what is missing, and leave nothing partial, with
thumbnails on (the default) and off.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.keep.lock import LockHeld, SiteLock

# (thumbnails on, number of images)
WAYS = [pytest.param(True, 10, id="thumbnails"), pytest.param(False, 24, id="no-thumbnails")]


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (shade, 100, 50)).save(out, "JPEG")
    return out.getvalue()


def fetch(site: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mirror", "-q", "fetch", "--site", str(site)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def half_stalled_site(
    tmp_path: Path,
    server: FaultServer,
    images: dict[str, bytes],
    ok: int,
    thumbnails: bool,
    stall: float = 60,
) -> Path:
    """A blog with one post using ``images``: the first ``ok`` are served whole, the
    others stop half-way through their body for ``stall`` seconds."""
    for n, (path, body) in enumerate(images.items()):
        if n < ok:
            server.file(path, body)
        else:
            server.stall(path, stall, body, before_headers=False)
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    (site / "source" / "_posts" / "p.md").write_text(
        "".join(f"![]({server.url(path)})\n" for path in images)
    )
    (site / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nretries = 0\ntimeout = 120\nper_host = 16\n"
        f"[thumbnails]\nenabled = {str(thumbnails).lower()}\n"
    )
    return site


def wait_for_the_lock(site: Path, seconds: float) -> None:
    """Until nothing holds the site lock: a killed fetch's thumbnail workers stop on their own."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with SiteLock(site / ".gallery-mirror"):
                return
        except LockHeld:
            assert time.monotonic() < deadline, "the killed fetch's workers still run"
            time.sleep(0.02)


@pytest.mark.parametrize(("thumbnails", "count"), WAYS)
def test_sigkill_then_rerun_converges(tmp_path: Path, thumbnails: bool, count: int) -> None:
    images = {f"/img/{n}.jpg": jpeg(10 * n) for n in range(count)}
    ok = count * 6 // 10  # the others hang until the kill
    with FaultServer() as server:
        site = half_stalled_site(tmp_path, server, images, ok, thumbnails)

        first = fetch(site)
        deadline = time.monotonic() + 30
        while sum(server.hits.values()) < len(images) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let the complete ones land
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL
        wait_for_the_lock(site, 2.0)

        # A write cut short by a kill leaves a temporary file like this one.
        leftover = site / "source" / "images" / "mirror" / "127.0.0.1_x" / ".7.jpg.0123abcd.part"
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(images["/img/7.jpg"][:100])
        for path, body in list(images.items())[ok:]:
            server.file(path, body)  # the hanging host recovers
        second = fetch(site)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 0, err.decode()

    mirror = site / "source" / "images" / "mirror"
    host = next(p for p in mirror.iterdir() if p.name not in ("127.0.0.1_x", "_thumbs"))
    for path, body in images.items():
        assert (host / path.lstrip("/")).read_bytes() == body
        thumb = mirror / "_thumbs" / "480" / host.name / f"{path.lstrip('/')}.webp"
        assert thumb.is_file() == thumbnails
    assert not [p for p in mirror.rglob("*") if p.name.endswith(".part")]
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        statuses = db.execute("SELECT status FROM urls").fetchall()
    assert statuses == [("mirrored",)] * len(images)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize(("thumbnails", "count"), WAYS)
def test_ctrl_c_stops_within_2_s_with_the_summary_so_far(
    tmp_path: Path, thumbnails: bool, count: int, stop: signal.Signals
) -> None:
    """SIGTERM (a scheduler's stop) like Ctrl-C, with the shell's code for each: 130, 143."""
    images = {f"/img/{n}.jpg": jpeg(10 * n) for n in range(count)}
    ok = count // 2
    with FaultServer() as server:
        site = half_stalled_site(tmp_path, server, images, ok, thumbnails)
        running = fetch(site)
        deadline = time.monotonic() + 30
        while sum(server.hits.values()) < len(images) and time.monotonic() < deadline:
            time.sleep(0.05)
        mirror = site / "source" / "images" / "mirror"
        while len(list(mirror.glob("*/img/*.jpg"))) < ok and time.monotonic() < deadline:
            time.sleep(0.05)  # the complete ones land (thumbnails first)
        time.sleep(0.2)  # and are reported
        interrupted = time.monotonic()
        running.send_signal(stop)
        out, err = running.communicate(timeout=10)
        took = time.monotonic() - interrupted

    assert running.returncode == 128 + stop, err.decode()
    assert took < 2.0
    assert out.decode().startswith(f"Interrupted: Mirrored {ok} new images")
    assert not [p for p in mirror.rglob("*") if p.name.endswith(".part")]
    assert len(list(mirror.glob("*/img/*.jpg"))) == ok
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        statuses = db.execute("SELECT status, count(*) FROM urls GROUP BY status").fetchall()
    assert sorted(statuses) == [("mirrored", ok), ("pending", count - ok)]
