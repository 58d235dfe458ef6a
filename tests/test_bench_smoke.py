"""The benchmark runs end to end on a tiny corpus, so that it cannot rot.

It measures nothing here: timings of a tiny corpus mean nothing. It checks
that the corpus, the servers and every installed peer's command work. The
messy web runs at 30 images with a short download.timeout, each command
stopped after 8 s: gallery-mirror's retries of the silent and refused hosts
take longer than that today, and the smoke test must stay short.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_bench_runs_on_a_tiny_corpus(tmp_path: Path) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("NGINX IS NOT INSTALLED: run bench/setup (CI's .ci/run does)")
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--posts", "12", "--images", "8", "--thumb-jpegs", "3",
         "--min-side", "300", "--max-side", "500", "--runs", "1", "--memory-sizes", "20,60",
         "--rewrite-refs", "300",
         "--messy-images", "30", "--messy-timeout", "0.5", "--messy-limit", "8",
         "--work", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = out.read_text()
    assert table == done.stdout
    rows = [
        line.split(" | ")
        for line in table.splitlines()
        if line.startswith("| ") and not line.startswith("| job |")
    ]
    by_tool = {(r[0].lstrip("| "), r[1]): r for r in rows}
    scan = by_tool[("scan posts", "gallery-mirror")]
    assert scan[2] != "—" and scan[7].endswith("x |")  # measured, with a ratio to rg
    ours = [(job, tool) for job, tool in by_tool if tool.startswith("gallery-mirror")]
    # scan, 3 fetches, 3 thumbnails, the whole job, 2 memory, 2 rewrite, the no-op backup
    # (as configured, and its stat checks only), the messy fetch and backup
    assert len(ours) == 16
    for job, tool in ours:
        row = by_tool[(job, tool)]
        assert row[2] != "—", f"{job} / {tool}: {row[-1]}"  # ran, and made every file
    installed = {
        "rg -o": "rg",
        "wget2 --max-threads=32": "wget2",
        "aria2c -j32": "aria2c",
        "vipsthumbnail, 2 workers": "vipsthumbnail",
    }
    for (job, tool), row in by_tool.items():
        binary = installed.get(tool)
        if binary and shutil.which(binary):
            assert row[2] != "—", f"{job} / {tool} failed: {row[-1]}"
    assert "Messy web: 29 images on 7 hosts, 22 rescuable;" in table
    assert "Floor " in table
    messy = {tool: row for (job, tool), row in by_tool.items() if job == "messy web"}
    fetched = int(messy["gallery-mirror fetch"][2].split("/")[0])
    assert fetched >= 9, messy  # the fast host's images, at least, within the 8 s
    wget2 = [row for tool, row in messy.items() if tool.startswith("wget2")]
    assert len(wget2) == 1 and (wget2[0][2].endswith("/22") or not shutil.which("wget2")), messy
