"""Download images: concurrent, limited per host, retried, validated, atomic.

One URL's life: refuse what must not be fetched (a scheme other than http(s);
a private address unless ``allow_private``, refused by the client's guard as
it connects, see ``mirror.net.transport``), send the request with the headers of
the host the post names and of the host contacted (an origin, a redirect
target), follow redirects by hand (each hop is checked again, a loop is a
failure), stream the body to a temporary file in the staging directory while
hashing it and counting it against ``max_bytes``, and validate the file
(``validate.inspect``). What comes out is a checked temporary file
(:class:`Downloaded`): where it goes, and the state row, are the commit
step's (``mirror.keep.commit``).

Whether a failed attempt is tried again is decided in one place,
``is_transient``: transport errors and timeouts (a short body is one), and
the statuses 408, 425, 429 and 5xx. ``Retry-After`` is honoured up to
``download.retry_after_max``. ``retries`` counts attempts after the first.

A URL already mirrored can be *refreshed*: the request carries its ETag and
Last-Modified (:class:`Conditional`), and a 304 is an ``unchanged`` outcome.
A source that is gone (404/410, a host that no longer resolves) is retried
at the Wayback Machine when ``download.wayback`` is set (not on a refresh).

``probe`` asks for a URL the same way (HEAD, or a one-byte ranged GET where
HEAD is refused) without downloading it, for ``report --check``.

A failed image is a value (``Outcome``), not an exception: the others go on.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC
from pathlib import Path, PurePosixPath
from typing import Literal, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from mirror.config import DownloadConfig
from mirror.formats import FORMATS
from mirror.keep.incoming import Incoming
from mirror.keep.store import CheckedRoot
from mirror.models import HostEvent, Outcome, Probe, Source
from mirror.net.hosts import HostDown, Hosts, Unreachable, host_of
from mirror.net.transport import PrivateAddress
from mirror.pixels.validate import (
    SNIFF_BYTES,
    ImageInfo,
    Invalid,
    content_type_allows,
    content_type_note,
    inspect,
    not_an_image,
    sniff,
)
from mirror.wording import counted

_RETRY_STATUSES = frozenset({408, 425, 429})
_THROTTLED = frozenset({429, 503})  # the host asks for fewer requests
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GONE = frozenset({404, 410})
_MAX_REDIRECTS = 10
# Answers to HEAD from servers that only serve GET (or only GET from browsers):
# the probe asks again with a one-byte ranged GET before calling the URL broken.
_HEAD_REFUSED = frozenset({400, 403, 405, 501})
# The body is handed to a worker thread in blocks this large: one or two hops
# for a typical image, and at most this much held per download in memory.
_BLOCK = 512 * 1024


class _Retry(Exception):
    """A transient failure: worth another attempt. ``dead``: the host does not resolve;
    ``throttled``: the host answered 429 or 503 (it is sent fewer requests at once)."""

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        *,
        dead: bool = False,
        throttled: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.dead = dead
        self.throttled = throttled


class _Unreachable(_Retry):
    """No answer came from the host asked: a timeout, a refused connection, a
    failed lookup. Counts towards the host being down (``mirror.net.hosts``)."""

    def __init__(self, reason: str, kind: Unreachable, *, dead: bool) -> None:
        super().__init__(reason, dead=dead)
        self.kind = kind


class _Fail(Exception):
    """A permanent failure: another attempt would get the same answer."""

    def __init__(self, reason: str, *, dead: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.dead = dead


@dataclass(frozen=True, slots=True)
class _Failure:
    """What a URL's attempts came to when none succeeded."""

    reason: str
    dead: bool


_T = TypeVar("_T")


def is_transient(exc: BaseException) -> bool:
    """The one retry decision: transport errors and timeouts, 408/425/429/5xx."""
    return isinstance(exc, httpx.TransportError | _Retry)


@dataclass(frozen=True, slots=True)
class Conditional:
    """The validators of a stored copy, for a refresh's conditional GET."""

    etag: str | None
    last_modified: str | None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Downloaded:
    """A complete download that passed validation, still at its temporary name.

    ``outcome`` is its "mirrored" outcome without a path (the commit step
    gives it one); whoever holds this must commit or discard ``file``.
    """

    outcome: Outcome
    file: Incoming
    extension: str


