"""The command line: parse, load the config, call one library function, map errors.

Global options may stand before or after the sub-command: each sub-parser
gets them too, with ``SUPPRESS`` defaults so that an option given before the
sub-command is not overwritten by the sub-parser's default.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from mirror.config import load_config
from mirror.errors import ConfigError, MirrorError
from mirror.keep.site import Site, open_site
from mirror.models import Deadline, ScanResult
from mirror.output import files as outfile
from mirror.output.scan import write_json, write_table
from mirror.scanner.layout import settle
from mirror.stages import scan as scanning
from mirror.version import __version__

if TYPE_CHECKING:
    from mirror.output.progress import Progress
    from mirror.stages.fetch import FetchResult

# Each command imports its stage when it runs: `scan` and `--help` must not pay
# for the HTTP stack and Pillow (~0.5 s of imports on a small machine).

# Usage and configuration errors (2) and a held lock (3) exit with their
# MirrorError's exit_code (errors.ConfigError, errors.LockHeld); argparse exits 2 itself.
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_PIPE = 128 + getattr(signal, "SIGPIPE", 13)

_SCHEMA = "schema 1, documented in the README"
_DASH = " (what is printed then goes to standard error)"


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument("--version", action="version", version=f"gallery-mirror {__version__}")

    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=default(None),
        metavar="PATH",
        help="config file (default: gallery-mirror.toml in the site directory, if any)",
    )
    parser.add_argument(
        "--site",
        type=Path,
        default=default(None),
        metavar="DIR",
        help="the blog's root directory (overrides site.root)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="say more: detected layout, skipped folders",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="print only the summary and problems",
    )
    parser.add_argument(
        "--no-progress", action="store_true", default=default(False),
        help="no progress bars",
    )  # fmt: skip


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _max_time(parser: argparse.ArgumentParser, default: str = "no deadline") -> None:
    parser.add_argument(
        "--max-time", type=_seconds, metavar="SECONDS",
        help=(
            "stop starting downloads this long after the start, cancel those under way,"
            f" record what finished and exit 1 with the summary (0 or default: {default})"
        ),
    )  # fmt: skip


def _retry_failed(parser: argparse.ArgumentParser, note: str) -> None:
    parser.add_argument(
        "--retry-failed", action="store_true",
        help=f"try every URL that failed before now, whatever its schedule ({note})",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gallery-mirror",
        description="Find, mirror and rewrite the images of a static blog.",
    )
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    scan = commands.add_parser(
        "scan",
        help="find every image reference in the posts (writes nothing)",
        description="Find every image reference in the posts. Writes nothing.",
    )
    scan.add_argument("--json", action="store_true", help=f"print JSON ({_SCHEMA})")
    _global_options(scan, suppress=True)
    scan.set_defaults(run=_scan, writes=_never)

    report = commands.add_parser(
        "report",
        help="what migrate would fetch and rewrite, and what is broken (writes only report files)",
        description=(
            "The dry-run report: totals, a table per host, repaired URLs, failed and broken"
            " images with the posts using them, unreadable posts, and what migrate would fetch"
            " and rewrite. Makes no request without --check. Writes nothing but the files"
            " named by --json and --html. Exit 1 if an image failed or is broken or a post"
            " could not be read."
        ),
    )
    report.add_argument(
        "--check", action="store_true",
        help="probe every URL not mirrored yet (HEAD, else a one-byte GET): ok or broken",
    )  # fmt: skip
    report.add_argument(
        "--json", type=Path, metavar="FILE",
        help=f"write JSON ({_SCHEMA}) here; - is standard output{_DASH}",
    )  # fmt: skip
    report.add_argument(
        "--html", type=Path, metavar="FILE",
        help=f"write a self-contained HTML page here; - is standard output{_DASH}",
    )  # fmt: skip
    report.add_argument(
        "--format", choices=("text", "md"), default="text", help="what is printed (default: text)"
    )
    report.add_argument("--to", choices=("local", "cdn"), help="overrides rewrite.to")
    _global_options(report, suppress=True)
    report.set_defaults(run=_report, writes=_never)

    fetch = commands.add_parser(
        "fetch",
        help="download every referenced image not yet mirrored (writes the mirror dir, state)",
        description=(
            "Download every referenced image that is not mirrored yet, validate it and"
            " put it in the mirror dir; record it in the state. Exit 1 if any failed."
        ),
    )
    fetch.add_argument(
        "--refresh", action="store_true",
        help="re-check mirrored images with conditional requests; replace those that changed",
    )  # fmt: skip
    _retry_failed(fetch, "fetch does on every run; backup waits 1, 2, 4 ... days")
    _max_time(fetch)
    _global_options(fetch, suppress=True)
    fetch.set_defaults(run=_fetch, writes=_always)

    rewrite = commands.add_parser(
        "rewrite",
        help="point posts at the mirrored copies (writes posts, journal)",
        description=(
            "Point every reference whose image is mirrored (file present, hash as recorded)"
            " at its copy: rewrite.local_prefix or rewrite.cdn_base + its path in the mirror"
            " dir (--to cdn: only files publish has put there). Only the URL bytes change;"
            " each post is replaced atomically and journaled for revert. Exit 1 if a post"
            " could not be rewritten."
        ),
    )
    rewrite.add_argument("--to", choices=("local", "cdn"), help="overrides rewrite.to")
    rewrite.add_argument(
        "--dry-run", action="store_true", help="print a unified diff per post; write nothing"
    )
    rewrite.add_argument(
        "--check-target",
        action="store_true",
        help="probe each new URL first; leave references whose new URL does not answer 200",
    )
    _global_options(rewrite, suppress=True)
    rewrite.set_defaults(run=_rewrite, writes=_unless_dry_run)

    revert = commands.add_parser(
        "revert",
        help="undo rewrites from the journal, byte-exact (writes posts, journal)",
        description=(
            "Undo every rewrite run not reverted yet, newest first: a post unchanged since"
            " is restored byte for byte, an edited one URL by URL where the rewritten URL"
            " still stands, wherever it moved. Exit 1 if some edit could not be reverted: its"
            " run stays open, and a later revert finishes it."
        ),
    )
    revert.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
    _global_options(revert, suppress=True)
    revert.set_defaults(run=_revert, writes=_unless_dry_run)

    migrate = commands.add_parser(
        "migrate",
        help="fetch, then rewrite (writes the mirror dir, state, posts, journal)",
        description=(
            "Fetch every image not mirrored yet, then rewrite the posts to the mirrored"
            " copies; --to cdn publishes them (publish.remote) between the two. --dry-run"
            " writes nothing at all: it lists what would be fetched (and uploaded) and"
            " prints the diff the rewrite would make. Exit 1 if an image or a post failed."
        ),
    )
    migrate.add_argument("--to", choices=("local", "cdn"), help="overrides rewrite.to")
    migrate.add_argument(
        "--dry-run", action="store_true",
        help="list what would be fetched and print the diff; write nothing",
    )  # fmt: skip
    _max_time(migrate)
    _global_options(migrate, suppress=True)
    migrate.set_defaults(run=_migrate, writes=_unless_dry_run)

    backup = commands.add_parser(
        "backup",
        help="the scheduled job: scan, fetch what is new, thumbnails; never rewrites",
        description=(
            "Check the mirrored files (a stat each, a share re-hashed) and repair a missing or"
            " changed one from its source; scan, fetch every image not mirrored yet and make"
            " thumbnails, for cron or a systemd timer. One line per event (new, changed,"
            " failed, source gone, pruned, missing, changed on disk, repaired, unrepairable)"
            " and a summary. Exit 0 all good, 1 some URL failed or a file was missing or"
            " changed, 2 configuration error, 3 another run holds the lock."
        ),
    )
    backup.add_argument(
        "--refresh", action="store_true",
        help="re-check mirrored images not checked for backup.refresh_after days",
    )  # fmt: skip
    backup.add_argument(
        "--verify", action="store_true",
        help="re-hash every mirrored file now (else a share each run, backup.verify_after)"
        " and repair what is wrong",
    )  # fmt: skip
    backup.add_argument(
        "--prune", action="store_true",
        help="move files no post has used for backup.prune_after days to .gallery-mirror/trash/",
    )  # fmt: skip
    backup.add_argument(
        "--json", type=Path, metavar="FILE",
        help=f"write the run as JSON here; - is standard output{_DASH}",
    )  # fmt: skip
    _retry_failed(backup, "else one is tried again 1, 2, 4 ... days, at most 30, after it failed")
    _max_time(backup, "backup.max_time")
    _global_options(backup, suppress=True)
    backup.set_defaults(run=_backup, writes=_always)

    publish = commands.add_parser(
        "publish",
        help="upload mirrored files not yet published to publish.remote (writes the remote, state)",
        description=(
            "Upload the mirrored files (and thumbnails) that publish.remote does not hold"
            " with their current bytes, through rclone; record each once the remote's"
            " listing confirms it. Exit 1 if a file could not be published, 2 if rclone"
            " or publish.remote is missing."
        ),
    )
    publish.add_argument(
        "--dry-run", action="store_true", help="list what would be uploaded; write nothing"
    )
    publish.add_argument(
        "--json", type=Path, metavar="FILE",
        help=f"write the run as JSON here; - is standard output{_DASH}",
    )  # fmt: skip
    _global_options(publish, suppress=True)
    publish.set_defaults(run=_publish, writes=_unless_dry_run)

    thumbs = commands.add_parser(
        "thumbs",
        help="make the thumbnails of mirrored images, without fetching (writes the mirror dir)",
        description=(
            "Make or update the thumbnails of every mirrored image: only those whose image"
            " or thumbnail settings changed since, or all with --force. Exit 1 if any failed."
        ),
    )
    thumbs.add_argument("--force", action="store_true", help="rebuild every thumbnail")
    _global_options(thumbs, suppress=True)
    thumbs.set_defaults(run=_thumbs, writes=_always)

    verify = commands.add_parser(
        "verify",
        help="re-hash mirrored files; check rewritten references resolve (writes nothing)",
        description=(
            "Re-hash every mirrored file against the state and check that every reference"
            " pointing at the mirror resolves to a file. Writes nothing. Exit 1 on any problem."
        ),
    )
    verify.add_argument("--json", action="store_true", help=f"print JSON ({_SCHEMA})")
    _global_options(verify, suppress=True)
    verify.set_defaults(run=_verify, writes=_never)
    return parser


def _never(args: argparse.Namespace) -> bool:
    return False


def _always(args: argparse.Namespace) -> bool:
    return True


def _unless_dry_run(args: argparse.Namespace) -> bool:
    return not args.dry_run


def _scan(args: argparse.Namespace, site: Site) -> int:
    result = scanning.scan(site.config, site)
    if args.verbose:
        _say(f"site: {result.root}")
        _say(f"posts: {result.detected}: {', '.join(result.globs)}")
        for note in result.notes:
            _say(f"note: {note}")
    if args.json:
        write_json(result, site.scan_records(result), sys.stdout)
    else:
        write_table(result, sys.stdout, quiet=args.quiet, verbose=args.verbose)
    return EXIT_FAILED if result.unreadable else EXIT_OK


def _report(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.report import use_colour, write_json_file, write_markdown, write_text
    from mirror.output.report_html import write_html
    from mirror.stages import report as reporting

    out = _printed_to(args.json, args.html)
    result = reporting.report(site, scanning.scan(site.config, site), check=args.check, to=args.to)
    if args.json is not None:
        write_json_file(result, args.json)
    if args.html is not None:
        write_html(result, args.html)
    if args.format == "md":
        write_markdown(result, out)
    else:
        write_text(result, out, colour=use_colour(out), quiet=args.quiet)
    return EXIT_FAILED if result.failed else EXIT_OK


def _printed_to(*files: Path | None) -> TextIO:
    """Where a command that writes ``files`` prints: standard error when one of
    them is standard output (``-``), which then holds that file alone. Each
    file's directory is checked here, before the run rather than after it."""
    named = [path for path in files if path is not None]
    for path in named:
        outfile.check(path)
    to_stdout = [path for path in named if outfile.is_stdout(path)]
    if len(to_stdout) > 1:
        named_twice = " and ".join(map(str, to_stdout))
        raise ConfigError(f"{named_twice} are both standard output: name a file for one of them")
    return sys.stderr if to_stdout else sys.stdout


