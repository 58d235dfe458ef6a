"""`gallery-mirror report` end to end: real sites, a real server, a real state, real Chromium.

Snapshots live in tests/data/report/; ``UPDATE_SNAPSHOTS=1 pytest tests/test_report.py``
rewrites them (review the diff before committing).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image

from faultserver import FaultServer
from mirror.cli import main
from mirror.keep.state import State, UrlRecord
from mirror.output.report import use_colour

EXAMPLE = Path(__file__).parents[1] / "examples" / "hexo-blog"
IMAGES = Path(__file__).parents[1] / "examples" / "images"
SNAPSHOTS = Path(__file__).parent / "data" / "report"
TYPES = {".jpg": "image/jpeg", ".png": "image/png"}
STATUSES = {"pending", "mirrored", "failed", "ok", "broken"}
KINDS = {"front_matter", "gallery", "markdown", "html", "tag", "shortcode", "reference"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with its content's hash."""
    return {
        p.relative_to(root).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        )
        for p in sorted(root.rglob("*"))
    }


def requests(server: FaultServer) -> int:
    return sum(server.hits.values())


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: run with UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"differs from {path}"


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (shade, 90, 160)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """The example blog's images, each under /<host>/<path>, as examples/demo.py serves them."""
    with FaultServer() as running:
        for file in sorted(f for f in IMAGES.rglob("*") if f.is_file()):
            path = "/" + file.relative_to(IMAGES).as_posix()
            running.file(path, file.read_bytes(), content_type=TYPES[file.suffix])
        yield running


def example(tmp_path: Path, server: FaultServer | None = None) -> Path:
    site = tmp_path / "hexo-blog"
    shutil.copytree(EXAMPLE, site)
    if server is not None:
        origins = "".join(
            f'"{host}" = ["{server.base}/{host}"]\n'
            for host in ("imgcdn.yaerxing.com", "img.example.com")
        )
        (site / "gallery-mirror.toml").write_text(
            "[download]\nallow_private = true\nretries = 0\nfsync = false\n"
            f"[download.origins]\n{origins}"
        )
    return site


def without_port(text: str, server: FaultServer) -> str:
    return text.replace(server.base, "http://127.0.0.1:PORT")


# -- snapshots and writing nothing ------------------------------------------------


def test_example_blog_before_any_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = example(tmp_path)
    before = tree(tmp_path)
    code, text, _ = run(capsys, "report", "--site", str(site))
    assert code == 0
    snapshot("example.txt", text)
    code, md, _ = run(capsys, "report", "--format", "md", "--site", str(site))
    assert code == 0
    snapshot("example.md", md)
    assert tree(tmp_path) == before  # no state, no lock, no mirror dir


def test_example_blog_after_a_fetch_with_a_dead_image(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path, server)
    server.status("/img.example.com/lisbon/night@2x.jpg", 404)
    assert run(capsys, "fetch", "--site", str(site))[0] == 1
    before, hits = tree(tmp_path), requests(server)

    code, text, _ = run(capsys, "report", "--site", str(site))
    assert code == 1  # a failed image fails the report
    # When backup tries the dead image again depends on when this test runs.
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    snapshot("example-fetched.txt", without_port(text, server))
    code, md, _ = run(capsys, "report", "--format", "md", "--site", str(site))
    assert code == 1
    snapshot("example-fetched.md", without_port(md, server))
    assert tree(tmp_path) == before and requests(server) == hits


def test_the_report_reads_the_state_once(
    tmp_path: Path,
    server: FaultServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = example(tmp_path, server)
    assert run(capsys, "fetch", "--site", str(site))[0] == 0
    reads: list[object] = []
    real = State.records

    def counted(self: State, urls: Sequence[str] | None = None) -> dict[str, UrlRecord]:
        reads.append(urls)
        return real(self, urls)

    monkeypatch.setattr(State, "records", counted)
    assert run(capsys, "report", "--site", str(site))[0] == 0
    assert reads == [None]  # one read of every row serves the plan, the diff and the table


def test_only_the_named_files_are_written_and_no_request_is_made(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path, server)
    run(capsys, "fetch", "--site", str(site))
    before, hits = tree(site), requests(server)
    out = tmp_path / "reports"
    out.mkdir()  # a missing one is an error (tests/test_outfile.py)
    code, _, _ = run(
        capsys, "report", "--site", str(site),
        "--json", str(out / "r.json"), "--html", str(out / "r.html"),
    )  # fmt: skip
    assert code == 0
    assert tree(site) == before and requests(server) == hits
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]


