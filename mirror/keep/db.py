"""The SQLite file under the state: named forward-only migrations, times, and errors
that name the file.

The schema only moves forward, by named migrations, as in sqlite-utils'
``migrations.py``: each table's module declares its own (``state`` the URL
rows, ``journal`` the rewrite journal, ``thumbrows`` the thumbnails), and
:mod:`mirror.keep.state` applies them all in the order of their names. The
``migrations`` table records the names applied. Opening a database applies
the missing steps, in order, all in one transaction: a failure leaves the
file exactly as it was. A database that records a name this version does not
know was written by a newer version and is refused rather than misread.
Never edit, rename or reorder a migration that has shipped, since databases
in the wild record its name as done.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from mirror.errors import MirrorError
from mirror.version import __version__

# Waiting this long for a lock held by another connection (a `report` reading
# while a `fetch` commits) beats failing at once with "database is locked".
BUSY_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Migration:
    """One named, forward-only schema step.

    ``apply`` is an SQL script (statements separated by ``;``) or a function
    given the connection. Either runs inside the upgrade's transaction, so a
    function must not commit; SQLite DDL is transactional, so a failing step
    undoes the steps before it too.
    """

    name: str
    apply: str | Callable[[sqlite3.Connection], None]


def timestamp(now: datetime | None = None) -> str:
    """UTC ISO-8601 text to the second; refuse naive times, which have no zone to trust."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one, e.g. datetime.now(UTC)")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script into single statements.

    ``executescript`` would do it, but it COMMITs any open transaction first,
    which would break the all-or-nothing upgrade. ``complete_statement`` knows
    about ``;`` inside strings, comments and trigger bodies.
    """
    start = 0
    for semicolon in re.finditer(";", script):
        candidate = script[start : semicolon.end()]
        if sqlite3.complete_statement(candidate):
            yield candidate
            start = semicolon.end()
    rest = script[start:].strip()
    if rest:
        raise ValueError(f"migration SQL does not end with ';': {rest[:60]!r}")


def _broken(path: Path, exc: sqlite3.Error) -> MirrorError:
    """The message for a database SQLite cannot use, with what to do about it."""
    if isinstance(exc, sqlite3.OperationalError):
        # Locked, read-only, disk full, cannot open: the file may be fine.
        return MirrorError(f"{path}: cannot use the state database: {exc}")
    return MirrorError(
        f"{path} is not a usable gallery-mirror state database ({exc}). "
        f"Move it away (for example to {path.name}.broken) and run again "
        "to start a new, empty state."
    )


@contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Turn database failures into a MirrorError naming the file.

    Integrity and programming errors are bugs in the caller, not in the
    file, so they stay as they are.
    """
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.Error as exc:
        raise _broken(path, exc) from exc


def apply_migrations(
    conn: sqlite3.Connection,
    *,
    path: Path,
    migrations: Sequence[Migration],
    now: datetime | None = None,
) -> list[str]:
    """Bring the database up to ``migrations``; return the names applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``): this
    function owns the transaction. ``BEGIN IMMEDIATE`` takes the write lock
    before reading what is applied, so two processes opening one new file
    cannot both apply the same step. ``path`` is only for messages.
    """
    if conn.in_transaction:
        raise RuntimeError("apply_migrations() needs a connection outside a transaction")
    known = [m.name for m in migrations]
    if len(set(known)) != len(known):
        raise ValueError("duplicate migration names")
    with sqlite_errors(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            applied = applied_names(conn, path, known)
            todo = [m for m in migrations if m.name not in applied]
            stamp = timestamp(now)
            for migration in todo:
                if isinstance(migration.apply, str):
                    for statement in _statements(migration.apply):
                        conn.execute(statement)
                else:
                    migration.apply(conn)
                conn.execute(
                    "INSERT INTO migrations (name, applied_at, version) VALUES (?, ?, ?)",
                    (migration.name, stamp, __version__),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return [m.name for m in todo]


def applied_names(conn: sqlite3.Connection, path: Path, known: Sequence[str]) -> set[str]:
    """The migration names recorded in the file, creating the table in a new file.

    Refuses another program's database and one written by a newer version.
    """
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if "migrations" not in tables:
        if tables:
            raise MirrorError(
                f"{path} is an SQLite database but not a gallery-mirror state "
                f"(it has tables {', '.join(sorted(tables))} and no 'migrations' table). "
                "Move it away and run again."
            )
        # The one table outside the migration list: it records the list itself.
        conn.execute(
            "CREATE TABLE migrations ("
            " name TEXT PRIMARY KEY NOT NULL,"
            " applied_at TEXT NOT NULL,"
            " version TEXT)"
        )
        return set()
    rows = conn.execute("SELECT name, version FROM migrations").fetchall()
    known_set = set(known)
    unknown = sorted((name, version) for name, version in rows if name not in known_set)
    if unknown:
        names = ", ".join(name for name, _ in unknown)
        versions = sorted({str(v) for _, v in unknown if v})
        by = f" ({', '.join(versions)})" if versions else ""
        raise MirrorError(
            f"{path} was written by a newer gallery-mirror{by} than this one "
            f"({__version__}): it records schema migrations this version does not know "
            f"({names}). Upgrade gallery-mirror, or move the file away to start a new state."
        )
    return {name for name, _ in rows}
