"""The commit step's undo: a file that turned out unusable is taken back, and
only what this run placed is removed."""

from __future__ import annotations

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


def test_undo_leaves_a_file_of_another_url_that_shares_the_name(tmp_path: Path) -> None:
    # http:// and https:// of one URL share a name in the url layout: the
    # file the other one placed and uses must not be removed.
    root = CheckedRoot(tmp_path / "mirror")
    first = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    path = commit_bytes(first, root, "http://h.example/a.jpg", b"theirs")
    commit = Commit(root, layout="url", versions=tmp_path / "versions", dirs=None)
    assert commit_bytes(commit, root, "https://h.example/a.jpg", b"mine") == path
    commit.undo(path)
    assert (tmp_path / "mirror" / path).exists()
