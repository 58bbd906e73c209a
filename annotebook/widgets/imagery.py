"""The pixels behind the editor: the image at display size, and sharper crops once zoomed past it.

`Picture` holds one asset's image (upright: EXIF applied by `render.load_image`) and plans what to send. The
image goes to the browser once per asset, downscaled to what the fitted view shows. Zoomed past that, the visible
part (with a margin, so that small pans need nothing new) is sent again at the resolution the canvas shows, which
is the image's full resolution from 1:1 on; a crop that still covers the view at enough resolution is reused.
Pure Pillow; the editor wraps the JPEG bytes in image widgets.

>>> from PIL import Image
>>> pic = Picture(Image.new("RGB", (4000, 3000)), 4000, 3000)
>>> pic.display_size(800, 600)
(800, 600)
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .viewport import Viewport

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Crop", "Picture", "asset_picture", "load_picture"]

JPEG_QUALITY = 88
CROP_MARGIN = 0.2  # of the visible size, on each side
SHARPER_THAN = 1.02  # a crop is sent once the view is this much sharper than what the browser has


@dataclass(frozen=True)
class Crop:
    """A part of the image, ``(x0, y0, x1, y1)`` in asset pixels, sent at ``resolution`` pixels per asset pixel."""

    x0: float
    y0: float
    x1: float
    y1: float
    resolution: float

    def covers(self, rect: tuple[float, float, float, float]) -> bool:
        """Whether the crop holds all of ``rect`` (asset pixels)."""
        return self.x0 <= rect[0] and self.y0 <= rect[1] and self.x1 >= rect[2] and self.y1 >= rect[3]


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class Picture:
    """One asset's image, with the asset's pixel size (the image may be stored at another size)."""

    def __init__(self, image: Image.Image, width: float, height: float):
        self.image = image
        self.width = float(width)
        self.height = float(height)
        #: image pixels per asset pixel: the most resolution there is
        self.native = min(image.width / self.width, image.height / self.height)

    def display_size(self, canvas_width: int, canvas_height: int) -> tuple[int, int]:
        """The size the whole image is sent at: what the fitted view shows, never above the image's own."""
        fit = min(canvas_width / self.width, canvas_height / self.height, self.native)
        return max(1, round(self.width * fit)), max(1, round(self.height * fit))

    def display_jpeg(self, canvas_width: int, canvas_height: int) -> bytes:
        """The whole image at display size, as JPEG."""
        from PIL import Image

        size = self.display_size(canvas_width, canvas_height)
        image = self.image if size == self.image.size else self.image.resize(size, Image.Resampling.LANCZOS)
        return _jpeg(image)

    def display_resolution(self, canvas_width: int, canvas_height: int) -> float:
        """Pixels per asset pixel of the display-size image."""
        return self.display_size(canvas_width, canvas_height)[0] / self.width

    def crop_for(self, view: Viewport, current: Crop | None) -> Crop | None:
        """The crop the view needs, ``current`` when it still serves, or None when the display image is enough."""
        display = self.display_resolution(view.canvas_width, view.canvas_height)
        need = min(view.scale, self.native)
        if need <= display * SHARPER_THAN:
            return None
        visible = view.visible()
        if visible[2] <= visible[0] or visible[3] <= visible[1]:
            return current
        if current is not None and current.covers(visible) and current.resolution >= need / SHARPER_THAN:
            return current
        mx, my = (visible[2] - visible[0]) * CROP_MARGIN, (visible[3] - visible[1]) * CROP_MARGIN
        return Crop(
            max(0.0, math.floor(visible[0] - mx)),
            max(0.0, math.floor(visible[1] - my)),
            min(self.width, math.ceil(visible[2] + mx)),
            min(self.height, math.ceil(visible[3] + my)),
            need,
        )

    def crop_jpeg(self, crop: Crop) -> bytes:
        """The pixels of ``crop`` at its resolution, as JPEG."""
        from PIL import Image

        kx, ky = self.image.width / self.width, self.image.height / self.height
        box = (round(crop.x0 * kx), round(crop.y0 * ky), round(crop.x1 * kx), round(crop.y1 * ky))
        size = (
            max(1, round((crop.x1 - crop.x0) * crop.resolution)),
            max(1, round((crop.y1 - crop.y0) * crop.resolution)),
        )
        part = self.image.crop(box)
        return _jpeg(part if part.size == size else part.resize(size, Image.Resampling.LANCZOS))


def load_picture(uri: Any, width: float, height: float) -> tuple[Picture | None, str]:
    """The asset's `Picture`, or None and why not (the editor then shows a placeholder with the reason)."""
    from PIL import Image

    from ..render import load_image

    if not isinstance(uri, str) or not uri:
        return None, "no image"
    try:
        return Picture(load_image(uri), width, height), ""
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        return None, f"cannot read image: {type(exc).__name__}"


def asset_picture(asset: str, uri: Any, width: float, height: float, *frames: Any) -> tuple[Picture | None, str]:
    """The asset's `Picture` read through the backend of the frames' load (its cached file: `render.image_file`),
    or None and why not. An untraced frame's asset is read from ``uri``."""
    from ..errors import AnnotebookError
    from ..render import image_file

    try:
        where = image_file(asset, uri, *frames)
    except AnnotebookError as exc:
        return None, f"cannot read image: {type(exc).__name__}"
    return load_picture(where, width, height)
