"""Thumbnails as part of `fetch`, and `gallery-mirror thumbs`: made once, rebuilt when due."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.cli import main
from mirror.keep.commit import Commit
from mirror.keep.incoming import Incoming
from mirror.pixels import thumbnails as pixel_thumbnails
from mirror.pixels.thumbnails import ThumbPool

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>\n'


def jpeg(shade: int, size: tuple[int, int] = (900, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (shade, 90, 40)).save(out, "JPEG")
    return out.getvalue()


def png_with_garbage_pixels() -> bytes:
    """A PNG whose header, chunk CRCs and IEND are fine but whose pixel data is not zlib."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(out, "PNG")
    data = bytearray(out.getvalue())
    at = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[at - 4 : at])
    data[at + 4 : at + 4 + length] = bytes((n * 37 + 11) % 256 for n in range(length))
    crc = zlib.crc32(bytes(data[at : at + 4 + length]))
    data[at + 4 + length : at + 8 + length] = struct.pack(">I", crc)
    return bytes(data)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def make_site(
    tmp_path: Path, server: FaultServer, images: dict[str, bytes], toml: str = ""
) -> Path:
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    lines = []
    for path, body in images.items():
        kind = "image/svg+xml" if path.endswith(".svg") else "image/jpeg"
        kind = "image/png" if path.endswith(".png") else kind
        lines.append(f"![]({server.file(path, body, content_type=kind)})\n")
    (site / "source" / "_posts" / "p.md").write_text("".join(lines))
    (site / "gallery-mirror.toml").write_text(
        f"[download]\nallow_private = true\nretries = 0\nfsync = false\n{toml}"
    )
    return site


def thumbs_of(site: Path) -> dict[str, int]:
    root = site / "source" / "images" / "mirror" / "_thumbs"
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()
    }