# -- JSON --------------------------------------------------------------------------


def check_contract(doc: dict[str, object]) -> None:
    """The contract's required fields and values for `report --json`."""
    assert doc["schema"] == 1
    refs, urls, summary = doc["refs"], doc["urls"], doc["summary"]
    assert isinstance(refs, list) and isinstance(urls, list) and isinstance(summary, dict)
    for ref in refs:
        assert {"post", "line", "kind", "raw", "url"} <= ref.keys()
        assert isinstance(ref["line"], int) and ref["line"] >= 1 and ref["kind"] in KINDS
        assert not PurePosixPath(ref["post"]).is_absolute()
    for url in urls:
        assert {"url", "status", "path", "error"} <= url.keys()
        assert url["status"] in STATUSES
        assert (url["path"] is not None) == (url["status"] == "mirrored")
        assert (url["error"] is not None) == (url["status"] in ("failed", "broken"))
    for key in ("posts", "refs", "urls", *STATUSES):
        assert isinstance(summary[key], int), key
    assert summary["refs"] == len(refs) and summary["urls"] == len(urls)
    assert sum(summary[s] for s in STATUSES) == len(urls)
    for status in STATUSES:
        assert summary[status] == sum(1 for u in urls if u["status"] == status)


def test_json_follows_the_contract(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path, server)
    server.status("/img.example.com/lisbon/night@2x.jpg", 404)
    run(capsys, "fetch", "--site", str(site))
    code, _, _ = run(capsys, "report", "--site", str(site), "--json", str(tmp_path / "r.json"))
    assert code == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    check_contract(doc)
    summary = doc["summary"]
    assert (summary["posts"], summary["refs"], summary["urls"], summary["hosts"]) == (2, 16, 12, 2)
    assert (summary["mirrored"], summary["failed"], summary["pending"]) == (11, 1, 0)
    assert summary["bytes_mirrored"] == sum(
        f.stat().st_size for f in IMAGES.rglob("*") if f.is_file() and f.name != "night@2x.jpg"
    )
    (failed,) = [u for u in doc["urls"] if u["status"] == "failed"]
    assert failed["url"] == "https://img.example.com/lisbon/night@2x.jpg"
    assert failed["error"].startswith("HTTP 404") and failed["used_by"] == [
        "source/_posts/travel-notes.md:17"
    ]
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert (hosts["img.example.com"]["urls"], hosts["img.example.com"]["failed"]) == (7, 1)
    assert doc["checked"] is False and doc["migrate"]["fetch"] == [failed["url"]]


# -- --check ----------------------------------------------------------------------

CHECK_POST = """---
title: Faults
---
![ok](https://img.test/ok.jpg)
![gone](https://img.test/gone.jpg)
![get only](https://img.test/get-only.jpg)
![busy](https://img.test/busy.jpg)
![moved](https://img.test/moved.jpg)
![ok again](https://img.test/ok.jpg)
"""


def fault_site(tmp_path: Path, server: FaultServer, *, private: bool = True) -> Path:
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    (site / "source" / "_posts" / "faults.md").write_text(CHECK_POST)
    (site / "gallery-mirror.toml").write_text(
        f"[download]\nallow_private = {str(private).lower()}\nretries = 2\n"
        f'[download.origins]\n"img.test" = ["{server.base}"]\n'
    )
    server.file("/ok.jpg", jpeg(10))
    server.status("/gone.jpg", 404)
    server.head_refused("/get-only.jpg", jpeg(20))
    server.flaky("/busy.jpg", jpeg(30), fails=1, retry_after="0")
    server.redirect("/moved.jpg", "/ok.jpg")
    return site


