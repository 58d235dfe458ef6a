"""Across runs: a URL that failed is tried again by `backup` on a growing schedule
(1, 2, 4 ... days, at most 30), by `fetch` and `--retry-failed` at once; `report`
and `backup --json` say when. A real server, a real state; the clock is injected."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.cli import main
from mirror.config import load_config
from mirror.keep.db import timestamp
from mirror.keep.site import open_site
from mirror.keep.state import MIGRATIONS, UrlRecord, apply_migrations
from mirror.stages import scan as scanning
from mirror.stages.backup import BackupResult, backup
from mirror.stages.fetch import RETRY_MAX_DAYS, next_attempt

T0 = datetime(2024, 5, 1, 3, 17, tzinfo=UTC)
DAY = timedelta(days=1)


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (shade, 120, 60)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def site(tmp_path: Path, server: FaultServer) -> Path:
    """A post with one good image and one the server has lost (404)."""
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    good = server.file("/good.jpg", jpeg(10))
    dead = server.status("/dead.jpg", 404)
    (site / "source" / "_posts" / "p.md").write_text(f"![]({good})\n![]({dead})\n")
    (site / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nretries = 0\nfsync = false\n"
        "[thumbnails]\nenabled = false\n"
    )
    return site


def nightly(site: Path, when: datetime, *, retry_failed: bool = False) -> BackupResult:
    """One `backup` as the stage runs it, at ``when``."""
    config = load_config(None, site=site)
    with open_site(config, write=True) as session:
        scan = scanning.scan(config)
        return backup(session, lambda: scan, retry_failed=retry_failed, clock=lambda: when)


def failures(site: Path) -> int:
    with closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db:
        (count,) = db.execute("SELECT failures FROM urls WHERE url LIKE '%dead.jpg'").fetchone()
    return int(count)


def test_the_wait_doubles_from_one_day_up_to_thirty() -> None:
    def record(failed: int) -> UrlRecord:
        return UrlRecord(
            "http://h/a.jpg", None, "failed", None, None, None, None, None, None, failed,
            "HTTP 404", None, T0, T0, T0, T0, failed,
        )  # fmt: skip

    waits = [next_attempt(record(n)) for n in range(1, 9)]
    assert [(w - T0).days for w in waits if w] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert RETRY_MAX_DAYS == 30


def test_backup_tries_a_failed_url_again_only_when_it_is_due(
    site: Path, server: FaultServer
) -> None:
    dead = server.url("/dead.jpg")
    first = nightly(site, T0)
    assert [o.url for o in first.fetched.failed] == [dead]
    assert first.fetched.next_tries == {dead: T0 + DAY}
    assert server.hits["/dead.jpg"] == 1 and failures(site) == 1

    # Every night the wait doubles: tried on day 1, then day 3, then day 7.
    tried = {}
    for night in range(1, 8):
        result = nightly(site, T0 + night * DAY)
        tried[night] = server.hits["/dead.jpg"]
        if result.fetched.failed:
            assert not result.fetched.waiting
        else:  # not asked, still counted as a URL without a copy
            assert list(result.fetched.waiting) == [dead]
    assert tried == {1: 2, 2: 2, 3: 3, 4: 3, 5: 3, 6: 3, 7: 4}
    assert failures(site) == 4
    assert result.fetched.next_tries == {dead: T0 + 7 * DAY + 8 * DAY}
    assert server.hits["/good.jpg"] == 1  # mirrored the first night, never asked again


def test_retry_failed_and_fetch_try_at_once_and_a_success_resets_the_count(
    site: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    nightly(site, T0)
    nightly(site, T0 + DAY)
    assert server.hits["/dead.jpg"] == 2 and failures(site) == 2
    assert not nightly(site, T0 + DAY).fetched.failed  # not due again before day 3
    assert nightly(site, T0 + DAY, retry_failed=True).fetched.failed
    assert server.hits["/dead.jpg"] == 3 and failures(site) == 3

    # fetch keeps trying failed URLs on every run, whatever the schedule.
    assert main(["-q", "fetch", "--site", str(site)]) == 1
    assert main(["-q", "fetch", "--site", str(site), "--retry-failed"]) == 1
    assert server.hits["/dead.jpg"] == 5 and failures(site) == 5
    capsys.readouterr()

    server.file("/dead.jpg", jpeg(200))  # back again
    result = nightly(site, datetime.now(UTC) + 31 * DAY)
    assert [o.url for o in result.fetched.mirrored] == [server.url("/dead.jpg")]
    assert failures(site) == 0 and not result.fetched.next_tries


def test_backup_json_and_report_say_when_a_failed_url_is_tried_next(
    site: Path, server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = server.url("/dead.jpg")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert main(["backup", "--site", str(site), "--json", str(first)]) == 1
    failed = json.loads(first.read_text())["failed"]
    assert [f["url"] for f in failed] == [dead]
    when = datetime.fromisoformat(failed[0]["next_attempt"])
    assert timedelta(hours=23) < when - datetime.now(UTC) <= DAY

    # The next night: not due, so not asked; still a URL without a copy (exit 1).
    assert main(["backup", "--site", str(site), "--json", str(second)]) == 1
    assert server.hits["/dead.jpg"] == 1
    run = json.loads(second.read_text())
    assert run["failed"] == [] and run["summary"]["waiting"] == 1
    (waiting,) = run["waiting"]
    assert waiting["url"] == dead and waiting["error"] == "HTTP 404"
    assert waiting["failures"] == 1 and waiting["next_attempt"] == failed[0]["next_attempt"]
    assert waiting["posts"] == ["source/_posts/p.md:2"]
    out = capsys.readouterr().out
    assert f"0 failed (1 more wait to be tried again, from {failed[0]['next_attempt']})" in out

    assert main(["report", "--site", str(site), "--json", str(tmp_path / "r.json")]) == 1
    urls = {u["url"]: u for u in json.loads((tmp_path / "r.json").read_text())["urls"]}
    assert urls[dead]["next_attempt"] == failed[0]["next_attempt"]
    assert urls[server.url("/good.jpg")]["next_attempt"] is None
    assert f"backup tries it again from {failed[0]['next_attempt']}" in capsys.readouterr().out

    assert main(["backup", "--site", str(site), "--retry-failed"]) == 1
    assert server.hits["/dead.jpg"] == 2


def test_a_state_from_before_the_schedule_counts_each_failed_url_once(
    site: Path, server: FaultServer
) -> None:
    path = site / ".gallery-mirror" / "state.sqlite"
    path.parent.mkdir()
    older = [m for m in MIGRATIONS if m.name < "0008"]
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        apply_migrations(db, path=path, migrations=older)
        db.execute(
            "INSERT INTO urls (url, status, attempts, last_error, first_seen, last_checked)"
            " VALUES (?, 'failed', 5, 'HTTP 404', ?, ?)",
            (server.url("/dead.jpg"), timestamp(T0), timestamp(T0)),
        )
    assert not nightly(site, T0 + DAY / 2).fetched.failed  # upgraded: 1 failure, 1 day
    assert failures(site) == 1 and server.hits["/dead.jpg"] == 0
    assert nightly(site, T0 + DAY).fetched.failed
    assert failures(site) == 2 and server.hits["/dead.jpg"] == 1
