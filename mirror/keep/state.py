"""The SQLite state of one site: what was seen, mirrored and failed, per URL.

The database lives at ``<site>/.gallery-mirror/state.sqlite`` (never inside
the served mirror dir) and is opened with :meth:`State.open`. It is the only
memory the tool has between runs, so it is written with three guarantees:

* **A committed row is the truth.** The fetch stage renames a file into place
  *first* and records it *then* (write ``.part``, ``os.replace``, commit), so
  a row marked ``mirrored`` always has its file. Every write here happens in a
  transaction; a crash or an exception half-way leaves the previous state,
  never half a batch. :meth:`State.transaction` batches thousands of writes
  into one commit, because one fsync per image would dominate a large fetch.
* **The schema only moves forward, by named migrations** (:mod:`mirror.keep.db`):
  each table's module owns its own (the URL rows here, the journal in
  ``journal``, the thumbnails in ``thumbrows``), and :data:`MIGRATIONS` is all
  of them in the order of their names.
* **A broken file is named, not guessed at.** A file that is not an SQLite
  database, or is another program's, or is corrupt, raises a
  :class:`~mirror.errors.MirrorError` naming the file and saying to move it
  away; nothing is deleted or rebuilt silently.

Uniqueness of ``path`` is deliberately *not* a constraint: with the ``hash``
layout two URLs serving the same bytes share one file (the commit step, which
knows the layout, decides where each file goes).

Times are stored as ISO-8601 UTC text to the second (``2024-05-01T09:30:00Z``),
which sorts chronologically as text and reads well in the ``sqlite3`` shell.
A ``State`` wraps one connection and belongs to the thread that opened it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, cast, get_args

from mirror.errors import MirrorError
from mirror.keep import journal, published, scancache, thumbrows
from mirror.keep.db import (
    BUSY_TIMEOUT_S,
    Migration,
    applied_names,
    apply_migrations,
    sqlite_errors,
    timestamp,
)

__all__ = [
    "MIGRATIONS",
    "REFERENCED_TO",
    "STATE_FILE_NAME",
    "Migration",
    "Source",
    "State",
    "Status",
    "UrlRecord",
    "apply_migrations",
]

STATE_FILE_NAME: Final = "state.sqlite"
# How fine ``last_referenced`` is kept (State.seen): a day, so that a nightly
# run writes a row only for what changed.
REFERENCED_TO: Final = timedelta(days=1)

Status = Literal["pending", "mirrored", "failed"]
Source = Literal["origin", "alternative", "wayback"]
_SOURCES: Final[frozenset[str]] = frozenset(get_args(Source))

# Far below SQLITE_MAX_VARIABLE_NUMBER even on builds older than 3.32 (999).
_CHUNK: Final = 500


# The URL rows' own steps; the other tables' are in their modules.
_URL_MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        "0001_create_urls",
        """
        CREATE TABLE urls (
            url           TEXT PRIMARY KEY NOT NULL,  -- normalized, as the scanner gives it
            final_url     TEXT,                       -- after redirects / alternative origin
            status        TEXT NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'mirrored', 'failed')),
            path          TEXT,                       -- posix, relative to mirror.dir
            size          INTEGER CHECK (size IS NULL OR size >= 0),
            sha256        TEXT,
            content_type  TEXT,
            etag          TEXT,
            last_modified TEXT,                       -- the server's header, verbatim
            attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            last_error    TEXT,
            source        TEXT CHECK (source IS NULL
                                      OR source IN ('origin', 'alternative', 'wayback')),
            first_seen    TEXT NOT NULL,
            last_fetched  TEXT,
            -- A mirrored row without its file's identity could never be verified.
            CHECK (status <> 'mirrored'
                   OR (path IS NOT NULL AND size IS NOT NULL AND sha256 IS NOT NULL))
        );
        """,
    ),
    Migration(
        "0002_index_urls_path",
        # Lookups by path (prune, own links); partial, since most rows of a
        # site with dead hosts have no path.
        "CREATE INDEX urls_path ON urls (path) WHERE path IS NOT NULL;",
    ),
    Migration(
        "0005_urls_last_referenced",
        # When a scan last found the URL in a post: `backup --prune` moves a
        # file to the trash only after backup.prune_after days without one.
        """
        ALTER TABLE urls ADD COLUMN last_referenced TEXT;
        UPDATE urls SET last_referenced = first_seen;
        """,
    ),
    Migration(
        "0006_urls_last_checked",
        # When a request last asked about the URL, successful or not: a failed
        # re-check must wait backup.refresh_after like a good one, or a dead
        # source would be asked (and reported) on every run.
        """
        ALTER TABLE urls ADD COLUMN last_checked TEXT;
        UPDATE urls SET last_checked = last_fetched;
        """,
    ),
    Migration(
        "0008_urls_failures",
        # Failed runs in a row of a URL without a copy: `backup` tries it again
        # only 1, 2, 4, ... days (at most 30) after its last attempt
        # (last_checked), not on every run. A URL failed before counts once.
        """
        ALTER TABLE urls ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);
        UPDATE urls SET failures = 1 WHERE status = 'failed';
        """,
    ),
    Migration(
        "0010_urls_file_checks",
        # What `backup` checks a mirrored file against on every run without
        # reading it (its mtime, with the size), when it last hashed it (the
        # re-hash schedule, oldest first), why the file is not as recorded
        # while no repair has fixed it, and the hashes a repair or a refresh
        # replaced (a JSON list, oldest first). Rows from before have no mtime
        # yet: their size is checked until the schedule hashes them.
        """
        ALTER TABLE urls ADD COLUMN mtime_ns INTEGER;
        ALTER TABLE urls ADD COLUMN verified_at TEXT;
        ALTER TABLE urls ADD COLUMN file_problem TEXT;
        ALTER TABLE urls ADD COLUMN history TEXT NOT NULL DEFAULT '[]';
        """,
    ),
)
MIGRATIONS: Final[tuple[Migration, ...]] = tuple(
    sorted(
        (
            *_URL_MIGRATIONS,
            *journal.MIGRATIONS,
            *thumbrows.MIGRATIONS,
            *published.MIGRATIONS,
            *scancache.MIGRATIONS,
        ),
        key=lambda m: m.name,
    )
)


@dataclass(frozen=True, slots=True)
class UrlRecord:
    """What the state knows about one URL; ``None`` where nothing is known yet.

    ``attempts`` counts every request made for the URL over all runs.
    ``last_fetched`` is when the stored copy was last obtained or revalidated;
    for a URL never mirrored, when it last failed. A failed ``--refresh`` of a
    mirrored URL does not move it, so it always tells how fresh the copy is.
    """

    url: str
    final_url: str | None
    status: Status
    path: str | None
    size: int | None
    sha256: str | None
    content_type: str | None
    etag: str | None
    last_modified: str | None
    attempts: int
    last_error: str | None
    source: Source | None
    first_seen: datetime
    last_fetched: datetime | None
    last_referenced: datetime | None  # when a scan last found it in a post
    last_checked: datetime | None  # when a request last asked about it, failed or not
    # runs in a row that failed to get a copy of it; 0 once it has one
    failures: int = 0
    mtime_ns: int | None = None  # the file's mtime when it was placed or last hashed
    verified_at: datetime | None = None  # when its file was placed or last hashed as recorded
    file_problem: str | None = None  # why its file is not as recorded, until fixed
    # The hashes its file had before (JSON: [{"sha256", "size", "until"}], oldest first)
    history: str = "[]"


_COLUMNS: Final = ", ".join(f.name for f in fields(UrlRecord))
_TIMES: Final = [i for i, f in enumerate(fields(UrlRecord)) if f.type.startswith("datetime")]


def _record(row: tuple[object, ...]) -> UrlRecord:
    """Build a record from a row selected with ``_COLUMNS``."""
    values = list(row)
    for i in _TIMES:
        if values[i] is not None:
            values[i] = datetime.fromisoformat(cast(str, values[i]))
    return UrlRecord(*values)  # type: ignore[arg-type]  # column order = field order


class State:
    """The per-URL state of one site, on one SQLite connection.

    Every method that writes is atomic on its own; wrap many calls in
    :meth:`transaction` to commit them together.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an open, migrated connection; use :meth:`open` instead."""
        self._conn = conn
        self.path = path
        self._depth = 0  # transaction() nesting: 0 = none open

    @classmethod
    def open(cls, path: Path) -> State:
        """Open (creating the directory and file) and upgrade the state at ``path``.

        WAL lets ``report`` and ``verify`` read while a run writes; FULL sync
        makes a commit durable across power loss, which the rewrite journal
        needs (losing a journal entry would make a rewrite unrevertable).
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MirrorError(f"{path.parent}: cannot create the state directory: {exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            with sqlite_errors(path):
                conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                conn.execute("PRAGMA journal_mode = WAL")  # reads the header: fails if not a db
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
            apply_migrations(conn, path=path, migrations=MIGRATIONS)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def read(cls, path: Path) -> State | None:
        """Open an existing state read-only, or None when there is none yet.

        For the commands that write nothing (scan, report, verify): no file,
        directory, table or migration is created, whatever the state holds.
        """
        path = Path(path)
        if not path.is_file():
            return None
        conn: sqlite3.Connection | None = None
        try:
            with sqlite_errors(path):
                # A WAL reader creates -wal/-shm files unless the database is
                # opened as immutable. Without a -wal file no run is writing
                # (a writer's close removes it), so immutable is safe; while a
                # run writes, its -wal and -shm exist already: no new file appears.
                wal = path.with_name(path.name + "-wal").exists()
                uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if wal else "&immutable=1")
                conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                applied = applied_names(conn, path, [m.name for m in MIGRATIONS])
            if any(m.name not in applied for m in MIGRATIONS):
                raise MirrorError(
                    f"{path} was written by an older gallery-mirror: run"
                    " 'gallery-mirror fetch' once to upgrade it"
                )
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return cls(conn, path)

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for modules that own their tables (``mirror.keep.journal``).

        Write through it only inside :meth:`transaction`.
        """
        return self._conn

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back. Idempotent."""
        self._conn.close()

    def __enter__(self) -> State:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------

    def get(self, url: str) -> UrlRecord | None:
        """The record of ``url``, or ``None`` if it was never seen."""
        with sqlite_errors(self.path):
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM urls WHERE url = ?", (url,)
            ).fetchone()
        return None if row is None else _record(row)

    def mirrored_files(self) -> dict[str, str]:
        """Each mirrored file's path and SHA-256, once however many URLs share it:
        what the thumbnails are made from, without reading every record."""
        with sqlite_errors(self.path):
            rows = self._conn.execute(
                "SELECT path, sha256 FROM urls WHERE status = 'mirrored'"
                " AND path IS NOT NULL AND sha256 IS NOT NULL ORDER BY url"
            ).fetchall()
        return dict(rows)

    def records(self, urls: Iterable[str] | None = None) -> dict[str, UrlRecord]:
        """Records by URL: of ``urls`` (those known; unknown ones are left out), or all.

        Looked up in chunks, because one ``IN (?, ...)`` per URL of a large
        site would exceed SQLite's limit on bound variables.
        """
        result: dict[str, UrlRecord] = {}
        with sqlite_errors(self.path):
            if urls is None:
                for row in self._conn.execute(f"SELECT {_COLUMNS} FROM urls ORDER BY url"):
                    record = _record(row)
                    result[record.url] = record
                return result
            wanted = list(dict.fromkeys(urls))
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT {_COLUMNS} FROM urls WHERE url IN ({marks})"
                for row in self._conn.execute(query, chunk):
                    record = _record(row)
                    result[record.url] = record
        return result

    # -- writing ----------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit every write inside the block together, or none of them.

        An exception (or a crash) inside the block rolls it all back. Blocks
        nest: an inner block is a savepoint, so its failure undoes only its
        own writes if the outer block catches the exception.
        """
        conn = self._conn
        depth = self._depth
        savepoint = f"sp{depth}"
        with sqlite_errors(self.path):
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth = depth
            with sqlite_errors(self.path):
                if depth == 0:
                    if conn.in_transaction:  # SQLite may have rolled back itself (I/O error)
                        conn.execute("ROLLBACK")
                elif conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
            raise
        self._depth = depth
        with sqlite_errors(self.path):
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            except BaseException:
                if depth == 0 and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _write(self) -> Iterator[None]:
        """Join the caller's transaction, or make this one write its own."""
        if self._depth:
            with sqlite_errors(self.path):
                yield
        else:
            with self.transaction(), sqlite_errors(self.path):
                yield

    def seen(
        self,
        urls: Iterable[str],
        *,
        now: datetime | None = None,
        known: Mapping[str, UrlRecord] | None = None,
    ) -> None:
        """Record URLs the scan found: new ones become ``pending``; all are marked as
        referenced now (``last_referenced``); nothing else of known ones changes.

        ``last_referenced`` is kept to :data:`REFERENCED_TO`: a row marked
        within it is not written again, so a night with nothing new writes
        none (``backup --prune`` allows for it). ``known``: the records of
        ``urls`` as just read (else they are read here).
        """
        now = now or datetime.now(UTC)
        wanted = list(dict.fromkeys(urls))
        known = self.records(wanted) if known is None else known
        lately = now - REFERENCED_TO
        due = [
            url for url in wanted
            if (record := known.get(url)) is None
            or record.last_referenced is None or record.last_referenced <= lately
        ]  # fmt: skip
        if not due:
            return
        stamp = timestamp(now)
        with self._write():
            self._conn.executemany(
                "INSERT INTO urls (url, status, first_seen, last_referenced)"
                " VALUES (?, 'pending', ?, ?)"
                " ON CONFLICT (url) DO UPDATE SET last_referenced = excluded.last_referenced",
                ((url, stamp, stamp) for url in due),
            )

    def forget(self, urls: Iterable[str]) -> None:
        """Delete the rows of ``urls`` (pruned: their files are in the trash)."""
        with self._write():
            self._conn.executemany("DELETE FROM urls WHERE url = ?", ((url,) for url in urls))

    def mark_mirrored(
        self,
        url: str,
        *,
        path: str,
        size: int,
        sha256: str,
        content_type: str,
        final_url: str,
        etag: str | None,
        last_modified: str | None,
        source: str,
        attempts: int,
        mtime_ns: int | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record that ``url``'s file is complete at ``path`` (already renamed into place).

        ``attempts`` is the number of requests this fetch made; it is added to
        the stored total. A previous error is cleared. An unseen URL is added.
        ``mtime_ns``: the file was placed now and has this mtime (it counts as
        hashed now, and a file problem is fixed); None: the file was left as it
        was (a refresh that got the same bytes). A hash that changes goes to
        the record's ``history``.
        """
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {sorted(_SOURCES)}, not {source!r}")
        if size < 0 or attempts < 0:
            raise ValueError("size and attempts cannot be negative")
        stamp = timestamp(now)
        with self._write():
            self._conn.execute(
                """
                INSERT INTO urls (url, final_url, status, path, size, sha256, content_type,
                                  etag, last_modified, attempts, last_error, source,
                                  first_seen, last_fetched, last_checked, mtime_ns, verified_at)
                VALUES (:url, :final_url, 'mirrored', :path, :size, :sha256, :content_type,
                        :etag, :last_modified, :attempts, NULL, :source, :now, :now, :now,
                        :mtime_ns, :now)
                ON CONFLICT (url) DO UPDATE SET
                    final_url = excluded.final_url,
                    status = 'mirrored',
                    path = excluded.path,
                    size = excluded.size,
                    sha256 = excluded.sha256,
                    content_type = excluded.content_type,
                    etag = excluded.etag,
                    last_modified = excluded.last_modified,
                    attempts = urls.attempts + excluded.attempts,
                    last_error = NULL,
                    source = excluded.source,
                    last_fetched = excluded.last_fetched,
                    last_checked = excluded.last_checked,
                    failures = 0,
                    mtime_ns = COALESCE(excluded.mtime_ns, urls.mtime_ns),
                    verified_at = CASE WHEN excluded.mtime_ns IS NULL
                        THEN urls.verified_at ELSE excluded.verified_at END,
                    file_problem = CASE WHEN excluded.mtime_ns IS NULL
                        THEN urls.file_problem END,
                    history = CASE WHEN urls.sha256 IS NOT NULL AND urls.sha256 <> excluded.sha256
                        THEN json_insert(urls.history, '$[#]', json_object(
                            'sha256', urls.sha256, 'size', urls.size, 'until', :now))
                        ELSE urls.history END
                """,
                {
                    "url": url,
                    "final_url": final_url,
                    "path": path,
                    "size": size,
                    "sha256": sha256,
                    "content_type": content_type,
                    "etag": etag,
                    "last_modified": last_modified,
                    "attempts": attempts,
                    "source": source,
                    "mtime_ns": mtime_ns,
                    "now": stamp,
                },
            )

    def mark_failed(
        self, url: str, *, error: str, attempts: int, now: datetime | None = None
    ) -> None:
        """Record that fetching ``url`` failed after ``attempts`` requests (added to the total).

        A URL that is already ``mirrored`` stays ``mirrored`` with its path,
        hash and ``last_fetched``: a failed ``--refresh`` (host down today)
        must not throw away a good copy, nor make ``rewrite`` skip it. Only
        ``last_error`` and ``attempts`` change, so the report can still say
        the refresh failed. Any other URL becomes ``failed``, one more failure in
        a row (``failures``).
        """
        if attempts < 0:
            raise ValueError("attempts cannot be negative")
        stamp = timestamp(now)
        with self._write():
            self._conn.execute(
                """
                INSERT INTO urls (url, status, attempts, last_error, first_seen, last_fetched,
                                  last_checked, failures)
                VALUES (:url, 'failed', :attempts, :error, :now, :now, :now, 1)
                ON CONFLICT (url) DO UPDATE SET
                    attempts = urls.attempts + excluded.attempts,
                    last_error = excluded.last_error,
                    last_checked = excluded.last_checked,
                    status = CASE urls.status WHEN 'mirrored' THEN 'mirrored' ELSE 'failed' END,
                    failures = CASE urls.status
                        WHEN 'mirrored' THEN urls.failures ELSE urls.failures + 1 END,
                    last_fetched = CASE urls.status
                        WHEN 'mirrored' THEN urls.last_fetched ELSE excluded.last_fetched END
                """,
                {"url": url, "attempts": attempts, "error": error, "now": stamp},
            )

    def mark_checked(self, path: str, *, mtime_ns: int, now: datetime | None = None) -> None:
        """Record that the file at ``path`` was hashed now and is as recorded, with
        this mtime (the next runs compare it): for every mirrored URL it serves."""
        with self._write():
            self._conn.execute(
                "UPDATE urls SET mtime_ns = ?, verified_at = ?, file_problem = NULL"
                " WHERE path = ? AND status = 'mirrored'",
                (mtime_ns, timestamp(now), path),
            )

    def mark_file_problem(self, path: str, problem: str) -> None:
        """Record why the file at ``path`` is not as recorded (no repair fixed it):
        the next runs check it again, whatever its size and mtime."""
        with self._write():
            self._conn.execute(
                "UPDATE urls SET file_problem = ? WHERE path = ? AND status = 'mirrored'",
                (problem, path),
            )
