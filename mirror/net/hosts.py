"""The health of each host contacted during one run: down, rate-limited, or fine.

A migration over an old blog meets hosts that are gone in every way: one
that accepts connections and never answers, one that refuses them, one whose
name no longer resolves, one that answers 429 to everything. Asking each of
their URLs ``1 + retries`` times, each waiting out its timeout, turns a few
dead hosts into hours. So the downloader keeps one :class:`Host` per host
it connects to (an origin, the Wayback Machine: each as contacted, its port
included, :func:`host_of`) and asks it before every attempt:

* **Down.** ``down_after`` connection failures in a row (a timeout, a
  refused connection, a failed DNS lookup; any answer at all resets the
  count) mark the host down for the run: every later attempt on it fails at
  once with the reason, and its URLs go on to their fallbacks. After
  ``PROBE_AFTER`` seconds one attempt (never more at once) is let through
  as a probe: an answer brings the host back, a failure keeps it down for
  another pause.
* **Rate-limited.** A 429 or 503 halves the number of requests the host
  is sent at once (at most once per round of requests: the answers to
  requests sent before the last cut do not cut again), and each answer
  that is not one of them raises it again by ``1 / limit``, up to
  ``per_host`` (additive increase, multiplicative decrease, as TCP does).
  A ``Retry-After`` holds every request to the host until it has passed
  (up to ``retry_after_max``), instead of each worker hitting the limit
  and sleeping on its own. A host that has refused with 429/503 for longer
  than ``retry_after_max x retries`` (no other answer between) is down too,
  with that reason.

Events (a host down, back, rate-limited, no longer) go to ``on_event`` as
they happen, for the progress display; nothing here prints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal
from urllib.parse import urlsplit

from mirror.models import HostEvent
from mirror.wording import counted

# Seconds a down host is left alone before one probe; long enough that a
# dead host costs a run at most a connection attempt every half minute.
PROBE_AFTER = 30.0

Unreachable = Literal["timeout", "refused", "dns", "connect"]
_PLURAL: dict[Unreachable, tuple[str, str]] = {
    "timeout": ("timeout", "timeouts"),
    "refused": ("refused connection", "refused connections"),
    "dns": ("failed DNS lookup", "failed DNS lookups"),
    "connect": ("failed connection", "failed connections"),
}


def host_of(url: str) -> str:
    """The host a URL contacts, as health is kept and shown: ``name`` or
    ``name:port`` when the port is not the scheme's own (two servers on one
    machine are two hosts)."""
    parts = urlsplit(url)
    name = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # not a port: the request fails on its own
        return name
    if port is None or port == _DEFAULT_PORTS.get(parts.scheme):
        return name
    return f"{name}:{port}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


class HostDown(Exception):
    """The host is down for this run: the attempt is not made."""

    def __init__(self, reason: str, *, dead: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.dead = dead  # down because its name does not resolve (the source is gone)


class Host:
    """One host's health and its share of the connections (see the module docstring)."""

    def __init__(self, name: str, hosts: Hosts) -> None:
        self.name = name
        self._hosts = hosts
        self._limit = float(hosts.per_host)  # requests at once; int() of it is used
        self._active = 0
        self._changed = asyncio.Condition()
        self._failures = 0  # connection failures in a row
        self._kinds: set[Unreachable] = set()
        self._down: str | None = None  # why, while down
        self._down_at = 0.0
        self._probing = False
        self._cut_at = float("-inf")  # when the limit was last cut
        self._throttled_since: float | None = None  # first 429/503 of the current run of them
        self._not_before = 0.0  # Retry-After: no request before this

    @property
    def down(self) -> bool:
        return self._down is not None

    @property
    def limit(self) -> int:
        return int(self._limit)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold one of the host's connections for one attempt; yields when it started.

        Raises :class:`HostDown` instead when the host is down and no probe is due.
        """
        clock = self._hosts.clock
        probe = self._admit()
        try:
            async with self._changed:
                await self._changed.wait_for(lambda: self._active < self.limit)
                self._active += 1
            try:
                wait = self._not_before - clock()
                if wait > 0:
                    await self._hosts.sleep(wait)
                if not probe:  # went down while this attempt waited its turn
                    probe = self._admit()  # (the probe, if one is due: its flag is reset below)
                yield clock()
            finally:
                async with self._changed:
                    self._active -= 1
                    self._changed.notify_all()
        finally:
            if probe:
                self._probing = False

    def _admit(self) -> bool:
        """Raise ``HostDown`` unless the host may be asked; True: this attempt is the probe."""
        if self._down is None:
            return False
        if self._probing or self._hosts.clock() - self._down_at < PROBE_AFTER:
            raise HostDown(self._down, dead=self._kinds == {"dns"})
        self._probing = True
        return True

    def answered(self, started: float, *, throttled: bool, retry_after: float | None) -> None:
        """The host answered an attempt that started at ``started`` (see :meth:`slot`);
        ``throttled``: with 429 or 503. Called while the attempt holds its slot."""
        now = self._hosts.clock()
        self._failures = 0
        self._kinds.clear()
        if self._down is not None:
            self._down = None
            self._tell("up", "answers again")
        if not throttled:
            self._throttled_since = None
            if self._limit < self._hosts.per_host:
                # Waiting attempts see a raised limit when this one's slot is released.
                self._limit = min(float(self._hosts.per_host), self._limit + 1 / self._limit)
                if self.limit == self._hosts.per_host:
                    self._tell("unthrottled", "no longer rate-limited")
            return
        if self._throttled_since is None:
            self._throttled_since = now
        if retry_after is not None:
            self._not_before = max(self._not_before, now + min(retry_after, self._hosts.cap))
        if started >= self._cut_at and self._limit > 1:
            self._cut_at = now
            self._limit = max(1.0, self._limit / 2)
            self._tell("throttled", f"rate-limited, {counted(self.limit, 'request')} at a time")
        if now - self._throttled_since > self._hosts.give_up_after:
            seconds = round(now - self._throttled_since)
            self._mark_down(
                f"host rate-limited (only 429/503 for {seconds} s, longer than"
                " download.retry_after_max x download.retries)"
            )

    def unreachable(self, kind: Unreachable) -> None:
        """An attempt could not reach the host (no answer came); called while it holds its slot."""
        self._failures += 1
        self._kinds.add(kind)
        if self._probing or self._failures >= self._hosts.down_after:
            singular, plural = _PLURAL[kind if len(self._kinds) == 1 else "connect"]
            what = singular if self._failures == 1 else plural
            self._mark_down(f"host down ({self._failures} {what} in a row)")

    def _mark_down(self, reason: str) -> None:
        self._down_at = self._hosts.clock()  # a failed probe: another pause
        if self._down is None:  # the reason it went down stays the reason
            self._down = reason
            self._tell("down", reason)

    def _tell(self, kind: Literal["down", "up", "throttled", "unthrottled"], detail: str) -> None:
        if self._hosts.on_event is not None:
            self._hosts.on_event(HostEvent(self.name, kind, detail))


class Hosts:
    """The :class:`Host` of each name contacted in one run, under one ``[download]`` config."""

    def __init__(
        self,
        *,
        per_host: int,
        down_after: int,
        retry_after_max: float,
        retries: int,
        on_event: Callable[[HostEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_host = per_host
        self.down_after = down_after
        self.cap = retry_after_max
        self.give_up_after = retry_after_max * max(1, retries)
        self.on_event = on_event
        self.clock = clock
        self.sleep = sleep
        self._hosts: dict[str, Host] = {}

    def __getitem__(self, name: str) -> Host:
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = Host(name, self)
        return host
