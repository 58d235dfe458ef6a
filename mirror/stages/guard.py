"""``backup``'s guard over the mirror: after a rewrite it is the only copy of the images.

Every run looks at each file the posts use (the files of the scan's URLs,
and those rewritten posts name) with a stat: there, with its recorded size
and mtime (:func:`~mirror.keep.mirrorfiles.look`). Besides, a share of the
mirror's files is re-hashed each run (``backup.verify_after`` days for all
of them, the longest unchecked first, as restic's ``check
--read-data-subset``), so that bytes that rot without a trace in the stat
are found within the period; ``backup --verify`` re-hashes them all. The
stats and the share are taken by a thread of its own from the start of the
run (:class:`Looks`), beside the scan: hashing is C code that lets go of
the interpreter, so it costs the night little besides the second core. So
they are taken before the scan, of every file the state records; one that
no post uses and that is not as recorded is left to ``--prune``.

A missing or changed file is fetched again from its source as the state
records it (the downloader tries the origins, then Wayback when enabled),
with the fetch stage's own download and commit step, and put back at its
recorded path: posts may point there. When the source now serves other
bytes, they go to the path all the same (the recorded ones cannot be had
any more), the old hash stays in the record's ``history`` and the file found
there in ``versions/``; the event says so. A file no source gives back is
recorded as a problem and reported with its posts on every run until it is
fixed. The thumbnails follow at the fetch's catch-up, which remakes those
whose image changed or whose files are gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from mirror.keep.mirrorfiles import Finding, Look, look
from mirror.keep.ownlinks import OwnLinks
from mirror.keep.site import Site
from mirror.keep.state import UrlRecord
from mirror.keep.store import DirSync
from mirror.models import Deadline, ImageRef, Outcome, ScanResult, Stop
from mirror.stages import fetch as fetching

GuardKind = Literal["missing", "changed on disk", "repaired", "unrepairable"]
# backup's event: kind, url, detail, the references using it (said with it)
Tell = Callable[[GuardKind, str, str, tuple[ImageRef, ...]], None]


@dataclass(frozen=True, slots=True)
class FileProblem:
    """A file the posts use that was not as recorded, and what its repair did."""

    path: str  # relative to mirror.dir
    urls: tuple[str, ...]  # the URLs it serves (one, but for the hash layout)
    problem: Finding
    detail: str
    # the recorded bytes back, other bytes, none; or not tried: the run stopped first
    repair: Literal["same", "other", "failed", "not tried"]
    repair_detail: str  # where it came from, or why no source gave it
    refs: tuple[ImageRef, ...]  # the references using it
    earlier_sha256: str | None = None  # "other": the recorded hash, kept in the history


@dataclass(frozen=True, slots=True)
class GuardResult:
    checked: int  # files looked at (a stat each)
    hashed: int  # files read and hashed
    hashed_bytes: int
    problems: tuple[FileProblem, ...]
    every: bool = False  # every file was re-hashed (--verify)
    stopped: Stop | None = None  # the deadline passed, or the disk filled, in the repairs
    fine: frozenset[str] = frozenset()  # the paths found as recorded

    def having(self, problem: Finding) -> int:
        return sum(1 for p in self.problems if p.problem == problem)

    @property
    def repaired(self) -> int:
        return sum(1 for p in self.problems if p.repair in ("same", "other"))

    @property
    def unrepairable(self) -> tuple[FileProblem, ...]:
        return tuple(p for p in self.problems if p.repair == "failed")

    @property
    def not_tried(self) -> int:
        """Bad files the run stopped before repairing (``stopped``)."""
        return sum(1 for p in self.problems if p.repair == "not tried")


class Looks:
    """The run's look at the mirror's files, taken by a thread of its own from
    when it is made, beside the scan: a stat of each file the state records,
    and the night's share read and hashed. :meth:`close` (or the ``with``
    block's end) stops it."""

    def __init__(
        self, site: Site, records: Mapping[str, UrlRecord], *, verify_all: bool, now: datetime
    ) -> None:
        """``records``: every record; ``now``: the time the schedule goes by."""
        # A file with a problem recorded is read whenever a post uses it (the guard
        # looks at it), and left to --prune when none does: not in the turns,
        # where it would stay first.
        groups = _mirrored(records, lambda record: not record.file_problem)
        self.every, self.now = verify_all, now
        verify_after = site.config.backup.verify_after
        self.due = list(groups) if verify_all else _due(groups, verify_after, now)
        todo = [(path, groups[path][0], True) for path in self.due]  # the reads first
        todo += [(path, group[0], False) for path, group in groups.items() if path not in self.due]
        self._stop = threading.Event()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="looks")
        self._found = self._worker.submit(_look_all, site.config.mirror_dir, todo, self._stop)

    def found(self) -> dict[str, tuple[UrlRecord, Look]]:
        """What the thread found, by path, once it has looked at every file."""
        return self._found.result()

    def close(self) -> None:
        self._stop.set()  # the file being read is the last
        self._worker.shutdown(wait=True)

    def __enter__(self) -> Looks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _look_all(
    root: Path, todo: list[tuple[str, UrlRecord, bool]], stop: threading.Event
) -> dict[str, tuple[UrlRecord, Look]]:
    found = {}
    for path, record, read in todo:
        if stop.is_set():
            break
        found[path] = (record, look(root, record, read=read))
    return found


