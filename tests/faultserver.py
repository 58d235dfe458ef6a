"""A real HTTP server on 127.0.0.1 that injects faults, for testing the downloader.

Use it as a context manager (or through a fixture that wraps one)::

    with FaultServer() as server:
        url = server.flaky("/a.jpg", JPEG, fails=2)
        ...
        assert server.hits["/a.jpg"] == 3

Every route method returns the route's full URL. A request is recorded in
``hits``, ``headers`` and ``log`` before any byte of its answer is sent, so a
client that has seen an answer (or an error) can count on it being counted.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, unquote, unquote_to_bytes

Kind = Literal[
    "file", "status", "flaky", "reset", "short", "stall", "no_length", "redirect", "no_head"
]
JOIN_TIMEOUT = 1.0  # how long close() waits for handler threads (they are daemons anyway)


@dataclass
class _Route:
    kind: Kind
    body: bytes = b""
    content_type: str | None = "image/jpeg"  # None: no Content-Type header
    headers: dict[str, str] = field(default_factory=dict)
    code: int = 200
    times: int | None = None  # flaky: fails; reset/short: faulty answers (None = all)
    count: int = 0  # reset, stall: bytes sent before the RST or stall; short: the declared length
    seconds: float = 0.0
    before_headers: bool = True
    to: str = ""
    needs: tuple[str, str] | None = None  # (header name, value) or None
    etag: str | None = None
    last_modified: str | None = None
    calls: int = 0  # requests this route has answered or is answering


class FaultServer:
    """A ThreadingHTTPServer (HTTP/1.1, keep-alive) on 127.0.0.1:0 with fault routes."""

    def __init__(self) -> None:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fault = self
        self.port: int = self._httpd.server_port
        self.base = f"http://127.0.0.1:{self.port}"
        self.hits: Counter[str] = Counter()  # by raw request target: path + "?" + query
        self.headers: dict[str, list[dict[str, str]]] = defaultdict(list)  # lower-case names
        self.log: list[tuple[str, str]] = []  # (method, raw request target), in order
        self.errors: list[BaseException] = []  # bugs in a handler (not client disconnects)
        self.busiest = 0  # the most requests answered at the same time
        # limit(): requests answered at once beyond it get a 429 (or its code)
        self._at_once: tuple[int, int, dict[str, str]] | None = None
        self.limited = 0  # requests refused by limit()
        self.in_flight: list[int] = []  # other requests being answered, at each arrival
        self._busy = 0
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._conns: dict[threading.Thread, socket.socket] = {}

    # -- life cycle ---------------------------------------------------------

    def start(self) -> FaultServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.01},  # the longest shutdown() waits
                name=f"faultserver {self.base}",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop: wake stalled handlers, stop accepting, cut open connections, close."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns.items())
        self._stop.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        for _, conn in conns:  # idle keep-alive connections wait in recv(): end them
            _cut(conn)
        for thread, _ in conns:
            thread.join(JOIN_TIMEOUT / len(conns))
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc is None and self.errors:
            raise RuntimeError(f"fault server handler failed: {self.errors[0]!r}") from (
                self.errors[0]
            )

    def limit(self, at_once: int, *, code: int = 429, retry_after: str | None = None) -> None:
        """A rate limit over every route: a request arriving while ``at_once``
        others are being answered gets ``code`` (empty, Retry-After if given)."""
        extra = {} if retry_after is None else {"Retry-After": retry_after}
        self._at_once = (at_once, code, extra)

    def url(self, path: str) -> str:
        """``base + path``, as given (not percent-encoded)."""
        return self.base + path

    # -- routes ---------------------------------------------------------------

    def _add(self, path: str, route: _Route) -> str:
        if not path.startswith("/"):
            raise ValueError(f"a route path starts with '/': {path!r}")
        with self._lock:
            self._routes[unquote(path)] = route
        return self.url(path)

    def file(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str | None = "image/jpeg",
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """200 with ``body``, its Content-Type (None: none) and Content-Length, and ``headers``."""
        return self._add(path, _Route("file", body, content_type, dict(headers or {})))

    def status(
        self, path: str, code: int, body: bytes = b"", *, headers: Mapping[str, str] | None = None
    ) -> str:
        """Always ``code`` with ``body`` (no Content-Type unless in ``headers``)."""
        return self._add(path, _Route("status", body, "", dict(headers or {}), code=code))

    def flaky(
        self,
        path: str,
        body: bytes,
        *,
        fails: int,
        code: int = 503,
        content_type: str = "image/jpeg",
        retry_after: str | None = None,
    ) -> str:
        """``code`` (empty, with Retry-After if given) the first ``fails`` times, then 200."""
        extra = {} if retry_after is None else {"Retry-After": retry_after}
        route = _Route("flaky", body, content_type, extra, code=code, times=fails)
        return self._add(path, route)

    def reset_mid_body(
        self,
        path: str,
        body: bytes,
        *,
        after: int,
        times: int | None = None,
        content_type: str = "image/jpeg",
    ) -> str:
        """Full Content-Length, ``after`` bytes, then a TCP RST; whole after ``times``."""
        if not 0 <= after < len(body):
            raise ValueError("reset_mid_body needs 0 <= after < len(body)")
        return self._add(path, _Route("reset", body, content_type, times=times, count=after))

    def short_body(
        self,
        path: str,
        body: bytes,
        *,
        declared: int,
        times: int | None = None,
        content_type: str = "image/jpeg",
    ) -> str:
        """Content-Length: ``declared`` (> len(body)), the body, then a clean close."""
        if declared <= len(body):
            raise ValueError("short_body needs declared > len(body)")
        return self._add(path, _Route("short", body, content_type, times=times, count=declared))

    def stall(
        self,
        path: str,
        seconds: float,
        body: bytes = b"",
        *,
        before_headers: bool = True,
        sent: int = 0,
        content_type: str = "image/jpeg",
    ) -> str:
        """Wait ``seconds`` before the headers (or after them and the body's first
        ``sent`` bytes, before the rest)."""
        if not before_headers and not 0 <= sent < len(body):
            raise ValueError("a stall after the headers needs a body to hold back")
        route = _Route(
            "stall", body, content_type, seconds=seconds, before_headers=before_headers, count=sent
        )
        return self._add(path, route)

    def no_length(self, path: str, body: bytes, *, content_type: str = "image/jpeg") -> str:
        """200 without Content-Length: the body ends when the server closes (Connection: close)."""
        return self._add(path, _Route("no_length", body, content_type))

    def redirect(self, path: str, to: str, *, code: int = 302) -> str:
        """``code`` with Location: ``to`` (a path, sent relative, or a full URL)."""
        return self._add(path, _Route("redirect", code=code, to=to))

    def head_refused(
        self, path: str, body: bytes, *, code: int = 405, content_type: str = "image/jpeg"
    ) -> str:
        """``code`` to HEAD; GET gets ``body`` (a 206 with its start for ``Range: bytes=0-N``)."""
        return self._add(path, _Route("no_head", body, content_type, code=code))

    def needs_header(
        self,
        path: str,
        name: str,
        value: str,
        body: bytes,
        *,
        content_type: str = "image/jpeg",
    ) -> str:
        """403 unless the request has header ``name`` (any case) exactly equal to ``value``."""
        return self._add(path, _Route("file", body, content_type, needs=(name, value)))

    def etag(
        self,
        path: str,
        body: bytes,
        etag: str,
        *,
        last_modified: str | None = None,
        content_type: str = "image/jpeg",
    ) -> str:
        """200 with ETag (and Last-Modified); 304 when If-None-Match / If-Modified-Since match.

        An unquoted ``etag`` is sent quoted: ``"v1"`` for ``v1``.
        """
        route = _Route("file", body, content_type, etag=_quote_etag(etag))
        route.last_modified = last_modified
        return self._add(path, route)

    def replace(self, path: str, body: bytes, *, etag: str | None = None) -> None:
        """Change a route's body (and ETag, which also makes a ``file`` route conditional)."""
        with self._lock:
            route = self._routes[unquote(path)]
            route.body = body
            if etag is not None:
                route.etag = _quote_etag(etag)

    # -- called by the handler ------------------------------------------------

    def _record(self, handler: _Handler) -> tuple[_Route | None, int]:
        """Count the request; return its route (or None) and how many came before.

        A target in absolute form (``http://host/path``, as a client sends it to
        a forward proxy) counts as its path: the server serves as a proxy too.
        """
        target = handler.path
        if not target.startswith("/"):
            target = "/" + target.split("://", 1)[-1].partition("/")[2]
        seen: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            seen[key] = f"{seen[key]}, {value}" if key in seen else value
        path, question, _ = target.partition("?")
        with self._lock:
            self.hits[target] += 1
            self.headers[target].append(seen)
            self.log.append((handler.command, target))
            route = self._routes.get(_decode(target)) if question else None
            if route is None:  # a route without a query answers for any query
                route = self._routes.get(_decode(path))
            if route is None:
                return None, 0
            route.calls += 1
            return route, route.calls - 1

    def _connected(self, conn: socket.socket) -> None:
        with self._lock:
            if not self._closed:
                self._conns[threading.current_thread()] = conn
                return
        _cut(conn)  # accepted just as the server stopped: end it at once

    def _disconnected(self) -> None:
        with self._lock:
            self._conns.pop(threading.current_thread(), None)


