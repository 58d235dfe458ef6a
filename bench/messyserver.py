"""python bench/messyserver.py SPEC: the messy web's hosts, one asyncio process.

Each host is an address of its own on the loopback network (127.0.0.2,
127.0.0.3, ...: a client keeps its per-host limits by host name, as it
would for hosts on the web) with a port of its own, and serves
``ROOT/<host>/<name>`` for ``/<host>/<name>`` (the other hosts' files are
not its own: 404):

- ``fast``: at once;
- ``far``: each response ``delay`` seconds late;
- ``silent``: accepts connections and never answers (a black-holed image bed);
- ``refused``: a port bound but not listening, so connecting is refused at once;
- ``limited``: at most ``rate`` requests a second, 429 with ``Retry-After: 1`` beyond;
- ``gone``: 404 for everything; the ``wayback`` stand-in holds the first
  ``held`` of its files, at ``/web/<timestamp>id_/<the original URL>``;
- ``flaky``: 503 to the first two requests of each URL, then the file.

SPEC is JSON: ``{"root", "delay", "rate", "held", "lifetime"}``. The server
prints one line of JSON, ``{host: "address:port"}``, then serves until ``lifetime``
seconds have passed or its standard input closes (its parent is gone),
whichever comes first: it never outlives the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

HOSTS = ("fast", "far", "silent", "refused", "limited", "gone", "flaky", "wayback")
_HEAD_LIMIT = 16 * 1024  # a request head larger than this ends the connection
_IDLE = 60.0  # seconds a kept-alive connection may wait for its next request
_PER_CONNECTION = 10_000  # requests on one connection, then it is closed
_ARCHIVED = re.compile(r"^/web/[^/]*/(https?:/+.*)$")  # /web/2id_/https://host/path

Handler = Callable[[str], Awaitable[tuple[int, dict[str, str], Path | None]]]
Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class World:
    """What every host answers; one instance serves them all."""

    def __init__(self, root: Path, delay: float, rate: int, held: int) -> None:
        self.root = root
        self.delay = delay
        self.rate = rate
        self.archived = {f"/gone/{n}.jpg" for n in range(held)}
        self.flaky_hits: Counter[str] = Counter()
        self.window = (-1, 0)  # (second, requests in it) of the limited host

    def file(self, host: str, path: str) -> Path | None:
        parts = path.split("/")
        if len(parts) != 3 or parts[1] != host or not parts[2] or parts[2].startswith("."):
            return None
        target = self.root / host / parts[2]
        return target if target.is_file() else None

    async def fast(self, path: str) -> tuple[int, dict[str, str], Path | None]:
        return _found(self.file("fast", path))

    async def far(self, path: str) -> tuple[int, dict[str, str], Path | None]:
        await asyncio.sleep(self.delay)
        return _found(self.file("far", path))

    async def limited(self, path: str) -> tuple[int, dict[str, str], Path | None]:
        second = int(asyncio.get_running_loop().time())
        start, count = self.window
        count = count + 1 if start == second else 1
        self.window = (second, count)
        if count > self.rate:
            return 429, {"Retry-After": "1"}, None
        return _found(self.file("limited", path))

    async def gone(self, path: str) -> tuple[int, dict[str, str], Path | None]:
        return 404, {}, None

    async def flaky(self, path: str) -> tuple[int, dict[str, str], Path | None]:
        self.flaky_hits[path] += 1
        if self.flaky_hits[path] <= 2:
            return 503, {}, None
        return _found(self.file("flaky", path))

    async def wayback(self, path: str) -> tuple[int, dict[str, str], Path | None]:
        match = _ARCHIVED.match(path)
        original = urlsplit(re.sub(r"^(https?):/+", r"\1://", match[1])).path if match else ""
        return _found(self.file("gone", original) if original in self.archived else None)


def _found(target: Path | None) -> tuple[int, dict[str, str], Path | None]:
    return (200, {"Content-Type": "image/jpeg"}, target) if target else (404, {}, None)


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}


def _serving(answer: Handler) -> Connection:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(_PER_CONNECTION):
                async with asyncio.timeout(_IDLE):
                    head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                status, headers, body = await answer(target.decode("latin-1").split("?", 1)[0])
                data = body.read_bytes() if body else b""
                headers["Content-Length"] = str(len(data))
                lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
                lines += [f"{name}: {value}" for name, value in headers.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                if method != b"HEAD":
                    writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass  # the client went away, sent nonsense or stayed idle: end the connection
        finally:
            writer.close()

    return handle


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and drop whatever comes, never answer, until the client gives up."""
    with contextlib.suppress(OSError):
        while await reader.read(65536):
            pass
    writer.close()


async def _serve(world: World, lifetime: float) -> None:
    addresses = {host: f"127.0.0.{2 + n}" for n, host in enumerate(HOSTS)}
    servers = {
        host: await asyncio.start_server(
            _silent if host == "silent" else _serving(getattr(world, host)),
            addresses[host], 0, limit=_HEAD_LIMIT, backlog=1024,
        )
        for host in HOSTS
        if host != "refused"
    }  # fmt: skip
    # Bound, not listening: a connection is refused, and no one else takes the port meanwhile.
    refused = socket.socket()
    refused.bind((addresses["refused"], 0))
    sockets = {host: s.sockets[0] for host, s in servers.items()} | {"refused": refused}
    netlocs = {host: "{}:{}".format(*sock.getsockname()) for host, sock in sockets.items()}
    print(json.dumps(netlocs), flush=True)
    loop = asyncio.get_running_loop()
    parent_gone = loop.create_future()

    def watch() -> None:  # a daemon thread: blocked in read, it must not hold the exit up
        sys.stdin.buffer.read()
        with contextlib.suppress(RuntimeError):  # the loop has ended already
            loop.call_soon_threadsafe(parent_gone.set_result, None)

    threading.Thread(target=watch, daemon=True).start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(parent_gone, lifetime)
    finally:
        refused.close()
        for server in servers.values():
            server.close()
        # Handlers of open connections (the silent host's) are not awaited: the process ends.


def main() -> int:
    spec = json.loads(sys.argv[1])
    world = World(Path(spec["root"]), float(spec["delay"]), int(spec["rate"]), int(spec["held"]))
    asyncio.run(_serve(world, float(spec["lifetime"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
