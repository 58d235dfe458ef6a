"""The HTTP client the downloader talks through, built from ``[download]``.

httpx is the client API everywhere; underneath it runs aiohttp's connection
pool (through httpx-aiohttp's transport). Measured on 500 images from a local
nginx, httpx's own pool spent ~16 ms of CPU per image, a third of it
re-scanning its connections for every request; aiohttp's took ~6 ms.

Two more per-request costs are avoided here:

* aiohttp's ``trust_env`` looks up the proxy settings and ``~/.netrc`` for
  every request, each in a worker thread. It is turned on only when a proxy
  is configured in the environment (``HTTP_PROXY``, ``HTTPS_PROXY``,
  ``ALL_PROXY``, any case), which is what it is needed for; ``~/.netrc``
  logins are not sent to image hosts.
* httpx-aiohttp reads a body in 16 KiB pieces (~40 trips through four async
  generators for a 600 KB image); it reads ``_CHUNK`` here, with aiohttp's
  buffer sized to match.

The private-address guard (``download.allow_private``) lives here, where the
address connected to is known: the connector's resolver drops private and
local answers (``_Guard``), and a URL naming such an address outright is
refused before aiohttp sees it (aiohttp asks no resolver for those). A check
that resolved the name on its own would see another answer than the
connection does (DNS rebinding). The refusal is raised as ``PrivateAddress``,
found by the caller down the chain of the transport error. The proxies named
in the environment are exempt: the user chose them. Through a proxy, the
proxy resolves and connects: only URLs naming an address are checked then.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import SocketFactoryType
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import AiohttpResponseStream

from mirror.config import DownloadConfig

# Body read size, and aiohttp's per-response buffer (it pauses the socket at
# twice this): at most ~3 x 256 KiB held per download.
_CHUNK = 256 * 1024
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class PrivateAddress(OSError):
    """A connection to a private or local address, refused by the guard."""

    def __init__(self, host: str, address: str) -> None:
        named = f"{host} is" if host == address else f"{host} resolves to {address},"
        super().__init__(
            f"refused: {named} a private or local address"
            " (set download.allow_private = true to fetch it)"
        )


def _public(address: str) -> bool:
    """Whether an IP address may be connected to without ``allow_private``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone is no part of it
    return ip.is_global and not ip.is_multicast


def make_client(
    download: DownloadConfig,
    *,
    resolver: AbstractResolver | None = None,
    socket_factory: SocketFactoryType | None = None,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` sized to ``concurrency``, with the connect and stall
    timeouts and the private-address guard.

    Redirects are not followed here: the downloader follows them itself so that
    every hop is a request of its own, guarded. Per-host limits are the
    downloader's too, so the pool itself only caps the total. ``resolver``
    (aiohttp's default when None) answers the guard; ``socket_factory`` makes
    the sockets (tests keep connections on this machine with them).
    """
    ssl_context = httpx.create_ssl_context()
    proxies = [os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARIABLES]
    proxied = any(proxies)
    exempt = frozenset(urlsplit(proxy).hostname or "" for proxy in proxies if proxy)

    def session() -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session (and its resolver) belongs to the running loop.
        guard = _Guard(
            resolver or aiohttp.DefaultResolver(),
            allow_private=download.allow_private, exempt=exempt,
        )  # fmt: skip
        connector = aiohttp.TCPConnector(
            limit=download.concurrency, limit_per_host=0, ssl=ssl_context, resolver=guard,
            socket_factory=socket_factory,
        )  # fmt: skip
        return aiohttp.ClientSession(connector=connector, trust_env=proxied, read_bufsize=_CHUNK)

    return httpx.AsyncClient(
        transport=_Transport(client=session, allow_private=download.allow_private),
        # aiohttp's sock_connect and sock_read: a host that does not connect,
        # or goes silent, is told apart in seconds; a slow download that keeps
        # moving is bounded only by the whole response's ``timeout``, which the
        # downloader keeps (the transport passes no total on to aiohttp).
        timeout=httpx.Timeout(
            download.timeout, connect=download.connect_timeout, read=download.stall_timeout
        ),
    )


class _Guard(AbstractResolver):
    """Resolves through ``inner``, then drops the private and local answers
    (unless allowed, or ``host`` is an exempt proxy); none left is a refusal."""

    def __init__(
        self, inner: AbstractResolver, *, allow_private: bool, exempt: frozenset[str]
    ) -> None:
        self._inner = inner
        self._allow_private = allow_private
        self._exempt = exempt

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        if self._allow_private or host.lower().rstrip(".") in self._exempt:
            return answers
        public = [answer for answer in answers if _public(answer["host"])]
        if answers and not public:
            raise PrivateAddress(host, answers[0]["host"])
        return public

    async def close(self) -> None:
        await self._inner.close()


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport, reading bodies in larger pieces, refusing
    URLs that name a private or local address unless ``allow_private``."""

    def __init__(self, *, client: Callable[[], aiohttp.ClientSession], allow_private: bool) -> None:
        super().__init__(client=client)
        self._allow_private = allow_private

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if not self._allow_private and _is_address(host) and not _public(host):
            raise PrivateAddress(host, host)
        response = await super().handle_async_request(request)
        if isinstance(response.stream, AiohttpResponseStream):
            response.stream.CHUNK_SIZE = _CHUNK  # a class default, set per response
        return response


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
