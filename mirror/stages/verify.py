"""The verify stage: is the mirror still what the state says, and do rewritten posts resolve?

Two checks, reading only (the CLI opens the site read-only: no lock is taken):

* every ``mirrored`` URL's file is re-hashed against the state: a missing or
  changed file is a problem;
* every reference that points at the mirror (under ``rewrite.local_prefix``
  or ``rewrite.cdn_base``) must resolve: a site path to an existing file
  under ``mirror.dir`` (the prefix stripped, percent-encoding decoded), a CDN
  URL to a path the state records as mirrored. A site path must also resolve
  on the built site's view (:mod:`mirror.scanner.layout`): the generator's
  served folder + the path less its base path must hold the file, or the
  built page's image is a 404 whatever mirror.dir holds.

URLs whose fetch failed, or that are not fetched yet, are no problem here:
verify checks what was mirrored and rewritten. A post that cannot be read
is: its references, rewritten or not, went unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from mirror.config import Config
from mirror.keep.mirrorfiles import MirrorFiles
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.state import UrlRecord
from mirror.keep.store import inside
from mirror.models import ImageRef, ScanResult
from mirror.scanner.layout import detect

ProblemKind = Literal["file", "reference", "post"]


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    kind: ProblemKind  # a mirrored file, a rewritten reference in a post, an unreadable post
    where: str  # the file's path relative to mirror.dir, post:line, or the post
    detail: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    scan: ScanResult
    records: dict[str, UrlRecord]  # every URL the state knows
    files: int  # mirrored files checked
    rewritten: tuple[ImageRef, ...]  # references pointing at the mirror, checked
    problems: tuple[VerifyProblem, ...]


def verify(site: Site, scan: ScanResult) -> VerifyResult:
    config = site.config
    records = site.records()
    files = MirrorFiles(config.mirror_dir)
    problems = []
    mirrored = [r for r in records.values() if r.status == "mirrored"]
    for record in mirrored:
        if problem := files.problem(record):
            problems.append(VerifyProblem("file", record.path or "", problem, record.url))
    mirrored_paths = {r.path for r in mirrored}
    resolver = _Resolver(config, mirrored_paths)
    rewritten = []
    for post in scan.posts:
        for ref in post.refs:
            checked = resolver.resolve(ref)
            if checked is None:
                continue
            rewritten.append(ref)
            if checked.problem is not None:
                where = f"{ref.post}:{ref.line}"
                problems.append(VerifyProblem("reference", where, checked.problem, ref.raw))
    for unreadable in scan.unreadable:
        for reason in unreadable.problems:
            problems.append(VerifyProblem("post", unreadable.post, f"unreadable: {reason}"))
    return VerifyResult(scan, records, len(mirrored), tuple(rewritten), tuple(problems))


@dataclass(frozen=True, slots=True)
class _Checked:
    """A reference that points at the mirror, and what is wrong with it, if anything."""

    problem: str | None


class _Resolver:
    """Whether a reference points at the mirror, and if so whether it resolves."""

    def __init__(self, config: Config, mirrored_paths: set[str | None]) -> None:
        self._root = config.mirror_dir
        self._mirrored = mirrored_paths
        self._links = OwnLinks(config)
        self._site_root = config.site.root
        self._layout = detect(config.site.root)

    def resolve(self, ref: ImageRef) -> _Checked | None:
        """None when ``ref`` does not point at the mirror."""
        link = self._links.of(ref.url)
        if link is None:
            return None
        problem = self._problem(link.path, link.local)
        if problem is None and link.local:
            problem = self._served(ref.url)
        return _Checked(problem)

    def _served(self, url: str) -> str | None:
        """What is wrong with ``url`` on the built site, if anything: the file the
        generator serves at that path must be there (a full URL is some other
        server's)."""
        if url.startswith(("http://", "https://")):
            return None
        url_path = self._layout.expand(url)
        name = self._layout.name
        found = self._layout.site_file(url_path)
        if found is None:
            return (
                f"the built site will look for {url_path}, outside its base path"
                f" {self._layout.base_path} ({self._layout.base_from})"
            )
        if self._layout.url_path(found) is None:
            return f"the built site will look for {url_path} at {found}, not served by {name}"
        if not (self._site_root / found).is_file():
            return f"the built site will look for {url_path} at {found}: no such file"
        return None

    def _problem(self, path: str, on_disk: bool) -> str | None:
        if not on_disk:
            return None if path in self._mirrored else f"no mirrored file {path} in the state"
        try:
            target = inside(self._root, PurePosixPath(path))
        except ValueError:
            return f"{path} is not a file path inside mirror.dir"
        return None if target.is_file() else f"no file {path} under mirror.dir"
