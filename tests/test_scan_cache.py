"""A post unchanged since its last scan is not read again (mirror.keep.scancache):
the nightly run with nothing new reads the stat of each post and no post.

Real files, a real SQLite state. The two-second "racily clean" margin is what
keeps a post written just now from being kept; the tests that need a post kept
at once set it to zero, and one test checks the margin itself.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import test_backup as nightly_job

from faultserver import FaultServer
from mirror.config import load_config
from mirror.keep import scancache
from mirror.keep.site import open_site
from mirror.models import PostBrief, ScanResult, SiteBrief
from mirror.scanner import site as scanner_site
from mirror.stages import scan as scanning

SEED = Path(__file__).parent / "data" / "deepseek-post.md"


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The posts the scanner reads, in order, from here on."""
    posts: list[str] = []
    real = scanner_site._scan_file

    def counted(root: Path, post: str, keys: frozenset[str]) -> object:
        posts.append(post)
        return real(root, post, keys)

    monkeypatch.setattr(scanner_site, "_scan_file", counted)
    return posts


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Posts written by the test count as settled at once."""
    monkeypatch.setattr(scancache, "_RACY_NS", 0)


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "blog"
    posts = site / "source" / "_posts"
    posts.mkdir(parents=True)
    (posts / "seed.md").write_bytes(SEED.read_bytes())
    (posts / "a.md").write_text("![](https://h.example/a.png)\n![](/images/mirror/h/x.png)\n")
    (posts / "b.md").write_text("<img src='https://h.example/b.png'>\n")
    return site


def scan(site: Path, *, write: bool = True) -> ScanResult:
    """A scan in a session (writing: it keeps the scans), its references loaded."""
    config = load_config(None, site=site)
    with open_site(config, write=write) as opened:
        result = scanning.scan(config, opened)
        assert result.posts  # loaded while the session is open
        return result


def briefs(result: ScanResult) -> list[str]:
    """The posts the scan took from the state: by the site's brief, or each by its own."""
    if isinstance(result.scans, SiteBrief):
        return list(result.scans.posts)
    return [p.post for p in result.scans if isinstance(p, PostBrief)]


def kept_posts(site: Path) -> list[str]:
    with closing(sqlite3.connect(site / ".gallery-mirror" / "state.sqlite")) as db:
        return sorted(post for (post,) in db.execute("SELECT post FROM post_scans"))


def touch_keeping_times(path: Path, data: bytes) -> None:
    """New bytes of the same size, with the old mtime put back (as some tools do)."""
    before = path.stat()
    assert len(data) == before.st_size
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_unchanged_post_is_not_read_again_and_scans_the_same(
    tmp_path: Path, read: list[str], settled: None
) -> None:
    site = make_site(tmp_path)
    first = scan(site)  # a session that writes makes the state
    assert sorted(read) == ["source/_posts/a.md", "source/_posts/b.md", "source/_posts/seed.md"]
    read.clear()
    second = scan(site)
    assert read == []  # nothing read: every post is a brief, loaded from the state
    assert sorted(briefs(second)) == sorted(p.post for p in first.posts)
    assert second.posts == first.posts
    assert second.urls == first.urls and second.local_urls == first.local_urls
    assert second.refs == first.refs and second.skipped == first.skipped


def test_a_changed_post_is_read_again_even_when_size_and_mtime_stay(
    tmp_path: Path, read: list[str], settled: None
) -> None:
    site = make_site(tmp_path)
    scan(site)  # the state exists from here
    scan(site)
    post = site / "source" / "_posts" / "a.md"
    touch_keeping_times(post, post.read_bytes().replace(b"a.png", b"z.png"))
    read.clear()
    result = scan(site)
    assert read == ["source/_posts/a.md"]  # the ctime moved: only that post is read
    assert "https://h.example/z.png" in result.urls
    assert "https://h.example/a.png" not in result.urls


def test_a_night_with_no_post_changed_starts_from_the_sites_brief(
    tmp_path: Path, read: list[str], settled: None
) -> None:
    site = make_site(tmp_path)
    fresh = scan(site)  # every post's scan is kept, and so the site's brief
    read.clear()
    again = scan(site)
    assert isinstance(again.scans, SiteBrief) and read == []
    assert again.names == fresh.names and again.unreadable == ()
    assert again.urls == fresh.urls and again.local_urls == fresh.local_urls
    assert again.posts == fresh.posts  # each post's own scan, on first use


def test_the_sites_brief_stands_only_for_the_same_posts_as_they_were(
    tmp_path: Path, read: list[str], settled: None
) -> None:
    site = make_site(tmp_path)
    posts = site / "source" / "_posts"
    scan(site)
    # A new post with no stamp to change (a stat cannot see it) is a change too.
    (posts / "gone.md").symlink_to("nowhere.md")
    for _ in range(2):  # with a post that cannot be read, no site's brief is kept
        result = scan(site)
        assert not isinstance(result.scans, SiteBrief)
        assert [p.post for p in result.unreadable] == ["source/_posts/gone.md"]
    (posts / "gone.md").unlink()
    assert isinstance(scan(site).scans, SiteBrief)  # the same posts as the first scan
    post = posts / "a.md"
    touch_keeping_times(post, post.read_bytes().replace(b"a.png", b"z.png"))
    read.clear()
    changed = scan(site)
    assert not isinstance(changed.scans, SiteBrief) and read == ["source/_posts/a.md"]
    after = scan(site)  # the brief kept with the change
    assert isinstance(after.scans, SiteBrief) and after.urls == changed.urls
    assert "https://h.example/z.png" in after.urls


