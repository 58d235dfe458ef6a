"""The SQLite state: migrations, round-trips, atomicity, and broken files.

Every test uses a real database file in ``tmp_path``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.errors import MirrorError
from mirror.keep.state import (
    MIGRATIONS,
    STATE_FILE_NAME,
    Migration,
    State,
    UrlRecord,
    apply_migrations,
)

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(days=1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "site" / ".gallery-mirror" / STATE_FILE_NAME


def mirrored(state: State, url: str, path: str = "h/a.jpg", **changes: object) -> None:
    """mark_mirrored with plausible defaults."""
    kwargs: dict[str, object] = {
        "path": path,
        "size": 123,
        "sha256": "ab" * 32,
        "content_type": "image/jpeg",
        "final_url": url,
        "etag": '"e1"',
        "last_modified": "Wed, 01 May 2024 09:00:00 GMT",
        "source": "origin",
        "attempts": 1,
        "now": T1,
    }
    kwargs.update(changes)
    state.mark_mirrored(url, **kwargs)  # type: ignore[arg-type]


def migration_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT name, applied_at FROM migrations ORDER BY name").fetchall()


def raw_connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(path, isolation_level=None)


# -- creating, reopening, migrations --------------------------------------------


def test_open_creates_directory_file_and_schema(db: Path) -> None:
    with State.open(db) as state:
        assert state.path == db
        assert state.records() == {}
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # persistent
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"migrations", "urls"} <= tables
    assert "urls_path" in indexes
    assert [name for name, _ in migration_rows(db)] == [m.name for m in MIGRATIONS]


def test_connection_settings(db: Path) -> None:
    with State.open(db) as state:
        conn = state._conn
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_reopen_keeps_data_and_applies_migrations_once(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/a.jpg"], now=T0)
        mirrored(state, "https://h/b.jpg")
    before = migration_rows(db)
    for _ in range(2):
        with State.open(db) as state:
            assert set(state.records()) == {"https://h/a.jpg", "https://h/b.jpg"}
    assert migration_rows(db) == before  # not re-applied: same names, same times
    assert len(before) == len(MIGRATIONS)


def test_migration_names_are_unique_and_sql_is_complete() -> None:
    names = [m.name for m in MIGRATIONS]
    assert len(names) == len(set(names))
    assert len(MIGRATIONS) >= 2  # the upgrade test below needs an "older" list


def test_old_database_is_upgraded_keeping_its_rows(db: Path) -> None:
    conn = raw_connect(db)
    assert apply_migrations(conn, path=db, migrations=MIGRATIONS[:1], now=T0) == [
        MIGRATIONS[0].name
    ]
    conn.execute(
        "INSERT INTO urls (url, status, first_seen) VALUES ('https://h/old.png', 'pending', ?)",
        ("2024-01-01T00:00:00Z",),
    )
    conn.close()
    assert [n for n, _ in migration_rows(db)] == [MIGRATIONS[0].name]

    with State.open(db) as state:
        old = state.get("https://h/old.png")
        assert old is not None and old.status == "pending"
        assert old.first_seen == datetime(2024, 1, 1, tzinfo=UTC)
    assert [n for n, _ in migration_rows(db)] == [m.name for m in MIGRATIONS]
    with sqlite3.connect(db) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "urls_path" in indexes


def test_function_migrations_and_sql_scripts_with_tricky_semicolons(db: Path) -> None:
    calls: list[str] = []

    def add_settings(conn: sqlite3.Connection) -> None:
        calls.append("ran")
        conn.execute("CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT)")
        conn.execute("INSERT INTO settings VALUES ('sep', 'a;b')")

    later = (
        *MIGRATIONS,
        Migration("9001_settings", add_settings),
        Migration(
            "9002_trigger",
            """
            -- a comment; with a semicolon
            CREATE TABLE log (msg TEXT);
            CREATE TRIGGER settings_log AFTER INSERT ON settings BEGIN
                INSERT INTO log VALUES ('x;y');
            END;
            INSERT INTO settings VALUES ('two', ';');
            """,
        ),
    )
    with State.open(db):
        pass
    conn = raw_connect(db)
    assert apply_migrations(conn, path=db, migrations=later) == ["9001_settings", "9002_trigger"]
    assert apply_migrations(conn, path=db, migrations=later) == []
    assert calls == ["ran"]
    assert conn.execute("SELECT * FROM log").fetchall() == [("x;y",)]
    assert conn.execute("SELECT v FROM settings ORDER BY k").fetchall() == [("a;b",), (";",)]
    conn.close()


def test_failing_migration_leaves_the_file_as_it_was(db: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    conn = raw_connect(db)
    apply_migrations(conn, path=db, migrations=MIGRATIONS[:1])
    with pytest.raises(RuntimeError, match="boom"):
        apply_migrations(conn, path=db, migrations=(*MIGRATIONS, Migration("9001_broken", broken)))
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "half" not in tables
    assert "urls_path" not in indexes  # the step before the broken one is undone too
    assert [r[0] for r in conn.execute("SELECT name FROM migrations")] == [MIGRATIONS[0].name]
    conn.close()


def test_newer_database_is_refused(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/a.jpg"])
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO migrations VALUES ('0099_rewrite_journal', '2030-01-01T00:00:00Z', '9.0')"
        )
    with pytest.raises(MirrorError) as caught:
        State.open(db)
    message = str(caught.value)
    assert str(db) in message
    assert "newer" in message and "0099_rewrite_journal" in message and "9.0" in message
    with sqlite3.connect(db) as conn:  # refused, not touched
        assert conn.execute("SELECT count(*) FROM urls").fetchone() == (1,)


@pytest.mark.parametrize(
    "content",
    [b"this is not a database, just text\n" * 200, bytes(range(256)) * 16],
    ids=["text", "binary"],
)
def test_not_a_database_is_refused_with_advice(db: Path, content: bytes) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    with pytest.raises(MirrorError) as caught:
        State.open(db)
    message = str(caught.value)
    assert str(db) in message and "Move it away" in message
    assert db.read_bytes() == content  # never overwritten


def test_another_programs_database_is_refused(db: Path) -> None:
    conn = raw_connect(db)
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.close()
    with pytest.raises(MirrorError, match="not a gallery-mirror state") as caught:
        State.open(db)
    assert str(db) in str(caught.value) and "photos" in str(caught.value)


def test_corrupt_pages_surface_as_mirror_error_naming_the_file(db: Path) -> None:
    with State.open(db) as state:
        (schema_pages,) = state.connection.execute("PRAGMA page_count").fetchone()
        state.seen(f"https://h/{i:05}.jpg" for i in range(2000))
    data = bytearray(db.read_bytes())
    size = int.from_bytes(data[16:18], "big")
    keep = schema_pages * size  # the header, the schema and every table's root: before the rows
    assert len(data) > keep + 4 * size
    data[keep:] = b"\xff" * (len(data) - keep)  # the urls table's leaves
    db.write_bytes(bytes(data))
    # What open() reads is intact; the damage is found on use.
    with State.open(db) as state, pytest.raises(MirrorError) as caught:
        state.records()
    assert str(db) in str(caught.value) and "Move it away" in str(caught.value)


def test_state_dir_that_cannot_be_created_is_a_mirror_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(MirrorError, match="state directory"):
        State.open(blocker / ".gallery-mirror" / STATE_FILE_NAME)


# -- round-trips ------------------------------------------------------------------


def test_seen_inserts_pending_once(db: Path) -> None:
    with State.open(db) as state:
        assert state.get("https://h/a.jpg") is None
        state.seen(["https://h/a.jpg", "https://h/a.jpg", "https://h/b.jpg"], now=T0)
        state.seen(["https://h/a.jpg"], now=T2)  # known: only marked as referenced again
        a = state.get("https://h/a.jpg")
        b = state.get("https://h/b.jpg")
    assert a == UrlRecord(
        url="https://h/a.jpg",
        final_url=None,
        status="pending",
        path=None,
        size=None,
        sha256=None,
        content_type=None,
        etag=None,
        last_modified=None,
        attempts=0,
        last_error=None,
        source=None,
        first_seen=T0,
        last_fetched=None,
        last_referenced=T2,
        last_checked=None,
    )
    assert b is not None and b.last_referenced == T0


def test_seen_writes_a_reference_again_only_a_day_later(db: Path) -> None:
    """A nightly run with nothing new writes no row: last_referenced is kept to the day."""
    with State.open(db) as state:
        state.seen(["https://h/a.jpg"], now=T0)
        changes = state.connection.total_changes
        state.seen(["https://h/a.jpg"], now=T1)  # an hour later: as it was
        assert state.connection.total_changes == changes
        record = state.get("https://h/a.jpg")
        assert record is not None and record.last_referenced == T0
        state.seen(["https://h/a.jpg"], now=T2)
        record = state.get("https://h/a.jpg")
        assert record is not None and record.last_referenced == T2


def test_forget_deletes_rows(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/a.jpg", "https://h/b.jpg"], now=T0)
        state.forget(["https://h/a.jpg"])
        assert sorted(state.records()) == ["https://h/b.jpg"]


def test_mark_mirrored_round_trip_and_update(db: Path) -> None:
    url = "https://h/%E4%B8%AD.jpg?x=1"
    with State.open(db) as state:
        state.seen([url], now=T0)
        state.mark_failed(url, error="HTTP 503", attempts=5, now=T1)
        mirrored(
            state,
            url,
            path="h/中_1a2b.jpg",
            final_url="https://cdn.h/x.jpg",
            source="alternative",
            attempts=2,
            now=T2,
        )
    with State.open(db) as state:
        record = state.get(url)
    assert record is not None
    assert record.status == "mirrored"
    assert record.path == "h/中_1a2b.jpg"
    assert record.final_url == "https://cdn.h/x.jpg"
    assert record.source == "alternative"
    assert (record.size, record.sha256, record.content_type) == (123, "ab" * 32, "image/jpeg")
    assert record.etag == '"e1"' and record.last_modified == "Wed, 01 May 2024 09:00:00 GMT"
    assert record.attempts == 7  # requests in total, over both runs
    assert record.last_error is None  # cleared by the success
    assert record.first_seen == T0 and record.last_fetched == T2


def test_mark_mirrored_and_failed_add_unseen_urls(db: Path) -> None:
    with State.open(db) as state:
        mirrored(state, "https://h/a.jpg", etag=None, last_modified=None, now=T1)
        state.mark_failed("https://h/b.jpg", error="HTTP 404", attempts=1, now=T1)
        a, b = state.get("https://h/a.jpg"), state.get("https://h/b.jpg")
    assert a is not None and a.first_seen == T1 and a.etag is None and a.last_modified is None
    assert b is not None and b.status == "failed" and b.last_error == "HTTP 404"
    assert b.first_seen == T1 and b.last_fetched == T1 and b.path is None


def test_mark_failed_accumulates_attempts(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/a.jpg"], now=T0)
        state.mark_failed("https://h/a.jpg", error="timeout", attempts=5, now=T1)
        state.mark_failed("https://h/a.jpg", error="HTTP 404", attempts=1, now=T2)
        record = state.get("https://h/a.jpg")
    assert record is not None
    assert (record.status, record.attempts, record.last_error) == ("failed", 6, "HTTP 404")
    assert record.last_fetched == T2


def test_mirrored_record_stays_mirrored_after_a_failed_refresh(db: Path) -> None:
    with State.open(db) as state:
        mirrored(state, "https://h/a.jpg", now=T1)
        before = state.get("https://h/a.jpg")
        state.mark_failed("https://h/a.jpg", error="HTTP 503 (refresh)", attempts=5, now=T2)
        after = state.get("https://h/a.jpg")
    assert before is not None and after is not None
    assert after.status == "mirrored"
    assert after.last_error == "HTTP 503 (refresh)"
    assert after.attempts == before.attempts + 5
    # Everything else, including when the copy was obtained, is unchanged.
    assert after == UrlRecord(
        **{
            **{f: getattr(before, f) for f in before.__slots__},
            "last_error": "HTTP 503 (refresh)",
            "attempts": 6,
            "last_checked": T2,  # asked, and failed: not due again before refresh_after
        }
    )
    assert after.last_fetched == T1


def test_times_are_stored_as_utc_text(db: Path) -> None:
    tz = timezone(timedelta(hours=8))
    with State.open(db) as state:
        state.seen(["https://h/a.jpg"], now=datetime(2024, 5, 1, 17, 30, 15, 999, tzinfo=tz))
        record = state.get("https://h/a.jpg")
    assert record is not None
    assert record.first_seen == datetime(2024, 5, 1, 9, 30, 15, tzinfo=UTC)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT first_seen FROM urls").fetchone() == ("2024-05-01T09:30:15Z",)


def test_default_now_is_current_utc(db: Path) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    with State.open(db) as state:
        state.seen(["https://h/a.jpg"])
        record = state.get("https://h/a.jpg")
    assert record is not None
    assert before <= record.first_seen <= datetime.now(UTC)


def test_bad_arguments_are_refused(db: Path) -> None:
    with State.open(db) as state:
        with pytest.raises(ValueError, match="naive"):
            state.seen(["https://h/a.jpg"], now=datetime(2024, 1, 1))
        with pytest.raises(ValueError, match="source"):
            mirrored(state, "https://h/a.jpg", source="mirror")
        with pytest.raises(ValueError, match="negative"):
            mirrored(state, "https://h/a.jpg", size=-1)
        with pytest.raises(ValueError, match="negative"):
            state.mark_failed("https://h/a.jpg", error="x", attempts=-1)
        assert state.records() == {}


def test_records_selected_all_and_unknown(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/a.jpg", "https://h/b.jpg", "https://h/c.jpg"], now=T0)
        mirrored(state, "https://h/b.jpg")
        picked = state.records(iter(["https://h/b.jpg", "https://h/zzz.jpg", "https://h/b.jpg"]))
        assert list(picked) == ["https://h/b.jpg"]
        assert picked["https://h/b.jpg"].status == "mirrored"
        assert list(state.records()) == ["https://h/a.jpg", "https://h/b.jpg", "https://h/c.jpg"]
        assert state.records([]) == {}


def test_records_for_20000_urls(db: Path) -> None:
    urls = [f"https://img{i % 7}.example.com/p/{i:06}.jpg" for i in range(20_000)]
    with State.open(db) as state:
        with state.transaction():
            state.seen(urls, now=T0)
            for url in urls[::100]:
                mirrored(state, url, path=url.removeprefix("https://"))
        picked = state.records([*urls, "https://missing/x.png"])
        assert set(picked) == set(urls)
        assert sum(r.status == "mirrored" for r in picked.values()) == 200
        assert len(state.records()) == 20_000


# -- atomicity ------------------------------------------------------------------


def test_failed_transaction_leaves_nothing(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/keep.jpg"], now=T0)
        with pytest.raises(RuntimeError, match="disk on fire"), state.transaction():
            state.seen(["https://h/a.jpg", "https://h/b.jpg"], now=T1)
            mirrored(state, "https://h/a.jpg")
            state.mark_failed("https://h/keep.jpg", error="x", attempts=3)
            raise RuntimeError("disk on fire")
        assert list(state.records()) == ["https://h/keep.jpg"]
        keep = state.get("https://h/keep.jpg")
        assert keep is not None and keep.status == "pending" and keep.attempts == 0
        # And the connection is usable afterwards.
        with state.transaction():
            state.seen(["https://h/c.jpg"])
    with State.open(db) as state:
        assert list(state.records()) == ["https://h/c.jpg", "https://h/keep.jpg"]


def test_constraint_failure_inside_a_write_rolls_back_the_batch(db: Path) -> None:
    with State.open(db) as state:
        with pytest.raises(sqlite3.IntegrityError), state.transaction():
            state.seen(["https://h/a.jpg"])
            # Bypass the Python checks to hit the CHECK constraint itself.
            state._conn.execute("UPDATE urls SET status = 'bogus'")
        assert state.records() == {}


def test_nested_transaction_failure_undoes_only_the_inner_block(db: Path) -> None:
    with State.open(db) as state:
        with state.transaction():
            state.seen(["https://h/outer.jpg"])
            with pytest.raises(KeyError), state.transaction():
                state.seen(["https://h/inner.jpg"])
                raise KeyError("inner")
            with state.transaction():
                state.seen(["https://h/inner2.jpg"])
        assert list(state.records()) == ["https://h/inner2.jpg", "https://h/outer.jpg"]


def test_reader_sees_a_batch_only_once_committed(db: Path) -> None:
    with State.open(db) as writer, State.open(db) as reader:
        with writer.transaction():
            writer.seen(["https://h/a.jpg"])
            assert writer.get("https://h/a.jpg") is not None  # own writes visible
            assert reader.get("https://h/a.jpg") is None  # WAL: readers not blocked
        assert reader.get("https://h/a.jpg") is not None


def test_process_killed_mid_transaction_leaves_previous_state(db: Path) -> None:
    with State.open(db) as state:
        state.seen(["https://h/keep.jpg"], now=T0)
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from mirror.keep.state import State
        state = State.open(Path({str(db)!r}))
        with state.transaction():
            state.seen([f"https://h/{{i}}.jpg" for i in range(1000)])
            state.mark_failed("https://h/keep.jpg", error="x", attempts=9)
            sys.stdout.write("written\\n"); sys.stdout.flush()
            os._exit(0)  # dies without commit, rollback or close
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout == "written\n", result.stderr
    with State.open(db) as state:
        assert list(state.records()) == ["https://h/keep.jpg"]
        keep = state.get("https://h/keep.jpg")
        assert keep is not None and keep.status == "pending" and keep.attempts == 0


# -- a model-based check of the write semantics -----------------------------------

URLS = st.sampled_from([f"https://h/{c}.jpg" for c in "abcd"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("seen"), URLS, st.integers(0, 0)),
        st.tuples(st.just("mirrored"), URLS, st.integers(0, 5)),
        st.tuples(st.just("failed"), URLS, st.integers(0, 5)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_writes_match_a_simple_model(ops: list[tuple[str, str, int]]) -> None:
    model: dict[str, tuple[str, int, str | None]] = {}  # url -> (status, attempts, error)
    with tempfile.TemporaryDirectory() as tmp, State.open(Path(tmp) / "s.sqlite") as state:
        for step, (op, url, n) in enumerate(ops):
            status, attempts, _ = model.get(url, ("pending", 0, None))
            if op == "seen":
                state.seen([url])
                model.setdefault(url, ("pending", 0, None))
            elif op == "mirrored":
                mirrored(state, url, attempts=n)
                model[url] = ("mirrored", attempts + n, None)
            else:
                state.mark_failed(url, error=f"e{step}", attempts=n)
                kept = "mirrored" if status == "mirrored" else "failed"
                model[url] = (kept, attempts + n, f"e{step}")
        got = {u: (r.status, r.attempts, r.last_error) for u, r in state.records().items()}
    assert got == model
