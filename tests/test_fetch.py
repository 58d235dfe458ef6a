"""The downloader against a real HTTP server on 127.0.0.1 that injects faults."""

from __future__ import annotations

import asyncio
import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.config import DownloadConfig, parse_config
from mirror.fetch import Downloader, _retry_after, is_transient
from mirror.models import Outcome
from mirror.transport import make_client


def image(
    fmt: str = "JPEG", size: tuple[int, int] = (64, 48), colour: str | tuple[int, ...] = "red"
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


JPEG, PNG = image(), image("PNG", colour="blue")


def bomb_png() -> bytes:
    """A small valid PNG whose header claims 100000 x 100000 pixels."""
    data = bytearray(image("PNG"))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", 100_000, 100_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def download_config(tmp_path: Path, toml: str, *, private: bool) -> DownloadConfig:
    """The test server is on 127.0.0.1: most tests must allow private addresses.

    ``toml`` holds [download] keys (overriding these defaults), then maybe tables.
    """
    keys, _, tables = toml.partition("[")
    base = {"allow_private": str(private).lower(), "retries": "2", "timeout": "2", "fsync": "false"}
    for line in keys.splitlines():
        name, _, value = line.partition("=")
        base[name.strip()] = value.strip()
    text = "[download]\n" + "".join(f"{k} = {v}\n" for k, v in base.items() if k)
    tmp_path.mkdir(parents=True, exist_ok=True)
    return parse_config(text + ("[" + tables if tables else ""), source=None, cwd=tmp_path).download


class Run:
    """One downloader over a fresh mirror dir; records the backoff it would sleep."""

    def __init__(self, tmp_path: Path, toml: str = "", *, private: bool = True) -> None:
        self.config = download_config(tmp_path, toml, private=private)
        self.root = tmp_path / "mirror"
        self.waits: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def fetch(self, *urls: str) -> list[Outcome]:
        async def go() -> list[Outcome]:
            async with make_client(self.config) as client:
                downloader = Downloader(
                    client=client, config=self.config, mirror_root=self.root, sleep=self._sleep
                )
                return await downloader.fetch_all(urls)

        return asyncio.run(go())

    def one(self, url: str) -> Outcome:
        (outcome,) = self.fetch(url)
        return outcome

    def files(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()
        )


def test_an_image_is_mirrored_byte_for_byte(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.file("/img/a.jpg", JPEG))
    assert outcome.status == "mirrored" and outcome.error is None
    assert outcome.path is not None and outcome.path.endswith("/img/a.jpg")
    assert (run.root / outcome.path).read_bytes() == JPEG
    assert outcome.sha256 == hashlib.sha256(JPEG).hexdigest() and outcome.size == len(JPEG)
    assert outcome.attempts == 1 and run.files() == [outcome.path]


def test_transient_503_is_retried_until_it_works(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, "retries = 4\n")
    outcome = run.one(server.flaky("/f.jpg", JPEG, fails=2))
    assert outcome.status == "mirrored" and outcome.attempts == 3
    assert server.hits["/f.jpg"] == 3
    assert len(run.waits) == 2 and all(0 < w <= 30 for w in run.waits)


def test_always_503_is_requested_one_plus_retries_times(
    tmp_path: Path, server: FaultServer
) -> None:
    run = Run(tmp_path)  # retries = 2
    outcome = run.one(server.status("/down.jpg", 503))
    assert outcome.status == "failed" and "HTTP 503" in (outcome.error or "")
    assert server.hits["/down.jpg"] == 3 and outcome.attempts == 3
    assert run.files() == []


def test_404_is_requested_once(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.url("/missing.jpg"))
    assert (outcome.status, outcome.error, outcome.attempts) == ("failed", "HTTP 404", 1)
    assert server.hits["/missing.jpg"] == 1


def test_retry_after_seconds_is_honoured(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.flaky("/busy.jpg", JPEG, fails=1, code=429, retry_after="7"))
    assert outcome.status == "mirrored"
    assert run.waits == [7.0]


def test_retry_after_parses_seconds_and_dates() -> None:
    assert _retry_after("120") == 120.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_the_retry_decision() -> None:
    assert is_transient(httpx.ReadTimeout("slow"))
    assert is_transient(httpx.RemoteProtocolError("short"))
    assert not is_transient(ValueError("bug"))


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<!doctype html><html><body>Not found</body></html>", "image/jpeg", "HTML page"),
        (bytes(range(256)) * 8, "image/jpeg", "not an image"),
        (JPEG, "text/html; charset=utf-8", "text/html"),
        (JPEG[: len(JPEG) // 2], "image/jpeg", "truncated"),
    ],
    ids=["html-page", "random-bytes", "html-content-type", "truncated-at-origin"],
)
def test_what_is_not_a_complete_image_is_failed_and_not_kept(
    tmp_path: Path, server: FaultServer, body: bytes, content_type: str, reason: str
) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.file("/x.jpg", body, content_type=content_type))
    assert outcome.status == "failed" and reason in (outcome.error or ""), outcome.error
    assert server.hits["/x.jpg"] == 1  # the origin's answer is final: no retry
    assert run.files() == []