def test_check_probes_each_url_not_mirrored(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = fault_site(tmp_path, server)
    before = tree(site)
    code, out, _ = run(capsys, "report", "--site", str(site))
    assert code == 0 and requests(server) == 0  # no request without --check

    code, out, _ = run(
        capsys, "report", "--check", "--site", str(site), "--json", str(tmp_path / "r.json")
    )
    assert code == 1  # one broken image gates CI
    assert tree(site) == before
    doc = json.loads((tmp_path / "r.json").read_text())
    check_contract(doc)
    urls = {u["url"].rsplit("/", 1)[1]: u for u in doc["urls"]}
    assert {name: u["status"] for name, u in urls.items()} == {
        "ok.jpg": "ok", "gone.jpg": "broken", "get-only.jpg": "ok", "busy.jpg": "ok",
        "moved.jpg": "ok",
    }  # fmt: skip
    assert urls["gone.jpg"]["error"] == f"HTTP 404 (from {server.base})"
    assert urls["ok.jpg"]["check"] == {
        "reachable": True, "http_status": 200, "content_type": "image/jpeg",
        "size": len(jpeg(10)), "method": "HEAD", "final_url": server.url("/ok.jpg"),
        "error": None, "attempts": 1,
    }  # fmt: skip
    get_only = urls["get-only.jpg"]["check"]
    assert (get_only["method"], get_only["http_status"], get_only["size"]) == (
        "GET", 206, len(jpeg(20))
    )  # fmt: skip
    assert server.headers["/get-only.jpg"][-1]["range"] == "bytes=0-0"
    assert urls["busy.jpg"]["check"]["attempts"] == 2
    assert urls["moved.jpg"]["check"]["final_url"] == server.url("/ok.jpg")
    # each distinct URL once: HEAD, plus the ranged GET, the retry and the redirect's hop
    assert sorted(server.log) == sorted(
        [("HEAD", "/ok.jpg"), ("HEAD", "/gone.jpg"), ("HEAD", "/get-only.jpg"),
         ("GET", "/get-only.jpg"), ("HEAD", "/busy.jpg"), ("HEAD", "/busy.jpg"),
         ("HEAD", "/moved.jpg"), ("HEAD", "/ok.jpg")]
    )  # fmt: skip
    assert doc["summary"]["bytes_to_fetch"] == sum(
        u["check"]["size"] for u in doc["urls"] if u["status"] == "ok"
    )
    assert "broken  https://img.test/gone.jpg" in out
    assert "used by source/_posts/faults.md:5" in out
    assert "ok  https://img.test/get-only.jpg  HTTP 206 image/jpeg" in out


def test_check_refuses_private_addresses_unless_allowed(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = fault_site(tmp_path, server, private=False)
    code, _, _ = run(
        capsys, "report", "--check", "--site", str(site), "--json", str(tmp_path / "r.json")
    )
    assert code == 1 and server.log == []
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {u["status"] for u in doc["urls"]} == {"broken"}
    assert all("private or local address" in u["error"] for u in doc["urls"])


def test_check_passes_when_everything_answers(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path, server)
    code, out, _ = run(capsys, "report", "--check", "--site", str(site))
    assert code == 0, out
    assert "URLs: 0 mirrored, 0 pending, 0 failed, 12 ok, 0 broken." in out
    assert requests(server) == 12  # one HEAD per distinct URL


def test_a_mirrored_url_is_not_probed(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path, server)
    server.status("/img.example.com/lisbon/night@2x.jpg", 404)
    run(capsys, "fetch", "--site", str(site))
    server.log.clear()
    code, out, _ = run(capsys, "report", "--check", "--site", str(site))
    assert code == 1
    assert server.log == [("HEAD", "/img.example.com/lisbon/night@2x.jpg")]
    assert "URLs: 11 mirrored, 0 pending, 0 failed, 0 ok, 1 broken." in out


def test_check_never_hides_a_recorded_failure_of_the_bytes(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The probe sees headers only: a URL that answers may still serve bytes a fetch refused."""
    site = tmp_path / "blog"
    (site / "source" / "_posts").mkdir(parents=True)
    (site / "source" / "_posts" / "p.md").write_text("![cut](https://img.test/cut.jpg)\n")
    (site / "gallery-mirror.toml").write_text(
        f"[download]\nallow_private = true\nretries = 0\nfsync = false\n"
        f'[download.origins]\n"img.test" = ["{server.base}"]\n'
    )
    server.file("/cut.jpg", jpeg(10)[:-40])
    assert run(capsys, "fetch", "--site", str(site))[0] == 1
    code, out, _ = run(
        capsys, "report", "--check", "--site", str(site), "--json", str(tmp_path / "r.json")
    )
    assert code == 1
    assert "URLs: 0 mirrored, 0 pending, 1 failed, 0 ok, 0 broken." in out
    (url,) = json.loads((tmp_path / "r.json").read_text())["urls"]
    assert (url["status"], url["state"], url["check"]["reachable"]) == ("failed", "failed", True)
    assert url["error"] == (
        f"truncated JPEG (no end marker) (from {server.base});"
        " a probe reaches it now (HTTP 200), but only a fetch checks the bytes"
    )
    assert f"failed  https://img.test/cut.jpg\n          {url['error']}; used by" in out


# -- the rest of the command --------------------------------------------------------


def test_unreadable_posts_are_listed_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path)
    (site / "source" / "_posts" / "broken.md").write_bytes(b"---\ntitle: x\n\xff\n---\n")
    code, out, _ = run(capsys, "report", "--site", str(site))
    assert code == 1
    assert "Posts that could not be read (1):\n  source/_posts/broken.md: not valid UTF-8" in out


def test_a_config_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = example(tmp_path)
    code, out, err = run(capsys, "report", "--to", "cdn", "--site", str(site))
    assert code == 2 and out == ""
    assert "rewrite.cdn_base" in err


def test_text_from_posts_is_escaped_in_markdown_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = example(tmp_path)
    (site / "source" / "_posts" / "<b>bold<i>.md").write_bytes(b"---\nt: x\n\xff\n---\n")
    code, md, _ = run(capsys, "report", "--format", "md", "--html", str(tmp_path / "r.html"),
                      "--site", str(site))  # fmt: skip
    assert code == 1
    assert "- `source/_posts/<b>bold<i>.md`: not valid UTF-8" in md  # a code span: inert
    page = (tmp_path / "r.html").read_text()
    assert "<b>bold" not in page and "&lt;b&gt;bold&lt;i&gt;.md" in page


def test_colour_only_on_a_terminal_without_no_color(tmp_path: Path) -> None:
    leader, follower = os.openpty()
    with open(follower, "w") as terminal, open(tmp_path / "plain.txt", "w") as plain:
        assert use_colour(terminal, {})
        assert not use_colour(terminal, {"NO_COLOR": "1"})
        assert not use_colour(terminal, {"NO_COLOR": ""})  # set at all means no colour
        assert not use_colour(plain, {})
    os.close(leader)


def test_broken_statuses_are_coloured_on_a_terminal(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    site = example(tmp_path, server)
    server.status("/img.example.com/lisbon/night@2x.jpg", 404)
    run(capsys, "fetch", "--site", str(site))
    monkeypatch.delenv("NO_COLOR", raising=False)
    with capsys.disabled():
        leader, follower = os.openpty()
        script = (
            "import sys; from mirror.cli import main;"
            f" sys.exit(main(['report', '--site', {str(site)!r}]))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdout=follower, stderr=subprocess.PIPE, check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )  # fmt: skip
        os.close(follower)
        seen = b""
        while chunk := _read(leader):
            seen += chunk
        os.close(leader)
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
    assert b"\033[31mfailed\033[0m" in seen


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal's other end is closed and drained
        return b""


# -- the HTML page in real headless Chromium -----------------------------------------

PROBE_SCRIPT = """<script>
addEventListener("load", () => {
  const images = [...document.images];
  const loaded = images.filter((i) => i.complete && i.naturalWidth > 0);
  document.body.dataset.images = images.length;
  document.body.dataset.loaded = loaded.length;
  document.body.dataset.broken = images.filter((i) => !loaded.includes(i))
    .map((i) => i.getAttribute("src")).join(" ");
});
</script>
"""


def chromium_binary() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = (
            "CHROMIUM IS NOT INSTALLED: the HTML report is NOT checked in a browser"
            " (apt-get install chromium; .ci/run installs it and requires it)"
        )
        if os.environ.get("GALLERY_MIRROR_REQUIRE_CHROMIUM"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=5000", *args,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def console_lines(stderr: str) -> list[str]:
    """What the page wrote to the console (errors, CSP violations, ...), as Chromium logs it."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_chromium_reports_console_messages(tmp_path: Path) -> None:
    """The console check below is only worth something if it can fail."""
    binary = chromium_binary()
    page = tmp_path / "canary.html"
    page.write_text('<!doctype html><script>console.error("canary")</script>')
    done = chromium(binary, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr
    assert any("canary" in line for line in console_lines(done.stderr)), done.stderr


def test_html_page_in_headless_chromium(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = chromium_binary()
    site = example(tmp_path, server)
    server.status("/img.example.com/lisbon/night@2x.jpg", 404)
    run(capsys, "fetch", "--site", str(site))
    mirror = site / "source" / "images" / "mirror"
    # A thumbnail the page must prefer to its original (made here: fetch may not make them).
    thumb = mirror / "_thumbs" / "480" / "img.example.com" / "lisbon" / "cover.jpg.webp"
    if not thumb.exists():
        thumb.parent.mkdir(parents=True)
        Image.new("RGB", (48, 32), "orange").save(thumb, "WEBP")

    page = tmp_path / "reports" / "report.html"  # outside the site: links go up and across
    json_file = tmp_path / "reports" / "report.json"
    page.parent.mkdir()
    code, _, _ = run(
        capsys, "report", "--site", str(site), "--html", str(page), "--json", str(json_file)
    )
    assert code == 1
    doc = json.loads(json_file.read_text())
    html = page.read_text()
    assert "<script" not in html and "http://" not in html.split("<body>")[0]
    assert (
        'src="../hexo-blog/source/images/mirror/_thumbs/480/img.example.com/lisbon/cover.jpg.webp"'
        in html
    )

    # A copy beside the page, with a script reading each image's state after load.
    probe_page = page.with_name("report-probe.html")
    probe_page.write_text(
        html.replace("default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'")
        .replace("</body>", PROBE_SCRIPT + "</body>")
    )  # fmt: skip
    profile = tmp_path / "chromium-profile"
    done = chromium(binary, profile, "--dump-dom", probe_page.as_uri())
    assert done.returncode == 0, done.stderr
    assert console_lines(done.stderr) == []
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body is not None, done.stdout[:500]
    attributes = dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))
    assert attributes["images"] == str(doc["summary"]["mirrored"]) == "11"
    assert (attributes["loaded"], attributes["broken"]) == ("11", "")

    # The counts the page shows are the JSON's.
    shown = dict(re.findall(r'<dd data-count="(\w+)">(\d+)</dd>', done.stdout))
    assert shown and all(int(v) == doc["summary"][k] for k, v in shown.items())
    for host in doc["hosts"]:
        row = re.search(rf'<tr data-host="{re.escape(host["host"])}">(.*?)</tr>', done.stdout)
        assert row is not None
        cells = dict(re.findall(r'data-col="(\w+)">(\d+)<', row.group(1)))
        assert {k: int(v) for k, v in cells.items()} == {k: host[k] for k in cells}
    problems = re.findall(r'<tr class="problem">', done.stdout)
    assert len(problems) == doc["summary"]["failed"] + doc["summary"]["broken"] == 1

    # The page itself, unchanged: loads with no console message (no CSP violation).
    shot = tmp_path / "report.png"
    done = chromium(binary, profile, "--window-size=1280,2400", f"--screenshot={shot}",
                    page.as_uri())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert console_lines(done.stderr) == []
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
    print(f"\nreport screenshot: {shot}")
