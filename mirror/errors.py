"""The exceptions that stop a whole run.

A failure that concerns one post or one image is a value (see ``models``),
never an exception: the run records it and goes on. What is raised here means
the run cannot go on at all, and the CLI maps it to an exit code::

    MirrorError              any run-stopping failure (exit 1)
    └── ConfigError          unreadable or invalid configuration (exit 2)
"""

from __future__ import annotations


class MirrorError(Exception):
    """A failure that stops the run; its message is shown to the user as is."""

    exit_code = 1


class ConfigError(MirrorError):
    """The configuration file or a command-line setting is wrong.

    The message names the file and, where known, the key and the line.
    """

    exit_code = 2
