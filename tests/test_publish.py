"""`gallery-mirror publish`, and `rewrite`/`migrate --to cdn`, `backup` and `report`
on what it published: against real remotes (rclone serve s3 with an auth key,
rclone serve sftp) on 127.0.0.1, with the S3 storage served over HTTP as the CDN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import pytest
from rcloneservers import BUCKET, Cdn, RcloneServer, rclone_binary, s3_head, servers
from seedsite import SEED_FILES, SEED_HOST, SEED_PATH, jpeg

from faultserver import FaultServer
from mirror.cli import main
from mirror.errors import ConfigError
from mirror.net import rclone

REMOTE = f"s3:{BUCKET}/gallery"
MIRROR = Path("source/images/mirror")
ORIGINALS = [f"{SEED_HOST}{SEED_PATH}{name}" for name in SEED_FILES]
THUMBS = [f"_thumbs/480/{path}.webp" for path in ORIGINALS]


@pytest.fixture
def remotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RcloneServer, RcloneServer, Cdn]]:
    yield from servers(tmp_path, monkeypatch)


def configure(site: Path, cdn: Cdn | None, remote: str = REMOTE, extra: str = "") -> None:
    base = f'cdn_base = "{cdn.base}/{BUCKET}/gallery"\n' if cdn is not None else ""
    toml = site / "gallery-mirror.toml"
    toml.write_text(
        toml.read_text() + f'[publish]\nremote = "{remote}"\n{extra}\n[rewrite]\n{base}'
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def uploaded_paths(server: RcloneServer) -> dict[str, int]:
    prefix = f"{BUCKET}/gallery/"
    return {p.removeprefix(prefix): n for p, n in server.uploads().items()}


def test_publish_uploads_exactly_the_unpublished_files_and_a_rerun_nothing(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, cdn = remotes
    configure(site, cdn)
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    code, out, _ = run(capsys, "publish", "--dry-run", "--site", str(site))
    assert code == 0 and "would upload 10 files" in out and uploaded_paths(s3) == {}
    code, out, err = run(capsys, "publish", "--json", "-", "--site", str(site))
    assert code == 0, err
    document = json.loads(out)
    assert document["summary"]["uploaded"] == 10 and document["summary"]["failed"] == 0
    assert uploaded_paths(s3) == {path: 1 for path in ORIGINALS + THUMBS}
    assert "uploaded: " + ORIGINALS[0] in err  # printed to stderr when the JSON is stdout

    code, out, _ = run(capsys, "publish", "--site", str(site))
    assert code == 0 and "uploaded 0 files" in out and "10 already published" in out
    assert uploaded_paths(s3) == {path: 1 for path in ORIGINALS + THUMBS}  # nothing again


def test_headers_content_type_from_the_stored_extension_and_cache_control(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, cdn = remotes
    configure(site, cdn, extra='cache_control = "public, max-age=600"\n')
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    assert run(capsys, "-q", "publish", "--site", str(site))[0] == 0
    original = s3_head(s3, f"gallery/{ORIGINALS[0]}")
    thumbnail = s3_head(s3, f"gallery/{THUMBS[0]}")
    assert original["status"] == "200" and original["content-type"] == "image/jpeg"
    assert thumbnail["content-type"] == "image/webp"
    assert original["cache-control"] == thumbnail["cache-control"] == "public, max-age=600"


def test_a_changed_file_is_uploaded_again_listed_and_purged(
    site: Path,
    server: FaultServer,
    remotes: tuple[RcloneServer, RcloneServer, Cdn],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    s3, _, cdn = remotes
    purged = tmp_path / "purged.txt"
    script = "import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]))"
    command = f"{sys.executable} -c {json.dumps(script)} {purged}"
    configure(site, cdn, extra=f"purge_command = {json.dumps(command)}\nthumbnails = false\n")
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    assert run(capsys, "-q", "publish", "--site", str(site))[0] == 0
    server.replace(SEED_PATH + SEED_FILES[2], jpeg(250))  # the source serves new bytes
    assert run(capsys, "-q", "fetch", "--refresh", "--site", str(site))[0] == 0
    code, out, err = run(capsys, "publish", "--site", str(site))
    assert code == 0, out + err
    assert f"replaced: {ORIGINALS[2]}" in out and "uploaded 1 file " in out
    assert uploaded_paths(s3)[ORIGINALS[2]] == 2
    assert sum(uploaded_paths(s3).values()) == 6
    url = f"{cdn.base}/{BUCKET}/gallery/{ORIGINALS[2]}"
    assert purged.read_text() == url
    assert get(url) == (site / MIRROR / ORIGINALS[2]).read_bytes()


def test_a_refused_file_stays_unpublished_and_its_references_are_left_alone(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, cdn = remotes
    configure(site, cdn, extra='extra_args = ["--retries", "1", "--low-level-retries", "1"]\n')
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    # A directory where the file should go: the server cannot store it.
    (s3.storage / BUCKET / "gallery" / ORIGINALS[3] / "x").mkdir(parents=True)
    code, out, _ = run(capsys, "publish", "--site", str(site))
    assert code == 1 and f"failed: {ORIGINALS[3]}: " in out and "uploaded 9 files" in out

    code, out, _ = run(capsys, "rewrite", "--to", "cdn", "-v", "--site", str(site))
    post = (site / "source/_posts/deepseek-post.md").read_text()
    assert "  not published (1)\n" in out and f"{SEED_PATH}{SEED_FILES[3]}\n" in out
    assert f"://{SEED_HOST}{SEED_PATH}{SEED_FILES[3]}" in post  # left alone
    assert f"{cdn.base}/{BUCKET}/gallery/{ORIGINALS[3]}" not in post
    for name in (SEED_FILES[0], SEED_FILES[1], SEED_FILES[2], SEED_FILES[4]):
        url = f"{cdn.base}/{BUCKET}/gallery/{SEED_HOST}{SEED_PATH}{name}"
        assert url in post
        assert get(url) == (site / MIRROR / SEED_HOST / SEED_PATH.strip("/") / name).read_bytes()


def test_wrong_credentials_give_an_error_naming_the_remote(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    configure(site, remotes[2], remote=f"s3bad:{BUCKET}/gallery")
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    code, _, err = run(capsys, "publish", "--site", str(site))
    assert code == 1
    assert f"publish.remote 's3bad:{BUCKET}/gallery': rclone cannot use it:" in err
    assert "SignatureDoesNotMatch" in err
    code, out, _ = run(capsys, "rewrite", "--to", "cdn", "--dry-run", "--site", str(site))
    assert code == 0 and "+headimg" not in out


def test_an_interrupted_publish_resumes_without_uploading_anything_twice(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, cdn = remotes
    slow = '"--bwlimit", "4k", "--transfers", "1", "--checkers", "1"'
    configure(site, cdn, extra=f"extra_args = [{slow}]\n")
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    command = [sys.executable, "-m", "mirror", "publish", "--site", str(site)]
    publishing = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child = _wait_for_child(publishing.pid, until=lambda: len(uploaded_paths(s3)) >= 2)
    os.kill(child, signal.SIGKILL)
    out, _ = publishing.communicate(timeout=60)
    assert publishing.returncode == 1 and b"signal 9" in out
    before = uploaded_paths(s3)
    assert 2 <= len(before) < 10

    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text().replace(f"extra_args = [{slow}]", ""))
    code, out, err = run(capsys, "publish", "--site", str(site))
    assert code == 0, out + err
    assert uploaded_paths(s3) == {path: 1 for path in ORIGINALS + THUMBS}
    assert run(capsys, "publish", "--site", str(site))[1].count("already published") == 1


def _wait_for_child(pid: int, *, until: object) -> int:
    """The rclone process ``pid`` started, once ``until()`` holds."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children and until():  # type: ignore[operator]
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("publish started no rclone, or it uploaded nothing")


