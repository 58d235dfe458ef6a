"""Pixels and bytes of images: whether a file is a complete image (``validate``:
the bytes decide), and thumbnails (``thumbnails``, its process pool; ``imaging``:
the pixel steps). Nothing here knows URLs, posts or the state."""
