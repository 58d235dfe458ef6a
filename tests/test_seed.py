"""The post the project started from: the contract's canonical input."""

from __future__ import annotations

from pathlib import Path

from scanhelp import scan_text

SEED = Path(__file__).parent / "data" / "deepseek-post.md"
BASE = "imgcdn.yaerxing.com/upimage/stupnote/2025/02/02/"


def test_seed_post_has_six_references_to_five_images() -> None:
    data = SEED.read_bytes()
    result = scan_text(data, "deepseek-post.md")

    assert result.problems == ()
    assert [r.kind for r in result.refs] == ["front_matter"] + ["gallery"] * 5
    assert len({r.url for r in result.refs}) == 5
    for ref in result.refs:
        assert data[ref.start : ref.end].decode() == ref.raw
        assert ref.url.startswith("https://" + BASE)
        assert not ref.local


def test_seed_headimg_is_gallery_image_one() -> None:
    refs = scan_text(SEED.read_bytes()).refs
    assert refs[0].context == "headimg"
    assert refs[0].url == refs[1].url == f"https://{BASE}1738462164_12009103_8994.jpg"


def test_seed_broken_scheme_is_repaired_and_noted() -> None:
    refs = scan_text(SEED.read_bytes()).refs
    headimg, gallery = refs[0], refs[1:]
    assert headimg.repairs == ()
    for ref in gallery:
        assert ref.raw.startswith("httpss://")
        assert len(ref.repairs) == 1 and "httpss://" in ref.repairs[0]


def test_seed_lines_and_columns() -> None:
    refs = scan_text(SEED.read_bytes()).refs
    assert [(r.line, r.column) for r in refs] == [(9, 10)] + [(n, 5) for n in range(14, 19)]
