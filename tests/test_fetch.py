"""The downloader against a real HTTP server on 127.0.0.1 that injects faults."""

from __future__ import annotations

import asyncio
import hashlib
import io
import socket
import struct
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image

from faultserver import FaultServer
from mirror.config import DownloadConfig, parse_config
from mirror.keep.commit import Commit
from mirror.keep.state import UrlRecord
from mirror.models import HostEvent, Outcome
from mirror.net.downloader import Downloader, _retry_after, is_transient
from mirror.net.transport import make_client
from mirror.stages.download import fetch_one


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


class Answers(AbstractResolver):
    """A DNS that answers each name from a list of answers, one per lookup (the
    last one again once they run out); a name it does not know does not resolve."""

    def __init__(self, answers: dict[str, Sequence[Sequence[str]]]) -> None:
        self._answers = {name: list(each) for name, each in answers.items()}
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self._answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        each = self._answers[host]
        addresses = each.pop(0) if len(each) > 1 else each[0]
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


class LocalOnly:
    """A socket factory that keeps a test off the internet: a connection to any
    address but 127.0.0.1 is refused here, and recorded in ``refused``."""

    def __init__(self) -> None:
        self.refused: list[str] = []

    def __call__(self, addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        family, kind, proto, _, address = addr_info
        if address[0] != "127.0.0.1":
            self.refused.append(str(address[0]))
            raise ConnectionRefusedError(f"no connection to {address[0]} from a test")
        return socket.socket(family, kind, proto)


class Run:
    """One downloader over a fresh mirror dir; records the backoff it would sleep.

    Its clock moves only by those sleeps (from a real start), so a host's
    pauses add up as they would in a real run, without the waiting.
    """

    def __init__(
        self,
        tmp_path: Path,
        toml: str = "",
        *,
        private: bool = True,
        layout: Literal["url", "hash"] = "url",
        resolver: AbstractResolver | None = None,
        local_only: LocalOnly | None = None,
    ) -> None:
        self.config = download_config(tmp_path, toml, private=private)
        self.root = tmp_path / "mirror"
        self.versions = tmp_path / "versions"
        self.layout: Literal["url", "hash"] = layout
        self.resolver = resolver
        self.local_only = local_only
        self.waits: list[float] = []
        self.now = 1000.0
        self.host_events: list[HostEvent] = []

    async def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let the other downloads run, as a real sleep would

    def clock(self) -> float:
        return self.now

    def fetch(self, *urls: str, known: dict[str, UrlRecord] | None = None) -> list[Outcome]:
        """Download and commit each URL, as the fetch stage does (without the state)."""

        async def go() -> list[Outcome]:
            guarded = make_client(
                self.config, resolver=self.resolver, socket_factory=self.local_only
            )
            async with guarded as client:
                downloader = Downloader(
                    client=client, config=self.config, staging=self.root, sleep=self._sleep,
                    clock=self.clock, on_host=self.host_events.append,
                )  # fmt: skip
                commit = Commit(
                    downloader.staging, layout=self.layout, versions=self.versions, dirs=None
                )
                return await downloader.each(
                    urls, lambda url: fetch_one(downloader, commit, url, (known or {}).get(url))
                )

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
        (b"<!doctype html><p>gone</p>", "text/plain", "not an image (HTML page)"),
        (JPEG[: len(JPEG) // 2], "image/jpeg", "truncated"),
        (JPEG[: len(JPEG) // 2], "text/plain", "truncated"),
    ],
    ids=["html-page", "random-bytes", "html-as-text", "truncated-at-origin", "truncated-as-text"],
)
def test_what_is_not_a_complete_image_is_failed_and_not_kept(
    tmp_path: Path, server: FaultServer, body: bytes, content_type: str, reason: str
) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.file("/x.jpg", body, content_type=content_type))
    assert outcome.status == "failed" and reason in (outcome.error or ""), outcome.error
    assert server.hits["/x.jpg"] == 1  # the origin's answer is final: no retry
    assert run.files() == []


@pytest.mark.parametrize(
    ("content_type", "note"),
    [
        ("text/plain", "JPEG served as text/plain"),
        ("application/octet-stream", "JPEG served as application/octet-stream"),
        ("text/html; charset=UTF-8", "JPEG served as text/html"),  # a script's default
        (None, "JPEG served without a Content-Type"),
        ("image/jpeg", None),
        ("image/png", None),  # an image type: the extension comes from the bytes anyway
    ],
)
def test_the_bytes_decide_a_complete_image_is_kept_whatever_its_content_type(
    tmp_path: Path, server: FaultServer, content_type: str | None, note: str | None
) -> None:
    run = Run(tmp_path)
    outcome = run.one(server.file("/typed.jpg", JPEG, content_type=content_type))
    assert outcome.status == "mirrored" and outcome.note == note
    assert (run.root / str(outcome.path)).read_bytes() == JPEG


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


def test_the_headers_of_the_host_in_the_post_go_to_its_origins(
    tmp_path: Path, server: FaultServer
) -> None:
    url = server.needs_header("/hot.jpg", "Referer", "https://blog.example.com/", JPEG)
    toml = (
        f'[download.origins]\n"img.example.com" = ["{server.base}"]\n'
        '[download.headers]\n"IMG.example.com" = { Referer = "https://blog.example.com/" }\n'
    )
    outcome = Run(tmp_path, toml).one("http://img.example.com/hot.jpg")
    assert outcome.status == "mirrored" and outcome.final_url == url
    assert server.headers["/hot.jpg"][-1]["referer"] == "https://blog.example.com/"


def test_the_origins_own_headers_apply_too_and_win_on_a_clash(
    tmp_path: Path, server: FaultServer
) -> None:
    server.redirect("/moved.jpg", "/hot.jpg")
    server.needs_header("/hot.jpg", "Referer", "https://origin.example/", JPEG)
    toml = (
        f'[download.origins]\n"img.example.com" = ["{server.base}"]\n'
        "[download.headers]\n"
        '"img.example.com" = { Referer = "https://blog.example.com/", X-Post = "1" }\n'
        '"127.0.0.1" = { referer = "https://origin.example/", User-Agent = "own/1" }\n'
    )
    assert Run(tmp_path, toml).one("http://img.example.com/moved.jpg").status == "mirrored"
    for sent in (server.headers["/moved.jpg"][-1], server.headers["/hot.jpg"][-1]):
        assert sent["referer"] == "https://origin.example/"  # the redirect's hop as well
        assert sent["x-post"] == "1" and sent["user-agent"] == "own/1"


def test_credentials_of_the_post_host_do_not_follow_a_redirect_to_another_host(
    tmp_path: Path, server: FaultServer
) -> None:
    server.redirect("/moved.jpg", f"http://elsewhere.test:{server.port}/hot.jpg")
    server.file("/hot.jpg", JPEG)
    toml = (
        f'[download.origins]\n"img.example.com" = ["{server.base}"]\n'
        "[download.headers]\n"
        '"img.example.com" = { Referer = "https://blog.example.com/", Cookie = "s=1",'
        ' Authorization = "Basic eDp5" }\n'
    )
    dns = Answers({"elsewhere.test": [["127.0.0.1"]]})
    run = Run(tmp_path, toml, resolver=dns)
    assert run.one("http://img.example.com/moved.jpg").status == "mirrored"
    asked, redirected = server.headers["/moved.jpg"][-1], server.headers["/hot.jpg"][-1]
    assert asked["cookie"] == "s=1" and asked["authorization"] == "Basic eDp5"
    assert redirected["referer"] == "https://blog.example.com/"  # a hotlink check wants it
    assert "cookie" not in redirected and "authorization" not in redirected


def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, private=False)
    outcome = run.one(server.file("/a.jpg", JPEG))
    assert outcome.status == "failed" and "download.allow_private" in (outcome.error or "")
    assert server.hits["/a.jpg"] == 0


def test_a_name_of_a_private_address_is_refused_unless_allowed(
    tmp_path: Path, server: FaultServer
) -> None:
    server.file("/a.jpg", JPEG)
    url = f"http://images.test:{server.port}/a.jpg"
    dns = Answers({"images.test": [["127.0.0.1"]]})
    refused = Run(tmp_path / "a", private=False, resolver=dns).one(url)
    assert refused.status == "failed" and refused.attempts == 1  # not worth another
    assert refused.error == (
        "refused: images.test resolves to 127.0.0.1, a private or local address"
        " (set download.allow_private = true to fetch it)"
    )
    assert server.hits["/a.jpg"] == 0
    assert Run(tmp_path / "b", resolver=dns).one(url).status == "mirrored"


def test_a_proxy_named_in_the_environment_may_be_a_local_address(
    tmp_path: Path, server: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://Proxy.test:{server.port}")
    server.file("/a.jpg", JPEG)
    dns = Answers({"proxy.test": [["127.0.0.1"]]})
    outcome = Run(tmp_path, private=False, resolver=dns).one("http://img.test/a.jpg")
    assert outcome.status == "mirrored"
    assert server.headers["/a.jpg"][-1]["host"] == "img.test" and dns.asked == ["proxy.test"]


def test_a_rebinding_answer_is_refused_where_the_connection_is_made(
    tmp_path: Path, server: FaultServer
) -> None:
    """The name answers a public address, then 127.0.0.1: whichever lookup
    gets which answer, nothing is fetched from 127.0.0.1."""
    server.file("/a.jpg", JPEG)
    url = f"http://rebind.test:{server.port}/a.jpg"
    dns = Answers({"rebind.test": [["93.184.216.34"], ["127.0.0.1"]]})
    local_only = LocalOnly()
    first, again = (
        Run(tmp_path / name, "retries = 0", private=False, resolver=dns, local_only=local_only)
        for name in ("first", "again")
    )
    public = first.one(url)  # the address it connects to was checked: the public one
    assert public.status == "failed" and local_only.refused == ["93.184.216.34"]
    rebound = again.one(url)
    assert rebound.status == "failed" and "resolves to 127.0.0.1" in (rebound.error or "")
    assert server.hits["/a.jpg"] == 0 and first.files() == again.files() == []
    assert dns.asked == ["rebind.test", "rebind.test"]  # one lookup per connection


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


def test_per_host_limit_holds_under_a_larger_total(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, "concurrency = 8\nper_host = 2\n")
    urls = [server.stall(f"/slow/{n}.jpg", 0.2, JPEG) for n in range(6)]
    assert [o.status for o in run.fetch(*urls)] == ["mirrored"] * 6
    assert server.busiest == 2


def test_total_limit_holds_across_hosts(tmp_path: Path, server: FaultServer) -> None:
    # 127.0.0.1 and localhost are two hosts to the downloader, one server here.
    run = Run(tmp_path, "concurrency = 3\nper_host = 3\n")
    urls = [server.stall(f"/slow/{n}.jpg", 0.2, JPEG) for n in range(4)]
    urls += [u.replace("127.0.0.1", "localhost") for u in urls]
    assert [o.status for o in run.fetch(*urls)] == ["mirrored"] * 8
    assert server.busiest == 3


def test_long_retry_after_is_capped_by_the_config(tmp_path: Path, server: FaultServer) -> None:
    run = Run(tmp_path, "retries = 1\nretry_after_max = 2\n")
    url = server.flaky("/busy.jpg", JPEG, fails=1, code=429, retry_after="3600")
    assert run.one(url).status == "mirrored"
    assert run.waits == [2.0]


def record_of(outcome: Outcome) -> UrlRecord:
    """The state's row for a mirrored outcome, as the fetch stage would have written it."""
    assert outcome.path and outcome.sha256
    return UrlRecord(
        url=outcome.url, final_url=outcome.final_url, status="mirrored", path=outcome.path,
        size=outcome.size, sha256=outcome.sha256, content_type=outcome.content_type,
        etag=outcome.etag, last_modified=outcome.last_modified, attempts=outcome.attempts,
        last_error=None, source=outcome.source, first_seen=datetime.now(UTC),
        last_fetched=datetime.now(UTC), last_referenced=datetime.now(UTC),
        last_checked=datetime.now(UTC),
    )  # fmt: skip


def test_refresh_sends_validators_and_keeps_the_file_on_304(
    tmp_path: Path, server: FaultServer
) -> None:
    stamp = "Wed, 01 May 2024 09:30:00 GMT"
    url = server.etag("/e.jpg", JPEG, "v1", last_modified=stamp)
    run = Run(tmp_path)
    first = run.one(url)
    path = run.root / str(first.path)
    before = path.stat().st_mtime_ns
    (again,) = run.fetch(url, known={url: record_of(first)})
    assert again.status == "unchanged" and again.path == first.path
    sent = server.headers["/e.jpg"][-1]
    assert (sent["if-none-match"], sent["if-modified-since"]) == ('"v1"', stamp)
    assert path.stat().st_mtime_ns == before and path.read_bytes() == JPEG
    assert not run.versions.exists()


def test_refresh_replaces_a_changed_image_and_keeps_the_old_one(
    tmp_path: Path, server: FaultServer
) -> None:
    url = server.etag("/c.jpg", JPEG, "v1")
    run = Run(tmp_path)
    first = run.one(url)
    new = image(colour="green")
    server.replace("/c.jpg", new, etag="v2")
    (again,) = run.fetch(url, known={url: record_of(first)})
    assert again.status == "mirrored" and again.replaced == first.path
    assert (run.root / str(again.path)).read_bytes() == new
    (kept,) = [p for p in run.versions.rglob("*") if p.is_file()]
    assert kept.read_bytes() == JPEG and kept.name.startswith("c.jpg.")
    assert not list(run.root.rglob("*.part"))


def test_refresh_of_a_server_without_validators_compares_the_bytes(
    tmp_path: Path, server: FaultServer
) -> None:
    url = server.file("/plain.jpg", JPEG)
    run = Run(tmp_path)
    first = run.one(url)
    (again,) = run.fetch(url, known={url: record_of(first)})
    assert again.status == "unchanged" and run.files() == [first.path]


def test_refresh_of_a_dead_source_reports_it_and_keeps_the_file(
    tmp_path: Path, server: FaultServer
) -> None:
    url = server.file("/gone.jpg", JPEG)
    run = Run(tmp_path, "wayback = true\n")
    first = run.one(url)
    server.status("/gone.jpg", 410)
    (again,) = run.fetch(url, known={url: record_of(first)})
    assert again.status == "failed" and again.dead and again.error == "HTTP 410"
    assert (run.root / str(first.path)).read_bytes() == JPEG
    assert server.hits["/gone.jpg"] == 2  # no Wayback Machine for a copy we already hold


def wayback_toml(server: FaultServer) -> str:
    return f'wayback = true\nwayback_base = "{server.base}/web/2id_/"\n'


def test_wayback_rescues_a_404(tmp_path: Path, server: FaultServer) -> None:
    url = server.status("/dead.jpg", 404)
    server.file(f"/web/2id_/{url}", JPEG)
    outcome = Run(tmp_path, wayback_toml(server)).one(url)
    assert outcome.status == "mirrored" and outcome.source == "wayback"
    assert outcome.final_url == f"{server.base}/web/2id_/{url}"
    assert outcome.path is not None and outcome.path.endswith("/dead.jpg")  # keyed on the URL


def test_wayback_is_not_asked_without_the_setting_or_for_other_failures(
    tmp_path: Path, server: FaultServer
) -> None:
    dead = server.status("/dead.jpg", 404)
    forbidden = server.status("/forbidden.jpg", 403)
    assert Run(tmp_path / "a").one(dead).error == "HTTP 404"
    assert Run(tmp_path / "b", wayback_toml(server)).one(forbidden).error == "HTTP 403"
    assert not [target for _, target in server.log if target.startswith("/web/")]


def test_wayback_failure_says_both_reasons(tmp_path: Path, server: FaultServer) -> None:
    url = server.status("/dead.jpg", 404)
    outcome = Run(tmp_path, wayback_toml(server)).one(url)
    assert outcome.status == "failed" and outcome.error == "HTTP 404; Wayback Machine: HTTP 404"


def test_a_host_that_no_longer_resolves_is_dead_and_goes_to_the_wayback(
    tmp_path: Path, server: FaultServer
) -> None:
    url = "http://gone.example/pic.jpg"
    server.file(f"/web/2id_/{url}", JPEG)
    run = Run(tmp_path, "retries = 1\n" + wayback_toml(server), resolver=Answers({}))
    outcome = run.one(url)
    assert outcome.status == "mirrored" and outcome.source == "wayback"
    assert outcome.attempts == 3  # twice the dead host, once the archive


def test_hash_layout_stores_identical_images_once(tmp_path: Path, server: FaultServer) -> None:
    a, b = server.file("/a.jpg", JPEG), server.file("/b/copy.jpg", JPEG)
    c = server.file("/c.png", PNG, content_type="image/png")
    run = Run(tmp_path, layout="hash")
    first, second, third = run.fetch(a, b, c)
    digest = hashlib.sha256(JPEG).hexdigest()
    assert first.path == second.path == f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"
    assert third.path is not None and third.path.endswith(".png")
    assert run.files() == sorted([first.path, third.path])
    assert (run.root / first.path).read_bytes() == JPEG


def test_refresh_keeps_the_name_when_the_format_changes(
    tmp_path: Path, server: FaultServer
) -> None:
    url = server.etag("/photo.jpg", JPEG, "v1")
    run = Run(tmp_path)
    first = run.one(url)
    server.replace("/photo.jpg", PNG, etag="v2")  # same URL, now a PNG
    (again,) = run.fetch(url, known={url: record_of(first)})
    assert again.status == "mirrored" and again.path == first.path  # posts may point at it
    assert (run.root / str(first.path)).read_bytes() == PNG
    assert run.files() == [first.path]