def test_a_post_changed_in_the_last_two_seconds_is_not_kept(
    tmp_path: Path, read: list[str]
) -> None:
    site = make_site(tmp_path)
    scan(site)
    scan(site)  # the posts were written just now: a change in the same tick could hide
    assert kept_posts(site) == []
    read.clear()
    scan(site)
    assert len(read) == 3


def test_a_scan_is_not_kept_for_other_settings_nor_with_problems(
    tmp_path: Path, read: list[str], settled: None
) -> None:
    site = make_site(tmp_path)
    (site / "source" / "_posts" / "bad.md").write_bytes(b"\xff\xfe not utf-8")
    scan(site)
    scan(site)
    assert "source/_posts/bad.md" not in kept_posts(site)  # said on every run
    read.clear()
    scan(site)
    assert read == ["source/_posts/bad.md"]
    (site / "gallery-mirror.toml").write_text('[site]\nfront_matter_keys = ["cover"]\n')
    read.clear()
    scan(site)
    assert len(read) == 4  # other settings: everything is scanned again


def test_a_deleted_post_is_forgotten_and_a_read_only_command_keeps_nothing(
    tmp_path: Path, settled: None
) -> None:
    site = make_site(tmp_path)
    scan(site)
    (site / "source" / "_posts" / "new.md").write_text("![](https://h.example/n.png)\n")
    result = scan(site, write=False)  # report, verify: they write nothing
    assert "https://h.example/n.png" in result.urls
    assert "source/_posts/new.md" not in kept_posts(site)
    (site / "source" / "_posts" / "b.md").unlink()
    scan(site)
    assert kept_posts(site) == [
        "source/_posts/a.md",
        "source/_posts/new.md",
        "source/_posts/seed.md",
    ]


def test_a_kept_scan_gone_meanwhile_is_read_from_the_post(
    tmp_path: Path, read: list[str], settled: None
) -> None:
    """The references of a brief are loaded later: a row gone by then (another run
    kept a newer scan) is made good by reading the post."""
    site = make_site(tmp_path)
    scan(site)
    config = load_config(None, site=site)
    with open_site(config, write=True) as opened:
        result = scanning.scan(config, opened)
        assert len(briefs(result)) == 3
        opened.state.connection.execute("DELETE FROM post_scans WHERE post LIKE '%a.md'")
        read.clear()
        refs = result.refs
    assert read == ["source/_posts/a.md"]
    assert "https://h.example/a.png" in {r.url for r in refs}


def test_the_nightly_backup_reads_no_post_when_none_changed(
    tmp_path: Path, read: list[str], settled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultServer() as server:
        site = nightly_job.make_site(tmp_path, server)
        code, first = nightly_job.backup(capsys, site)
        assert code == 0 and first.count("new: ") == 3
        read.clear()
        code, second = nightly_job.backup(capsys, site)
    assert code == 0 and read == []
    assert "3 already mirrored" in second


def test_a_state_that_cannot_take_the_scans_costs_the_run_nothing(
    tmp_path: Path, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept scans only save time: a full disk under the state is for the fetch to
    meet, where it stops cleanly, not for the scan."""
    site = make_site(tmp_path)

    def full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(scancache.ScanCache, "_write", full)
    assert len(scan(site).posts) == 3
    assert kept_posts(site) == []


def test_references_asked_for_after_the_session_are_read_from_the_posts(
    tmp_path: Path, settled: None
) -> None:
    site = make_site(tmp_path)
    fresh = scan(site)
    config = load_config(None, site=site)
    with open_site(config, write=True) as opened:
        result = scanning.scan(config, opened)
    assert len(briefs(result)) == 3
    assert result.refs == fresh.refs  # the state is closed: the posts were read


def test_the_nightly_backup_looks_at_each_mirrored_file_once(
    tmp_path: Path,
    settled: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard's stat of a file stands for the fetch's look at it: a night with
    nothing to do asks the file system about each of the mirror's files once."""
    with FaultServer() as server:
        site = nightly_job.make_site(tmp_path, server)
        assert nightly_job.backup(capsys, site)[0] == 0
        asked: list[str] = []
        real = os.stat
        mirror = f"{site / 'source' / 'images' / 'mirror'}{os.sep}"  # its files

        def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
            if str(path).startswith(mirror):
                asked.append(str(path))
            return real(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "stat", stat)
        code, out = nightly_job.backup(capsys, site)
    assert code == 0 and "3 already mirrored" in out
    assert len(asked) == len(set(asked)) == 6  # the 3 images and their 3 thumbnails
