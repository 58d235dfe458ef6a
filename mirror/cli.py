"""The command line: parse, load the config, call one library function, map errors.

Global options may stand before or after the sub-command: each sub-parser
gets them too, with ``SUPPRESS`` defaults so that an option given before the
sub-command is not overwritten by the sub-parser's default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mirror import __version__, mirroring, pipeline
from mirror.config import Config, load_config
from mirror.errors import MirrorError
from mirror.fetch_output import write_summary
from mirror.models import Outcome
from mirror.scan_output import write_json, write_table

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gallery-mirror",
        description="Find, mirror and rewrite the images of a static blog.",
    )
    parser.add_argument("--version", action="version", version=f"gallery-mirror {__version__}")
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    scan = commands.add_parser(
        "scan",
        help="find every image reference in the posts (writes nothing)",
        description="Find every image reference in the posts. Writes nothing.",
    )
    scan.add_argument("--json", action="store_true", help="print the contract's JSON")
    _global_options(scan, suppress=True)
    scan.set_defaults(run=_scan)

    fetch = commands.add_parser(
        "fetch",
        help="download every referenced image not yet mirrored (writes the mirror dir, state)",
        description=(
            "Download every referenced image that is not mirrored yet, validate it and"
            " put it in the mirror dir; record it in the state. Exit 1 if any failed."
        ),
    )
    _global_options(fetch, suppress=True)
    fetch.set_defaults(run=_fetch)
    return parser


def _scan(args: argparse.Namespace, config: Config) -> int:
    result = pipeline.scan(config)
    if args.verbose:
        _say(f"site: {result.root}")
        _say(f"posts: {result.detected}: {', '.join(result.globs)}")
        for note in result.notes:
            _say(f"note: {note}")
    if args.json:
        write_json(result, pipeline.url_records(config, result.urls), sys.stdout)
    else:
        write_table(result, sys.stdout, quiet=args.quiet, verbose=args.verbose)
    return EXIT_FAILED if result.unreadable else EXIT_OK


def _fetch(args: argparse.Namespace, config: Config) -> int:
    scan = pipeline.scan(config)
    for post in scan.unreadable:
        _say(f"{post.post}: {'; '.join(post.problems)}")

    def progress(outcome: Outcome) -> None:
        if args.verbose:
            _say(
                f"{outcome.status}: {outcome.url}"
                + (f" ({outcome.error})" if outcome.error else "")
            )

    result = mirroring.fetch(config, scan, on_outcome=progress)
    write_summary(result, sys.stdout)
    return EXIT_FAILED if result.failed or scan.unreadable else EXIT_OK


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Config], int] = args.run
    try:
        config = load_config(args.config, site=args.site)
        return run(args, config)
    except MirrorError as exc:
        _say(f"gallery-mirror: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("gallery-mirror: interrupted")
        return EXIT_INTERRUPTED
