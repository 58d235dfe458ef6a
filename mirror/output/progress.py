"""Fetch progress for people and for logs.

On a terminal: a tqdm bar counting images, with the bytes so far. Elsewhere
(cron, CI, a pipe): a plain line at most every ``interval`` seconds, so a log
shows the run moving without one line per image. ``-v`` adds a line per
image either way; ``-q`` and ``--no-progress`` turn both off.

A run that slows down says why: a host going down or being rate-limited
(``mirror.net.hosts``) is a line of its own as it happens, and the bar and
the periodic lines name the hosts down and rate-limited until they recover.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Never, TextIO

from mirror.models import HostEvent, Outcome
from mirror.wording import counted

if TYPE_CHECKING:
    from tqdm import tqdm


def _bar(total: int, out: TextIO) -> tqdm[Never]:
    """A tqdm bar without its monitor thread: the thumbnail workers are forked
    only from a process without threads (see :mod:`mirror.pixels.thumbnails`),
    and the bar is refreshed on every image anyway. tqdm is imported here, for
    a bar with something to count: a night with nothing to do never imports it."""
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[type-arg]
        monitor_interval = 0

    bar: tqdm[Never] = Bar(total=total, unit="img", file=out, dynamic_ncols=True)
    return bar


class Progress:
    """Counts steps (images fetched, thumbnails made) and shows them as configured."""

    def __init__(
        self,
        out: TextIO,
        *,
        bar: bool,
        lines: bool,
        each: bool,
        verb: str = "fetched",
        interval: float = 10.0,
        host_lines: bool = True,
    ) -> None:
        self._out = out
        self._use_bar = bar
        # a line per host event (a command that logs its own events writes them there)
        self._host_lines = host_lines and (bar or lines or each)
        self._lines = lines and not bar
        self._each = each
        self._verb = verb
        self._interval = interval
        self._bar: tqdm[Never] | None = None
        self._total = self._done = self._failed = self._bytes = 0
        self._last = time.monotonic()
        self._down: dict[str, None] = {}  # hosts down now, in the order they went (a set, ordered)
        self._throttled: dict[str, None] = {}  # hosts sent fewer requests now

    def planned(self, total: int) -> None:
        self._total = total
        if self._use_bar and total:
            self._bar = _bar(total, self._out)

    def finished(self, outcome: Outcome) -> None:
        size = outcome.size if outcome.status == "mirrored" else 0
        self.step(outcome.url, outcome.status, outcome.error or outcome.note, size)

    def host(self, event: HostEvent) -> None:
        """A host went down or came back, was rate-limited or no longer is."""
        trouble = self._down if event.kind in ("down", "up") else self._throttled
        if event.kind in ("down", "throttled"):
            trouble[event.host] = None
        else:
            trouble.pop(event.host, None)
        if self._host_lines:
            self._write(f"{event.host}: {event.detail}")
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix())

    def step(self, name: str, status: str, detail: str | None, size: int = 0) -> None:
        self._done += 1
        self._failed += status == "failed"
        self._bytes += size
        if self._each:
            self._write(f"{status}: {name}" + (f" ({detail})" if detail else ""))
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix())
            self._bar.update()
        elif self._lines and time.monotonic() - self._last >= self._interval:
            self._last = time.monotonic()
            self._out.write(f"{self._line()}\n")
            self._out.flush()

    def _line(self) -> str:
        return (
            f"{self._verb} {self._done}/{counted(self._total, 'image')}"
            f" ({self._bytes / 1e6:.1f} MB),"
            f" {self._failed} failed{self._hosts()}"
        )

    def _postfix(self) -> str:
        return f"{self._bytes / 1e6:.1f} MB, {self._failed} failed{self._hosts()}"

    def _hosts(self) -> str:
        """``; down: a, b; rate-limited: c`` for the hosts in trouble now, or nothing."""
        parts = [
            f"; {label}: {', '.join(hosts)}"
            for label, hosts in (("down", self._down), ("rate-limited", self._throttled))
            if hosts
        ]
        return "".join(parts)

    def _write(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self._out)
        else:
            self._out.write(text + "\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
