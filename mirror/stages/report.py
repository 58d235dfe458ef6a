"""The report: what migrate would fetch and rewrite, and what is broken.

It is ``migrate --dry-run``'s traversal (scan, the state read-only, the fetch
plan, the rewrite's dry run with the paths a fetch would give) handed to
other sinks, so the two cannot drift apart. ``check`` adds one network step:
every URL the fetch would download is probed (:meth:`Downloader.probe`) and
turns ``ok`` or ``broken``; without it no request is made.

Nothing is written here: the state is opened read-only (or not at all before
the first fetch), and the renderers write only the files they are given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from mirror.config import Config
from mirror.errors import ConfigError
from mirror.keep import published as publishedrows
from mirror.keep.site import Site
from mirror.keep.state import UrlRecord
from mirror.keep.store import inside
from mirror.models import ImageRef, Probe, ScanResult
from mirror.pixels.spec import ThumbSpec, thumb_path
from mirror.stages import migrate as migrating
from mirror.stages import rewrite as rewriting
from mirror.stages import thumbs as thumbnailing
from mirror.stages.download import probe_all
from mirror.stages.fetch import next_attempt
from mirror.stages.migrate import FetchPlan
from mirror.stages.scan import summary_counts
from mirror.urls import host_of

UrlStatus = Literal["mirrored", "pending", "failed", "ok", "broken"]
STATUSES: tuple[UrlStatus, ...] = ("mirrored", "pending", "failed", "ok", "broken")
BAD: frozenset[UrlStatus] = frozenset({"failed", "broken"})


@dataclass(frozen=True, slots=True)
class UrlReport:
    """One distinct URL: where it stands, and every reference that uses it."""

    url: str
    status: UrlStatus
    record: UrlRecord | None
    probe: Probe | None  # only with check, for a URL the fetch would download
    uses: tuple[ImageRef, ...]

    @property
    def host(self) -> str:
        return host_of(self.url)

    @property
    def error(self) -> str | None:
        """Why it is failed or broken: what the probe found and the recorded failure, both."""
        if self.status not in BAD:
            return None
        probe, record = self.probe, self.record
        recorded = record.last_error or "failed" if record and record.status == "failed" else None
        if probe is None or recorded is None:
            return (probe.error if probe is not None else None) or recorded
        if not probe.reachable:
            return f"{probe.error}; the last fetch failed too: {recorded}"
        answer = f"HTTP {probe.status}" if probe.status else "an answer"
        return f"{recorded}; a probe reaches it now ({answer}), but only a fetch checks the bytes"

    @property
    def next_try(self) -> datetime | None:
        """When ``backup`` tries a failed URL again (``fetch`` tries it on every run)."""
        if self.status != "failed" or self.record is None:
            return None
        return next_attempt(self.record)

    @property
    def size(self) -> int | None:
        """Bytes: of the mirrored file, else as the probe's answer said."""
        if self.status == "mirrored" and self.record is not None:
            return self.record.size
        return self.probe.size if self.probe is not None else None


@dataclass(frozen=True, slots=True)
class HostRow:
    host: str
    refs: int
    urls: int
    statuses: Mapping[UrlStatus, int]
    published: int  # mirrored URLs whose file publish.remote holds with its current bytes


