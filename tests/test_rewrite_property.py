"""Properties of rewrite and revert on generated posts, and the pure span editing."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror.config import load_config
from mirror.keep.site import open_site
from mirror.keep.state import STATE_FILE_NAME, State
from mirror.keep.store import url_path
from mirror.scanner.edit import Edit, apply_edits, check_rewritten, edit_for, relocate
from mirror.scanner.post import scan_post
from mirror.stages import revert as reverting
from mirror.stages import rewrite as rewriting
from mirror.stages import scan as scanning
from mirror.urls import mirror_url, normalize

MIRRORED = [
    "https://img.example.com/a.jpg",
    "httpss://img.example.com/b.jpg",  # repaired to https
    "https://img.example.com/中文.jpg",
    "https://img.example.com/%E4%B8%AD%E6%96%87.jpg",  # the same image, encoded
    "https://img.example.com/q.png?x=1&y=2",
]
NOT_MIRRORED = ["https://img.example.com/missing.jpg", "https://other.example.org/o.jpg"]
KEYS = frozenset({"cover", "photos"})

FRONT = [
    "cover: {u}",
    "cover: '{u}'",
    'cover: "{u}"  # a comment',
    "photos:\n  - {u}",
    'photos: ["{u}", {u}]',
    "title: 'x: y'",
]
BODY = [
    "![alt]({u})",
    '![alt]({u} "title")  ',
    '<img src="{u}" alt="a">',
    "<img src={u}>",
    "{{% img left {u} 200 %}}",
    "[ref]: {u}",
    "```\n![]({u})\n```",
    "`{u}` in code",
    "plain text, no image",
]


def _fill(templates: list[str]) -> st.SearchStrategy[str]:
    urls = st.sampled_from(MIRRORED + NOT_MIRRORED)
    return st.tuples(st.sampled_from(templates), urls).map(lambda t: t[0].format(u=t[1]))


posts = st.builds(
    lambda bom, eol, front, body, final: (
        ("\ufeff" if bom else "")
        + (eol.join(["---", *front, "---", ""]) if front else "")
        + eol.join(body)
        + (eol if final else "")
    ).replace("\n", eol),
    st.booleans(),
    st.sampled_from(["\n", "\r\n"]),
    st.lists(_fill(FRONT), max_size=3, unique=True),
    st.lists(_fill(BODY), max_size=6),
    st.booleans(),
)


def _site(root: Path) -> Path:
    """A site whose state says MIRRORED are mirrored, their files in place."""
    mirror = root / "source" / "images" / "mirror"
    with State.open(root / ".gallery-mirror" / STATE_FILE_NAME) as state:
        for n, raw in enumerate(MIRRORED):
            url = normalize(raw).url
            path = url_path(url, ".jpg")
            data = f"image {n}".encode()
            (mirror / path).parent.mkdir(parents=True, exist_ok=True)
            (mirror / path).write_bytes(data)
            state.mark_mirrored(
                url, path=str(path), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                content_type="image/jpeg", final_url=url, etag=None, last_modified=None,
                source="origin", attempts=1,
            )  # fmt: skip
    (root / "source" / "_posts").mkdir(parents=True)
    return root


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=posts)
def test_revert_of_rewrite_is_identity_and_rewrite_is_idempotent(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = _site(Path(tmp))
        post = site / "source" / "_posts" / "p.md"
        original = text.encode()
        post.write_bytes(original)
        config = load_config(None, site=site)

        with open_site(config, write=True) as opened:
            first = rewriting.rewrite(opened, scanning.scan(config))
        assert not first.failed
        once = post.read_bytes()
        mirrored = {normalize(u).url for u in MIRRORED}
        for change in first.changed:  # only mirrored URLs change
            assert all(normalize(e.old).url in mirrored for e in change.edits)
        with open_site(config, write=True) as opened:
            second = rewriting.rewrite(opened, scanning.scan(config))
        assert not second.changed and post.read_bytes() == once

        with open_site(config, write=True) as opened:
            reverting.revert(opened)
        assert post.read_bytes() == original


def test_mirror_url_encodes_what_must_be() -> None:
    assert mirror_url("/images/mirror/", "h/中 (1)~x.jpg") == (
        "/images/mirror/h/%E4%B8%AD%20%281%29~x.jpg"
    )
    assert mirror_url("https://cdn.example.com/g", "h/a%b.jpg") == (
        "https://cdn.example.com/g/h/a%25b.jpg"
    )


@pytest.mark.parametrize(
    ("line", "url", "written"),
    [
        ("cover: X\n", "/m/a.jpg", "cover: /m/a.jpg\n"),
        ("cover: X\n", "@m/a.jpg", 'cover: "@m/a.jpg"\n'),
        ("cover: X\n", "/m/a: b.jpg", 'cover: "/m/a: b.jpg"\n'),
        ("cover: X\n", "/m/a #b.jpg", 'cover: "/m/a #b.jpg"\n'),
        ("cover: X\n", "- m/a.jpg", 'cover: "- m/a.jpg"\n'),
        ("cover: 'X'\n", "@m/a.jpg", "cover: '@m/a.jpg'\n"),
        ("photos: [X]\n", "/m/a,b.jpg", 'photos: ["/m/a,b.jpg"]\n'),
    ],
)
def test_a_plain_yaml_value_is_quoted_when_it_needs_it(line: str, url: str, written: str) -> None:
    data = ("---\n" + line.replace("X", "https://h.example/x.jpg") + "---\n").encode()
    scan = scan_post(data, "p.md", KEYS)
    (ref,) = scan.refs
    edit = edit_for(data, ref, url)
    after = apply_edits(data, [edit])
    assert after == ("---\n" + written + "---\n").encode()
    assert check_rewritten(scan, after, [edit], KEYS) is None


def test_an_edit_that_does_not_read_back_is_caught() -> None:
    data = b"![](https://h.example/x.jpg)\n"
    scan = scan_post(data, "p.md", KEYS)
    (ref,) = scan.refs
    # A URL with a space ends the Markdown link destination: not the URL any more.
    bad = Edit(ref.start, ref.raw, "/m/a b.jpg", "/m/a b.jpg")
    problem = check_rewritten(scan, apply_edits(data, [bad]), [bad], KEYS)
    assert problem is not None and "not written" in problem


def test_apply_edits_refuses_stale_or_overlapping_spans() -> None:
    data = b"abc https://h/x.jpg def"
    with pytest.raises(ValueError, match="no longer"):
        apply_edits(data, [Edit(4, "https://h/y.jpg", "/y", "/y")])
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits(data, [Edit(4, "https", "s", "s"), Edit(6, "tps", "", "")])


def test_relocate_follows_unchanged_lines_only() -> None:
    before = b"a\nURL here\nb\nURL two\n"
    after = b"new line\na\nURL here\nb changed\nURL two\n"
    where = relocate(before, after)
    assert where(2, 3) == 11  # its line moved down one
    assert where(11, 1) is None  # the user changed line "b"
    assert where(13, 3) == after.index(b"URL two")
    with_edit = relocate(before, b"a\nURL gone\nb\nURL two\n")
    assert with_edit(2, 3) is None
