"""The rewrite stage: point posts at the mirror (``revert`` points them back).

``rewrite`` decides per reference whether it may change (its URL mirrored,
the file there with the recorded hash, its host selected, ...), edits each
post by span (:mod:`mirror.scanner.edit`), journals the edits and replaces the
post atomically (:mod:`mirror.stages.revert` undoes journaled runs). A dry
run is the same traversal that writes nothing: no post, no state, no lock file.

Each post is read again before it is edited, and its edits always match
the file as it is: while every span of the site scan still holds its text
the scan's references are used (a rescan is a third of a large post's work),
and the read-back check (:func:`mirror.scanner.edit.check_rewritten`, a scan of
the edited bytes) confirms nothing else in the post changed; a post changed
since the site scan is rescanned and planned afresh instead of guessed at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import quote

from mirror.config import Config
from mirror.errors import ConfigError
from mirror.keep import journal, published, thumbrows
from mirror.keep.mirrorfiles import MirrorFiles, bundle_name, copy_into_bundle, sha256_file
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.postfile import Unreadable, read_post, write_post
from mirror.keep.site import Site
from mirror.keep.state import State, UrlRecord
from mirror.keep.store import inside
from mirror.models import Edit, ImageRef, PostScan, ScanResult
from mirror.scanner.edit import (
    apply_edits,
    base_problem,
    check_rewritten,
    edit_for,
    fragment_of,
)
from mirror.scanner.layout import detect
from mirror.scanner.post import scan_post
from mirror.urls import host_of, mirror_url

Target = Literal["local", "cdn"]

ALREADY = "already rewritten"
HOST_NOT_SELECTED = "host not selected (rewrite.hosts)"
NOT_PUBLISHED = "not published"
# The Hexo asset_img tag looks its argument up among the post's asset files;
# a site path would never match one, so the reference is left to the user.
ASSET_IMG = "{% asset_img %} takes a post asset name, not a URL: change it by hand"


@dataclass(frozen=True, slots=True)
class LeftAlone:
    ref: ImageRef
    reason: str


@dataclass(frozen=True, slots=True)
class PostFailure:
    post: str
    reason: str


@dataclass(frozen=True, slots=True)
class PostChange:
    """One post's edit: written, or under a dry run what would be."""

    post: str
    before: bytes
    after: bytes
    edits: tuple[Edit, ...]
    rescanned: bool  # the post had changed since the site scan


@dataclass(frozen=True, slots=True)
class RewriteResult:
    target: Target
    base: str
    dry_run: bool
    changed: tuple[PostChange, ...]
    left_alone: tuple[LeftAlone, ...]
    failed: tuple[PostFailure, ...]
    run_id: int | None  # the journal's run, None when nothing was written
    interrupted: bool  # Ctrl-C: ``changed`` are the posts written before it

    @property
    def rewritten(self) -> int:
        return sum(len(c.edits) for c in self.changed)