@dataclass(frozen=True, slots=True)
class Report:
    scan: ScanResult
    records: Mapping[str, UrlRecord]
    urls: tuple[UrlReport, ...]  # in order of first appearance
    fetch: FetchPlan
    rewrite: rewriting.RewriteResult  # a dry run
    checked: bool
    mirror_dir: Path
    previews: Mapping[
        str, str
    ]  # mirrored URL -> file to show (thumbnail or original), in mirror.dir
    publish_remote: str  # publish.remote ("": not set)
    published: frozenset[str]  # mirrored URLs whose file is published with its current bytes

    @property
    def problems(self) -> tuple[UrlReport, ...]:
        return tuple(u for u in self.urls if u.status in BAD)

    @property
    def repaired(self) -> tuple[ImageRef, ...]:
        return tuple(r for r in self.scan.refs if r.repairs)

    @property
    def failed(self) -> bool:
        """Anything a CI job should stop on: a failed or broken image, an unreadable post."""
        return bool(self.problems or self.scan.unreadable or self.rewrite.failed)

    def hosts(self) -> list[HostRow]:
        """Per host, the most referenced first."""
        refs = Counter(host_of(r.url) for r in self.scan.refs)
        by_host: dict[str, Counter[UrlStatus]] = {}
        published: Counter[str] = Counter()
        for url in self.urls:
            by_host.setdefault(url.host, Counter())[url.status] += 1
            published[url.host] += url.url in self.published
        return [
            HostRow(host, refs[host], sum(s.values()), {k: s[k] for k in STATUSES}, published[host])
            for host, s in sorted(by_host.items(), key=lambda kv: (-refs[kv[0]], kv[0]))
        ]

    def counts(self) -> dict[str, int]:
        """The totals shared by every format (the JSON ``summary``)."""
        counts = summary_counts(self.scan, self.records)
        statuses = Counter(u.status for u in self.urls)
        counts.update({status: statuses[status] for status in STATUSES})
        counts["bytes_mirrored"] = sum(u.size or 0 for u in self.urls if u.status == "mirrored")
        counts["bytes_to_fetch"] = sum(u.size or 0 for u in self.urls if u.status == "ok")
        counts["rewrite_posts"] = len(self.rewrite.changed)
        counts["rewrite_refs"] = self.rewrite.rewritten
        counts["rewrite_failed"] = len(self.rewrite.failed)
        return counts


def report(
    site: Site, scan: ScanResult, *, check: bool = False, to: rewriting.Target | None = None
) -> Report:
    """Everything the report shows; with ``check``, the URLs to fetch are probed.

    One read of the state serves all of it (the session is read-only)."""
    config = site.config
    fetch, _, rewrite = migrating.dry_run(site, scan, to=to)
    records = site.scan_records(scan)
    probes = probe_all(config, fetch.todo) if check and fetch.todo else {}
    todo = set(fetch.todo)
    urls = tuple(
        _url_report(url, refs, url in todo, records.get(url), probes.get(url))
        for url, refs in scan.uses.items()
    )
    previews = _previews(config, [u for u in urls if u.status == "mirrored"])
    remote = config.publish.remote
    on_remote = publishedrows.rows(site.read_state, remote)
    published = frozenset(
        u.url for u in urls
        if u.status == "mirrored" and u.record is not None and u.record.path in on_remote
        and on_remote[u.record.path].sha256 == u.record.sha256
    )  # fmt: skip
    return Report(
        scan, records, urls, fetch, rewrite, check, config.mirror_dir, previews, remote, published
    )


def _url_report(
    url: str, uses: tuple[ImageRef, ...], todo: bool, record: UrlRecord | None, probe: Probe | None
) -> UrlReport:
    status: UrlStatus
    if probe is not None and not probe.reachable:
        status = "broken"
    elif record is not None and record.status == "failed":
        # A probe sees only the headers: an answer now does not undo a fetch
        # whose bytes were refused (a truncated JPEG, an HTML page).
        status = "failed"
    elif probe is not None:
        status = "ok"
    elif not todo:  # mirrored, or the mirror's own link to a mirrored file
        status = "mirrored"
    else:  # never fetched, or a mirrored row whose file is gone: fetched (again)
        status = "pending"
    return UrlReport(url, status, record, probe, uses)


def _previews(config: Config, mirrored: Sequence[UrlReport]) -> dict[str, str]:
    """The smallest thumbnail of each mirrored image where one exists, else the original."""
    try:
        spec: ThumbSpec | None = thumbnailing.spec_of(config)
    except ConfigError:  # settings no thumbnail can be made with: none exists
        spec = None
    root = config.mirror_dir
    previews: dict[str, str] = {}
    for url in mirrored:
        path = url.record.path if url.record is not None else None
        if not path:
            continue
        try:
            inside(root, PurePosixPath(path))  # a path out of the mirror dir is never linked
            if spec is not None and config.thumbnails.enabled:
                size = spec.sizes[0]
                thumb = PurePosixPath(config.thumbnails.dir) / thumb_path(path, size, spec)
                if inside(root, thumb).is_file():
                    path = thumb.as_posix()
        except ValueError:
            continue
        previews[url.url] = path
    return previews
