"""A deterministic corpus: a Hexo blog in the seed post's style, and its images.

Everything is derived from one seed, so two runs with the same arguments
build byte-identical posts and images; the images are cached on disk because
encoding a thousand multi-megapixel JPEGs takes minutes.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

HOST = "imgcdn.bench.example"  # posts point here; the config maps it to 127.0.0.1

_ZH = (
    "当我们还在畅想未来人工智能会如何改变生活时一款国产模型已经在悄悄出圈在国际上都备受瞩目"
    "它究竟有什么过人之处能在高手如云的领域脱颖而出呢今天就带大家一起来揭开它的神秘面纱"
)
_EN = (
    "the old trams still climb the hills and the tiles are everywhere while the light "
    "changes over the river and we walk slowly back to the hotel after dinner"
)


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    posts: int = 10_000
    images: int = 2_000
    seed: int = 20250323
    min_side: int = 1600  # longest side of the photo-like JPEGs
    max_side: int = 4000

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True, slots=True)
class ImageItem:
    path: str  # relative to the images root, e.g. upimage/2025/02/02/x.jpg
    kind: str  # jpeg, progressive, exif, cmyk, png, gif, webp


def plan_images(spec: CorpusSpec) -> list[ImageItem]:
    rng = random.Random(spec.seed)
    kinds = ["jpeg"] * 85 + ["progressive"] * 3 + ["exif"] * 2 + ["cmyk"] * 2
    kinds += ["png"] * 4 + ["gif"] * 2 + ["webp"] * 2
    items = []
    every_kind = list(dict.fromkeys(kinds))  # the first images cover each kind once
    for i in range(spec.images):
        kind = every_kind[i] if i < len(every_kind) else rng.choice(kinds)
        ext = {"png": "png", "gif": "gif", "webp": "webp"}.get(kind, "jpg")
        day = f"2025/{1 + i % 12:02d}/{1 + i % 28:02d}"
        items.append(ImageItem(f"upimage/{day}/{1738462164 + i}_{i:05d}.{ext}", kind))
    return items


def build_images(root: Path, spec: CorpusSpec, *, workers: int = 2) -> list[ImageItem]:
    """Write every image under ``root`` unless a cache of the same spec is there."""
    items = plan_images(spec)
    stamp = root / ".spec"
    if stamp.exists() and stamp.read_text() == spec.key():
        return items
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(root, item, spec, spec.seed * 1_000_003 + i) for i, item in enumerate(items)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_image, jobs, chunksize=8))
    stamp.write_text(spec.key())
    return items


def _write_image(job: tuple[Path, ImageItem, CorpusSpec, int]) -> None:
    root, item, spec, seed = job
    rng = random.Random(seed)
    target = root / item.path
    target.parent.mkdir(parents=True, exist_ok=True)
    data = _encode(item.kind, rng, spec)
    target.write_bytes(data)


_GRAIN: dict[int, Image.Image] = {}


def _grain(rng: random.Random, width: int, height: int) -> Image.Image:
    """Fine noise at full size, tiled from a cached tile: full-size noise is slow."""
    sigma = rng.choice((4, 6, 8))
    tile = _GRAIN.setdefault(sigma, Image.effect_noise((509, 509), sigma))
    grain = Image.new("L", (width, height))
    dx, dy = rng.randrange(509), rng.randrange(509)
    for x in range(-dx, width, 509):
        for y in range(-dy, height, 509):
            grain.paste(tile, (x, y))
    return grain


def _photo(rng: random.Random, width: int, height: int) -> Image.Image:
    """Noise over gradients: compresses about like a real photo."""
    coarse = Image.effect_noise((max(8, width // 16), max(8, height // 16)), 60)
    red = coarse.resize((width, height), Image.Resampling.BICUBIC)
    green = Image.linear_gradient("L").rotate(rng.randrange(360)).resize((width, height))
    photo = Image.merge("RGB", (red, green, _grain(rng, width, height)))
    draw = ImageDraw.Draw(photo)
    for _ in range(6):  # a few shapes make each image's content unique
        x, y = rng.randrange(width), rng.randrange(height)
        size = rng.randrange(20, max(21, width // 6))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x, y, x + size, y + size), fill=colour)
    return photo


def _size(rng: random.Random, spec: CorpusSpec, low: int, high: int) -> tuple[int, int]:
    side = rng.randint(low, high)
    other = int(side * rng.uniform(0.56, 0.8))
    return (side, other) if rng.random() < 0.7 else (other, side)


def _encode(kind: str, rng: random.Random, spec: CorpusSpec) -> bytes:
    out = io.BytesIO()
    if kind in ("jpeg", "progressive", "exif", "cmyk"):
        width, height = _size(rng, spec, spec.min_side, spec.max_side)
        photo = _photo(rng, width, height)
        options: dict[str, object] = {"quality": 85}
        if kind == "progressive":
            options["progressive"] = True
        if kind == "exif":
            exif = Image.Exif()
            exif[0x0112] = 6  # rotated 90 degrees: viewers must turn it
            options["exif"] = exif.tobytes()
        if kind == "cmyk":
            photo = photo.convert("CMYK")
        photo.save(out, "JPEG", **options)
    elif kind == "png":
        width, height = _size(rng, spec, 400, 1200)
        photo = _photo(rng, width, height).convert("RGBA")
        alpha = Image.linear_gradient("L").resize((width, height))
        photo.putalpha(alpha)
        photo.save(out, "PNG")
    elif kind == "gif":
        width, height = _size(rng, spec, 200, 480)
        frames = [_photo(rng, width, height).convert("P") for _ in range(6)]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    else:
        width, height = _size(rng, spec, 800, 1600)
        _photo(rng, width, height).save(out, "WEBP", quality=80)
    return out.getvalue()


def build_posts(root: Path, spec: CorpusSpec, images: Sequence[ImageItem]) -> int:
    """Write the Hexo blog under ``root``; returns the number of image references."""
    rng = random.Random(spec.seed + 1)
    posts = root / "source" / "_posts"
    posts.mkdir(parents=True, exist_ok=True)
    # As every Hexo blog has one: reading it is part of each run's cost.
    (root / "_config.yml").write_text(_HEXO_CONFIG, encoding="utf-8")
    refs = 0
    for n in range(spec.posts):
        text, count = _post(rng, n, images)
        (posts / f"post-{n:05d}.md").write_text(text, encoding="utf-8")
        refs += count
    return refs


_HEXO_CONFIG = """\
# Hexo Configuration (the defaults of `hexo init`, as most blogs keep them)
title: Bench blog
subtitle: ''
description: ''
author: bench
language: zh-CN
timezone: ''
url: https://blog.bench.example
root: /
permalink: :year/:month/:day/:title/
permalink_defaults:
pretty_urls:
  trailing_index: true
  trailing_html: true
