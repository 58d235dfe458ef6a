"""``publish``: put the mirror on the CDN's store, and record only what is really there.

The files are the mirrored originals (one per path: under the ``hash`` layout
several URLs share one) and, unless ``publish.thumbnails = false``, their
thumbnails. A file goes up when the remote has no confirmed copy of its
current bytes: never published, or replaced in the mirror since (a refreshed
image, a rebuilt thumbnail); those are listed, and ``publish.purge_command``
is run with their public URLs so the CDN's cache forgets the old bytes.

The upload is rclone's (:mod:`mirror.net.rclone`), one ``rclone copy`` per
Content-Type (the header comes from the stored extension, which the fetch
set from the sniffed format). A file is recorded as published only after
``rclone lsjson --hash`` of the remote lists it with its size and, where the
remote computes one, the hash of the bytes read here. An interrupted run
resumes: what is already on the remote with the same bytes is skipped by
rclone (``--checksum``) and confirmed, never uploaded twice.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from mirror.config import Config
from mirror.errors import ConfigError, MirrorError
from mirror.formats import mime_of
from mirror.keep import published, thumbrows
from mirror.keep.published import PublishedRow
from mirror.keep.site import Site
from mirror.keep.store import inside
from mirror.net.rclone import CopyOutcome, Rclone, RemoteFile, find_rclone
from mirror.urls import mirror_url

# The hashes a remote may list that are computed here too, in order of preference.
_HASHES: Final = ("md5", "sha1", "sha256")


@dataclass(frozen=True, slots=True)
class Upload:
    """A file to upload (a dry run's plan) or uploaded and confirmed."""

    path: str  # relative to mirror.dir
    size: int
    replaced: bool  # the remote had other bytes under this path
    thumbnail: bool


@dataclass(frozen=True, slots=True)
class PublishFailure:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class PublishResult:
    remote: str
    dry_run: bool
    uploaded: tuple[Upload, ...]  # a dry run: what would be
    already: int  # files published before with their current bytes
    failed: tuple[PublishFailure, ...]
    purged: tuple[str, ...]  # the public URLs handed to publish.purge_command
    purge_problem: str | None
    interrupted: bool
    # migrate --dry-run: images a fetch brings first, uploaded too (sizes unknown until then)
    after_fetch: int = 0

    @property
    def bytes(self) -> int:
        return sum(u.size for u in self.uploaded)


@dataclass(frozen=True, slots=True)
class _Candidate:
    path: str
    size: int
    sha256: str  # what the state recorded (an original) or what was read (a thumbnail)
    replaced: bool
    thumbnail: bool


def remote_of(config: Config) -> str:
    """``publish.remote``; a ConfigError saying what to set when it is empty."""
    if not config.publish.remote:
        raise ConfigError(
            "publish needs publish.remote: the rclone remote path to upload the mirror to,"
            ' e.g. "r2:blog-img/gallery" (README: Publishing to a CDN)'
        )
    return config.publish.remote


def plan(site: Site) -> tuple[list[_Candidate], int, list[PublishFailure]]:
    """The files to upload, how many are published already, and the files that cannot be."""
    config = site.config
    state = site.read_state
    done = published.rows(state, config.publish.remote)
    files: dict[str, tuple[int, str | None, bool]] = {}  # path -> size, sha256, thumbnail
    for record in site.records().values():
        if record.status == "mirrored" and record.path and record.size is not None:
            files.setdefault(record.path, (record.size, record.sha256, False))
    if config.publish.thumbnails and state is not None:
        folder = PurePosixPath(config.thumbnails.dir)
        for thumbs in thumbrows.rows(state):
            if thumbs.status == "made":
                for name in thumbs.files:
                    files.setdefault((folder / name).as_posix(), (0, None, True))
    todo: list[_Candidate] = []
    failed: list[PublishFailure] = []
    already = 0
    for path, (size, sha256, thumbnail) in sorted(files.items()):
        if sha256 is None:  # a thumbnail: its bytes are known once read
            digest = _digests(config.mirror_dir, path)
            if isinstance(digest, str):
                failed.append(PublishFailure(path, digest))
                continue
            size, sha256 = digest[0], digest[1]["sha256"]
        row = done.get(path)
        if row is not None and row.sha256 == sha256:
            already += 1
        else:
            todo.append(_Candidate(path, size, sha256, row is not None, thumbnail))
    return todo, already, failed


def publish(
    site: Site,
    *,
    dry_run: bool = False,
    on_file: Callable[[CopyOutcome], None] | None = None,
) -> PublishResult:
    """Upload what the remote lacks, confirm it there, record it (see the module)."""
    config = site.config
    remote = remote_of(config)
    todo, already, failed = plan(site)
    if dry_run or not todo:
        uploads = tuple(Upload(c.path, c.size, c.replaced, c.thumbnail) for c in todo)
        return PublishResult(remote, dry_run, uploads, already, tuple(failed), (), None, False)
    runner = Rclone(find_rclone(config.publish.rclone), extra_args=config.publish.extra_args)
    ready: dict[str, tuple[_Candidate, dict[str, str]]] = {}
    for candidate in todo:  # the bytes uploaded are the bytes recorded
        digest = _digests(config.mirror_dir, candidate.path)
        if isinstance(digest, str):
            failed.append(PublishFailure(candidate.path, digest))
        elif digest[1]["sha256"] != candidate.sha256:
            reason = f"file changed since it was fetched (sha256 differs): {candidate.path}"
            failed.append(PublishFailure(candidate.path, reason))
        else:
            ready[candidate.path] = (candidate, digest[1])
    sent: list[str] = []
    interrupted = False
    try:
        for headers, paths in _batches(config, list(ready)):
            outcomes, fatal = runner.copy(
                config.mirror_dir, remote, paths, headers=headers, on_file=on_file
            )
            if fatal and not sent and all(o.fate == "failed" for o in outcomes):
                reason = runner.probe(remote) or fatal
                raise MirrorError(f"publish.remote {remote!r}: rclone cannot use it: {reason}")
            sent.extend(o.path for o in outcomes if o.fate != "failed")
            failed.extend(PublishFailure(o.path, o.reason or "") for o in outcomes if o.reason)
    except KeyboardInterrupt:
        # Nothing of this run is recorded; the next one finds on the remote
        # what was uploaded (rclone --checksum skips it) and confirms it then.
        interrupted = True
    confirmed: list[PublishedRow] = []
    if sent and not interrupted:
        listed, problem = runner.listing(remote, sent)
        for path in sent:
            candidate, hashes = ready[path]
            outcome = _confirm(candidate, hashes, listed.get(path), problem)
            if isinstance(outcome, str):
                failed.append(PublishFailure(path, outcome))
            else:
                confirmed.append(outcome)
        published.record(site.state, remote, confirmed)
    uploads = tuple(
        Upload(row.path, row.size, ready[row.path][0].replaced, ready[row.path][0].thumbnail)
        for row in confirmed
    )
    purged, purge_problem = _purge(config, [u.path for u in uploads if u.replaced])
    failed.sort(key=lambda f: f.path)
    return PublishResult(
        remote, False, uploads, already, tuple(failed), purged, purge_problem, interrupted
    )


def _batches(config: Config, paths: list[str]) -> list[tuple[list[str], list[str]]]:
    """One rclone copy per Content-Type: its headers and its paths."""
    by_type: dict[str | None, list[str]] = {}
    for path in paths:
        by_type.setdefault(mime_of(PurePosixPath(path).suffix), []).append(path)
    common = [f"Cache-Control: {config.publish.cache_control}"] * bool(config.publish.cache_control)
    return [
        ([*common, *([f"Content-Type: {kind}"] if kind else [])], group)
        for kind, group in sorted(by_type.items(), key=lambda kv: kv[0] or "")
    ]


def _confirm(
    candidate: _Candidate, hashes: dict[str, str], remote: RemoteFile | None, problem: str | None
) -> PublishedRow | str:
    """The row to record when the remote's listing shows these bytes, else why not."""
    if remote is None:
        why = f": {problem}" if problem else ""
        return f"uploaded, but the remote does not list it (rclone lsjson --hash){why}"
    if remote.size != candidate.size:
        return f"the remote holds {remote.size} bytes, the file has {candidate.size}"
    for name in _HASHES:
        if name in remote.hashes:
            if remote.hashes[name].lower() != hashes[name]:
                return f"the remote's {name} differs from the file's: {remote.hashes[name]}"
            return PublishedRow(
                candidate.path, candidate.size, candidate.sha256, f"{name}:{hashes[name]}"
            )
    # A remote without any of these hashes (an S3 multipart upload's ETag): the size it is.
    return PublishedRow(candidate.path, candidate.size, candidate.sha256, None)


def _purge(config: Config, paths: Sequence[str]) -> tuple[tuple[str, ...], str | None]:
    """Run publish.purge_command with the public URLs of ``paths``; what went wrong, if anything."""
    command = config.publish.purge_command
    if not command or not paths:
        return (), None
    base = config.rewrite.cdn_base
    if not base:
        return (), "publish.purge_command not run: rewrite.cdn_base is not set, so no public URL"
    urls = tuple(mirror_url(base.rstrip("/"), path) for path in paths)
    try:
        done = subprocess.run(
            [*shlex.split(command), *urls], stdin=subprocess.DEVNULL, check=False,
            capture_output=True, text=True, errors="replace",
        )  # fmt: skip
    except (OSError, ValueError) as exc:
        return urls, f"publish.purge_command could not run: {exc}"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1]
        return urls, f"publish.purge_command exited {done.returncode}: {said}".rstrip(": ")
    return urls, None


def _digests(root: Path, path: str) -> tuple[int, dict[str, str]] | str:
    """The size and the hashes of a mirror file (one read), or why it cannot be read."""
    try:
        located = inside(root, PurePosixPath(path))
    except ValueError:
        return f"file path outside mirror.dir: {path}"
    hashers = {name: hashlib.new(name) for name in _HASHES}
    size = 0
    try:
        with located.open("rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
    except FileNotFoundError:
        return f"file missing: {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return size, {name: hasher.hexdigest() for name, hasher in hashers.items()}
