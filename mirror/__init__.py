"""gallery-mirror: rescue and migrate the images of static blogs.

The public API: load a configuration, scan a site or one post's bytes, and
normalize a URL the way the scanner does.

Its names are imported when first asked for (PEP 562), not with the package:
every ``mirror.*`` import runs this file, and the scanner's parsers are more
than a nightly run with nothing to do takes altogether.
"""

from __future__ import annotations

import typing
from importlib import import_module

from mirror.version import __version__

if typing.TYPE_CHECKING:
    from mirror.config import Config, load_config
    from mirror.errors import ConfigError, MirrorError
    from mirror.models import ImageRef, PostScan, RefKind, ScanResult
    from mirror.scanner.post import scan_post
    from mirror.scanner.site import scan_site
    from mirror.urls import Normalized, normalize

_HOMES = {
    "Config": "mirror.config",
    "load_config": "mirror.config",
    "ConfigError": "mirror.errors",
    "MirrorError": "mirror.errors",
    "ImageRef": "mirror.models",
    "PostScan": "mirror.models",
    "RefKind": "mirror.models",
    "ScanResult": "mirror.models",
    "scan_post": "mirror.scanner.post",
    "scan_site": "mirror.scanner.site",
    "Normalized": "mirror.urls",
    "normalize": "mirror.urls",
}

__all__ = [
    "Config",
    "ConfigError",
    "ImageRef",
    "MirrorError",
    "Normalized",
    "PostScan",
    "RefKind",
    "ScanResult",
    "__version__",
    "load_config",
    "normalize",
    "scan_post",
    "scan_site",
]


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'mirror' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
