"""Files named for output (`report --json/--html FILE`, `backup --json FILE`) are
written to what the name points at: standard output, a symlink's target, a FIFO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.cli import main

# Every option that names an output file, with what its file starts with.
OPTIONS = [
    (("report",), "--json", b"{"),
    (("report",), "--html", b"<!doctype html>"),
    (("backup",), "--json", b"{"),
]
IDS = ["report-json", "report-html", "backup-json"]


def gallery_mirror(site: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    """A run with its standard output a pipe, from the site's parent directory."""
    return subprocess.run(
        [sys.executable, "-m", "mirror", *argv, "--site", str(site)],
        cwd=site.parent, capture_output=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("command", "option", "start"), OPTIONS, ids=IDS)
def test_dash_is_standard_output_and_the_text_goes_to_standard_error(
    site: Path, command: tuple[str, ...], option: str, start: bytes
) -> None:
    done = gallery_mirror(site, *command, option, "-")

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(start)
    if option == "--json":
        assert json.loads(done.stdout)["schema"] == 1
    assert not (site.parent / "-").exists()
    summary = "image references" if command == ("report",) else "backup:"
    assert summary in done.stderr.decode()


@pytest.mark.parametrize(("command", "option", "start"), OPTIONS, ids=IDS)
def test_a_link_to_standard_output_writes_there(
    site: Path, tmp_path: Path, command: tuple[str, ...], option: str, start: bytes
) -> None:
    # /dev/stdout itself is the same case; a link of our own is what a test may
    # break if the code regresses (a replaced /dev/stdout breaks the machine).
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")

    done = gallery_mirror(site, *command, option, str(link))

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(start)
    assert link.is_symlink() and os.readlink(link) == "/dev/stdout"


@pytest.mark.parametrize(("command", "option", "start"), OPTIONS, ids=IDS)
def test_a_symlink_is_followed_and_stays_a_symlink(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...], option: str, start: bytes,
) -> None:  # fmt: skip
    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "real"
    real.write_text("old")
    link = tmp_path / "link"
    link.symlink_to(real)

    assert main([*command, option, str(link), "--site", str(site)]) == 0

    assert link.is_symlink() and link.resolve() == real
    assert real.read_bytes().startswith(start)
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["real"]


@pytest.mark.parametrize(("command", "option", "start"), OPTIONS, ids=IDS)
def test_a_fifo_is_written_to_not_replaced(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...], option: str, start: bytes,
) -> None:  # fmt: skip
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        code = main([*command, option, str(fifo), "--site", str(site)])
        received, _ = reader.communicate(timeout=10)
    finally:
        reader.kill()  # still waiting when the FIFO was replaced: fail, never hang

    assert code == 0
    assert received.startswith(start)
    assert fifo.is_fifo()


@pytest.mark.parametrize(("command", "option", "start"), OPTIONS, ids=IDS)
def test_a_missing_directory_is_an_error_naming_it_before_the_run(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...], option: str, start: bytes,
) -> None:  # fmt: skip
    target = tmp_path / "no" / "such" / "r.out"

    code = main([*command, option, str(target), "--site", str(site)])

    out, err = capsys.readouterr()
    assert code == 2
    assert f"the directory {target.parent} does not exist" in err
    assert not (tmp_path / "no").exists()
    assert not (site / ".gallery-mirror").exists()  # nothing ran: no state, no lock
    assert out == ""


def unwritable_directory(tmp_path: Path) -> Path:
    """A directory this process cannot create files in (root ignores modes; not sysfs)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    return folder


@pytest.mark.parametrize(("command", "option", "start"), OPTIONS, ids=IDS)
def test_an_unwritable_path_is_named_as_given_not_by_its_temporary_file(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...], option: str, start: bytes,
) -> None:  # fmt: skip
    target = unwritable_directory(tmp_path) / "r.out"

    code = main([*command, option, str(target), "--site", str(site)])

    err = capsys.readouterr().err
    assert code == 1
    assert f"gallery-mirror: error: {target}: Permission denied" in err
    assert ".part" not in err


def test_two_files_on_standard_output_are_refused(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(site.parent)
    code = main(["report", "--json", "-", "--html", "-", "--site", str(site)])

    assert code == 2
    assert "- and - are both standard output" in capsys.readouterr().err


def test_dev_null_for_both_is_not_taken_for_standard_output(site: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mirror", "report", "--json", os.devnull, "--site", str(site)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stderr == b""  # the report went to standard output, as asked
    assert Path(os.devnull).is_char_device()