def target_base(config: Config, to: Target | None) -> tuple[Target, str]:
    """The target and the URL base new URLs start with; ConfigError when unusable."""
    target: Target = to or config.rewrite.to
    key = "rewrite.local_prefix" if target == "local" else "rewrite.cdn_base"
    base = config.rewrite.local_prefix if target == "local" else config.rewrite.cdn_base
    if target == "cdn" and not base:
        raise ConfigError(f"--to cdn needs {key}: set it to the URL the mirror dir is served at")
    if problem := base_problem(base):
        raise ConfigError(f"invalid value for '{key}' ({base!r}): {problem}")
    return target, base.rstrip("/")


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What a URL alone decides for every reference to it: the new URL (and the
    record it comes from), or why the references stay as they are."""

    url: str = ""
    record: UrlRecord | None = None
    reason: str | None = None


class _Decider:
    """Per reference: the new URL, or why it stays as it is."""

    def __init__(
        self,
        site: Site,
        target: Target,
        base: str,
        scan: ScanResult,
        assume: Mapping[str, str],
        *,
        check_target: bool = False,
        assume_published: frozenset[str] = frozenset(),
    ) -> None:
        config = site.config
        self._config, self._target, self._base, self._site = config, target, base, site
        self._assume = assume
        # --to cdn: what publish confirmed on publish.remote, path -> sha256; without
        # a remote, only --check-target's probe can show a file is there.
        self._published = {
            path: row.sha256
            for path, row in published.rows(site.read_state, config.publish.remote).items()
        }
        self._assume_published = assume_published
        self._probe_decides = check_target and not config.publish.remote
        self._records: dict[str, UrlRecord] = site.records(scan.urls)
        self._files = MirrorFiles(config.mirror_dir)
        self._ours = OwnLinks(config)  # what an earlier rewrite wrote
        self.unanswered: dict[str, str] = {}  # new URL -> why --check-target refused it
        self._new: dict[str, str] = {}  # mirror path -> its URL (quoting it is half of decide)
        # mirror.bundles: a post's own folder, where its images are copied (None: no bundles)
        self._layout = detect(config.site.root) if config.mirror.bundles else None
        self.copies: dict[ImageRef, tuple[Path, Path]] = {}  # mirror file -> bundle file
        self._verdicts: dict[str, _Verdict] = {}  # by URL

    def _record(self, url: str) -> UrlRecord | None:
        if url not in self._records:  # a URL added to the post since the scan
            self._records.update(self._site.records([url]))
        return self._records.get(url)

    def _url(self, path: str) -> str:
        if path not in self._new:
            self._new[path] = mirror_url(self._base, path)
        return self._new[path]

    def decide(self, ref: ImageRef) -> str | LeftAlone:
        if self._ours.of(ref.url) is not None:
            return LeftAlone(ref, ALREADY)
        if ref.local:
            return LeftAlone(ref, "site path (never rewritten)")
        if ref.url not in self._verdicts:  # a post repeats an image (a link to itself, ...)
            self._verdicts[ref.url] = self._verdict(ref.url)
        verdict = self._verdicts[ref.url]
        if verdict.reason == HOST_NOT_SELECTED:
            return LeftAlone(ref, HOST_NOT_SELECTED)
        if ref.context == "{% asset_img %}":
            return LeftAlone(ref, ASSET_IMG)
        if verdict.reason is not None:
            return LeftAlone(ref, verdict.reason)
        url = verdict.url
        if verdict.record is not None and (in_bundle := self._into_bundle(ref, verdict.record)):
            return in_bundle
        if url in self.unanswered:
            return LeftAlone(ref, f"new URL {url} {self.unanswered[url]} (--check-target)")
        return url + fragment_of(ref)  # "#pic_center" centres the image (Typora, CSDN)

    def _verdict(self, url: str) -> _Verdict:
        """What the reference's URL alone decides: its new URL, or why it stays."""
        hosts = self._config.rewrite.hosts
        if hosts and host_of(url) not in hosts:
            return _Verdict(reason=HOST_NOT_SELECTED)
        record = self._record(url)
        if url in self._assume:  # a dry run's prediction for an image not fetched yet
            return _Verdict(self._url(self._assume[url]))
        if record is None or record.status == "pending":
            return _Verdict(reason="not fetched yet")
        if record.status == "failed":
            return _Verdict(reason=f"fetch failed: {record.last_error or 'unknown error'}")
        if problem := self._files.problem(record):
            return _Verdict(reason=problem)
        if self._target == "cdn" and (why := self._unpublished(record)):
            return _Verdict(reason=why)
        return _Verdict(self._url(record.path or ""), record)

    def _into_bundle(self, ref: ImageRef, record: UrlRecord) -> str | None:
        """``mirror.bundles``: the relative URL of the copy in the post's own folder,
        or None where the reference stays on the mirror (no bundle; front matter,
        which themes resolve each their own way; a tag, which needs a root path)."""
        if self._layout is None or ref.kind in ("front_matter", "tag") or not record.sha256:
            return None
        folder = self._layout.bundle_of(ref.post)
        if folder is None:
            return None
        bundle = self._config.site.root / folder
        path = PurePosixPath(record.path or "")
        name = bundle_name(bundle, path.name, record.sha256)
        self.copies[ref] = (inside(self._config.mirror_dir, path), bundle / name)
        return quote(name) + fragment_of(ref)

    def _unpublished(self, record: UrlRecord) -> str | None:
        """Why ``record``'s file (and, when publish.thumbnails, its thumbnails) is not
        known to be behind cdn_base, or None."""
        if self._probe_decides:
            return None
        if not self._config.publish.remote:
            return (
                f"{NOT_PUBLISHED} (publish.remote is not set;"
                " --check-target probes a CDN filled by hand)"
            )
        path = record.path or ""
        if path in self._assume_published:  # a dry run of migrate, which publishes first
            return None
        if self._published.get(path) != record.sha256:
            return NOT_PUBLISHED
        if self._config.publish.thumbnails and self._site.read_state is not None:
            folder = self._config.thumbnails.dir.rstrip("/")
            for name in thumbrows.files_of(self._site.read_state, path):
                # The state keeps no thumbnail's hash: the file is read (they are
                # small), so that one remade since its upload counts as not there.
                key = f"{folder}/{name}"
                local = sha256_file(self._config.mirror_dir / key)
                if local is None or self._published.get(key) != local:
                    return f"{NOT_PUBLISHED} (its thumbnail {key})"
        return None


