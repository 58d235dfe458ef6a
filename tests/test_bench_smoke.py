"""The benchmark runs end to end on a tiny corpus, so that it cannot rot.

It measures nothing here: timings of a tiny corpus mean nothing. It checks
that the corpus, both servers and every installed peer's command work.
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
         "--work", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = out.read_text()
    assert table == done.stdout
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ")][1:]
    by_tool = {(r[0].lstrip("| "), r[1]): r for r in rows}
    scan = by_tool[("scan posts", "gallery-mirror")]
    assert scan[2] != "—" and scan[7].endswith("x |")  # measured, with a ratio to rg
    ours = [(job, tool) for job, tool in by_tool if tool.startswith("gallery-mirror")]
    # scan, 3 fetches, 3 thumbnails, the whole job, 2 memory, 2 rewrite, the no-op backup
    assert len(ours) == 13
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
