"""An image's displayed size from its file header (EXIF orientation applied), without decoding the pixels."""

from __future__ import annotations

import warnings
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "image_size"]

#: suffixes (lower case) of the image files the folder formats look for
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".mpo", ".dng"})

_ROTATED = (5, 6, 7, 8)  # EXIF orientations that turn the stored image by 90 degrees
_ORIENTATION = 0x0112


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` as the image is displayed, or None when the file is missing or not an image.

    Pillow's ``Image.open`` reads the header only. A photo stored landscape with EXIF orientation 6 ("rotate 90")
    reports its portrait size, as the data contract asks (``assets.width`` / ``height``).

    >>> image_size(Path("no-such-file.jpg")) is None
    True
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decompression-bomb warning is not ours to raise here
            with Image.open(path) as im:
                width, height = im.size
                # PNG keeps EXIF after the pixels: asking for it there would decode the image; only use it when
                # the header already carried it
                has_exif = im.format != "PNG" or "exif" in im.info
                orientation = im.getexif().get(_ORIENTATION) if has_exif else None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return (height, width) if orientation in _ROTATED else (width, height)