def rewrite(
    site: Site,
    scan: ScanResult,
    *,
    to: Target | None = None,
    dry_run: bool = False,
    check_target: bool = False,
    assume: Mapping[str, str] | None = None,
    assume_published: frozenset[str] = frozenset(),
) -> RewriteResult:
    """Point the references of ``scan`` at their mirrored copies.

    ``assume`` (dry runs only) maps URLs not mirrored yet to the path a fetch
    would give them, so that ``migrate --dry-run`` can show the whole diff;
    ``assume_published``, the paths a publish would upload first.
    """
    if (assume or assume_published) and not dry_run:
        raise ValueError("assumed paths are for dry runs only: nothing is written from them")
    config = site.config
    target, base = target_base(config, to)
    if check_target and not base.startswith(("http://", "https://")):
        raise ConfigError(
            f"--check-target probes the new URLs over HTTP, but they start with {base!r}:"
            " use it with --to cdn (rewrite.cdn_base), or a full URL as rewrite.local_prefix"
        )
    keys = frozenset(k.lower() for k in config.site.front_matter_keys)
    decider = _Decider(
        site, target, base, scan, assume or {}, check_target=check_target,
        assume_published=assume_published,
    )  # fmt: skip
    # Decided for every reference before any post is written: a config
    # the tags cannot take stops the run here, with nothing changed.
    planned = {ref: decider.decide(ref) for post in scan.posts for ref in post.refs}
    if check_target:
        new_urls = {u for u in planned.values() if isinstance(u, str)}
        decider.unanswered.update(probe(new_urls, config))
        planned = {ref: decider.decide(ref) for ref in planned}  # with the answers
    writer = None if dry_run else _Writer(site.state, target, base)
    changed: list[PostChange] = []
    left: list[LeftAlone] = []
    failed: list[PostFailure] = []
    interrupted = False
    try:
        for post in scan.posts:
            if not any(isinstance(planned[r], str) for r in post.refs):
                left.extend(d for r in post.refs if isinstance(d := planned[r], LeftAlone))
                continue
            outcome, post_left = _rewrite_post(config, post, decider, planned, keys, writer)
            left.extend(post_left)
            if isinstance(outcome, PostChange):
                changed.append(outcome)
            elif outcome is not None:
                failed.append(outcome)
    except KeyboardInterrupt:
        # The posts written so far stay written and journaled: the user
        # is told how many, and that revert undoes them. A post caught in
        # its own write is journaled first, so revert handles it either way.
        interrupted = True
    run_id = None if writer is None else writer.finish()
    return RewriteResult(
        target, base, dry_run, tuple(changed), tuple(left), tuple(failed), run_id, interrupted
    )