def guard(
    site: Site,
    scan: ScanResult,
    records: Mapping[str, UrlRecord],
    looks: Looks,
    *,
    clock: fetching.Clock = fetching.utc_now,
    deadline: Deadline | None = None,
    tell: Tell | None = None,
) -> GuardResult:
    """Check the files the posts use (``records``: every record) by what ``looks``
    found; repair the bad ones.

    A repair stops as a fetch does: at ``deadline``, or when the disk is full
    (``stopped``); the files not tried then are problems still, tried again
    by the next run."""
    config, state = site.config, site.state
    root = config.mirror_dir
    groups = _in_use(scan, records, OwnLinks(config))
    hashed = hashed_bytes = 0
    bad: dict[str, tuple[Finding, str]] = {}
    fine: set[str] = set()
    taken = looks.found()
    looked = {  # a file with a recorded problem was left to this look
        path: taken.get(path) or (group[0], look(root, group[0], read=False))
        for path, group in groups.items()
    }
    for path in looks.due:
        looked.setdefault(path, taken[path])  # no post uses it: hashed all the same
    with state.transaction():
        for path, (record, found) in looked.items():
            if found.problem is not None and path not in groups:  # out of the turns
                state.mark_file_problem(path, f"{found.problem}: {found.detail}; no post uses it")
            elif found.problem is not None:
                bad[path] = (found.problem, found.detail)
            elif path in groups:
                fine.add(path)
            if found.hashed and found.mtime_ns is not None:
                hashed, hashed_bytes = hashed + 1, hashed_bytes + (record.size or 0)
                state.mark_checked(path, mtime_ns=found.mtime_ns, now=looks.now)
    for path, (problem, detail) in bad.items():
        if tell is not None:
            tell(problem, groups[path][0].url, detail, ())
    dirs = DirSync()
    repairs: dict[str, Outcome | str] = {}
    stopped = None
    if bad:
        wanted = {path: groups[path] for path in bad}
        # The network is imported here, for a repair: a night without one never does.
        import asyncio

        from mirror.stages import download

        stopped = asyncio.run(download.repair(site.config, wanted, dirs, repairs, deadline))
    dirs.sync()  # the renames first: a row never points at a file a power cut loses
    # The references are named only for a bad file: building them all costs more
    # than the night's checks.
    refs = _refs(scan, OwnLinks(config), {path: groups[path] for path in bad}) if bad else {}
    problems = []
    with state.transaction():
        for path, (problem, detail) in bad.items():
            group, got = groups[path], repairs.get(path)
            if got is None:  # the run stopped before its turn: the next run tries
                why = f"not repaired: {stopped.message if stopped else 'the run stopped'}"
                state.mark_file_problem(path, f"{problem}: {detail}; {why}")
                problems.append(
                    FileProblem(path, _urls(group), problem, detail, "not tried", why, refs[path])
                )
                continue
            if isinstance(got, str):
                state.mark_file_problem(path, f"{problem}: {detail}; {got}")
                item = FileProblem(path, _urls(group), problem, detail, "failed", got, refs[path])
                if tell is not None:
                    tell("unrepairable", group[0].url, f"{path}: {got}", refs[path])
            else:
                item = _record_repair(site, group, got, problem, detail, refs[path], clock())
                if tell is not None:
                    tell("repaired", got.url, item.repair_detail, ())
            problems.append(item)
    return GuardResult(
        len(groups), hashed, hashed_bytes, tuple(problems), looks.every, stopped, frozenset(fine)
    )


