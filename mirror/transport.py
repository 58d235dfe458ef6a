"""The HTTP client the downloader talks through, built from ``[download]``.

Kept apart from the downloader so that the transport under httpx's API can be
chosen for speed without touching how URLs are fetched, retried and saved.
"""

from __future__ import annotations

import httpx

from mirror.config import DownloadConfig


def make_client(download: DownloadConfig) -> httpx.AsyncClient:
    """An ``AsyncClient`` sized to ``concurrency``, with the per-request timeout.

    Redirects are not followed here: the downloader follows them itself so that
    every hop is checked against ``allow_private``.
    """
    limits = httpx.Limits(
        max_connections=download.concurrency, max_keepalive_connections=download.concurrency
    )
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(download.timeout))
