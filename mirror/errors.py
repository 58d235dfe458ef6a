"""The exceptions that stop a whole run.

A failure that concerns one post or one image is a value (see ``models``),
never an exception: the run records it and goes on. What is raised here means
the run cannot go on at all, and the CLI maps it to an exit code::

    MirrorError              any run-stopping failure (exit 1): a broken state
    │                        file, a thumbnails folder that cannot be written, ...
    ├── ConfigError          unreadable or invalid configuration or flags (exit 2)
    └── LockHeld             another run holds the site's lock (exit 3)

Ctrl-C and SIGTERM end a run as KeyboardInterrupt (exit 130 and 143), and an
``OSError`` that reaches the CLI (a full disk, a file named on the command
line) is reported with its file name (exit 1). The other exception classes of
the package never leave their module: they carry a failure of one URL or one
image to the place that turns it into a value.
"""

from __future__ import annotations

from pathlib import Path


class MirrorError(Exception):
    """A failure that stops the run; its message is shown to the user as is."""

    exit_code = 1


class ConfigError(MirrorError):
    """The configuration file or a command-line setting is wrong.

    The message names the file and, where known, the key and the line.
    """

    exit_code = 2


class LockHeld(MirrorError):
    """Another run holds this site's lock (exit code 3).

    The message names the lock file and, as far as the holder wrote them,
    its PID, host and start time, so the user can find that run.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        pid: int | None = None,
        started: str | None = None,
    ) -> None:
        # Keyword-only extras with defaults keep the exception picklable.
        super().__init__(message)
        self.path = path
        self.pid = pid
        self.started = started
