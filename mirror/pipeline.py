"""The one place that turns the whole configuration into what each stage takes."""

from __future__ import annotations

from mirror.config import Config
from mirror.models import ScanResult
from mirror.scanner import scan_site


def scan(config: Config) -> ScanResult:
    """Scan the site's posts; the mirror and state folders are never posts."""
    return scan_site(
        config.site.root,
        posts=config.site.posts,
        front_matter_keys=config.site.front_matter_keys,
        exclude=(config.mirror_dir, config.state_dir),
    )
