"""The verify stage: is the mirror still what the state says, and do rewritten posts resolve?

Two checks, reading only (the CLI opens the site read-only: no lock is taken):

* every ``mirrored`` URL's file is re-hashed against the state: a missing or
  changed file is a problem;
* every reference that points at the mirror (under ``rewrite.local_prefix``
  or ``rewrite.cdn_base``) must resolve: a site path to an existing file
  under ``mirror.dir`` (the prefix stripped, percent-encoding decoded), a CDN
  URL to a path the state records as mirrored.

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

    def resolve(self, ref: ImageRef) -> _Checked | None:
        """None when ``ref`` does not point at the mirror."""
        link = self._links.of(ref.url)
        return None if link is None else _Checked(self._problem(link.path, link.local))

    def _problem(self, path: str, on_disk: bool) -> str | None:
        if not on_disk:
            return None if path in self._mirrored else f"no mirrored file {path} in the state"
        try:
            target = inside(self._root, PurePosixPath(path))
        except ValueError:
            return f"{path} is not a file path inside mirror.dir"
        return None if target.is_file() else f"no file {path} under mirror.dir"