def _rewrite_post(
    config: Config,
    scanned: PostScan,
    decider: _Decider,
    planned: Mapping[ImageRef, str | LeftAlone],
    keys: frozenset[str],
    writer: _Writer | None,
) -> tuple[PostChange | PostFailure | None, list[LeftAlone]]:
    path = config.site.root / scanned.post
    before = read_post(path)
    if isinstance(before, Unreadable):
        return PostFailure(scanned.post, before.reason), []
    for current in _views(before, scanned, keys):
        decisions = [(r, planned[r] if r in planned else decider.decide(r)) for r in current.refs]
        left = [d for _, d in decisions if isinstance(d, LeftAlone)]
        edits = tuple(edit_for(before, ref, d) for ref, d in decisions if isinstance(d, str))
        if not edits:  # changed since the scan: what is left is listed with its reasons
            return None, left
        after = apply_edits(before, edits)  # each span holds its text in these bytes
        problem = check_rewritten(current, after, edits, keys)
        if problem is None:
            break
    if problem is not None:
        return PostFailure(scanned.post, problem), left
    change = PostChange(scanned.post, before, after, edits, current.refs != scanned.refs)
    if writer is not None:
        for ref, _ in decisions:  # mirror.bundles: the images first, then the post
            if ref in decider.copies:
                copy_into_bundle(*decider.copies[ref])
    if writer is not None and (problem := writer.write(path, change)):
        return PostFailure(scanned.post, problem), left
    return change, left


def _views(data: bytes, scanned: PostScan, keys: frozenset[str]) -> Iterator[PostScan]:
    """The scans of a post to plan its edits on, the next one only if the edit
    planned on the last does not read back: the site scan's while every span
    still holds its text, then a fresh scan of ``data`` if that differs."""
    holds = all(data[r.start : r.end] == r.raw.encode("utf-8") for r in scanned.refs)
    if holds:
        yield scanned
    fresh = scan_post(data, scanned.post, keys)
    if not holds or fresh != scanned:
        yield fresh


class _Writer:
    """Journal a post's edits, then replace it; the journal's run is made on first use."""

    def __init__(self, state: State, target: Target, base: str) -> None:
        self._state, self._target, self._base = state, target, base
        self._run: int | None = None

    def write(self, path: Path, change: PostChange) -> str | None:
        if self._run is None:
            self._run = journal.begin_run(self._state, target=self._target, base=self._base)
        post_id = journal.record_post(
            self._state, self._run, change.post, original=change.before, result=change.after,
            edits=change.edits,
        )  # fmt: skip
        problem = write_post(path, change.before, change.after)
        if problem is not None:
            journal.forget_post(self._state, post_id)
        return problem

    def finish(self) -> int | None:
        if self._run is not None and journal.forget_run_if_empty(self._state, self._run):
            return None  # every write failed: nothing to revert
        return self._run


def probe(urls: set[str], config: Config) -> Mapping[str, str]:
    """Each URL that does not answer with an image, with what it answered.

    Asked as a fetch would ask (limits, retries, headers, the private-address
    guard): a CDN that wants a Referer is asked with it."""
    # Imported here: the network stack (aiohttp) would add a third of a second
    # to the start of every rewrite and revert, and only --check-target asks.
    from mirror.stages import download

    probes = download.probe_all(config, sorted(urls))
    return {
        url: f"answered {probe.error}" if probe.status is not None else str(probe.error)
        for url, probe in probes.items()
        if not probe.reachable
    }