def test_spaces_and_cjk_end_to_end_over_sftp(
    tmp_path: Path,
    server: FaultServer,
    remotes: tuple[RcloneServer, RcloneServer, Cdn],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, sftp, _ = remotes
    cdn = Cdn(sftp.storage)
    try:
        name = "/相册 2024/猫 咪.jpg"
        server.file(quote(name), jpeg(77))
        blog = tmp_path / "cjk"
        (blog / "source" / "_posts").mkdir(parents=True)
        post = blog / "source" / "_posts" / "p.md"
        post.write_text(f"![]({server.base}{quote(name)})\n")
        (blog / "gallery-mirror.toml").write_text(
            "[download]\nallow_private = true\nretries = 0\nfsync = false\n"
            f'[publish]\nremote = "sftp:site/img"\n[rewrite]\ncdn_base = "{cdn.base}/site/img"\n'
        )
        code, out, err = run(capsys, "migrate", "--to", "cdn", "--site", str(blog))
        assert code == 0, out + err
        text = post.read_text()
        assert text.startswith(f"![]({cdn.base}/site/img/") and " " not in text.strip()
        url = text.strip()[4:-1]
        assert "%E7%9B%B8%E5%86%8C%202024/%E7%8C%AB%20%E5%92%AA.jpg" in url
        assert get(url) == jpeg(77)
    finally:
        cdn.close()


def test_rewrite_to_cdn_without_a_remote_changes_nothing_and_says_why(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + '[rewrite]\ncdn_base = "https://cdn.example.com/g"\n')
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    code, out, _ = run(capsys, "rewrite", "--to", "cdn", "-v", "--site", str(site))
    assert code == 0 and "not published (publish.remote is not set" in out
    assert "cdn.example.com" not in (site / "source/_posts/deepseek-post.md").read_text()


def test_migrate_to_cdn_dry_run_counts_the_uploads_then_migrates(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, cdn = remotes
    configure(site, cdn, extra="thumbnails = false\n")
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    code, out, _ = run(capsys, "migrate", "--to", "cdn", "--dry-run", "--site", str(site))
    size = sum((site / MIRROR / path).stat().st_size for path in ORIGINALS)
    assert code == 0 and f"would upload 5 files ({size / 1e6:.1f} MB" in out
    assert f"+headimg: {cdn.base}/{BUCKET}/gallery/{SEED_HOST}" in out
    assert uploaded_paths(s3) == {}
    code, out, err = run(capsys, "migrate", "--to", "cdn", "--site", str(site))
    assert code == 0, out + err
    text = (site / "source/_posts/deepseek-post.md").read_text()
    for path in ORIGINALS:
        url = f"{cdn.base}/{BUCKET}/gallery/{path}"
        assert url in text and get(url) == (site / MIRROR / path).read_bytes()

    code, out, _ = run(capsys, "report", "--json", "-", "--site", str(site))
    assert [h["published"] for h in json.loads(out)["hosts"]] == [5]  # the CDN's host now


def test_backup_publishes_what_is_new_and_its_json_says_so(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, _ = remotes
    configure(site, None, extra="thumbnails = false\n")
    code, out, err = run(capsys, "backup", "--json", "-", "--site", str(site))
    assert code == 0, err
    document = json.loads(out)
    assert document["publish"]["summary"]["uploaded"] == 5
    assert f"published: {ORIGINALS[0]}" in err
    assert uploaded_paths(s3) == {path: 1 for path in ORIGINALS}
    code, out, err = run(capsys, "report", "--site", str(site))
    assert "published" in out.splitlines()[out.splitlines().index("Hosts:") + 1]


def test_a_backup_stopped_while_it_publishes_exits_as_stopped(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review finding: the stop came during the upload, after a good fetch, and
    the run exited 0; a scheduler must see 130 (143 for SIGTERM)."""
    marker = tmp_path / "stopped-once"
    wrapper = tmp_path / "rclone-then-ctrl-c"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e "{marker}" ]; then touch "{marker}"; kill -INT $PPID; sleep 5; fi\n'
        f'exec "{rclone_binary()}" "$@"\n'
    )
    wrapper.chmod(0o755)
    extra = f'rclone = "{wrapper}"\nthumbnails = false\n'
    configure(site, None, remote=str(tmp_path / "bucket"), extra=extra)
    code, out, err = run(capsys, "backup", "--json", str(tmp_path / "b.json"), "--site", str(site))
    assert marker.exists() and "interrupted" in out + err
    assert code == 130
    assert json.loads((tmp_path / "b.json").read_text())["exit_code"] == 130


def test_report_without_a_remote_has_no_published_column(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "report", "--site", str(site))[1]
    assert "published" not in out


def test_a_missing_rclone_names_the_three_ways(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(site, None)
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    monkeypatch.setattr(rclone.shutil, "which", lambda name: None)

    def no_package(name: str) -> object:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", no_package)
    code, _, err = run(capsys, "publish", "--site", str(site))
    assert code == 2
    assert "publish.rclone" in err and "PATH" in err and "gallery-mirror[publish]" in err


def test_publish_rclone_that_is_not_a_program_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"publish\.rclone"):
        rclone.find_rclone(str(tmp_path / "nothing"))


def test_publish_needs_a_remote(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "publish", "--site", str(site))
    assert code == 2 and "publish.remote" in err


def test_an_aws_ca_bundle_pointing_nowhere_is_left_out(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert "AWS_CA_BUNDLE" not in rclone.environment({"AWS_CA_BUNDLE": str(tmp_path / "no")})
    assert rclone.environment({"AWS_CA_BUNDLE": str(bundle)})["AWS_CA_BUNDLE"] == str(bundle)


def test_a_file_rclone_skips_without_a_word_is_a_failure(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"a")
    runner = rclone.Rclone(rclone_binary())
    outcomes, fatal = runner.copy(source, str(tmp_path / "dest"), ["a.jpg", "gone.jpg"])
    assert fatal is None
    assert [(o.path, o.fate) for o in outcomes] == [("a.jpg", "uploaded"), ("gone.jpg", "failed")]
    assert outcomes[1].reason == "rclone skipped it without a word"


def test_an_image_whose_thumbnail_is_not_published_is_left_alone(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, _, cdn = remotes
    configure(site, cdn, extra='extra_args = ["--retries", "1", "--low-level-retries", "1"]\n')
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    (s3.storage / BUCKET / "gallery" / THUMBS[4] / "x").mkdir(parents=True)
    code, out, _ = run(capsys, "publish", "--site", str(site))
    assert code == 1 and f"failed: {THUMBS[4]}: " in out
    code, out, _ = run(capsys, "rewrite", "--to", "cdn", "--site", str(site))
    assert f"not published (its thumbnail {THUMBS[4]}) (1)" in out
    post = (site / "source/_posts/deepseek-post.md").read_text()
    assert f"{cdn.base}/{BUCKET}/gallery/{ORIGINALS[4]}" not in post
    assert f"{cdn.base}/{BUCKET}/gallery/{ORIGINALS[3]}" in post


def test_a_thumbnail_remade_since_its_upload_counts_as_not_published(
    site: Path, remotes: tuple[RcloneServer, RcloneServer, Cdn], capsys: pytest.CaptureFixture[str]
) -> None:
    """Its path is on the remote, its bytes are not: the CDN would serve the old one."""
    _, _, cdn = remotes
    configure(site, cdn)
    assert run(capsys, "-q", "fetch", "--site", str(site))[0] == 0
    assert run(capsys, "-q", "publish", "--site", str(site))[0] == 0
    toml = site / "gallery-mirror.toml"
    toml.write_text(toml.read_text() + "[thumbnails]\nquality = 40\n")  # new bytes, same paths
    assert run(capsys, "-q", "thumbs", "--site", str(site))[0] == 0
    code, out, _ = run(capsys, "rewrite", "--to", "cdn", "--site", str(site))
    assert f"not published (its thumbnail {THUMBS[0]})" in out
    assert (
        f"{cdn.base}/{BUCKET}/gallery/" not in (site / "source/_posts/deepseek-post.md").read_text()
    )
    assert run(capsys, "-q", "publish", "--site", str(site))[0] == 0  # uploaded again
    code, out, _ = run(capsys, "rewrite", "--to", "cdn", "--site", str(site))
    assert code == 0 and "not published" not in out


def test_the_cdn_example_publishes_rewrites_and_every_new_url_answers() -> None:
    rclone_binary()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "examples" / "demo.py"), "cdn"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "would upload 0 files (0.0 MB; 0 replaced) and the 12 images fetched first" in done.stdout
    )
    assert "publish: uploaded 24 files" in done.stdout
    assert "GET each of the 12 rewritten URLs" in done.stdout
    assert done.stdout.count(": 200 image/") == 12 and "FAILED" not in done.stdout


def test_stopping_a_copy_stops_rclone_rather_than_waiting_for_the_upload(tmp_path: Path) -> None:
    """Ctrl-C reaches rclone itself, SIGTERM only us: a run stopped either way must
    not sit until rclone has sent a large file."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.jpg").write_bytes(b"a")
    (source / "b.jpg").write_bytes(os.urandom(2_000_000))
    runner = rclone.Rclone(rclone_binary(), extra_args=["--bwlimit", "100k", "--transfers", "1"])

    def stop(outcome: rclone.CopyOutcome) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.copy(source, str(tmp_path / "dest"), ["a.jpg", "b.jpg"], on_file=stop)
    sent = sum(f.stat().st_size for f in (tmp_path / "dest").iterdir() if f.name != "a.jpg")
    assert sent < 2_000_000  # b.jpg's partial file: rclone was stopped half-way