def rows(site: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        return db.execute(
            "SELECT path, status, fingerprint FROM thumbnails ORDER BY path"
        ).fetchall()


def test_fetch_makes_a_thumbnail_per_image_and_size(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {f"/p/{n}.jpg": jpeg(50 * n) for n in range(3)},
                     "[thumbnails]\nsizes = [120, 480]\n")  # fmt: skip
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    # Made during the fetch, so not also counted as up to date by the catch-up.
    assert "Thumbnails: made for 3 images, 0 skipped, 0 failed, 0 up to date" in (
        capsys.readouterr().out
    )
    made = sorted(thumbs_of(site))
    assert made == sorted(f"{size}/127.0.0.1_{server.port}/p/{n}.jpg.webp"
                          for size in (120, 480) for n in range(3))  # fmt: skip
    with Image.open(site / "source/images/mirror/_thumbs/120" / made[0].split("/", 1)[1]) as im:
        assert (im.format, max(im.size)) == ("WEBP", 120)
    assert [status for _, status, _ in rows(site)] == ["made"] * 3


def test_an_image_that_does_not_decode_is_not_kept(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {"/ok.jpg": jpeg(10), "/bad.png": png_with_garbage_pixels()})
    assert main(["-q", "fetch", "--site", str(site)]) == 1
    out = capsys.readouterr().out
    assert "Mirrored 1 new image" in out and f"{server.base}/bad.png" in out
    mirror = site / "source" / "images" / "mirror"
    assert not list(mirror.rglob("bad*")) and not list(mirror.rglob("*.part"))
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        (row,) = db.execute("SELECT status, path, last_error FROM urls WHERE url LIKE '%bad.png'")
    assert row[:2] == ("failed", None) and "cannot decode" in row[2]


def test_a_refresh_that_brings_an_image_that_does_not_decode_keeps_the_old_file(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    good = Image.new("RGB", (64, 64), "red")
    out = io.BytesIO()
    good.save(out, "PNG")
    site = make_site(tmp_path, server, {"/p.png": out.getvalue()})
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    (stored,) = (site / "source" / "images" / "mirror").glob("*/p.png")
    server.file("/p.png", png_with_garbage_pixels(), content_type="image/png")
    main(["-q", "fetch", "--refresh", "--site", str(site)])
    # The bytes that do not decode were renamed over the file, then put back:
    # the file is what the state records, and rewritten posts still show it.
    assert stored.read_bytes() == out.getvalue()
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        ((sha256,),) = db.execute("SELECT sha256 FROM urls")
    assert sha256 == hashlib.sha256(out.getvalue()).hexdigest()


def test_a_hash_layout_file_that_is_gone_is_put_back_at_its_recorded_path(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {"/a.jpg": jpeg(10)}, '[mirror]\nlayout = "hash"\n')
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    state = site / ".gallery-mirror" / "state.sqlite"
    with sqlite3.connect(state) as db:
        ((path,),) = db.execute("SELECT path FROM urls")
    mirror = site / "source" / "images" / "mirror"
    (mirror / path).unlink()
    server.file("/a.jpg", jpeg(200))  # the source now serves other bytes
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    # Posts rewritten to the recorded path must find a file there, and the
    # record still names it (else backup's check would stop watching it).
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT path FROM urls").fetchall() == [(path,)]
    assert (mirror / path).read_bytes() == jpeg(200)


def test_a_hash_layout_file_that_rewritten_posts_name_is_not_refreshed_away(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {"/a.jpg": jpeg(10)}, '[mirror]\nlayout = "hash"\n')
    assert main(["-q", "migrate", "--site", str(site)]) == 0
    state = site / ".gallery-mirror" / "state.sqlite"
    with sqlite3.connect(state) as db:
        before = db.execute("SELECT url, path, sha256 FROM urls").fetchall()
    server.file("/a.jpg", jpeg(200))  # new bytes would go to another path
    assert main(["-q", "fetch", "--refresh", "--site", str(site)]) == 0
    with sqlite3.connect(state) as db:  # the post's file keeps its record
        assert db.execute("SELECT url, path, sha256 FROM urls").fetchall() == before
    assert main(["-q", "verify", "--site", str(site)]) == 0


def test_svg_is_mirrored_without_a_thumbnail(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {"/logo.svg": SVG})
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert "1 skipped" in capsys.readouterr().out
    assert thumbs_of(site) == {} and [s for _, s, _ in rows(site)] == ["skipped"]


def test_thumbnails_are_rebuilt_only_when_settings_or_files_change(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {f"/p/{n}.jpg": jpeg(50 * n) for n in range(3)})
    main(["-q", "fetch", "--site", str(site)])
    first = thumbs_of(site)
    capsys.readouterr()
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert thumbs_of(site) == first  # nothing due: nothing rewritten
    assert "made for 0 images, 0 skipped, 0 failed, 3 up to date" in capsys.readouterr().out

    gone = next(iter(first))
    (site / "source/images/mirror/_thumbs" / gone).unlink()
    assert main(["-q", "thumbs", "--site", str(site)]) == 0
    assert "made for 1 image, 0 skipped, 0 failed, 2 up to date" in capsys.readouterr().out
    after = thumbs_of(site)
    assert set(after) == set(first)
    assert [k for k in first if after[k] != first[k]] == [gone]

    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + "[thumbnails]\nquality = 60\n")
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert "made for 3 images" in capsys.readouterr().out
    assert len({fp for _, _, fp in rows(site)}) == 1 and ":q60" in rows(site)[0][2]

    assert main(["-q", "thumbs", "--force", "--site", str(site)]) == 0
    assert "made for 3 images, 0 skipped, 0 failed, 0 up to date" in capsys.readouterr().out


def test_thumbnails_no_setting_asks_for_any_more_go_to_the_trash(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {f"/p/{n}.jpg": jpeg(50 * n) for n in range(2)},
                     "[thumbnails]\nsizes = [120, 480]\n")  # fmt: skip
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    old = sorted(thumbs_of(site))
    toml = site / "gallery-mirror.toml"
    toml.write_text(
        toml.read_text().replace("sizes = [120, 480]", 'sizes = [480]\nformat = "jpeg"')
    )
    capsys.readouterr()

    assert main(["thumbs", "--site", str(site)]) == 0

    out = capsys.readouterr().out
    assert "Moved 4 old thumbnails that no setting asks for any more" in out
    assert sorted(thumbs_of(site)) == [f"480/127.0.0.1_{server.port}/p/{n}.jpg.jpg" for n in (0, 1)]
    trash = site / ".gallery-mirror" / "trash" / "_thumbs"
    assert sorted(p.relative_to(trash).as_posix() for p in trash.rglob("*.webp")) == old
    assert main(["thumbs", "--site", str(site)]) == 0  # nothing left to move
    assert "Moved" not in capsys.readouterr().out


def test_thumbs_with_thumbnails_turned_off_is_a_config_error(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site(tmp_path, server, {"/a.jpg": jpeg(1)}, "[thumbnails]\nenabled = false\n")
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert thumbs_of(site) == {}
    assert main(["thumbs", "--site", str(site)]) == 2
    assert "thumbnails.enabled" in capsys.readouterr().err


def test_no_worker_processes_start_when_nothing_is_due(
    tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[ThumbPool] = []

    class Counted(ThumbPool):
        def __init__(self, workers: int | None = None) -> None:
            super().__init__(workers)
            started.append(self)

    monkeypatch.setattr(pixel_thumbnails, "ThumbPool", Counted)
    site = make_site(tmp_path, server, {"/a.jpg": jpeg(1)})
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert len(started) == 1
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert len(started) == 1  # the second run had nothing to do: no workers started


@pytest.mark.parametrize("command", ["fetch", "thumbs"])
def test_a_thumbnails_dir_that_cannot_be_made_stops_the_run_naming_the_setting(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    site = make_site(tmp_path, server, {"/a.jpg": jpeg(10)})
    if command == "thumbs":
        (site / "gallery-mirror.toml").write_text(
            (site / "gallery-mirror.toml").read_text() + "[thumbnails]\nenabled = false\n"
        )
        assert main(["-q", "fetch", "--site", str(site)]) == 0
        (site / "gallery-mirror.toml").write_text(
            (site / "gallery-mirror.toml").read_text().replace("enabled = false", "")
        )
    mirror = site / "source" / "images" / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    (mirror / "_thumbs").symlink_to(tmp_path / "gone")  # a dangling link: mkdir cannot pass it
    capsys.readouterr()
    assert main(["-q", command, "--site", str(site)]) == 1
    err = capsys.readouterr().err
    assert "cannot write thumbnails under" in err and "(thumbnails.dir)" in err
    assert not list(mirror.rglob("*.part"))
    # The image is kept and recorded: only its thumbnails are missing.
    assert [p.name for p in mirror.rglob("*") if p.is_file()] == ["a.jpg"]
    with sqlite3.connect(site / ".gallery-mirror" / "state.sqlite") as db:
        assert db.execute("SELECT status FROM urls").fetchall() == [("mirrored",)]


def test_an_image_whose_rename_fails_gets_no_thumbnails_and_no_row(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = make_site(tmp_path, server, {"/full.jpg": jpeg(90)})
    real = os.replace

    def disk_full_for_one(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        # The thumbnail workers are other processes: only the originals' renames get here.
        if Path(target).name == "full.jpg":
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        real(source, target)

    monkeypatch.setattr(os, "replace", disk_full_for_one)
    assert main(["-q", "fetch", "--site", str(site)]) == 1
    err = capsys.readouterr().err
    assert "stopped: no space left in" in err and "full.jpg" in err
    assert thumbs_of(site) == {} and rows(site) == []  # thumbnails come after the rename
    assert not list((site / "source" / "images" / "mirror").rglob("full.jpg*"))


def test_a_file_renamed_then_failed_is_fetched_again_with_its_thumbnails(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = make_site(tmp_path, server, {"/late.jpg": jpeg(90)})
    with monkeypatch.context() as patched:
        commit = Incoming.commit

        def renamed_then_failed(
            self: Incoming, relative: PurePosixPath, *, dirs: object = None
        ) -> Path:
            final = commit(self, relative)
            raise OSError(errno.EIO, "Input/output error", str(final))

        patched.setattr(Incoming, "commit", renamed_then_failed)
        assert main(["-q", "fetch", "--site", str(site)]) == 1
    assert "late.jpg: Input/output error" in capsys.readouterr().err
    # The original is in place but unrecorded, and has no thumbnails yet...
    assert list((site / "source" / "images" / "mirror").glob("*/late.jpg"))
    assert thumbs_of(site) == {} and rows(site) == []
    # ...so the next run fetches it again, records it and makes them.
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    assert sorted(p.split("/")[-1] for p in thumbs_of(site)) == ["late.jpg.webp"]
    assert [status for _, status, _ in rows(site)] == ["made"]


def test_a_failed_commit_keeps_the_thumbnails_of_bytes_the_hash_layout_had_stored(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = make_site(tmp_path, server, {"/a.jpg": jpeg(70), "/b.jpg": jpeg(70)},
                     '[mirror]\nlayout = "hash"\n')  # fmt: skip
    post = site / "source" / "_posts" / "p.md"
    both = post.read_text()
    post.write_text(both.splitlines(keepends=True)[0])  # a.jpg first: its bytes are stored
    assert main(["-q", "fetch", "--site", str(site)]) == 0
    before = thumbs_of(site)
    assert len(before) == 1

    commit = Commit.__call__

    def stored_then_failed(self: Commit, *args: Any, **kwargs: Any) -> None:
        commit(self, *args, **kwargs)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Commit, "__call__", stored_then_failed)
    post.write_text(both)  # b.jpg: the same bytes, found stored by the commit
    capsys.readouterr()
    assert main(["-q", "fetch", "--site", str(site)]) == 1
    assert "Input/output error" in capsys.readouterr().err
    assert set(thumbs_of(site)) == set(before)  # the stored file's thumbnails stay
