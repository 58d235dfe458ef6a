"""A run that stops itself: a deadline (`--max-time`, `backup.max_time`), a full
disk, an unwritable mirror. What finished is recorded, nothing partial stays,
and the run ends with its summary (exit 1). Real sockets, real files, a real
tmpfs where this machine lets the test mount one."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.cli import main
from mirror.keep import store

STALL = 60.0  # seconds a stalled answer waits: far longer than any run here may take
MIRROR = Path("source/images/mirror")


def noise(size: tuple[int, int], fmt: str = "BMP", seed: int = 0) -> bytes:
    """An image that does not compress: its file is about as large as its pixels."""
    pixels = hashlib.shake_256(f"{seed}".encode()).digest(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, fmt)
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def make_site(tmp_path: Path, urls: list[str], toml: str = "") -> Path:
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    (site / "source" / "_posts" / "p.md").write_text("".join(f"![]({u})\n" for u in urls))
    (site / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nretries = 0\nfsync = false\ntimeout = 300\n" + toml
    )
    return site


def rows(site: Path) -> dict[str, tuple[str, str | None, str | None]]:
    """url -> (status, path, sha256)"""
    with contextlib.closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db:
        found = db.execute("SELECT url, status, path, sha256 FROM urls").fetchall()
    return {url: (status, path, sha) for url, status, path, sha in found}


def files(site: Path) -> dict[str, bytes]:
    """The images in the mirror (thumbnails left out), by path relative to it."""
    root = site / MIRROR
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "_thumbs" not in p.parts
    }


def partials(site: Path) -> list[Path]:
    return [p for p in (site / MIRROR).rglob("*") if store.is_partial(p.name)]


def assert_recorded_as_on_disk(site: Path) -> None:
    """Every file in the mirror is recorded with its hash, every mirrored row has its file."""
    on_disk = files(site)
    mirrored = {path: sha for status, path, sha in rows(site).values() if status == "mirrored"}
    assert set(mirrored) == set(on_disk)
    for path, data in on_disk.items():
        assert hashlib.sha256(data).hexdigest() == mirrored[path]


# -- the deadline -----------------------------------------------------------------


def test_max_time_cancels_a_stalled_download_records_the_rest_and_leaves_no_part(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    quick = [server.file(f"/q{n}.bmp", noise((20, 20), seed=n)) for n in range(3)]
    # 750 kB of the body arrive, then nothing: a temporary file is being written.
    big = noise((500, 500))
    stalled = server.stall("/stalled.bmp", STALL, big, before_headers=False, sent=len(big) - 1000)
    hanging = server.stall("/hanging.bmp", STALL)  # not even the headers come
    site = make_site(tmp_path, [*quick, stalled, hanging])

    seen_partial = threading.Event()
    done: list[int] = []

    def watch() -> None:
        while not done and not seen_partial.is_set():
            if partials(site):
                seen_partial.set()
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    done.append(main(["fetch", "--site", str(site), "--max-time", "2", "--no-progress"]))
    elapsed = time.monotonic() - started
    watcher.join()

    assert done == [1]
    assert elapsed < STALL / 2  # the stalled answers were not waited for
    assert seen_partial.is_set()  # the stalled download had a temporary file ...
    assert partials(site) == []  # ... that the deadline removed
    out, err = capsys.readouterr()
    assert out.startswith("Stopped: Mirrored 3 new images")
    assert "Stopped early: the deadline passed (2 s after the start). 2 images not tried yet" in out
    assert "gallery-mirror: stopped: the deadline passed" in err
    states = rows(site)
    assert [states[u][0] for u in quick] == ["mirrored"] * 3
    # Cancelled, not failed: the next run tries them as if nothing happened.
    assert states[stalled][0] == states[hanging][0] == "pending"
    assert_recorded_as_on_disk(site)


def test_backup_max_time_from_the_config_and_the_flag_overriding_it(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    quick = server.file("/q.bmp", noise((20, 20)))
    hanging = server.stall("/hanging.bmp", STALL)
    site = make_site(tmp_path, [quick, hanging], "[backup]\nmax_time = 1\n")
    report = tmp_path / "run.json"
    assert main(["backup", "--site", str(site), "--prune", "--json", str(report)]) == 1
    run = json.loads(report.read_text())
    assert run["exit_code"] == 1 and run["stopped"]["kind"] == "deadline"
    assert run["summary"]["new"] == 1 and run["summary"]["not_tried"] == 1
    assert (
        run["summary"]["failed"] == 0
        and run["prune_skipped"] == "not pruned: the run stopped early"
    )
    log = capsys.readouterr().out.splitlines()
    assert log[-3].startswith("backup: stopped; 1 new")
    assert log[-2] == (
        "backup: stopped: the deadline passed (1 s after the start); 1 image not tried yet"
    )

    server.file("/hanging.bmp", noise((20, 20), seed=9))  # answers now
    assert main(["backup", "--site", str(site), "--max-time", "0"]) == 0  # 0: no deadline
    assert rows(site)[hanging][0] == "mirrored"


def test_max_time_must_be_a_number_of_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["fetch", "--site", str(tmp_path), "--max-time", "-1"])
    assert exit.value.code == 2
    assert "expected a number of seconds >= 0, got '-1'" in capsys.readouterr().err


# -- a full disk, an unwritable mirror ----------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[None]:
    """A tmpfs mounted at ``where``; the test is skipped, loudly, where mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"SKIPPED: cannot mount a tmpfs here ({mounted.stderr.strip()}): run as root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def images(server: FaultServer, count: int, size: tuple[int, int]) -> list[str]:
    return [server.file(f"/i{n}.bmp", noise(size, seed=n)) for n in range(count)]