class Downloader:
    """Downloads URLs into temporary files below ``staging`` under one section of
    the config (``staging`` must be on the file system the files go to).

    The client, the sleep and the clock are injectable so that tests can
    use a real local server without waiting out real backoff delays. Each
    host contacted has its health and its share of the connections
    (``mirror.net.hosts``); ``on_host`` hears when a host goes down or is
    rate-limited.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        config: DownloadConfig,
        staging: Path,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_host: Callable[[HostEvent], None] | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self.staging = CheckedRoot(staging)  # paths below it, checked to stay there
        self._sleep = sleep
        self._all = asyncio.Semaphore(config.concurrency)
        self.hosts = Hosts(
            per_host=config.per_host, down_after=config.down_after,
            retry_after_max=config.retry_after_max, retries=config.retries,
            on_event=on_host, clock=clock, sleep=sleep,
        )  # fmt: skip

    async def probe_all(self, urls: Sequence[str]) -> list[Probe]:
        """:meth:`probe` for every URL, in the order of ``urls``."""
        return await self.each(urls, self.probe)

    async def each(self, urls: Sequence[str], work: Callable[[str], Awaitable[_T]]) -> list[_T]:
        """``work`` on every URL, the results in the order of ``urls`` (those
        that finished, if interrupted).

        Not a task per URL (a waiting task costs a few kB: 40 MB for 10,000
        URLs) but, per host, ``per_host`` runners taking its URLs in turn: as
        many requests run at once, and memory does not grow with the list.
        """
        results: list[_T | None] = [None] * len(urls)
        queues: dict[str, deque[int]] = defaultdict(deque)
        for index, url in enumerate(urls):
            queues[self._first_host(url)].append(index)

        async def take(queue: deque[int]) -> None:
            while queue:
                index = queue.popleft()
                results[index] = await work(urls[index])

        runners = [
            asyncio.ensure_future(take(queue))
            for queue in queues.values()
            for _ in range(min(self._config.per_host, len(queue)))
        ]
        try:
            await asyncio.gather(*runners)
        finally:
            # Interrupted: stop every request now; a download removes its own temporary file.
            for runner in runners:
                runner.cancel()
            await asyncio.gather(*runners, return_exceptions=True)
        return [result for result in results if result is not None]

    def _first_host(self, url: str) -> str:
        """The host whose ``per_host`` limit the first attempt at ``url`` counts against."""
        parts = urlsplit(url)
        origins = self._config.origins.get(parts.hostname or "", ())
        return host_of(origins[0] if origins else url)

    async def fetch(self, url: str, refresh: Conditional | None = None) -> Downloaded | Outcome:
        """Download one URL (conditionally, to ``refresh`` a stored copy): the
        checked file, or an outcome that is "failed" or (a 304) "unchanged".
        Never raises for a failure of that URL.

        A host with ``[download.origins]`` is not contacted itself: each
        alternative origin is tried in turn, and the first to give a valid
        image wins. The outcome still keys on ``url``.
        """
        got: Downloaded | Outcome | None = None
        last = url
        for origin, origin_url in self._origins(url):
            got = await self._fetch_from(url, origin_url, "alternative", refresh)
            if isinstance(got, Downloaded) or got.status != "failed":
                return got
            got = replace(got, error=f"{got.error} (from {origin})")
            last = origin_url
        if got is None:
            got = await self._fetch_from(url, url, "origin", refresh)
        if isinstance(got, Downloaded) or got.status != "failed":
            return got
        # A host down for the run is as good as gone for this URL: its archived copy, then.
        down = self.hosts[host_of(last)].down
        if (got.dead or down) and self._config.wayback and refresh is None:
            archive = self._config.wayback_base + url
            archived = await self._fetch_from(url, archive, "wayback", None)
            attempts = got.attempts + (
                archived.outcome.attempts if isinstance(archived, Downloaded) else archived.attempts
            )
            if isinstance(archived, Downloaded):
                return replace(archived, outcome=replace(archived.outcome, attempts=attempts))
            error = f"{got.error}; Wayback Machine: {archived.error}"
            return replace(got, error=error, attempts=attempts)
        return got

    async def probe(self, url: str) -> Probe:
        """Whether ``url`` answers with an image a fetch could keep, without downloading it.

        HEAD, or where HEAD is refused a GET of the first byte only; under the
        same limits, retries, origins, headers and private-address guard as
        :meth:`fetch`. Never raises for a failure of that URL.
        """
        probe: Probe | None = None
        for origin, origin_url in self._origins(url):
            probe = await self._probe_from(url, origin_url)
            if probe.reachable:
                return probe
            probe = replace(probe, error=f"{probe.error} (from {origin})")
        return probe or await self._probe_from(url, url)

    def _origins(self, url: str) -> list[tuple[str, str]]:
        """``(origin, url at that origin)`` for each of the host's alternative origins."""
        parts = urlsplit(url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return [
            (origin, origin.rstrip("/") + rest)
            for origin in self._config.origins.get(parts.hostname or "", ())
        ]

    async def _fetch_from(
        self, url: str, source_url: str, source: Source, refresh: Conditional | None
    ) -> Downloaded | Outcome:
        # The Wayback Machine is not the host's server: the host's headers stay home.
        own = {} if source == "wayback" else self._own_headers(url)
        got, attempts = await self._retried(
            source_url, lambda: self._attempt(url, source_url, own, refresh)
        )
        if isinstance(got, _Failure):
            return Outcome(url, "failed", error=got.reason, attempts=attempts, dead=got.dead)
        if isinstance(got, Downloaded):
            return replace(got, outcome=replace(got.outcome, attempts=attempts, source=source))
        return replace(got, attempts=attempts, source=source)

    async def _probe_from(self, url: str, source_url: str) -> Probe:
        own = self._own_headers(url)
        probe, attempts = await self._retried(
            source_url, lambda: self._probe_once(url, source_url, own)
        )
        if isinstance(probe, _Failure):
            return Probe(url, False, error=probe.reason, attempts=attempts)
        return replace(probe, attempts=attempts)

    async def _retried(
        self, source_url: str, once: Callable[[], Awaitable[_T]]
    ) -> tuple[_T | _Failure, int]:
        """``once()`` under the limits, tried again while ``is_transient`` says so.

        Returns its result, or why it failed, and the number of attempts made.
        """
        host = self.hosts[host_of(source_url)]
        attempts = 0

        async def attempt() -> _T:
            nonlocal attempts
            try:
                # The host's slot first: an attempt waiting for a rate-limited
                # host holds none of the connections other hosts could use.
                async with host.slot() as started, self._all:
                    attempts += 1  # a host down is not asked: no attempt
                    try:
                        got = await once()
                    except _Unreachable as exc:
                        host.unreachable(exc.kind)
                        raise
                    except _Retry as exc:  # an answer, maybe 429/503
                        retry_after = exc.retry_after
                        host.answered(started, throttled=exc.throttled, retry_after=retry_after)
                        raise
                    except _Fail:  # an answer, final for this URL
                        host.answered(started, throttled=False, retry_after=None)
                        raise
                    except (OSError, httpx.TransportError) as exc:
                        refused = _in_chain(exc, PrivateAddress)
                        if refused is None:
                            raise  # broke after the answer began: says nothing of the host
                        raise _Fail(str(refused)) from exc  # permanent: the address is not allowed
                    host.answered(started, throttled=False, retry_after=None)
                    return got
            except HostDown as exc:
                raise _Fail(exc.reason, dead=exc.dead) from exc

        cap = self._config.retry_after_max
        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self._config.retries),
            wait=lambda state: _wait(state, cap),
            retry=retry_if_exception(is_transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return await retrying(attempt), attempts
        except _Fail as exc:
            return _Failure(exc.reason, exc.dead), attempts
        except (_Retry, httpx.TransportError) as exc:  # transient, but out of attempts
            if isinstance(exc, _Retry):
                reason, dead = exc.reason, exc.dead
            else:
                reason, dead = _transport_reason(exc), _unresolvable(exc)
            return _Failure(f"{reason} (after {counted(attempts, 'attempt')})", dead), attempts

    def _own_headers(self, url: str) -> Mapping[str, str]:
        """The ``[download.headers]`` of ``url``'s host as written in the post."""
        return self._config.headers.get(urlsplit(url).hostname or "", {})

    @asynccontextmanager
    async def _request(
        self, method: str, url: str, own: Mapping[str, str], extra: Mapping[str, str]
    ) -> AsyncIterator[tuple[str, httpx.Response]]:
        """The streamed answer to ``method url`` and the URL it came from.

        Redirects are followed here: every hop is checked against the guard
        and sent with ``own`` (the headers of the host the post names: a
        hotlink check on an origin or a redirect target wants them too), then
        the headers of the host contacted (winning on a clash), then ``extra``.
        Credentials in ``own`` go only to the host first asked: a redirect to
        another host gets them no more than a browser or curl would send them.
        """
        current = url
        seen = {url}
        first = urlsplit(url).hostname
        for _ in range(_MAX_REDIRECTS + 1):
            _check_scheme(current)
            name = urlsplit(current).hostname
            headers = httpx.Headers({"User-Agent": self._config.user_agent})
            # update() replaces a name in any case
            headers.update(own if name == first else _public(own))
            headers.update(self._config.headers.get(name or "", {}))
            headers.update(extra)
            answered = False
            try:
                # The transport bounds the connect and each wait for a byte;
                # the whole response is bounded here.
                async with (
                    asyncio.timeout(self._config.timeout),
                    self._client.stream(method, current, headers=headers) as response,
                ):
                    answered = True
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        target = urljoin(current, response.headers["location"])
                        if target in seen:
                            raise _Fail(f"redirect loop at {target}")
                        seen.add(target)
                        current = target
                        continue
                    yield current, response
                    return
            except (TimeoutError, httpx.TransportError) as exc:
                reason = self._timeout_reason(exc, answered=answered)
                kind = _unreachable(exc)
                elsewhere = host_of(current) != host_of(url)  # a redirect's: not the host asked
                if answered or elsewhere or kind is None or _in_chain(exc, PrivateAddress):
                    if reason is None:
                        raise
                    raise _Retry(reason) from exc
                # Nothing came from the host asked: it counts towards the host being down.
                if reason is None:
                    assert isinstance(exc, httpx.TransportError)  # a TimeoutError has its reason
                    reason = _transport_reason(exc)
                raise _Unreachable(reason, kind, dead=kind == "dns") from exc
        raise _Fail(f"more than {_MAX_REDIRECTS} redirects")

    def _timeout_reason(self, exc: BaseException, *, answered: bool) -> str | None:
        """Which timeout ended an attempt, with its key; None for other errors."""
        config = self._config
        if isinstance(exc, TimeoutError):
            return f"timed out (the response took over {config.timeout:g} s, download.timeout)"
        if isinstance(exc, httpx.ConnectTimeout) and isinstance(exc.__cause__, TimeoutError):
            return f"timed out connecting ({config.connect_timeout:g} s, download.connect_timeout)"
        if isinstance(exc, httpx.ReadTimeout):
            waited = "stalled mid-body" if answered else "timed out waiting for an answer"
            return f"{waited} (no byte for {config.stall_timeout:g} s, download.stall_timeout)"
        return None

    async def _attempt(
        self, url: str, source_url: str, own: Mapping[str, str], refresh: Conditional | None
    ) -> Downloaded | Outcome:
        extra = {} if refresh is None else refresh.headers()
        async with self._request("GET", source_url, own, extra) as (current, response):
            if response.status_code == 304 and refresh is not None:
                return Outcome(
                    url, "unchanged", final_url=current, etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )  # fmt: skip
            _check_status(response)
            return await self._save(url, current, response)

    async def _probe_once(self, url: str, source_url: str, own: Mapping[str, str]) -> Probe:
        look = False  # the answer's type is no image's: its first bytes decide, as in a fetch
        async with self._request("HEAD", source_url, own, {}) as (final, response):
            if response.status_code not in _HEAD_REFUSED:
                probe = self._probed(url, final, response, "HEAD")
                if probe.error is not None or content_type_allows(probe.content_type):
                    return probe
                look = True
        ranged = {"Range": f"bytes=0-{SNIFF_BYTES - 1 if look else 0}"}
        async with self._request("GET", source_url, own, ranged) as (final, response):
            probe = self._probed(url, final, response, "GET")
            if probe.error is not None or content_type_allows(probe.content_type):
                return probe
            head = bytearray()
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) >= SNIFF_BYTES:
                    break
        if sniff(bytes(head)) is None:
            return replace(
                probe, reachable=False, error=not_an_image(bytes(head), probe.content_type)
            )
        return probe

    def _probed(
        self, url: str, final: str, response: httpx.Response, method: Literal["HEAD", "GET"]
    ) -> Probe:
        """The probe's verdict on an answer; raises ``_Retry`` for a transient one."""
        code = response.status_code
        content_type = response.headers.get("content-type")
        found = Probe(url, False, code, content_type, _total_size(response), final, method)
        if code not in (200, 206):
            try:
                _check_status(response)  # a transient answer raises _Retry: asked again
            except _Fail as exc:
                return replace(found, error=exc.reason)
        # What the fetch would refuse after downloading it is refused here already.
        limit = self._config.max_bytes
        if found.size is not None and found.size > limit:
            return replace(found, error=f"{found.size} bytes is more than download.max_bytes")
        return replace(found, reachable=True)

    async def _save(self, url: str, final_url: str, response: httpx.Response) -> Downloaded:
        declared = _content_length(response)
        limit = self._config.max_bytes
        if declared is not None and declared > limit:
            raise _Fail(f"{declared} bytes is more than download.max_bytes ({limit})")
        chunks = response.aiter_raw() if _identity(response) else response.aiter_bytes()
        head = bytearray()
        async for chunk in chunks:
            head += chunk
            if len(head) >= SNIFF_BYTES:
                break
        fmt = sniff(bytes(head))
        extension = FORMATS[fmt].extension if fmt else ".bin"  # not an image: the check says why
        # Its final name is the commit step's to give; until then the file
        # lies in the staging root, on the same file system.
        incoming = Incoming(
            self.staging,
            PurePosixPath(f"incoming{extension}"),
            fsync=self._config.fsync,
            expected=declared,
        )
        content_type = response.headers.get("content-type")
        blocks, held, size = [bytes(head)], len(head), len(head)
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise _Fail(f"more than download.max_bytes ({limit} bytes)")
                blocks.append(chunk)
                held += len(chunk)
                if held >= _BLOCK:
                    await asyncio.to_thread(incoming.write, blocks)
                    blocks, held = [], 0
            if size > limit:  # all of it came with the first bytes, read for the sniff
                raise _Fail(f"more than download.max_bytes ({limit} bytes)")
            try:
                info = await asyncio.to_thread(
                    self._check, incoming, blocks, content_type=content_type,
                    expected_size=declared if _identity(response) else None,
                )  # fmt: skip
            except Invalid as exc:
                if exc.reason.startswith("declared "):
                    raise _Retry(exc.reason) from exc  # a short body: the transfer broke
                raise _Fail(exc.reason) from exc
        except BaseException:
            # discard() waits for a write still running in its thread.
            incoming.discard()
            raise
        outcome = Outcome(
            url, "mirrored", size=size, sha256=incoming.sha256, content_type=content_type,
            final_url=final_url, etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            note=content_type_note(content_type, info.format),
        )  # fmt: skip
        return Downloaded(outcome, incoming, extension)

    def _check(
        self,
        incoming: Incoming,
        last: list[bytes],
        *,
        content_type: str | None,
        expected_size: int | None,
    ) -> ImageInfo:
        """Write the last blocks and validate the whole file (in a worker thread);
        raises ``Invalid``."""
        return inspect(
            incoming.flush(last), content_type=content_type,
            expected_size=expected_size, max_pixels=self._config.max_pixels,
        )  # fmt: skip