source_dir: source
public_dir: public
tag_dir: tags
archive_dir: archives
category_dir: categories
new_post_name: :title.md
default_layout: post
render_drafts: false
post_asset_folder: false
relative_link: false
future: true
syntax_highlighter: highlight.js
highlight:
  line_number: true
  auto_detect: false
  tab_replace: ''
index_generator:
  path: ''
  per_page: 10
  order_by: -date
default_category: uncategorized
date_format: YYYY-MM-DD
time_format: HH:mm:ss
per_page: 10
pagination_dir: page
include:
exclude:
ignore:
theme: landscape
deploy:
  type: ''
"""


def _pick(rng: random.Random, images: Sequence[ImageItem]) -> str:
    # Squaring skews the choice: a few images are shared by many posts.
    return f"https://{HOST}/{images[int(len(images) * rng.random() ** 2)].path}"


def _paragraph(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(rng.choice(_ZH) for _ in range(rng.randint(60, 160)))
    words = _EN.split()
    return " ".join(rng.choice(words) for _ in range(rng.randint(30, 70))).capitalize() + "."


def _post(rng: random.Random, n: int, images: Sequence[ImageItem]) -> tuple[str, int]:
    gallery = [_pick(rng, images) for _ in range(rng.randint(3, 6))]
    broken = rng.random() < 0.3  # the seed post's httpss:// scheme
    lines = [
        "---",
        f"title: 【笔记】Post {n}",
        f"date: 2025-{1 + n % 12:02d}-{1 + n % 28:02d}",
        f"headimg: {gallery[0]}",
        "tags: [notes]",
        "---",
        "",
        "{% gallery stretch::6::two %}",
        *(f"![]({url.replace('https://', 'httpss://') if broken else url})" for url in gallery),
        "{% endgallery %}",
    ]
    refs = 1 + len(gallery)
    for _ in range(rng.randint(2, 4)):
        lines += ["", _paragraph(rng)]
        roll = rng.random()
        if roll < 0.35:
            lines += ["", f"![photo]({_pick(rng, images)})"]
            refs += 1
        elif roll < 0.55:
            lines += ["", f'<img src="{_pick(rng, images)}" alt="photo">']
            refs += 1
        elif roll < 0.65:
            lines += ["", "```markdown", f"![in code]({_pick(rng, images)})", "```"]
    return "\n".join(lines) + "\n", refs


def small_images(root: Path, count: int) -> list[Path]:
    """``count`` small JPEG photos (~10 kB) for the memory jobs; made once."""
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"s{n}.jpg" for n in range(count)]
    for n, path in enumerate(paths):
        if not path.exists():
            rng = random.Random(n)
            buffer = io.BytesIO()
            _photo(rng, 160, 120).save(buffer, "JPEG", quality=85)
            path.write_bytes(buffer.getvalue())
    return paths
