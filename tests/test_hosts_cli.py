"""What a user watching a run sees of hosts down or rate-limited, and of
images kept under a wrong Content-Type: `fetch` and `backup` end to end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from seedsite import jpeg

from faultserver import FaultServer, SilentHost
from mirror.cli import main
from mirror.models import HostEvent
from mirror.output.progress import Progress


def blog(root: Path, urls: list[str], toml: str = "") -> Path:
    posts = root / "blog" / "source" / "_posts"
    posts.mkdir(parents=True)
    (posts / "p.md").write_text("".join(f"![]({url})\n" for url in urls))
    (root / "blog" / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nfsync = false\n" + toml
        + "[thumbnails]\nenabled = false\n"
    )  # fmt: skip
    return root / "blog"


def test_fetch_says_which_host_is_down_and_which_images_were_kept_under_a_wrong_type(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    good = server.file("/plain.jpg", jpeg(10), content_type="text/plain")
    with SilentHost() as silent:
        dead = [f"http://dead.example/{n}.jpg" for n in range(6)]
        site = blog(
            tmp_path, [good, *dead],
            f'stall_timeout = 0.3\n[download.origins]\n"dead.example" = ["{silent.base}"]\n',
        )  # fmt: skip
        code = main(["fetch", "--site", str(site)])
    out, err = capsys.readouterr()
    assert code == 1
    # The log (standard error is no terminal here) says it as it happens.
    assert f"127.0.0.1:{silent.port}: host down (3 timeouts in a row)\n" in err
    assert "Mirrored 1 new image" in out and "6 failed" in out
    assert "host down (3 timeouts in a row) (from http://127.0.0.1:" in out
    assert f"Kept under a wrong Content-Type (1; the bytes are complete images):\n  {good}:" in out
    assert "JPEG served as text/plain" in out


def test_backup_logs_a_host_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with SilentHost() as silent:
        urls = [f"{silent.base}/{n}.jpg" for n in range(4)]
        site = blog(tmp_path, urls, "stall_timeout = 0.3\nretries = 0\n")
        code = main(["backup", "-q", "--site", str(site)])
    out, _ = capsys.readouterr()
    assert code == 1
    assert f"host: 127.0.0.1:{silent.port}: host down (3 timeouts in a row)\n" in out


def test_the_progress_lines_name_the_hosts_in_trouble_until_they_recover() -> None:
    out = io.StringIO()
    progress = Progress(out, bar=False, lines=True, each=False, interval=0)
    progress.planned(3)
    progress.host(HostEvent("a.example", "down", "host down (3 timeouts in a row)"))
    progress.host(HostEvent("b.example:8080", "throttled", "rate-limited, 2 requests at a time"))
    progress.step("x", "failed", "host down")
    progress.host(HostEvent("a.example", "up", "answers again"))
    progress.host(HostEvent("b.example:8080", "unthrottled", "no longer rate-limited"))
    progress.step("y", "mirrored", None)
    assert out.getvalue().splitlines() == [
        "a.example: host down (3 timeouts in a row)",
        "b.example:8080: rate-limited, 2 requests at a time",
        "fetched 1/3 images (0.0 MB), 1 failed; down: a.example; rate-limited: b.example:8080",
        "a.example: answers again",
        "b.example:8080: no longer rate-limited",
        "fetched 2/3 images (0.0 MB), 1 failed",
    ]