def _in_use(
    scan: ScanResult, records: Mapping[str, UrlRecord], links: OwnLinks
) -> dict[str, list[UrlRecord]]:
    """The mirrored records of the files the posts use, by path; unreferenced
    ones are left to ``--prune``."""
    referenced = set(scan.urls)
    named = links.in_use(scan)
    return _mirrored(records, lambda r: r.url in referenced or r.path in named)


def _mirrored(
    records: Mapping[str, UrlRecord], used: Callable[[UrlRecord], bool]
) -> dict[str, list[UrlRecord]]:
    """The mirrored records that are ``used``, by their file's path."""
    groups: dict[str, list[UrlRecord]] = {}
    for record in records.values():
        if record.status == "mirrored" and record.path and used(record):
            groups.setdefault(record.path, []).append(record)
    return groups


def _due(groups: Mapping[str, list[UrlRecord]], verify_after: float, now: datetime) -> list[str]:
    """The paths to re-hash this run, in order: the longest unchecked first
    (never hashed since the upgrade: first of all), until 1/``verify_after``
    of the bytes, and every one unchecked for longer than ``verify_after`` days."""
    oldest = datetime.min.replace(tzinfo=now.tzinfo)
    order = sorted(groups, key=lambda p: (groups[p][0].verified_at or oldest, p))
    if verify_after <= 0:
        return order
    share = sum(g[0].size or 0 for g in groups.values()) / verify_after
    overdue = now - timedelta(days=verify_after)
    due: list[str] = []
    taken = 0
    for path in order:
        record = groups[path][0]
        late = record.verified_at is not None and record.verified_at <= overdue
        if taken >= share and not late and due:
            break
        due.append(path)
        taken += record.size or 0
    return due


def _refs(
    scan: ScanResult, links: OwnLinks, groups: Mapping[str, list[UrlRecord]]
) -> dict[str, tuple[ImageRef, ...]]:
    """The references using each path of ``groups``: by its URLs, or by an own link."""
    path_of = {record.url: path for path, group in groups.items() for record in group}
    found: dict[str, list[ImageRef]] = {path: [] for path in groups}
    for ref in scan.refs:
        link = links.of(ref.url)
        path = link.path if link is not None else path_of.get(ref.url)
        if path in found:
            found[path].append(ref)
    return {path: tuple(refs) for path, refs in found.items()}


def _record_repair(
    site: Site,
    group: list[UrlRecord],
    got: Outcome,
    problem: Finding,
    detail: str,
    refs: tuple[ImageRef, ...],
    now: datetime,
) -> FileProblem:
    """Write a repair to the state (inside the caller's transaction): the URL it
    came from, and the other URLs sharing the file (the hash layout) with it."""
    state, root = site.state, site.config.mirror_dir
    path, recorded = group[0].path or "", group[0].sha256
    fetching.record_outcome(state, got, now, root)
    for other in group:
        if other.url != got.url:  # their own headers are not known: the next refresh asks
            fetching.record_outcome(
                state, replace(got, url=other.url, final_url=other.final_url or other.url,
                               etag=None, last_modified=None, attempts=0), now, root,
            )  # fmt: skip
    if got.sha256 == recorded:
        said = f"{path} (the recorded bytes, from the {got.source})"
        return FileProblem(path, _urls(group), problem, detail, "same", said, refs)
    kept = "; the file found there is in .gallery-mirror/versions/" if problem != "missing" else ""
    said = (
        f"{path}: the source now serves other bytes (SHA-256 {(got.sha256 or '')[:12]}...);"
        f" they are at the path, the recorded {(recorded or '')[:12]}... stays in the"
        f" record's history{kept}"
    )
    return FileProblem(path, _urls(group), problem, detail, "other", said, refs, recorded)


def _urls(group: list[UrlRecord]) -> tuple[str, ...]:
    return tuple(r.url for r in group)
