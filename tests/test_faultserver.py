"""The fault-injecting test server (tests/faultserver.py), exercised with httpx."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from faultserver import FaultServer

BODY = bytes(range(256)) * 20  # 5120 bytes


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def new_client(timeout: float = 2, max_redirects: int = 20) -> httpx.Client:
    """Plain HTTP to 127.0.0.1 only: verify=False spares loading the CA bundle (~90 ms)."""
    return httpx.Client(timeout=timeout, max_redirects=max_redirects, verify=False)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client() as http:
        yield http


def test_file_is_served_with_its_type_length_and_headers(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.file("/a.png", BODY, content_type="image/png", headers={"X-Test": "1"})
    assert url == server.base + "/a.png" and server.url("/a.png") == url
    assert server.base.startswith("http://127.0.0.1:")
    r = client.get(url)
    assert (r.status_code, r.content) == (200, BODY)
    assert r.headers["content-type"] == "image/png" and r.headers["x-test"] == "1"
    assert r.headers["content-length"] == str(len(BODY))
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(BODY))
    assert server.log == [("GET", "/a.png"), ("HEAD", "/a.png")]


def test_hits_and_headers_are_kept_per_request_target(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.file("/a.jpg", BODY)
    client.get(url, headers={"Referer": "https://blog.example/one"})
    client.get(url + "?v=2", headers={"user-agent": "other/1"})
    client.get(url, headers={"If-None-Match": '"x"'})
    assert server.hits == {"/a.jpg": 2, "/a.jpg?v=2": 1}
    first, second = server.headers["/a.jpg"]
    assert first["referer"] == "https://blog.example/one"  # names are lower-case
    assert first["user-agent"].startswith("python-httpx/")
    assert second["if-none-match"] == '"x"' and "referer" not in second
    assert server.headers["/a.jpg?v=2"][0]["user-agent"] == "other/1"
    assert server.hits["/never"] == 0 and server.headers["/never"] == []


def test_keep_alive_serves_several_requests_on_one_connection(server: FaultServer) -> None:
    server.file("/a", b"one")
    server.status("/b", 404, b"gone")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    try:
        for path, status, body in [("/a", 200, b"one"), ("/b", 404, b"gone"), ("/a", 200, b"one")]:
            conn.request("GET", path)
            response = conn.getresponse()
            assert (response.status, response.read()) == (status, body)
            assert response.version == 11 and not response.will_close
    finally:
        conn.close()


def test_status_and_unknown_paths(server: FaultServer, client: httpx.Client) -> None:
    url = server.status("/forbidden.jpg", 403, b"no", headers={"Content-Type": "text/plain"})
    r = client.get(url)
    assert (r.status_code, r.content, r.headers["content-type"]) == (403, b"no", "text/plain")
    missing = client.get(server.url("/nothing/here.jpg"))
    assert (missing.status_code, missing.content) == (404, b"")
    assert server.hits["/nothing/here.jpg"] == 1


def test_flaky_fails_n_times_with_retry_after_then_serves(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.flaky("/f.jpg", BODY, fails=2, code=429, retry_after="7")
    answers = [client.get(url) for _ in range(4)]
    assert [r.status_code for r in answers] == [429, 429, 200, 200]
    assert [r.headers.get("retry-after") for r in answers] == ["7", "7", None, None]
    assert answers[2].content == BODY and server.hits["/f.jpg"] == 4
    plain = client.get(server.flaky("/g.jpg", BODY, fails=1))
    assert plain.status_code == 503 and "retry-after" not in plain.headers


def test_reset_mid_body_is_a_transport_error_then_whole(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.reset_mid_body("/r.jpg", BODY, after=100, times=2)
    for _ in range(2):
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get(url)
    assert client.get(url).content == BODY
    assert server.hits["/r.jpg"] == 3


def test_reset_mid_body_sends_a_tcp_rst(server: FaultServer) -> None:
    server.reset_mid_body("/r.jpg", BODY, after=100)
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"GET /r.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):  # not a clean EOF
            while chunk := sock.recv(65536):
                received += chunk
    assert f"Content-Length: {len(BODY)}".encode() in received or received == b""


def test_short_body_is_httpx_incomplete_body_error(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.short_body("/s.jpg", BODY[:200], declared=len(BODY), times=1)
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        client.get(url)
    whole = client.get(url)
    assert whole.content == BODY[:200] and whole.headers["content-length"] == "200"


def test_stall_past_the_client_timeout_and_the_server_still_stops() -> None:
    with FaultServer() as server:
        url = server.stall("/slow.jpg", 30)
        started = time.monotonic()
        with new_client(timeout=0.3) as http, pytest.raises(httpx.ReadTimeout):
            http.get(url)
        assert time.monotonic() - started < 1.5
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1.0


def test_stall_after_the_headers_holds_back_the_body(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.stall("/slow.jpg", 30, BODY, before_headers=False)
    with client.stream("GET", url, timeout=0.3) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(BODY))
        with pytest.raises(httpx.ReadTimeout):
            response.read()
    quick = server.stall("/quick.jpg", 0.05, BODY)
    assert client.get(quick).content == BODY


def test_no_length_body_is_read_to_the_close(server: FaultServer, client: httpx.Client) -> None:
    r = client.get(server.no_length("/n.jpg", BODY))
    assert r.content == BODY
    assert "content-length" not in r.headers and r.headers["connection"] == "close"


def test_redirects_to_a_path_or_a_url_and_loops(server: FaultServer, client: httpx.Client) -> None:
    target = server.file("/real.jpg", BODY)
    moved = server.redirect("/old.jpg", "/real.jpg", code=301)
    r = client.get(moved)
    assert (r.status_code, r.headers["location"]) == (301, "/real.jpg")
    followed = client.get(server.redirect("/via.jpg", target), follow_redirects=True)
    assert followed.content == BODY and str(followed.url) == target
    assert [str(h.url) for h in followed.history] == [server.url("/via.jpg")]

    server.redirect("/a.jpg", "/b.jpg")
    loop = server.redirect("/b.jpg", "/a.jpg")
    with new_client(max_redirects=5) as limited, pytest.raises(httpx.TooManyRedirects):
        limited.get(loop, follow_redirects=True)
    assert server.hits["/a.jpg"] + server.hits["/b.jpg"] == 6


def test_needs_header(server: FaultServer, client: httpx.Client) -> None:
    url = server.needs_header("/hot.jpg", "referer", "https://blog.example/", BODY)
    assert client.get(url).status_code == 403
    assert client.get(url, headers={"Referer": "https://elsewhere/"}).status_code == 403
    ok = client.get(url, headers={"Referer": "https://blog.example/"})
    assert (ok.status_code, ok.content) == (200, BODY)


def test_etag_and_last_modified(server: FaultServer, client: httpx.Client) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = server.etag("/e.jpg", BODY, "v1", last_modified=stamp)
    first = client.get(url)
    assert first.content == BODY
    assert (first.headers["etag"], first.headers["last-modified"]) == ('"v1"', stamp)

    same = client.get(url, headers={"If-None-Match": '"v1"'})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", '"v1"')
    assert client.get(url, headers={"If-None-Match": '"v0", W/"v1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"v0"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": stamp}).status_code == 304
    older = "Tue, 20 Oct 2015 07:28:00 GMT"
    assert client.get(url, headers={"If-Modified-Since": older}).status_code == 200

    server.replace("/e.jpg", b"new", etag="v2")
    changed = client.get(url, headers={"If-None-Match": '"v1"'})
    assert (changed.status_code, changed.content, changed.headers["etag"]) == (200, b"new", '"v2"')


def test_replace_changes_a_file(server: FaultServer, client: httpx.Client) -> None:
    url = server.file("/a.jpg", b"old")
    assert client.get(url).content == b"old"
    server.replace("/a.jpg", b"new")
    assert client.get(url).content == b"new"
    with pytest.raises(KeyError):
        server.replace("/unknown.jpg", b"x")


def test_query_routes_are_distinct(server: FaultServer, client: httpx.Client) -> None:
    png = server.file("/640?wx_fmt=png", b"png", content_type="image/png")
    jpg = server.file("/640?wx_fmt=jpg", b"jpg")
    assert client.get(png).content == b"png" and client.get(jpg).content == b"jpg"
    assert client.get(server.url("/640?wx_fmt=gif")).status_code == 404
    server.file("/plain.jpg", b"plain")  # a route without a query answers any query
    assert client.get(server.url("/plain.jpg?v=3")).content == b"plain"
    assert server.hits["/640?wx_fmt=png"] == 1 and server.hits["/640"] == 0


def test_non_ascii_paths_match_their_percent_encoding(
    server: FaultServer, client: httpx.Client
) -> None:
    url = server.file("/图片/a b.png", b"png", content_type="image/png")
    assert url == server.base + "/图片/a b.png"
    assert client.get(url).content == b"png"  # httpx percent-encodes the path
    encoded = "/%E5%9B%BE%E7%89%87/a%20b.png"
    assert client.get(server.url(encoded)).content == b"png"
    assert server.hits == {encoded: 2}  # keys are the raw request targets
    server.redirect("/旧.png", "/图片/a b.png")
    moved = client.get(server.url("/旧.png"))
    assert moved.headers["location"] == encoded


def test_the_server_stops_promptly_with_requests_in_flight() -> None:
    errors: list[Exception] = []

    def fetch(url: str) -> None:
        try:
            with new_client(timeout=10) as http:
                http.get(url)
        except httpx.HTTPError as error:
            errors.append(error)

    with FaultServer() as server:
        server.file("/idle.jpg", BODY)
        idle = new_client(timeout=10)  # leaves a keep-alive connection open
        idle.get(server.url("/idle.jpg"))
        urls = [server.stall("/s1", 30), server.stall("/s2", 30, BODY, before_headers=False)]
        threads = [threading.Thread(target=fetch, args=(url,)) for url in urls]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 2
        while server.hits["/s1"] + server.hits["/s2"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 1.0
    for thread in threads:
        thread.join(2)
        assert not thread.is_alive()
    assert len(errors) == 2
    assert all(isinstance(e, httpx.RemoteProtocolError) for e in errors), errors
    with pytest.raises(httpx.ConnectError):
        idle.get(server.url("/idle.jpg"))
    idle.close()


def test_the_server_is_quiet(capfd: pytest.CaptureFixture[str]) -> None:
    with FaultServer() as server, new_client(timeout=0.3) as http:
        for url in [
            server.reset_mid_body("/r", BODY, after=10),
            server.short_body("/s", b"x", declared=10),
            server.stall("/t", 30),
        ]:
            with pytest.raises(httpx.TransportError):
                http.get(url)
        http.get(server.url("/missing"))
    assert capfd.readouterr() == ("", "")


def test_a_bug_in_a_handler_fails_the_test_at_exit() -> None:
    server = FaultServer()
    with pytest.raises(RuntimeError, match="handler failed") as failed, server:
        url = server.file("/bad.jpg", b"", headers={"X-Name": "图"})  # not Latin-1
        with new_client() as http, pytest.raises(httpx.RemoteProtocolError):
            http.get(url)
    assert isinstance(failed.value.__cause__, UnicodeEncodeError)
    assert server.errors == [failed.value.__cause__]


def test_route_arguments_are_checked(server: FaultServer) -> None:
    with pytest.raises(ValueError):
        server.file("no-slash.jpg", b"")
    with pytest.raises(ValueError):
        server.short_body("/s", b"abc", declared=3)
    with pytest.raises(ValueError):
        server.reset_mid_body("/r", b"abc", after=3)
    with pytest.raises(ValueError):
        server.stall("/t", 1, before_headers=False)
