"""The version of gallery-mirror (a value of its own: config and the state use it)."""

__version__ = "0.1.0"