@pytest.mark.parametrize("mounted", ["mirror", "site"])
def test_a_full_disk_stops_the_run_and_keeps_what_fit(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str], mounted: str
) -> None:
    urls = images(server, 20, (100, 100))  # 30 kB each
    blog = tmp_path / "blog"
    place = blog / MIRROR if mounted == "mirror" else blog
    # The state lives on the small disk too when the whole site does.
    with tmpfs(place, "size=640k"):
        site = make_site(tmp_path, urls, "concurrency = 1\n[thumbnails]\nsizes = [16]\n")
        report = tmp_path / "run.json"
        code = main(["backup", "--site", str(site), "--json", str(report)])
        out = capsys.readouterr().out
        assert code == 1, out
        run = json.loads(report.read_text())  # written in its own directory
        stop = run["stopped"]
        assert stop["kind"] == "disk_full"
        assert stop["directory"].startswith(str(site / MIRROR))
        if stop["needed"] is not None:  # an image did not fit
            assert stop["directory"] == str(site / MIRROR)
            assert stop["needed"] >= 30_000 and stop["free"] is not None
            assert f"backup: stopped: no space left in {site / MIRROR} (writing " in out
            assert "the file that did not fit needs at least 30.1 kB" in out
        else:  # a thumbnail did not fit: its size is not known here
            assert "backup: stopped: cannot write thumbnails under" in out
            assert "No space left on device" in out and " free" in out
        assert partials(site) == []
        kept = run["summary"]["new"]
        assert 1 <= kept < 20 and kept + run["summary"]["not_tried"] == 20
        assert run["summary"]["failed"] == 0  # the images are fine: the disk is full
        assert_recorded_as_on_disk(site)
        assert len(files(site)) == kept
        states = sorted(s for s, _, _ in rows(site).values())
        assert states == ["mirrored"] * kept + ["pending"] * (20 - kept)


def test_an_unwritable_mirror_stops_the_run_naming_it(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = images(server, 3, (20, 20))
    site = make_site(tmp_path, urls)
    with tmpfs(site / MIRROR, "ro,size=64k"):
        assert main(["fetch", "--site", str(site)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("Stopped: Mirrored 0 new images")
    assert f"cannot write in {site / MIRROR}: Read-only file system" in out
    assert f"mirror.dir is {site / MIRROR}" in err
    assert {s for s, _, _ in rows(site).values()} == {"pending"}


def test_a_store_that_fills_after_some_files_keeps_and_records_those(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a tmpfs: a temporary file's creation fails with ENOSPC after the
    first three (counted as they start, not on disk: the next download starts
    while the last one's file is still being put in place)."""
    urls = images(server, 6, (20, 20))
    site = make_site(tmp_path, urls, "concurrency = 1\n[thumbnails]\nenabled = false\n")
    real = store.AtomicFile.__enter__
    started: list[store.AtomicFile] = []

    def fills_up(self: store.AtomicFile) -> io.BufferedWriter:
        if len(started) >= 3:
            raise OSError(28, os.strerror(28))  # ENOSPC, as a write to a full disk gives it
        started.append(self)
        return real(self)

    monkeypatch.setattr(store.AtomicFile, "__enter__", fills_up)
    assert main(["fetch", "--site", str(site)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Stopped: Mirrored 3 new images")
    assert f"no space left in {site / MIRROR} (writing {urls[3]})" in out
    assert "the file that did not fit needs at least 1.3 kB" in out
    assert [rows(site)[u][0] for u in urls] == ["mirrored"] * 3 + ["pending"] * 3
    assert_recorded_as_on_disk(site)
    monkeypatch.undo()
    assert main(["-q", "fetch", "--site", str(site)]) == 0  # room again: the rest come
    assert_recorded_as_on_disk(site)
    assert len(files(site)) == 6
