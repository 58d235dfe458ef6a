"""The commit step's undo: a file that turned out unusable is taken back, and
only what this run placed is removed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from mirror.keep.commit import Commit
from mirror.keep.incoming import Incoming
from mirror.keep.state import UrlRecord
from mirror.keep.store import CheckedRoot


def commit_bytes(commit: Commit, root: CheckedRoot, url: str, data: bytes,
                 known: UrlRecord | None = None) -> str:  # fmt: skip
    incoming = Incoming(root, PurePosixPath("incoming.jpg"), fsync=False)
    incoming.flush([data])
    placed = commit(incoming, url=url, extension=".jpg", known=known)
    assert placed is not None
    return placed.path


def test_undo_removes_a_file_this_run_placed_where_there_was_none(tmp_path: Path) -> None:
    root = CheckedRoot(tmp_path / "mirror")
    commit = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    path = commit_bytes(commit, root, "https://h.example/a.jpg", b"new")
    assert (tmp_path / "mirror" / path).read_bytes() == b"new"
    commit.undo(path)
    assert not (tmp_path / "mirror" / path).exists()


def test_a_twin_with_other_bytes_goes_beside_the_file_of_the_other(tmp_path: Path) -> None:
    # http:// and https:// of one URL share a name in the url layout: the file
    # the other one placed and uses is neither overwritten nor taken back.
    root = CheckedRoot(tmp_path / "mirror")
    first = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    path = commit_bytes(first, root, "http://h.example/a.jpg", b"theirs")
    commit = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    mine = commit_bytes(commit, root, "https://h.example/a.jpg", b"mine")
    assert mine == path.replace("a.jpg", f"a~{hashlib.sha256(b'mine').hexdigest()[:8]}.jpg")
    assert (tmp_path / "mirror" / path).read_bytes() == b"theirs"
    assert (tmp_path / "mirror" / mine).read_bytes() == b"mine"
    commit.undo(mine)
    assert not (tmp_path / "mirror" / mine).exists()
    assert (tmp_path / "mirror" / path).read_bytes() == b"theirs"


def test_a_twin_with_the_same_bytes_shares_the_name(tmp_path: Path) -> None:
    root = CheckedRoot(tmp_path / "mirror")
    commit = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    path = commit_bytes(commit, root, "http://h.example/a.jpg", b"same")
    assert commit_bytes(commit, root, "https://h.example/a.jpg", b"same") == path


def test_a_refresh_of_a_twin_keeps_the_name_beside(tmp_path: Path) -> None:
    """Rewritten posts may point at it: new bytes replace it there, the old kept."""
    root = CheckedRoot(tmp_path / "mirror")
    commit = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    commit_bytes(commit, root, "http://h.example/a.jpg", b"theirs")
    mine = commit_bytes(commit, root, "https://h.example/a.jpg", b"mine")
    known = UrlRecord(
        url="https://h.example/a.jpg", final_url=None, status="mirrored", path=mine, size=4,
        sha256=hashlib.sha256(b"mine").hexdigest(), content_type="image/jpeg", etag=None,
        last_modified=None, attempts=1, last_error=None, source="origin",
        first_seen=datetime.now(UTC), last_fetched=None, last_referenced=None, last_checked=None,
    )  # fmt: skip
    assert commit_bytes(commit, root, "https://h.example/a.jpg", b"new!", known) == mine
    assert (tmp_path / "mirror" / mine).read_bytes() == b"new!"
    assert [p.read_bytes() for p in (tmp_path / "versions").rglob("*") if p.is_file()] == [b"mine"]