def _fetch(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.fetch import write_summary
    from mirror.stages import fetch as fetching

    deadline = Deadline.after(args.max_time, time.monotonic())
    scan = _scan_posts(site)
    with _progress(args) as progress:
        result = fetching.fetch(
            site, scan, refresh_after=0.0 if args.refresh else None, deadline=deadline,
            on_plan=progress.planned, on_outcome=progress.finished, on_host=progress.host,
        )  # fmt: skip
    write_summary(result, sys.stdout)
    if result.interrupted:
        _say("gallery-mirror: interrupted")
        return EXIT_INTERRUPTED
    return _fetch_code(result, scan)


def _fetch_code(result: FetchResult, scan: ScanResult) -> int:
    """A fetch's exit code when it was not interrupted; a stop is said on standard error too."""
    if result.stopped is not None:
        _say(f"gallery-mirror: stopped: {result.stopped.message}")
    bad = result.failed or result.waiting or result.stopped or scan.unreadable
    return EXIT_FAILED if bad else EXIT_OK


def _progress(
    args: argparse.Namespace, verb: str = "fetched", *, bar_only: bool = False
) -> Progress:
    """The progress the global options ask for; ``bar_only``: no lines (the
    command logs something else), a bar only where someone watches."""
    from mirror.output.progress import Progress

    shown = not (args.quiet or args.no_progress)
    lines, each = (False, False) if bar_only else (shown, args.verbose)
    return Progress(
        sys.stderr, bar=shown and sys.stderr.isatty(), lines=lines, each=each, verb=verb,
        host_lines=not bar_only,
    )  # fmt: skip


def _migrate(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.fetch import write_plan, write_summary
    from mirror.output.publish import write_publish
    from mirror.output.rewrite import interrupted_note, write_rewrite
    from mirror.stages import migrate as migrating

    deadline = Deadline.after(args.max_time, time.monotonic())
    scan = _scan_posts(site)
    if args.dry_run:
        plan, uploads, diff = migrating.dry_run(site, scan, to=args.to)
        write_plan(plan, sys.stdout, verbose=args.verbose)
        if uploads is not None:
            write_publish(uploads, sys.stdout, quiet=not args.verbose)
        write_rewrite(diff, sys.stdout, verbose=args.verbose)
        return EXIT_FAILED if scan.unreadable else EXIT_OK
    with _progress(args) as progress:
        result = migrating.migrate(
            site, scan, to=args.to, deadline=deadline,
            on_plan=progress.planned, on_outcome=progress.finished, on_host=progress.host,
        )  # fmt: skip
    write_summary(result.fetched, sys.stdout)
    if result.published is not None:
        write_publish(result.published, sys.stdout, quiet=args.quiet)
    if result.rewritten is None:
        _say("gallery-mirror: interrupted before the rewrite; the posts are unchanged")
        return EXIT_INTERRUPTED
    write_rewrite(result.rewritten, sys.stdout, verbose=args.verbose)
    if result.rewritten.interrupted:
        _say(f"gallery-mirror: {interrupted_note(result.rewritten)}")
        return EXIT_INTERRUPTED
    fetched = _fetch_code(result.fetched, scan)
    unpublished = result.published is not None and result.published.failed
    return EXIT_FAILED if fetched != EXIT_OK or unpublished or result.rewritten.failed else EXIT_OK


def _backup(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.backup import (
        write_backup_json,
        write_event,
        write_host_event,
        write_summary_line,
    )
    from mirror.stages.backup import backup

    max_time = site.config.backup.max_time if args.max_time is None else args.max_time
    deadline = Deadline.after(max_time, time.monotonic())
    log = _printed_to(args.json)
    with _progress(args, bar_only=True) as progress:  # the events are the log
        result = backup(
            site, lambda: _scan_posts(site), refresh=args.refresh, prune=args.prune,
            verify=args.verify, retry_failed=args.retry_failed,
            deadline=deadline, on_plan=progress.planned, on_outcome=progress.finished,
            on_event=lambda event: write_event(event, log, quiet=args.quiet),
            on_host=lambda event: write_host_event(event, log, progress, quiet=args.quiet),
        )  # fmt: skip
    write_summary_line(result, log)
    if result.fetched.interrupted or (result.published and result.published.interrupted):
        code = EXIT_TERMINATED if _TERMINATED.is_set() else EXIT_INTERRUPTED
    else:
        code = _fetch_code(result.fetched, result.fetched.scan)
        if result.publish_error or (result.published and result.published.failed):
            code = EXIT_FAILED
        code = EXIT_FAILED if result.guarded.problems else code  # missing, changed on disk
    if args.json is not None:
        write_backup_json(result, args.json, exit_code=code)
    return code


def _publish(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.publish import write_publish, write_publish_json
    from mirror.stages import publish as publishing

    out = _printed_to(args.json)
    result = publishing.publish(site, dry_run=args.dry_run)
    write_publish(result, out, quiet=args.quiet)
    code = EXIT_INTERRUPTED if result.interrupted else EXIT_FAILED if result.failed else EXIT_OK
    if args.json is not None:
        write_publish_json(result, args.json, exit_code=code)
    return code


def _thumbs(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.thumbs import write_thumbs_summary
    from mirror.stages import thumbs as thumbnailing

    with _progress(args, "thumbnails for") as progress:
        result = thumbnailing.rebuild(
            site, force=args.force, on_plan=progress.planned,
            on_made=lambda made: progress.step(made.path, made.result.status, made.result.reason),
        )  # fmt: skip
    write_thumbs_summary(result, sys.stdout)
    if result.interrupted:
        _say("gallery-mirror: interrupted")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.having("failed") else EXIT_OK


def _rewrite(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.rewrite import interrupted_note, write_rewrite
    from mirror.stages import rewrite as rewriting

    scan = _scan_posts(site)
    result = rewriting.rewrite(
        site, scan, to=args.to, dry_run=args.dry_run, check_target=args.check_target
    )
    write_rewrite(result, sys.stdout, verbose=args.verbose)
    if result.interrupted:
        _say(f"gallery-mirror: {interrupted_note(result)}")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.failed or scan.unreadable else EXIT_OK


def _revert(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.revert import write_revert
    from mirror.stages import revert as reverting

    result = reverting.revert(site, dry_run=args.dry_run)
    write_revert(result, sys.stdout)
    return EXIT_FAILED if result.incomplete else EXIT_OK


def _verify(args: argparse.Namespace, site: Site) -> int:
    from mirror.output.verify import write_verify, write_verify_json
    from mirror.stages import verify as verifying

    result = verifying.verify(site, scanning.scan(site.config, site))
    (write_verify_json if args.json else write_verify)(result, sys.stdout)
    return EXIT_FAILED if result.problems else EXIT_OK  # an unreadable post is one


def _scan_posts(site: Site) -> ScanResult:
    """Scan for a command that goes on despite unreadable posts: it names them first."""
    scan = scanning.scan(site.config, site)
    for post in scan.unreadable:
        _say(f"unreadable: {post.post}: {'; '.join(post.problems)}")
    return scan


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Site], int] = args.run
    writes: Callable[[argparse.Namespace], bool] = args.writes
    with _terminate_like_ctrl_c():
        try:
            # mirror.dir and rewrite.local_prefix, where not set, follow the generator.
            settled = settle(load_config(args.config, site=args.site))
            config = settled.config
            for line in settled.lines if args.verbose else ():
                _say(line)
            if settled.notice and not args.verbose and not args.quiet:
                _say(settled.notice)
            # --json FILE / --html FILE: a missing directory stops the run before
            # anything (the state, the lock) is made.
            named = (getattr(args, option, None) for option in ("json", "html"))
            _printed_to(*(path for path in named if isinstance(path, Path)))
            # The one session of the command: the lock (when it writes) is
            # held from here to the end, whatever stages it runs.
            with open_site(config, write=writes(args)) as site:
                code = run(args, site)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        except BrokenPipeError:
            if not _reader_gone():
                raise
            # `gallery-mirror scan | head`: the reader has what it wanted. Quiet,
            # with the code a shell gives a process SIGPIPE ended, as `cat` has.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_PIPE
        except MirrorError as exc:
            _say(f"gallery-mirror: error: {exc}")
            return exc.exit_code
        except OSError as exc:  # a file named on the command line, a full disk, ...
            where = f"{exc.filename}: " if exc.filename else ""
            _say(f"gallery-mirror: error: {where}{exc.strerror or exc}")
            return EXIT_FAILED
        except KeyboardInterrupt:
            _say("gallery-mirror: interrupted")
            code = EXIT_INTERRUPTED
    # 128 + the signal, as a shell reports it: a scheduler can tell a stop from a failure.
    return EXIT_TERMINATED if code == EXIT_INTERRUPTED and _TERMINATED.is_set() else code


def _reader_gone() -> bool:
    """Whether standard output is a pipe nobody reads any more (not some other
    broken pipe, such as a helper process's, which is an error to report)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no fd, or no poll (Windows)
        return False


_TERMINATED = threading.Event()  # set once SIGTERM came (a process gets one run)


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """SIGTERM (systemd stopping a unit, ``kill``) stops a run as Ctrl-C does:
    what finished is recorded, nothing partial is left. Only the main thread
    may set signal handlers (tests call ``main`` from others too); there the
    default is kept."""

    def stop(signum: int, frame: FrameType | None) -> None:
        _TERMINATED.set()
        raise KeyboardInterrupt

    _TERMINATED.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