def test_reset_mid_body_is_retried(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.reset_mid_body("/r.jpg", JPEG, after=100, times=1))
    assert outcome.status == "mirrored" and outcome.attempts == 2
    assert (run.root / (outcome.path or "")).read_bytes() == JPEG


def test_short_body_is_a_transport_failure(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.short_body("/s.jpg", JPEG[:200], declared=len(JPEG)))
    assert outcome.status == "failed" and server.hits["/s.jpg"] == 3
    assert run.files() == []


def test_stall_past_the_timeout(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, "retries = 0\ntimeout = 0.3\n")
    outcome = run.one(server.stall("/slow.jpg", 5))
    assert outcome.status == "failed" and "timed out" in (outcome.error or "")


def test_redirect_is_followed_and_recorded(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    target = server.file("/real.jpg", JPEG)
    outcome = run.one(server.redirect("/old.jpg", "/real.jpg"))
    assert outcome.status == "mirrored" and outcome.final_url == target
    assert outcome.path is not None and outcome.path.endswith("/old.jpg")


def test_redirect_loop_is_a_clear_failure(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    server.redirect("/a.jpg", "/b.jpg")
    outcome = run.one(server.redirect("/b.jpg", "/a.jpg"))
    assert outcome.status == "failed" and "redirect loop" in (outcome.error or "")


@pytest.mark.parametrize("with_length", [True, False])
def test_max_bytes_stops_the_transfer(
    tmp_path: Path, server: FaultServer, with_length: bool
) -> None:
    run = Run(tmp_path, "max_bytes = 1000\n")
    big = image(size=(400, 400), colour="green")
    assert len(big) > 1000
    url = server.file("/big.jpg", big) if with_length else server.no_length("/big.jpg", big)
    outcome = run.one(url)
    assert outcome.status == "failed" and "max_bytes" in (outcome.error or "")
    assert run.files() == []


def test_wrong_extension_is_fixed_from_the_sniffed_format(
    tmp_path: Path, server: FaultServer
) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.file("/p.jpg", PNG, content_type="image/png"))
    assert outcome.status == "mirrored" and (outcome.path or "").endswith(".png")
    no_extension = run.one(server.file("/640", JPEG))
    assert (no_extension.path or "").endswith(".jpg")


def test_query_strings_select_different_images(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    png = server.file("/640?wx_fmt=png", PNG, content_type="image/png")
    jpg = server.file("/640?wx_fmt=jpg", JPEG)
    first, second = run.fetch(png, jpg)
    assert first.path != second.path
    assert (run.root / (first.path or "")).read_bytes() == PNG
    assert (run.root / (second.path or "")).read_bytes() == JPEG


def test_non_ascii_path(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    server.file("/图片/a.jpg", JPEG)
    outcome = run.one(server.url("/%E5%9B%BE%E7%89%87/a.jpg"))
    assert outcome.status == "mirrored" and "图片/a.jpg" in (outcome.path or "")


def test_per_host_headers_are_sent(tmp_path: Path, server: FaultServer) -> None:
    url = server.needs_header("/hot.jpg", "Referer", "https://blog.example.com/", JPEG)
    assert Run(tmp_path / "a").one(url).error == "HTTP 403"
    referer = '[download.headers]\n"127.0.0.1" = { Referer = "https://blog.example.com/" }\n'
    run = Run(tmp_path / "b", referer)
    assert run.one(url).status == "mirrored"
    assert server.headers["/hot.jpg"][-1]["user-agent"].startswith("gallery-mirror/")


def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, private=False)
    outcome = run.one(server.file("/a.jpg", JPEG))
    assert outcome.status == "failed" and "download.allow_private" in (outcome.error or "")
    assert server.hits["/a.jpg"] == 0


def test_decompression_bomb_is_a_failure(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.file("/bomb.png", bomb_png(), content_type="image/png"))
    assert outcome.status == "failed" and "too large" in (outcome.error or "")
    assert run.files() == []


def test_many_urls_at_once(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, "concurrency = 4\nper_host = 2\n")
    urls = [server.file(f"/many/{n}.jpg", image(colour=(6 * n, 250 - 6 * n, 0))) for n in range(40)]
    outcomes = run.fetch(*urls)
    assert [o.status for o in outcomes] == ["mirrored"] * 40
    assert len(set(o.sha256 for o in outcomes)) == 40
