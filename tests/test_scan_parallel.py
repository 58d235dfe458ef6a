"""A large site is scanned by several processes, with the same result as one."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mirror.config import DEFAULT_FRONT_MATTER_KEYS
from mirror.models import ImageRef
from mirror.scanner import site as scanner

SEED = Path(__file__).parent / "data" / "deepseek-post.md"


def test_parallel_scan_equals_serial_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    posts = tmp_path / "source" / "_posts"
    posts.mkdir(parents=True)
    seed = SEED.read_bytes()
    for n in range(1100):  # above the size where workers start
        extra = f"\n![n{n}](https://h.example.com/{n}.png)\n<img src='//h.example.com/{n}.jpg'>\n"
        (posts / f"p{n:04d}.md").write_bytes(seed + extra.encode())
    (posts / "bad.md").write_bytes(b"\xff\xfe not utf-8")

    if scanner._workers(1101) < 2:
        pytest.skip("ONE CORE: the parallel scan cannot be compared with the serial one here")
    parallel = scanner.scan_site(tmp_path, posts=None, front_matter_keys=DEFAULT_FRONT_MATTER_KEYS)
    monkeypatch.setattr(scanner, "_workers", lambda posts: 1)
    serial = scanner.scan_site(tmp_path, posts=None, front_matter_keys=DEFAULT_FRONT_MATTER_KEYS)

    assert parallel == serial
    assert len(parallel.posts) == 1101 and len(parallel.refs) == 1100 * 8
    assert [p.post for p in parallel.unreadable] == ["source/_posts/bad.md"]


def test_image_ref_survives_pickling() -> None:
    ref = ImageRef("a.md", 1, 5, 2, 3, "html", "//h/x", "https://h/x", False, ("r",), "img src")
    assert pickle.loads(pickle.dumps(ref)) == ref
