"""The seed post and its five images, for end-to-end tests (fixtures: conftest.py)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

SEED = Path(__file__).parent / "data" / "deepseek-post.md"
SEED_HOST = "imgcdn.yaerxing.com"
SEED_PATH = "/upimage/stupnote/2025/02/02/"
SEED_FILES = [
    "1738462164_12009103_8994.jpg",
    "1738462165_12009103_2247.jpg",
    "1738462167_12009103_5455.jpg",
    "1738462168_12009103_2152.jpg",
    "1738462169_12009103_4088.jpg",
]


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 40, 90)).save(out, "JPEG")
    return out.getvalue()
