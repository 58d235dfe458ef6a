"""The fetch spread over worker processes: exact limits, every URL once, failures seen."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
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


@pytest.mark.parametrize(("concurrency", "per_host", "workers"), [(16, 4, 2), (5, 3, 2), (7, 4, 3)])
def test_shares_split_the_limits_and_every_url_once(
    tmp_path: Path, concurrency: int, per_host: int, workers: int
) -> None:
    base = config(tmp_path)
    limits = replace(base.download, concurrency=concurrency, per_host=per_host)
    known = {"https://a.example/3.jpg": record("https://a.example/3.jpg")}
    shares = fetchpool.shard(replace(base, download=limits), urls(), known, workers)
    assert sum(share.config.download.concurrency for share in shares) == concurrency
    assert sum(share.config.download.per_host for share in shares) == per_host
    assert all(share.config.download.per_host >= 1 for share in shares)
    assert sorted(u for share in shares for u in share.urls) == sorted(urls())
    assert [set(share.known) <= set(share.urls) for share in shares] == [True] * workers
    assert sum(len(share.known) for share in shares) == 1


@pytest.mark.parametrize(
    ("hosts", "concurrency", "per_host", "expected"),
    [
        (1, 16, 3, [40, 20]),  # per_host binds (parts 2 and 1): twice the URLs for twice the links
        (60, 5, 4, [36, 24]),  # concurrency binds (parts 3 and 2)
    ],
)
def test_urls_are_dealt_by_the_parts_of_the_limit_that_binds(
    tmp_path: Path, hosts: int, concurrency: int, per_host: int, expected: list[int]
) -> None:
    base = config(tmp_path)
    limits = replace(base.download, concurrency=concurrency, per_host=per_host)
    todo = [f"https://h{n % hosts}.example/{n}.jpg" for n in range(60)]
    shares = fetchpool.shard(replace(base, download=limits), todo, {}, 2)
    assert [len(share.urls) for share in shares] == expected


def record(url: str) -> UrlRecord:
    return UrlRecord(
        url=url, final_url=url, status="mirrored", path="a/3.jpg", size=1, sha256="0" * 64,
        content_type="image/jpeg", etag=None, last_modified=None, attempts=1, last_error=None,
        source="origin", first_seen=datetime.now(UTC), last_fetched=None, last_referenced=None,
        last_checked=None,
    )  # fmt: skip


def test_worker_count_fits_the_cores_the_limits_and_the_urls(tmp_path: Path) -> None:
    download = config(tmp_path).download  # per_host 4, concurrency 16
    assert fetchpool.fitting(download, 1000, 2) == 2
    assert fetchpool.fitting(download, 1000, 8) == 4  # no part of per_host below one
    assert fetchpool.fitting(replace(download, per_host=1), 1000, 8) == 1
    assert fetchpool.fitting(download, 15, 8) == 1  # too few URLs to fork for
    assert fetchpool.fitting(download, 16, 8) == 2


async def fake_download(
    config: Config,
    urls: Sequence[str],
    known: dict[str, UrlRecord],
    record: Callable[[Outcome], None],
) -> None:
    """Mirrors each URL at once, except the ones named for a way to end early."""
    for url in urls:
        if url.endswith("/boom.jpg"):
            raise RuntimeError("boom")
        if url.endswith("/killed.jpg"):
            os.kill(os.getpid(), signal.SIGKILL)
        if url.endswith("/stopped.jpg"):
            os.kill(os.getpid(), signal.SIGTERM)  # not sent by the parent
            await asyncio.sleep(5)
        await asyncio.sleep(0)
        record(Outcome(url, "mirrored", path=str(os.getpid()), size=config.download.per_host))


def test_every_outcome_comes_back_to_the_parent(tmp_path: Path) -> None:
    got: list[Outcome] = []
    fetchpool.run(config(tmp_path), urls(), {}, got.append, fake_download, 2)
    assert sorted(o.url for o in got) == sorted(urls())
    pids = Counter(o.path for o in got)
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two forked workers did it
    assert {o.size for o in got} == {2}  # each with its half of per_host = 4


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("boom", "its download worker failed: RuntimeError: boom"),
        ("killed", "its download worker exited without finishing (killed?)"),
        ("stopped", "its download worker was stopped before it finished (SIGTERM)"),
    ],
)
def test_a_worker_ending_early_fails_what_it_left_and_the_others_go_on(
    tmp_path: Path, name: str, why: str
) -> None:
    doomed = f"https://a.example/{name}.jpg"
    todo = [doomed, *urls()]  # first: the worker that has it gets it first
    got: list[Outcome] = []
    fetchpool.run(config(tmp_path), todo, {}, got.append, fake_download, 2)
    assert sorted(o.url for o in got) == sorted(todo)  # each URL once, none lost
    failed = [o for o in got if o.status == "failed"]
    assert doomed in {o.url for o in failed}
    assert {o.error for o in failed} == {why}
    share = fetchpool.shard(config(tmp_path), todo, {}, 2)[0].urls
    assert {o.url for o in failed} == set(share)  # the other worker's share all mirrored
