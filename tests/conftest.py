"""Shared fixtures: the seed post's blog, served from 127.0.0.1.

A test module that defines its own ``server`` or ``site`` fixture uses that
one instead, as pytest does for any fixture defined closer to the test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from seedsite import SEED, SEED_FILES, SEED_HOST, SEED_PATH, jpeg

from faultserver import FaultServer


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """Serves the seed's five images (image n is ``jpeg(40 * n)``)."""
    with FaultServer() as running:
        for n, name in enumerate(SEED_FILES):
            running.file(SEED_PATH + name, jpeg(40 * n))
        yield running


@pytest.fixture
def site(tmp_path: Path, server: FaultServer) -> Path:
    """The seed post's blog, its image host mapped to the local server."""
    posts = tmp_path / "blog" / "source" / "_posts"
    posts.mkdir(parents=True)
    shutil.copy(SEED, posts / "deepseek-post.md")
    (posts / "deepseek-post.md").chmod(0o644)  # a read-only checkout stays writable here
    (tmp_path / "blog" / "gallery-mirror.toml").write_text(
        "[download]\nallow_private = true\nretries = 1\nfsync = false\n"
        f'[download.origins]\n"{SEED_HOST}" = ["{server.base}"]\n'
    )
    return tmp_path / "blog"
