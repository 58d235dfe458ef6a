"""The rewrite, revert and verify stages: real posts, a real fetch, a real state."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import yaml
from rewritehelp import (
    HOSTS,
    MIRROR,
    POSTS,
    config_of,
    fetch,
    jpeg,
    local,
    make_site,
    revert,
    rewrite,
    serve,
    tree,
    verify,
)
from seedsite import SEED, SEED_FILES, SEED_PATH

from faultserver import FaultServer
from mirror.errors import ConfigError
from mirror.keep.lock import LockHeld, SiteLock
from mirror.keep.site import open_site
from mirror.stages import rewrite as rewriting
from mirror.stages import scan as scanning

A, B, C = (f"https://{HOSTS[0]}/{n}.jpg" for n in "abc")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def seed_site(tmp_path: Path, server: FaultServer) -> Path:
    """The seed post's blog; its image host served by the local server."""
    host = "imgcdn.yaerxing.com"
    serve(server, *(SEED_PATH.strip("/") + "/" + name for name in SEED_FILES), host=host)
    site = make_site(tmp_path / "blog", server, {"deepseek-post.md": SEED.read_bytes()})
    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + f'"{host}" = ["{server.base}/{host}"]\n')
    return site


def post(site: Path, name: str = "p.md") -> Path:
    return site / POSTS / name


def seed_expected() -> bytes:
    new = f"/images/mirror/imgcdn.yaerxing.com{SEED_PATH}".encode()
    old = SEED_PATH.encode()
    return (
        SEED.read_bytes()
        .replace(b"headimg: https://imgcdn.yaerxing.com" + old, b"headimg: " + new)
        .replace(b"](httpss://imgcdn.yaerxing.com" + old, b"](" + new)
    )


def test_seed_post_rewrite_then_revert_is_byte_exact(seed_site: Path) -> None:
    fetch(seed_site)
    result, out = rewrite(seed_site)
    assert "Rewrote 6 references in 1 post" in out and result.run_id == 1
    written = post(seed_site, "deepseek-post.md").read_bytes()
    assert written == seed_expected()
    lines = written.splitlines()
    assert lines[8] == (
        b"headimg: /images/mirror/imgcdn.yaerxing.com/upimage/stupnote/2025/02/02/"
        b"1738462164_12009103_8994.jpg"
    )
    assert lines[14] == (
        b"![](/images/mirror/imgcdn.yaerxing.com/upimage/stupnote/2025/02/02/"
        b"1738462165_12009103_2247.jpg)"
    )
    assert not verify(seed_site)[0].problems

    result, out = rewrite(seed_site)  # idempotent
    assert not result.changed and "already rewritten (6)" in out and result.run_id is None
    assert post(seed_site, "deepseek-post.md").read_bytes() == seed_expected()

    reverted, out = revert(seed_site)
    assert [p.outcome for p in reverted.posts] == ["restored"], out
    assert post(seed_site, "deepseek-post.md").read_bytes() == SEED.read_bytes()
    again, out = revert(seed_site)  # a reverted run is not undone twice
    assert not again.runs and out.startswith("Nothing to revert")


def test_dry_runs_write_nothing(seed_site: Path) -> None:
    fetch(seed_site)
    before = tree(seed_site)
    result, out = rewrite(seed_site, dry_run=True)
    assert "-headimg: https://imgcdn.yaerxing.com/upimage/" in out
    assert "+headimg: /images/mirror/imgcdn.yaerxing.com/upimage/" in out
    assert result.changed[0].after == seed_expected() and result.run_id is None
    assert tree(seed_site) == before

    rewrite(seed_site)
    rewritten = tree(seed_site)
    reverted, out = revert(seed_site, dry_run=True)
    assert "+headimg: https://imgcdn.yaerxing.com/upimage/" in out
    assert reverted.changes[0].after == SEED.read_bytes()
    assert tree(seed_site) == rewritten


