"""``migrate``: fetch, then rewrite, as one command (fetch, publish, rewrite to a
CDN); and its dry run.

The dry run writes nothing at all (no mirror dir, no state, no lock, no
post: the CLI opens the site read-only for it): it lists what a fetch would
download and shows the diff a rewrite would then make. For the images not
fetched yet that diff uses the path a fetch would give them, predicted from
the URL (its extension names the format); a fetch corrects a wrong extension
from the bytes (``a.jpg`` that holds a WebP becomes ``a.jpg~<hash>.webp``),
so a prediction can be wrong for such an image, and is then said to be a
prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import urlsplit

from mirror.formats import FORMATS, ImageFormat, format_of
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.store import url_path
from mirror.models import Deadline, HostEvent, Outcome, ScanResult
from mirror.stages import fetch as fetching
from mirror.stages import publish as publishing
from mirror.stages import rewrite as rewriting

# What most URLs without an image extension turn out to hold.
_DEFAULT_FORMAT: Final[ImageFormat] = "jpeg"


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What a fetch would do now."""

    todo: tuple[str, ...]  # URLs it would download
    already: int  # URLs mirrored, file in place
    predicted: dict[str, str]  # URL -> the path (relative to mirror.dir) it would likely get


@dataclass(frozen=True, slots=True)
class MigrateResult:
    fetched: fetching.FetchResult
    published: publishing.PublishResult | None  # None: not to a CDN, or interrupted before
    rewritten: rewriting.RewriteResult | None  # None: interrupted before the rewrite


def plan(site: Site, scan: ScanResult) -> FetchPlan:
    """The URLs a fetch would download, from the state as it is."""
    config = site.config
    links = OwnLinks(config)
    urls = links.to_fetch(scan)
    records = site.scan_records(scan)
    todo = tuple(
        url for url in urls if not fetching.still_mirrored(records.get(url), config.mirror_dir)
    )
    # Content-addressed names cannot be known before the content is.
    predicted = (
        {url: url_path(url, _extension_of(url)).as_posix() for url in todo}
        if config.mirror.layout == "url"
        else {}
    )
    return FetchPlan(todo, len(urls) - len(todo) + links.mirrored(records), predicted)


def dry_run(
    site: Site, scan: ScanResult, *, to: rewriting.Target | None
) -> tuple[FetchPlan, publishing.PublishResult | None, rewriting.RewriteResult]:
    """What a fetch would download, a publish upload (to a CDN with publish.remote
    set; the images fetched first are not in it yet), and the diff a rewrite
    would then make."""
    fetch_plan = plan(site, scan)
    uploads = None
    if _to_cdn(site, to) and site.config.publish.remote:
        uploads = replace(publishing.publish(site, dry_run=True), after_fetch=len(fetch_plan.todo))
    diff = rewriting.rewrite(
        site, scan, to=to, dry_run=True, assume=fetch_plan.predicted,
        assume_published=frozenset(u.path for u in uploads.uploaded) if uploads else frozenset(),
    )  # fmt: skip
    return fetch_plan, uploads, diff


def migrate(
    site: Site,
    scan: ScanResult,
    *,
    to: rewriting.Target | None,
    deadline: Deadline | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_host: Callable[[HostEvent], None] | None = None,
) -> MigrateResult:
    """Fetch what is missing, (to a CDN) publish it, then rewrite every reference
    whose image is now mirrored (and published).

    The session holds the site lock across all: a backup starting in between
    would otherwise make the rewrite fail after the whole fetch. A fetch the
    deadline (or a full disk) stopped is published and rewritten as far as it
    got, and the next migrate goes on from there."""
    cdn = _to_cdn(site, to)
    if cdn:
        publishing.remote_of(site.config)  # before the fetch: a CDN rewrite needs it
    fetched = fetching.fetch(
        site, scan, deadline=deadline, on_plan=on_plan, on_outcome=on_outcome, on_host=on_host
    )
    if fetched.interrupted:
        return MigrateResult(fetched, None, None)
    uploads = publishing.publish(site) if cdn else None
    if uploads is not None and uploads.interrupted:
        return MigrateResult(fetched, uploads, None)
    return MigrateResult(fetched, uploads, rewriting.rewrite(site, scan, to=to))


def _to_cdn(site: Site, to: rewriting.Target | None) -> bool:
    return (to or site.config.rewrite.to) == "cdn"


def _extension_of(url: str) -> str:
    fmt = format_of(PurePosixPath(urlsplit(url).path).suffix)
    return FORMATS[fmt or _DEFAULT_FORMAT].extension
