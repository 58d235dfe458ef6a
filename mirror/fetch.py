"""Download images: concurrent, limited per host, retried, validated, atomic.

One URL's life: refuse what must not be fetched (a scheme other than http(s),
a host that resolves to a private address unless ``allow_private``), send the
request with the host's headers, follow redirects by hand (each hop is
checked again, a loop is a failure), stream the body to a temporary file in
the target directory while hashing it and counting it against ``max_bytes``,
validate the file (``validate.inspect``), and only then rename it into place.

Whether a failed attempt is tried again is decided in one place,
``is_transient``: transport errors and timeouts (a short body is one), and
the statuses 408, 425, 429 and 5xx. ``Retry-After`` is honoured up to
``_RETRY_AFTER_CAP``. ``retries`` counts attempts after the first.

A failed image is a value (``Outcome``), not an exception: the others go on.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from mirror.config import DownloadConfig
from mirror.models import Outcome, Source
from mirror.store import AtomicFile, inside, url_path
from mirror.validate import EXTENSIONS, SNIFF_BYTES, Invalid, inspect, sniff

_RETRY_STATUSES = frozenset({408, 425, 429})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_RETRY_AFTER_CAP = 60.0  # seconds: a server asking for longer is treated as failing now


class _Retry(Exception):
    """A transient failure: worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Fail(Exception):
    """A permanent failure: another attempt would get the same answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_transient(exc: BaseException) -> bool:
    """The one retry decision: transport errors and timeouts, 408/425/429/5xx."""
    return isinstance(exc, httpx.TransportError | _Retry)


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    return [str(info[4][0]) for info in infos]


class Downloader:
    """Fetches URLs into ``mirror_root`` under one section of the config.

    The client, the resolver and the sleep are injectable so that tests can
    use a real local server without waiting out real backoff delays.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        config: DownloadConfig,
        mirror_root: Path,
        resolver: Resolver = _resolve,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._config = config
        self._root = mirror_root
        self._resolve = resolver
        self._sleep = sleep
        self._all = asyncio.Semaphore(config.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def fetch_all(
        self, urls: Sequence[str], *, on_outcome: Callable[[Outcome], None] | None = None
    ) -> list[Outcome]:
        """Fetch every URL; ``on_outcome`` sees each as it finishes (the caller
        records it at once, so a run killed half-way keeps its work). The
        result is in the order of ``urls``."""
        tasks = [asyncio.ensure_future(self.fetch(url)) for url in urls]
        for finished in asyncio.as_completed(tasks):
            outcome = await finished
            if on_outcome is not None:
                on_outcome(outcome)
        return [task.result() for task in tasks]

    async def fetch(self, url: str) -> Outcome:
        """Mirror one URL; never raises for a failure of that URL.

        A host with ``[download.origins]`` is not contacted itself: each
        alternative origin is tried in turn, and the first to give a valid
        image wins. The file and the state still key on ``url``.
        """
        parts = urlsplit(url)
        origins = self._config.origins.get(parts.hostname or "", ())
        failed: Outcome | None = None
        for origin in origins:
            rest = parts.path + (f"?{parts.query}" if parts.query else "")
            outcome = await self._fetch_from(url, origin.rstrip("/") + rest, "alternative")
            if outcome.status == "mirrored":
                return outcome
            failed = replace(outcome, error=f"{outcome.error} (from {origin})")
        return failed if failed is not None else await self._fetch_from(url, url, "origin")

    async def _fetch_from(self, url: str, source_url: str, source: Source) -> Outcome:
        host = urlsplit(source_url).hostname or ""
        per_host = self._hosts.setdefault(host, asyncio.Semaphore(self._config.per_host))
        attempts = 0

        async def attempt() -> Outcome:
            nonlocal attempts
            attempts += 1
            async with self._all, per_host:
                return await self._attempt(url, source_url)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self._config.retries),
            wait=_wait,
            retry=retry_if_exception(is_transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            outcome: Outcome = await retrying(attempt)
        except _Fail as exc:
            return Outcome(url, "failed", error=exc.reason, attempts=attempts)
        except (_Retry, httpx.TransportError) as exc:  # transient, but out of attempts
            reason = exc.reason if isinstance(exc, _Retry) else _transport_reason(exc)
            error = f"{reason} (after {attempts} attempts)"
            return Outcome(url, "failed", error=error, attempts=attempts)
        return replace(outcome, attempts=attempts, source=source)

    async def _attempt(self, url: str, source_url: str) -> Outcome:
        current = source_url
        seen = {source_url}
        for _ in range(_MAX_REDIRECTS + 1):
            await self._check_target(current)
            headers = dict(self._config.headers.get(urlsplit(current).hostname or "", {}))
            headers.setdefault("User-Agent", self._config.user_agent)
            async with self._client.stream("GET", current, headers=headers) as response:
                if response.status_code in _REDIRECTS and "location" in response.headers:
                    target = urljoin(current, response.headers["location"])
                    if target in seen:
                        raise _Fail(f"redirect loop at {target}")
                    seen.add(target)
                    current = target
                    continue
                _check_status(response)
                return await self._save(url, current, response)
        raise _Fail(f"more than {_MAX_REDIRECTS} redirects")

    async def _check_target(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _Fail(f"refused: only http and https are fetched, not {parts.scheme}:")
        if self._config.allow_private or not parts.hostname:
            return
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = await self._resolve(parts.hostname, port)
        except OSError as exc:
            raise _Retry(f"cannot resolve {parts.hostname}: {exc.strerror or exc}") from exc
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise _Fail(
                    f"refused: {parts.hostname} resolves to {ip}, a private or local address"
                    " (set download.allow_private = true to fetch it)"
                )

    async def _save(self, url: str, final_url: str, response: httpx.Response) -> Outcome:
        declared = _content_length(response)
        limit = self._config.max_bytes
        if declared is not None and declared > limit:
            raise _Fail(f"{declared} bytes is more than download.max_bytes ({limit})")
        chunks = response.aiter_raw() if _identity(response) else response.aiter_bytes()
        head = b""
        async for chunk in chunks:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
        if len(head) > limit:
            raise _Fail(f"more than download.max_bytes ({limit} bytes)")
        fmt = sniff(head)
        extension = EXTENSIONS[fmt] if fmt else ".bin"  # not an image: inspect() says why
        relative = url_path(url, extension)
        digest = hashlib.sha256(head)
        size = len(head)
        target = AtomicFile(inside(self._root, relative), fsync=self._config.fsync)
        with target as out:
            out.write(head)
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    target.discard()
                    raise _Fail(f"more than download.max_bytes ({limit} bytes)")
                digest.update(chunk)
                out.write(chunk)
            out.flush()  # inspect() reads the file from disk
            content_type = response.headers.get("content-type")
            try:
                await asyncio.to_thread(
                    inspect, target.temp, content_type=content_type,
                    expected_size=declared if _identity(response) else None,
                )  # fmt: skip
            except Invalid as exc:
                target.discard()
                if exc.reason.startswith("declared "):
                    raise _Retry(exc.reason) from exc  # a short body: the transfer broke
                raise _Fail(exc.reason) from exc
        return Outcome(
            url, "mirrored", path=relative.as_posix(), size=size, sha256=digest.hexdigest(),
            content_type=content_type, final_url=final_url,
            etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
        )  # fmt: skip


def _check_status(response: httpx.Response) -> None:
    code = response.status_code
    if code == 200:
        return
    if code in _RETRY_STATUSES or code >= 500:
        raise _Retry(f"HTTP {code}", _retry_after(response.headers.get("retry-after")))
    if code in _REDIRECTS:
        raise _Fail(f"HTTP {code} without a Location header")
    raise _Fail(f"HTTP {code}")


def _retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _wait(state: RetryCallState) -> float:
    """Retry-After when the server gave one (capped), else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Retry) and exc.retry_after is not None:
        return min(exc.retry_after, _RETRY_AFTER_CAP)
    return float(wait_exponential_jitter(multiplier=0.5, max=30.0)(state))


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _identity(response: httpx.Response) -> bool:
    """No content coding: the bytes on the wire are the file, as Content-Length counts them."""
    return response.headers.get("content-encoding", "identity").lower() in ("", "identity")


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = str(exc) or exc.__class__.__name__
    return f"transfer failed: {text}"