_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


def _public(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` less the credentials."""
    return {name: value for name, value in headers.items() if name.lower() not in _CREDENTIALS}


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise _Fail(f"refused: only http and https are fetched, not {scheme}:")


def _check_status(response: httpx.Response) -> None:
    code = response.status_code
    if code == 200:
        return
    if code in _RETRY_STATUSES or code >= 500:
        retry_after = _retry_after(response.headers.get("retry-after"))
        raise _Retry(f"HTTP {code}", retry_after, throttled=code in _THROTTLED)
    if code in _REDIRECTS:
        raise _Fail(f"HTTP {code} without a Location header")
    raise _Fail(f"HTTP {code}", dead=code in _GONE)


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


def _wait(state: RetryCallState, cap: float) -> float:
    """Retry-After when the server gave one, else exponential backoff with jitter.

    A server asking for more than ``cap`` seconds (download.retry_after_max)
    is taken at its word that it is failing now: the attempt is waited for
    ``cap`` and, if still refused, fails once out of attempts.
    """
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Retry) and exc.retry_after is not None:
        return min(exc.retry_after, cap)
    return float(wait_exponential_jitter(multiplier=0.5, max=30.0)(state))


def _total_size(response: httpx.Response) -> int | None:
    """The whole file's size: from ``Content-Range: bytes 0-0/<total>`` on a 206."""
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    return _content_length(response)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _identity(response: httpx.Response) -> bool:
    """No content coding: the bytes on the wire are the file, as Content-Length counts them."""
    return response.headers.get("content-encoding", "identity").lower() in ("", "identity")


def _transport_reason(exc: httpx.TransportError) -> str:
    # The transport maps its own errors to httpx's, not always to the closest
    # one (a dropped connection becomes a "connect timeout"): the cause says.
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    if isinstance(cause, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if _unresolvable(exc):
        return f"cannot resolve the host: {cause}"
    text = str(cause) or cause.__class__.__name__
    return f"transfer failed: {text}"


def _unreachable(exc: BaseException) -> Unreachable | None:
    """How an attempt failed to reach its host at all, or None when it did reach it."""
    if _unresolvable(exc):
        return "dns"
    # The cause says: the transport maps a dropped connection to a "connect timeout" too.
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ else exc
    if isinstance(cause, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if _in_chain(exc, ConnectionRefusedError) is not None:
        return "refused"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return None


def _unresolvable(exc: BaseException) -> bool:
    """Whether a DNS lookup failed somewhere down ``exc``'s chain of causes."""
    return _in_chain(exc, socket.gaierror) is not None


_E = TypeVar("_E", bound=BaseException)


def _in_chain(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first ``kind`` down ``exc``'s chain of causes (``exc`` included), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
