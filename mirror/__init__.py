"""gallery-mirror: rescue and migrate the images of static blogs.

The public API: load a configuration, scan a site or one post's bytes, and
normalize a URL the way the scanner does.
"""

from __future__ import annotations

from mirror.config import Config, load_config
from mirror.errors import ConfigError, MirrorError
from mirror.models import ImageRef, PostScan, RefKind, ScanResult
from mirror.scanner import scan_post, scan_site
from mirror.urls import Normalized, normalize
from mirror.version import __version__

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
