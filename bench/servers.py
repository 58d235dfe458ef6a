"""Image servers on 127.0.0.1: nginx, and an asyncio server with a fixed delay.

nginx (keep-alive, sendfile) is the fast local baseline; the delay server
adds the same wait to every response to model a far-away CDN, where
concurrency, not bandwidth, decides the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"no server answered on 127.0.0.1:{port}")


@contextlib.contextmanager
def nginx(root: Path) -> Iterator[str]:
    """Serve ``root`` with nginx; yields the base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as prefix:
        conf = Path(prefix) / "nginx.conf"
        # Started as root, nginx drops its workers to www-data, who may not
        # read a corpus under a private folder: keep them as the caller.
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(
            f"""daemon off;
{user}
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ image/jpeg jpg; image/png png; image/gif gif; image/webp webp; }}
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root.resolve()};
    }}
}}
"""
        )
        process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", prefix], stderr=subprocess.DEVNULL
        )
        try:
            _wait_for(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


@contextlib.contextmanager
def delayed(root: Path, delay: float = 0.05) -> Iterator[str]:
    """Serve ``root`` over HTTP/1.1 keep-alive, each response ``delay`` seconds late."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await reader.readuntil(b"\r\n\r\n"):
                path = request.split(b" ", 2)[1].decode().split("?", 1)[0]
                await asyncio.sleep(delay)
                target = (root / path.lstrip("/")).resolve()
                if root.resolve() not in target.parents or not target.is_file():
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                size = target.stat().st_size
                kind = _TYPES.get(target.suffix.lower(), "application/octet-stream")
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {size}\r\n\r\n".encode()
                )
                with target.open("rb") as body:
                    await loop.sendfile(writer.transport, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        started.set()
        async with server:
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        _wait_for(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
