"""One command's session with a site: its config, its state, and the lock when it writes.

The CLI opens the site once per command and hands the session to the stage;
no stage opens the state or takes the lock itself. A command that writes
holds the lock from its start to its end (a migrate's fetch and rewrite, a
backup's fetch, thumbnails and prune, with nothing of another run between
them). A command that only reads (scan, report, verify, the dry runs) takes
no lock, creates nothing, and reads the state once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from mirror.config import Config
from mirror.keep.lock import SiteLock
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.state import STATE_FILE_NAME, State, UrlRecord
from mirror.models import ScanResult


class Site:
    """The config and state of the site one command works on (see :func:`open_site`)."""

    def __init__(self, config: Config, state: State | None, *, writable: bool) -> None:
        self.config = config
        self.writable = writable
        self._state = state
        self._all: dict[str, UrlRecord] | None = None  # a read-only session's every record

    @property
    def state(self) -> State:
        """The state, for a command that writes it."""
        if not self.writable or self._state is None:
            raise RuntimeError("this command opened the site read-only")
        return self._state

    @property
    def read_state(self) -> State | None:
        """The state to read from, or None when nothing was recorded yet."""
        return self._state

    def records(self, urls: Sequence[str] | None = None) -> dict[str, UrlRecord]:
        """What the state knows of ``urls`` (None: every URL); empty before the first fetch.

        A read-only session reads every row once and answers from that: the
        state cannot change under a command that holds no lock and writes
        nothing worth reading back (a writer's rows are read fresh).
        """
        if self._state is None:
            return {}
        if self.writable:
            return self._state.records(urls)
        if self._all is None:
            self._all = self._state.records()
        if urls is None:
            return dict(self._all)
        return {url: self._all[url] for url in urls if url in self._all}

    def scan_records(self, scan: ScanResult) -> dict[str, UrlRecord]:
        """What the state knows of the scan's URLs, the mirror's own links with the
        records of the files they name (:meth:`OwnLinks.records`)."""
        records = self.records(scan.urls)
        records.update(OwnLinks(self.config).records(scan, self.records))
        return records


@contextmanager
def open_site(config: Config, *, write: bool) -> Iterator[Site]:
    """The session of one command: under the site lock with the state opened (and
    created, and upgraded) for writing when ``write``; else read-only, maybe
    without a state yet."""
    path = config.state_dir / STATE_FILE_NAME
    with ExitStack() as stack:
        if write:
            stack.enter_context(SiteLock(config.state_dir))
            state: State | None = stack.enter_context(State.open(path))
        else:
            state = State.read(path)
            if state is not None:
                stack.enter_context(state)
        yield Site(config, state, writable=write)