def test_dry_run_without_any_state_creates_none(seed_site: Path) -> None:
    result, _ = rewrite(seed_site, dry_run=True)
    assert {x.reason for x in result.left_alone} == {"not fetched yet"}
    assert not (seed_site / ".gallery-mirror").exists()


CRLF_BOM = (
    "\ufeff---\r\n"
    "title: 'It''s: a test'  # a comment stays\r\n"
    "cover: 'https://img.example.com/a.jpg'   # quoted, with a comment\r\n"
    'photos: ["https://img.example.com/b.jpg", https://img.example.com/c.jpg]\r\n'
    "images:\r\n"
    "  - https://img.example.com/a.jpg\r\n"
    "---\r\n"
    '![a](https://img.example.com/a.jpg "title")  \r\n'
    '<img src="https://img.example.com/b.jpg" alt="b">\t\r\n'
    "```\r\n"
    "![in code](https://img.example.com/c.jpg)\r\n"
    "```\r\n"
    "`![inline](https://img.example.com/a.jpg)` no final newline"
)


def test_crlf_bom_yaml_quotes_comments_flow_lists_and_code(
    tmp_path: Path, server: FaultServer
) -> None:
    serve(server, "a.jpg", "b.jpg", "c.jpg")
    site = make_site(tmp_path, server, {"p.md": CRLF_BOM.encode()})
    fetch(site)
    result, _ = rewrite(site)
    assert result.rewritten == 6
    expected = CRLF_BOM
    for name in "abc":
        expected = expected.replace(
            f"https://{HOSTS[0]}/{name}.jpg", local(HOSTS[0], f"{name}.jpg")
        )
    # Inside the fenced block and the inline code span nothing changes.
    expected = expected.replace(f"code]({local(HOSTS[0], 'c.jpg')})", f"code]({C})")
    expected = expected.replace(f"`![inline]({local(HOSTS[0], 'a.jpg')})`", f"`![inline]({A})`")
    assert post(site).read_bytes() == expected.encode()
    revert(site)
    assert post(site).read_bytes() == CRLF_BOM.encode()


