"""``Downloader.probe`` against the real fault server: what ``report --check`` asks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.abc import AbstractResolver
from test_fetch import JPEG, Answers, download_config

from faultserver import FaultServer
from mirror.models import Probe
from mirror.net.downloader import Downloader
from mirror.net.transport import make_client


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def probe(
    tmp_path: Path,
    *urls: str,
    toml: str = "",
    private: bool = True,
    resolver: AbstractResolver | None = None,
) -> list[Probe]:
    config = download_config(tmp_path, toml, private=private)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go() -> list[Probe]:
        async with make_client(config, resolver=resolver) as client:
            downloader = Downloader(
                client=client, config=config, staging=tmp_path / "mirror", sleep=sleep
            )
            return await downloader.probe_all(urls)

    probes = asyncio.run(go())
    assert not (tmp_path / "mirror").exists()  # a probe never writes
    return probes


def test_many_urls_are_probed_by_per_host_runners_not_a_task_each(
    tmp_path: Path, server: FaultServer
) -> None:
    urls = [server.file(f"/many/{n}.jpg", JPEG) for n in range(40)]
    config = download_config(tmp_path, "per_host = 3", private=True)
    tasks: list[int] = []

    async def go() -> list[Probe]:
        async with make_client(config) as client:
            downloader = Downloader(client=client, config=config, staging=tmp_path / "m")
            probe_one = downloader.probe

            async def counted(url: str) -> Probe:
                tasks.append(len(asyncio.all_tasks()))
                return await probe_one(url)

            downloader.probe = counted  # type: ignore[method-assign]
            return await downloader.probe_all(urls)

    probes = asyncio.run(go())
    assert [p.reachable for p in probes] == [True] * 40
    assert max(tasks) <= 3 + 1  # the host's runners and this test's own task


def test_a_reachable_image_is_asked_for_with_head_only(tmp_path: Path, server: FaultServer) -> None:
    (found,) = probe(tmp_path, server.file("/a.jpg", JPEG))
    assert found.reachable and found.error is None
    assert (found.status, found.method, found.content_type) == (200, "HEAD", "image/jpeg")
    assert found.size == len(JPEG) and found.attempts == 1
    assert server.log == [("HEAD", "/a.jpg")]


def test_a_404_is_broken_after_one_request(tmp_path: Path, server: FaultServer) -> None:
    (found,) = probe(tmp_path, server.status("/gone.jpg", 404))
    assert not found.reachable and (found.status, found.error) == (404, "HTTP 404")
    assert server.log == [("HEAD", "/gone.jpg")]


@pytest.mark.parametrize("code", [405, 501, 403])
def test_head_refused_falls_back_to_a_one_byte_get(
    tmp_path: Path, server: FaultServer, code: int
) -> None:
    (found,) = probe(tmp_path, server.head_refused("/get-only.jpg", JPEG, code=code))
    assert found.reachable, found.error
    assert (found.status, found.method, found.size) == (206, "GET", len(JPEG))
    assert server.log == [("HEAD", "/get-only.jpg"), ("GET", "/get-only.jpg")]
    assert server.headers["/get-only.jpg"][1]["range"] == "bytes=0-0"


def test_a_transient_answer_is_retried(tmp_path: Path, server: FaultServer) -> None:
    (found,) = probe(tmp_path, server.flaky("/busy.jpg", JPEG, fails=2))
    assert found.reachable and found.attempts == 3
    assert server.hits["/busy.jpg"] == 3


def test_always_503_is_asked_one_plus_retries_times(tmp_path: Path, server: FaultServer) -> None:
    (found,) = probe(tmp_path, server.status("/down.jpg", 503), toml="retries = 3")
    assert not found.reachable and found.error == "HTTP 503 (after 4 attempts)"
    assert server.hits["/down.jpg"] == 4


def test_redirects_are_followed(tmp_path: Path, server: FaultServer) -> None:
    server.file("/new/a.jpg", JPEG)
    (found,) = probe(tmp_path, server.redirect("/old/a.jpg", "/new/a.jpg", code=301))
    assert found.reachable and found.final_url == server.url("/new/a.jpg")


def test_an_html_page_or_too_large_a_file_is_not_reachable(
    tmp_path: Path, server: FaultServer
) -> None:
    page = server.file("/blocked.jpg", b"<html>no hotlinking</html>", content_type="text/html")
    big = server.file("/big.jpg", JPEG)
    blocked, large = probe(tmp_path, page, big, toml=f"max_bytes = {len(JPEG) - 1}")
    assert not blocked.reachable and blocked.error == "not an image (HTML page)"
    assert not large.reachable and "more than download.max_bytes" in (large.error or "")


def test_the_probe_lets_the_first_bytes_decide_as_the_fetch_does(
    tmp_path: Path, server: FaultServer
) -> None:
    error = server.file("/api.jpg", b'{"error": "gone"}', content_type="application/json")
    binary = server.file("/raw.jpg", JPEG, content_type="application/octet-stream")
    text = server.file("/text.jpg", JPEG, content_type="text/plain")
    refused, allowed, plain = probe(tmp_path, error, binary, text)
    assert not refused.reachable and refused.error == "not an image (JSON)"
    assert allowed.reachable and plain.reachable and plain.method == "GET"
    assert server.headers["/text.jpg"][-1]["range"] == "bytes=0-1023"  # the head only


def test_a_private_address_is_refused_without_a_request(
    tmp_path: Path, server: FaultServer
) -> None:
    (found,) = probe(tmp_path, server.file("/a.jpg", JPEG), private=False)
    assert not found.reachable and "private or local address" in (found.error or "")
    assert found.status is None and server.log == []


def test_a_name_of_a_private_address_is_refused_as_it_connects(
    tmp_path: Path, server: FaultServer
) -> None:
    server.file("/a.jpg", JPEG)
    url = f"http://images.test:{server.port}/a.jpg"
    dns = Answers({"images.test": [["127.0.0.1"]]})
    (refused,) = probe(tmp_path / "a", url, private=False, resolver=dns)
    assert not refused.reachable and refused.attempts == 1
    assert "images.test resolves to 127.0.0.1" in (refused.error or "") and server.log == []
    (allowed,) = probe(tmp_path / "b", url, resolver=dns)
    assert allowed.reachable


def test_origins_and_headers_are_used(tmp_path: Path, server: FaultServer) -> None:
    server.needs_header("/p/a.jpg", "Referer", "https://blog.example/", JPEG)
    toml = (
        f'[download.origins]\n"img.example.com" = ["{server.base}/nope", "{server.base}"]\n'
        '[download.headers]\n"127.0.0.1" = { Referer = "https://blog.example/" }\n'
    )
    (found,) = probe(tmp_path, "https://img.example.com/p/a.jpg", toml=toml)
    assert found.reachable and found.final_url == server.url("/p/a.jpg")
    assert server.log == [("HEAD", "/nope/p/a.jpg"), ("HEAD", "/p/a.jpg")]


def test_the_headers_of_the_host_in_the_post_go_to_its_origins(
    tmp_path: Path, server: FaultServer
) -> None:
    server.needs_header("/p/a.jpg", "Referer", "https://blog.example/", JPEG)
    toml = (
        f'[download.origins]\n"img.example.com" = ["{server.base}"]\n'
        '[download.headers]\n"img.example.com" = { Referer = "https://blog.example/" }\n'
    )
    (found,) = probe(tmp_path, "https://img.example.com/p/a.jpg", toml=toml)
    assert found.reachable and found.method == "HEAD"