def _cut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        conn.shutdown(socket.SHUT_RDWR)


def _decode(target: str) -> str:
    """A request target as the Unicode text routes are registered with."""
    # http.server decodes the request line as Latin-1; undo that, then %-decode as UTF-8.
    return unquote_to_bytes(target.encode("latin-1")).decode("utf-8", "replace")


def _typed(route: _Route) -> dict[str, str]:
    """The route's Content-Type header, or none."""
    return {} if route.content_type is None else {"Content-Type": route.content_type}


def _quote_etag(tag: str) -> str:
    return tag if tag.startswith(('"', 'W/"')) else f'"{tag}"'


def _weak(tag: str) -> str:
    return tag.strip().removeprefix("W/")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fault: FaultServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can be slow: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.socket.getsockname()[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):  # OSError: client went away
            self.fault.errors.append(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms wait
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fault._connected(self.connection)

    def finish(self) -> None:
        self.server.fault._disconnected()
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silence the per-request lines on stderr

    def do_GET(self) -> None:
        self._counted()

    def do_HEAD(self) -> None:
        self._counted()

    def _counted(self) -> None:
        fault = self.server.fault
        with fault._lock:
            fault.in_flight.append(fault._busy)
            limited = fault._at_once is not None and fault._busy >= fault._at_once[0]
            if limited:
                fault.limited += 1
            else:
                fault._busy += 1
                fault.busiest = max(fault.busiest, fault._busy)
        if fault._at_once is not None and limited:
            _, code, extra = fault._at_once
            self._reply(code, b"", extra)
            return
        try:
            self._answer()
        finally:
            with fault._lock:
                fault._busy -= 1

    # -- answers ----------------------------------------------------------------

    def _head(self, code: int, headers: Mapping[str, str]) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _body(self, data: bytes) -> None:
        if self.command != "HEAD":
            self.wfile.write(data)

    def _reply(
        self, code: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        self._head(code, {**(headers or {}), "Content-Length": str(len(body))})
        self._body(body)

    def _abort(self) -> None:
        """Close the connection at once with SO_LINGER 0, so the peer gets a TCP RST."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the makefile() reference would keep the socket open
        self.connection.close()

    def _answer(self) -> None:
        fault = self.server.fault
        route, before = fault._record(self)
        if route is None:
            self._reply(404)
            return
        typed = _typed(route)
        faulty = route.times is None or before < route.times
        match route.kind:
            case "file":
                self._file(route)
            case "status":
                self._reply(route.code, route.body, route.headers)
            case "flaky" if faulty:
                self._reply(route.code, b"", route.headers)
            case "reset" if faulty:
                self._head(200, {**typed, "Content-Length": str(len(route.body))})
                if self.command != "HEAD":
                    self.wfile.write(route.body[: route.count])
                    self._abort()
            case "short" if faulty:
                self._head(200, {**typed, "Content-Length": str(route.count)})
                self._body(route.body)
                self.close_connection = True
            case "stall" if route.before_headers:
                if fault._stop.wait(route.seconds):
                    self.close_connection = True  # the server is stopping: no answer
                else:
                    self._reply(200, route.body, typed)
            case "stall":
                self._head(200, {**typed, "Content-Length": str(len(route.body))})
                self._body(route.body[: route.count])
                if fault._stop.wait(route.seconds):
                    self.close_connection = True
                else:
                    self._body(route.body[route.count :])
            case "no_length":
                self._head(200, {**typed, "Connection": "close"})
                self._body(route.body)
            case "no_head" if self.command == "HEAD":
                self._reply(route.code)
            case "no_head":
                self._ranged(route)
            case "redirect":
                location = quote(route.to, safe=":/?#[]@!$&'()*+,;=%~")
                self._reply(route.code, b"", {"Location": location})
            case _:  # flaky, reset and short once their faults are spent
                self._reply(200, route.body, typed)

    def _ranged(self, route: _Route) -> None:
        """Only the ``bytes=0-N`` form of Range, the one a probe sends."""
        wanted = self.headers.get("Range", "")
        last = wanted.removeprefix("bytes=0-")
        if wanted == last or not last.isdigit():
            self._reply(200, route.body, _typed(route))
            return
        part = route.body[: int(last) + 1]
        total = len(route.body)
        self._reply(
            206,
            part,
            {**_typed(route), "Content-Range": f"bytes 0-{len(part) - 1}/{total}"},
        )

    def _file(self, route: _Route) -> None:
        if route.needs is not None:
            name, value = route.needs
            if self.headers.get(name) != value:
                self._reply(403)
                return
        headers = _typed(route)
        if route.etag is not None:
            headers["ETag"] = route.etag
        if route.last_modified is not None:
            headers["Last-Modified"] = route.last_modified
        if self._not_modified(route):
            headers.pop("Content-Type", None)
            self._head(304, headers)
        else:
            self._reply(200, route.body, {**headers, **route.headers})

    def _not_modified(self, route: _Route) -> bool:
        none_match = self.headers.get("If-None-Match")
        if none_match is not None:  # RFC 9110: If-Modified-Since is then ignored
            tags = {_weak(tag) for tag in none_match.split(",")}
            return route.etag is not None and ("*" in tags or _weak(route.etag) in tags)
        since = self.headers.get("If-Modified-Since")
        if since is None or route.last_modified is None:
            return False
        if since == route.last_modified:
            return True
        try:
            return parsedate_to_datetime(since) >= parsedate_to_datetime(route.last_modified)
        except (TypeError, ValueError):
            return False


class SilentHost:
    """A host on 127.0.0.1 that accepts connections and never answers (a
    black-holed image bed behind a proxy that accepts for it); counts them.

    ``connections`` is the number accepted, each held open until :meth:`close`.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # how often the accept loop looks at _stop
        self.port: int = self._listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent host", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._held.append(conn)
            self.connections += 1

    def __enter__(self) -> SilentHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._listener.close()


class UnreachableHost:
    """A port on 127.0.0.1 where connecting never completes: its listen queue
    is full (filled here), so the kernel drops every further SYN, as a
    firewall that drops packets does."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._fill: list[socket.socket] = []
        for _ in range(3):  # more than a queue of length 0 holds on any kernel
            conn = socket.socket()
            conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                conn.connect(("127.0.0.1", self.port))
            self._fill.append(conn)

    def __enter__(self) -> UnreachableHost:
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in self._fill:
            conn.close()
        self._listener.close()


def refusing_base() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
