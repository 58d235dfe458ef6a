"""The fetch spread over worker processes: exact limits, every URL once, failures seen."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from mirror import fetchpool
from mirror.config import Config, parse_config
from mirror.models import Outcome
from mirror.state import UrlRecord

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workers are forked")


def config(tmp_path: Path, text: str = "") -> Config:
    return parse_config(text, source=None, cwd=tmp_path)


def urls() -> list[str]:
    return [f"https://a.example/{n}.jpg" for n in range(25)] + [
        f"https://h{n % 7}.example/{n}.png" for n in range(30)
    ]


@pytest.mark.parametrize(("concurrency", "per_host", "workers"), [(16, 4, 2), (5, 3, 2), (7, 3, 3)])
def test_shards_split_the_limits_and_deal_each_host(
    tmp_path: Path, concurrency: int, per_host: int, workers: int
) -> None:
    download = replace(config(tmp_path).download, concurrency=concurrency, per_host=per_host)
    shards = fetchpool.shard(urls(), download, workers)
    assert sum(limits.concurrency for _, limits in shards) == concurrency
    assert sum(limits.per_host for _, limits in shards) == per_host
    assert all(limits.per_host >= 1 for _, limits in shards)
    assert sorted(u for part, _ in shards for u in part) == sorted(urls())
    # Each host's URLs are spread evenly: no worker gets more than its share plus one.
    for host in {u.split("/")[2] for u in urls()}:
        counts = [sum(1 for u in part if u.split("/")[2] == host) for part, _ in shards]
        assert max(counts) - min(counts) <= 1


def test_worker_count_never_splits_a_limit_below_one(tmp_path: Path) -> None:
    download = config(tmp_path).download
    assert fetchpool.worker_count(replace(download, per_host=1), 1000) == 1
    assert fetchpool.worker_count(download, 3) == 1  # too few URLs to fork for


async def fake_download(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
) -> None:
    for url in urls:
        if url.endswith("/boom.jpg"):
            raise RuntimeError("boom")
        await asyncio.sleep(0)
        record(Outcome(url, "mirrored", path=str(os.getpid()), size=config.download.per_host))


def test_every_outcome_comes_back_to_the_parent(tmp_path: Path) -> None:
    got: list[Outcome] = []
    fetchpool.run(config(tmp_path), urls(), {}, got.append, fake_download, 2)
    assert sorted(o.url for o in got) == sorted(urls())
    pids = Counter(o.path for o in got)
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two forked workers did it
    assert {o.size for o in got} == {2}  # each with its half of per_host = 4


def test_a_failing_worker_is_reported(tmp_path: Path) -> None:
    got: list[Outcome] = []
    with pytest.raises(fetchpool.WorkerFailed, match="boom"):
        fetchpool.run(
            config(tmp_path), [*urls(), "https://a.example/boom.jpg"], {}, got.append,
            fake_download, 2,
        )  # fmt: skip