def test_a_value_that_needs_yaml_quotes_gets_them(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg")
    original = f"---\nheadimg: {A}\nphotos: [{B}]\ncover: '{B}'\n---\n![]({A})\n".encode()
    toml = '[rewrite]\nlocal_prefix = "{{site.baseurl}}/m"\n'  # Jekyll's way; "{" needs quotes
    site = make_site(tmp_path, server, {"p.md": original}, extra_toml=toml)
    fetch(site)
    rewrite(site)
    assert post(site).read_bytes() == (
        b'---\nheadimg: "{{site.baseurl}}/m/img.example.com/a.jpg"\n'
        b'photos: ["{{site.baseurl}}/m/img.example.com/b.jpg"]\n'
        b"cover: '{{site.baseurl}}/m/img.example.com/b.jpg'\n---\n"
        b"![]({{site.baseurl}}/m/img.example.com/a.jpg)\n"
    )
    revert(site)
    assert post(site).read_bytes() == original


def test_toml_and_json_front_matter(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg")
    toml = f'+++\ntitle = "t"  # comment\ncover = "{A}"\nimages = [\'{B}\']\n+++\nbody\n'
    json_fm = f'{{\n  "title": "t",\n  "cover": "{B}"\n}}\nbody\n'
    site = make_site(tmp_path, server, {"t.md": toml.encode(), "j.md": json_fm.encode()})
    fetch(site)
    result, _ = rewrite(site)
    assert result.rewritten == 3 and len(result.changed) == 2
    a, b = local(HOSTS[0], "a.jpg"), local(HOSTS[0], "b.jpg")
    assert post(site, "t.md").read_text() == toml.replace(A, a).replace(B, b)
    assert post(site, "j.md").read_text() == json_fm.replace(B, b)


def test_references_left_alone_are_listed_with_their_reason(
    tmp_path: Path, server: FaultServer
) -> None:
    serve(server, "a.jpg", "b.jpg", "c.jpg", "d.jpg")
    server.status(f"/{HOSTS[0]}/gone.jpg", 404)
    serve(server, "e.jpg", host=HOSTS[1])
    urls = [f"https://{HOSTS[0]}/{n}.jpg" for n in ("a", "b", "c", "d", "gone")]
    body = "".join(f"![]({u})\n" for u in urls) + f"![](https://{HOSTS[1]}/e.jpg)\n"
    toml = f'[rewrite]\nhosts = ["{HOSTS[0]}"]\n'
    site = make_site(tmp_path, server, {"p.md": body.encode()}, extra_toml=toml)
    fetch(site)
    mirror = site / MIRROR / HOSTS[0]
    (mirror / "b.jpg").write_bytes(b"changed")
    (mirror / "c.jpg").unlink()
    with post(site).open("a") as f:  # after the fetch: never fetched
        f.write(f"![](https://{HOSTS[0]}/new.jpg)\n![](/images/local.png)\n")
    result, out = rewrite(site)
    text = post(site).read_text()
    assert f"![]({local(HOSTS[0], 'a.jpg')})" in text
    assert f"![]({local(HOSTS[0], 'd.jpg')})" in text
    reasons = {x.ref.raw: x.reason for x in result.left_alone}
    assert reasons == {
        urls[1]: "file changed since it was fetched (sha256 differs): img.example.com/b.jpg",
        urls[2]: "file missing: img.example.com/c.jpg",
        urls[4]: f"fetch failed: HTTP 404 (from {server.base}/img.example.com)",
        f"https://{HOSTS[1]}/e.jpg": "host not selected (rewrite.hosts)",
        f"https://{HOSTS[0]}/new.jpg": "not fetched yet",
        "/images/local.png": "site path (never rewritten)",
    }
    for raw in reasons:
        assert f"![]({raw})" in text
    assert "p.md:7  https://img.example.com/new.jpg" in out


def test_a_post_edited_between_scan_and_rewrite_is_rescanned(
    tmp_path: Path, server: FaultServer
) -> None:
    serve(server, "a.jpg", "b.jpg")
    site = make_site(tmp_path, server, {"p.md": f"---\ncover: {A}\n---\n![]({B})\n".encode()})
    fetch(site)
    config = config_of(site)
    scan = scanning.scan(config)
    edited = f"---\ntitle: added later\ncover: {A}\n---\n```\n![]({B})\n```\nnew ![]({B})\n"
    post(site).write_text(edited)
    with open_site(config, write=True) as opened:
        result = rewriting.rewrite(opened, scan)
    assert [c.rescanned for c in result.changed] == [True]
    assert post(site).read_text() == edited.replace(A, local(HOSTS[0], "a.jpg")).replace(
        f"new ![]({B})", f"new ![]({local(HOSTS[0], 'b.jpg')})"
    )


def test_read_only_post_is_reported_and_others_keep_their_mode(
    tmp_path: Path, server: FaultServer
) -> None:
    serve(server, "a.jpg")
    body = f"![]({A})\n".encode()
    site = make_site(tmp_path, server, {"r.md": body, "w.md": body})
    fetch(site)
    post(site, "r.md").chmod(0o444)
    post(site, "w.md").chmod(0o640)
    result, out = rewrite(site)
    assert "source/_posts/r.md: the file is read-only: not written" in out
    assert [f.post for f in result.failed] == ["source/_posts/r.md"]
    assert post(site, "r.md").read_bytes() == body
    assert post(site, "w.md").read_text() == f"![]({local(HOSTS[0], 'a.jpg')})\n"
    assert stat.S_IMODE(post(site, "w.md").stat().st_mode) == 0o640
    assert not [p for p in (site / POSTS).iterdir() if p.name.endswith(".part")]
    # Only the written post is in the journal.
    reverted, _ = revert(site)
    assert [(p.post, p.outcome) for p in reverted.posts] == [("source/_posts/w.md", "restored")]
    assert post(site, "w.md").read_bytes() == body


def test_a_reference_added_after_the_scan_where_every_span_still_holds(
    tmp_path: Path, server: FaultServer
) -> None:
    # The scan's spans all hold their text, so the edit is planned on the scan;
    # the read-back finds the added reference, and the post is planned afresh.
    serve(server, "a.jpg", "b.jpg")
    site = make_site(tmp_path, server, {"p.md": f"![]({A})\n".encode()})
    fetch(site)
    config = config_of(site)
    scan = scanning.scan(config)
    post(site).write_text(f"![]({A})\n![]({B})\n")
    with open_site(config, write=True) as opened:
        result = rewriting.rewrite(opened, scan)
    assert [(c.rescanned, len(c.edits)) for c in result.changed] == [(True, 1)]
    assert post(site).read_text() == f"![]({local(HOSTS[0], 'a.jpg')})\n![]({B})\n"
    assert [d.reason for d in result.left_alone] == ["not fetched yet"]


def test_rewrite_work_grows_linearly_with_the_references_of_one_post(
    tmp_path: Path, server: FaultServer
) -> None:
    # Issue 15, item 8. Work counted, not timed: every Python function call
    # (and generator step) of the rewrite stage, for one post of n and of 2n
    # references. Linear work doubles; summing the edits before each
    # reference again (as check_rewritten did) quadruples.
    serve(server, "a.jpg", "b.jpg", "c.jpg")
    site = make_site(tmp_path, server, {"p.md": f"![]({A}) ![]({B}) ![]({C})\n".encode()})
    fetch(site)
    config = config_of(site)

    def calls(lines: int) -> int:
        post(site).write_text(f"## {lines}\n" + f"Text ![x]({A}) and ![y]({B})\n" * lines)
        scan = scanning.scan(config)
        count = 0

        def profile(frame: object, event: str, arg: object) -> None:
            nonlocal count
            count += 1

        sys.setprofile(profile)
        try:
            with open_site(config, write=False) as opened:
                result = rewriting.rewrite(opened, scan, dry_run=True)
        finally:
            sys.setprofile(None)
        assert result.rewritten == 2 * lines
        return count

    small, large = calls(300), calls(600)
    assert large < 2.3 * small, (small, large)


def test_revert_after_the_user_edited_the_post(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg", "c.jpg")
    original = f"---\ncover: {A}\n---\n![]({B})\n![]({C})\n".encode()
    site = make_site(tmp_path, server, {"p.md": original})
    fetch(site)
    rewrite(site)
    text = post(site).read_text()
    # The user adds a line at the top of the body, replaces the second image by hand
    # (a shorter URL: what follows moves) and adds a line at the end.
    text = text.replace("---\n![]", "---\nIntro.\n![]").replace(local(HOSTS[0], "b.jpg"), "/b.png")
    post(site).write_text(text + "more text\n")
    result, out = revert(site)
    assert [(p.outcome, p.undone, p.total) for p in result.posts] == [("partial", 2, 3)]
    assert "1 of 3 rewritten URLs no longer stand" in out and "line 4" in out
    assert (
        post(site).read_text()
        == f"---\ncover: {A}\n---\nIntro.\n![](/b.png)\n![]({C})\nmore text\n"
    )
    # The run stays open: the next revert still names the edit left undone ...
    again, out = revert(site)
    assert [(p.outcome, p.undone, p.total) for p in again.posts] == [("partial", 2, 3)]
    assert "line 4 (/images/mirror/img.example.com/b.jpg)" in out
    # ... and finishes it once the rewritten URL is back, leaving the rest alone.
    post(site).write_text(post(site).read_text().replace("/b.png", local(HOSTS[0], "b.jpg")))
    last, _ = revert(site)
    assert [(p.outcome, p.undone, p.total) for p in last.posts] == [("restored", 3, 3)]
    assert post(site).read_text() == (
        f"---\ncover: {A}\n---\nIntro.\n![]({B})\n![]({C})\nmore text\n"
    )
    assert not revert(site)[0].runs


def test_revert_finds_a_url_whose_line_was_edited_around_it(
    tmp_path: Path, server: FaultServer
) -> None:
    # Issue 15, item 2: the alt text changed on a line holding three rewritten URLs.
    names = [f"{n}.jpg" for n in range(7)]
    serve(server, *names)
    urls = [f"https://{HOSTS[0]}/{name}" for name in names]
    body = "".join(f"![{c}]({u})\n\n" for c, u in zip("abcd", urls, strict=False))
    last = f"![e]({urls[4]}) ![f]({urls[5]}) ![g]({urls[6]})\n"
    original = f"---\ncover: {urls[0]}\n---\n{body}{last}"
    site = make_site(tmp_path, server, {"p.md": original.encode()})
    fetch(site)
    assert rewrite(site)[0].rewritten == 8

    def edited(text: str) -> str:  # the alt text, and a line added above: all moves
        return text.replace("![e]", "![E edited]").replace("![a]", "A\n![a]")

    post(site).write_text(edited(post(site).read_text()))
    result, _ = revert(site)
    assert [(p.outcome, p.undone, p.total) for p in result.posts] == [("restored", 8, 8)]
    assert post(site).read_text() == edited(original)
    assert not revert(site)[0].runs


def test_revert_undoes_runs_newest_first(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg")
    original = f"---\ncover: {A}\n---\n![]({B})\n".encode()
    site = make_site(tmp_path, server, {"p.md": original})
    fetch(site)
    # Run 1 rewrites a.jpg only (b.jpg is gone), run 2 the fetched-again b.jpg.
    (site / MIRROR / HOSTS[0] / "b.jpg").unlink()
    assert rewrite(site)[0].run_id == 1
    fetch(site)
    second, _ = rewrite(site)
    assert (second.run_id, second.rewritten) == (2, 1)
    result, out = revert(site)
    assert [r.id for r in result.runs] == [2, 1] and "runs 2 (" in out
    assert post(site).read_bytes() == original


def test_verify_clean_missing_changed_and_unresolved(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg", "c.jpg")
    server.status(f"/{HOSTS[0]}/gone.jpg", 404)
    body = f"![]({A})\n![]({B})\n![]({C})\n![](https://{HOSTS[0]}/gone.jpg)\n"
    site = make_site(tmp_path, server, {"p.md": body.encode()})
    fetch(site)
    rewrite(site)
    result, out = verify(site)
    assert not result.problems  # the failed fetch is no problem for verify
    assert "Checked 3 mirrored files and 3 rewritten references: 0 problems." in out

    mirror = site / MIRROR / HOSTS[0]
    mirror.joinpath("a.jpg").unlink()
    mirror.joinpath("b.jpg").write_bytes(b"tampered")
    with post(site).open("a") as f:
        f.write("![](/images/mirror/img.example.com/never%20there.jpg)\n")
    result, out = verify(site)
    assert out.splitlines()[:-1] == [
        "img.example.com/a.jpg: file missing: img.example.com/a.jpg",
        "img.example.com/b.jpg: file changed since it was fetched (sha256 differs):"
        " img.example.com/b.jpg",
        "source/_posts/p.md:1: no file img.example.com/a.jpg under mirror.dir",
        "source/_posts/p.md:5: no file img.example.com/never there.jpg under mirror.dir",
    ]


def test_lock_held_stops_rewrite_and_revert(seed_site: Path) -> None:
    fetch(seed_site)
    with SiteLock(seed_site / ".gallery-mirror"):
        with pytest.raises(LockHeld):
            rewrite(seed_site)
        with pytest.raises(LockHeld):
            revert(seed_site)
    assert post(seed_site, "deepseek-post.md").read_bytes() == SEED.read_bytes()


@pytest.mark.parametrize(
    "prefix", ["images/mirror", "@m", "//cdn.example.com/m", "{{ site.baseurl }}/m"]
)
def test_a_relative_prefix_is_refused(tmp_path: Path, server: FaultServer, prefix: str) -> None:
    # Relative: every post's URL would resolve it differently. A Jekyll prefix with
    # spaces: a Markdown image's URL would end at the first one.
    toml = f'[rewrite]\nlocal_prefix = "{prefix}"\n'
    site = make_site(tmp_path, server, {"p.md": f"![]({A})\n".encode()}, extra_toml=toml)
    with pytest.raises(ConfigError, match=r"toml:\d+: invalid value for 'rewrite\.local_prefix'"):
        fetch(site)


def test_cdn_with_check_target(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg", "ü b.jpg")
    server.file("/cdn/img.example.com/a.jpg", b"x")
    server.file("/cdn/img.example.com/%C3%BC%20b.jpg", b"x")
    server.status("/cdn/img.example.com/b.jpg", 404)
    body = f"![]({A})\n![]({B})\n<img src='https://img.example.com/ü b.jpg'>\n"
    toml = f'[rewrite]\ncdn_base = "{server.base}/cdn/"\n'
    site = make_site(tmp_path, server, {"p.md": body.encode()}, extra_toml=toml)
    fetch(site)
    result, _ = rewrite(site, to="cdn", check_target=True)
    assert post(site).read_text() == (
        f"![]({server.base}/cdn/img.example.com/a.jpg)\n![]({B})\n"
        f"<img src='{server.base}/cdn/img.example.com/%C3%BC%20b.jpg'>\n"
    )
    assert [x.reason for x in result.left_alone] == [
        f"new URL {server.base}/cdn/img.example.com/b.jpg answered HTTP 404 (--check-target)"
    ]
    assert not verify(site)[0].problems
    # Without the probe nothing shows b.jpg is there (no publish.remote): it stays.
    unprobed = rewrite(site, to="cdn")[0]
    assert unprobed.rewritten == 0
    assert any("not published (publish.remote is not set" in x.reason for x in unprobed.left_alone)
    with pytest.raises(ConfigError, match="--check-target"):
        rewrite(site, check_target=True)  # local paths: nothing to probe


def test_cdn_needs_a_base(tmp_path: Path, server: FaultServer) -> None:
    site = make_site(tmp_path, server, {"p.md": b"text\n"})
    with pytest.raises(ConfigError, match=r"rewrite\.cdn_base"):
        rewrite(site, to="cdn")


def test_a_symlinked_post_is_rewritten_through_the_link(
    tmp_path: Path, server: FaultServer
) -> None:
    serve(server, "a.jpg")
    site = make_site(tmp_path / "blog", server, {})
    real = tmp_path / "elsewhere.md"
    real.write_text(f"![]({A})\n")
    os.symlink(real, post(site))
    fetch(site)
    rewrite(site)
    assert post(site).is_symlink() and real.read_text() == f"![]({local(HOSTS[0], 'a.jpg')})\n"
    shutil.rmtree(site / MIRROR)
    assert len(verify(site)[0].problems) == 2  # the file, and the reference to it


def test_front_matter_second_opinion_refuses_yaml_that_no_longer_parses() -> None:
    from mirror.scanner.edit import Edit, _front_matter_holds, apply_edits

    before = b"---\ncover: https://h/a.jpg\n---\nbody\n"
    start = before.index(b"https://")
    good = Edit(start, "https://h/a.jpg", "/m/a.jpg", "/m/a.jpg")
    assert _front_matter_holds(apply_edits(before, [good]), [good], [good]) is None
    broken = Edit(start, "https://h/a.jpg", "[/m/a.jpg", "[/m/a.jpg")
    reason = _front_matter_holds(apply_edits(before, [broken]), [broken], [broken])
    assert reason is not None and "no longer parses" in reason


def test_revert_keeps_a_run_open_while_a_post_cannot_be_read(seed_site: Path) -> None:
    target = post(seed_site, "deepseek-post.md")
    original = target.read_bytes()
    fetch(seed_site)
    rewrite(seed_site)
    away = target.with_suffix(".away")
    target.rename(away)
    first, _ = revert(seed_site)
    assert [r.outcome for r in first.posts] == ["not reverted"]
    away.rename(target)
    again, _ = revert(seed_site)  # the run is still open: now the post is back
    assert target.read_bytes() == original and again.runs


def test_locate_written_takes_added_quotes_and_refuses_a_replaced_url() -> None:
    from mirror.scanner.edit import Edit, apply_edits, locate_written, shifted_starts
    from mirror.scanner.post import scan_post

    original = b"---\ncover: https://h/a.jpg\n---\n![x](https://h/b.jpg) ![y](https://h/c.jpg)\n"
    edits = [
        Edit(11, "https://h/a.jpg", '"/m/a: 1.jpg"', "/m/a: 1.jpg"),
        Edit(36, "https://h/b.jpg", "/m/b.jpg", "/m/b.jpg"),
        Edit(58, "https://h/c.jpg", "/m/c.jpg", "/m/c.jpg"),
    ]
    rewritten = apply_edits(original, edits)
    assert rewritten == b'---\ncover: "/m/a: 1.jpg"\n---\n![x](/m/b.jpg) ![y](/m/c.jpg)\n'
    # Every line changed: a comment after the cover, new alt texts, c.jpg replaced.
    data = b'---\ncover: "/m/a: 1.jpg"  # new\n---\n![X](/m/b.jpg) ![Y](/m/other.jpg)\n'
    found = scan_post(data, "p.md", frozenset({"cover"})).refs
    written = list(zip(shifted_starts(edits), edits, strict=True))
    assert locate_written(rewritten, data, written, found) == [11, 41, None]


def test_a_fragment_is_kept_across_the_rewrite(tmp_path: Path, server: FaultServer) -> None:
    serve(server, "a.jpg", "b.jpg")
    original = (
        f'---\ncover: {A}#top\n---\n![]({A}#pic_center)\n<img src="{B}#x&amp;y" alt="b">\n'
    ).encode()
    site = make_site(tmp_path, server, {"p.md": original})
    fetch(site)
    result, _ = rewrite(site)
    new_a, new_b = local(HOSTS[0], "a.jpg"), local(HOSTS[0], "b.jpg")
    assert (
        post(site).read_bytes()
        == (
            f"---\ncover: {new_a}#top\n---\n![]({new_a}#pic_center)\n"
            f'<img src="{new_b}#x&amp;y" alt="b">\n'
        ).encode()
    )
    assert result.rewritten == 3
    revert(site)
    assert post(site).read_bytes() == original


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("'https://img.example.com/it''s.jpg'", "it's.jpg"),
        ('"https://img.example.com/a\\u0062.jpg"', "ab.jpg"),
        ('"https://img.example.com/q\\"d.jpg"', 'q"d.jpg'),
        ('"https://img.example.com/t\\\\s.jpg"', "t\\s.jpg"),
    ],
)
def test_yaml_quote_escapes_are_read_and_written(
    tmp_path: Path, server: FaultServer, written: str, name: str
) -> None:
    # The URL is the YAML value, escapes undone: that is what is fetched; the
    # new value must read back, in the same quotes, as the new URL.
    server.file(f"/{HOSTS[0]}/{quote(name)}", jpeg(7))
    original = f"---\ncover: {written}\nimages:\n  - {written}\n---\nbody\n".encode()
    site = make_site(tmp_path, server, {"p.md": original})
    fetch(site)
    result, _ = rewrite(site)
    assert result.rewritten == 2
    meta = yaml.safe_load(post(site).read_text().split("---\n")[1])
    new = meta["cover"]
    assert meta == {"cover": new, "images": [new]}
    assert new.startswith(local(HOSTS[0], ""))
    assert (site / MIRROR / unquote(new.removeprefix("/images/mirror/"))).is_file()
    revert(site)
    assert post(site).read_bytes() == original
