"""The canvas <-> image transform of the editor: fit, zoom about a point, pan. Pure Python, no widgets.

A canvas point ``(cx, cy)`` shows the image point ``((cx - ox) / scale, (cy - oy) / scale)``: ``scale`` is canvas
pixels per image pixel and ``(ox, oy)`` is where the image's top-left corner sits on the canvas. Image points are
in pixels of the asset, on pixel edges (the image spans ``[0, width] x [0, height]``), as floats.

>>> v = Viewport(800, 600, 4000, 3000)
>>> v.scale, v.to_image(400, 300)
(0.2, (2000.0, 1500.0))
>>> v.zoom_at(400, 300, 10.0).to_image(400, 300)
(2000.0, 1500.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_SCALE", "Viewport"]

#: the deepest zoom: canvas pixels per image pixel
MAX_SCALE = 64.0
#: how far out one can zoom, relative to the fitted view
MIN_FIT_FRACTION = 0.25


@dataclass(frozen=True)
class Viewport:
    """Where the image sits on the canvas; every change returns a new `Viewport`."""

    canvas_width: int
    canvas_height: int
    image_width: float
    image_height: float
    scale: float = math.nan
    ox: float = math.nan
    oy: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.scale):  # a new viewport starts fitted
            fitted = self.fit()
            object.__setattr__(self, "scale", fitted.scale)
            object.__setattr__(self, "ox", fitted.ox)
            object.__setattr__(self, "oy", fitted.oy)

    @property
    def fit_scale(self) -> float:
        """The scale at which the whole image fits the canvas."""
        return min(self.canvas_width / self.image_width, self.canvas_height / self.image_height)

    def fit(self) -> Viewport:
        """The whole image, centred."""
        s = self.fit_scale
        ox = (self.canvas_width - self.image_width * s) / 2
        oy = (self.canvas_height - self.image_height * s) / 2
        return replace(self, scale=s, ox=ox, oy=oy)

    def zoom_at(self, cx: float, cy: float, factor: float) -> Viewport:
        """Zoom by ``factor`` keeping the image point under canvas point ``(cx, cy)`` where it is."""
        lo = self.fit_scale * MIN_FIT_FRACTION
        scale = min(max(self.scale * factor, lo), max(MAX_SCALE, lo))
        ix, iy = self.to_image(cx, cy)
        return replace(self, scale=scale, ox=cx - ix * scale, oy=cy - iy * scale)

    def pan(self, dx: float, dy: float) -> Viewport:
        """Move the image by ``(dx, dy)`` canvas pixels."""
        return replace(self, ox=self.ox + dx, oy=self.oy + dy)

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        """The image point (pixels, float) under canvas point ``(cx, cy)``."""
        return (cx - self.ox) / self.scale, (cy - self.oy) / self.scale

    def to_canvas(self, ix: float, iy: float) -> tuple[float, float]:
        """The canvas point showing image point ``(ix, iy)``."""
        return ix * self.scale + self.ox, iy * self.scale + self.oy

    def xy_to_canvas(self, xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """An ``(n, 2)`` array of image points on the canvas."""
        return np.asarray(xy, dtype=np.float64) * self.scale + (self.ox, self.oy)

    def visible(self) -> tuple[float, float, float, float]:
        """The image rectangle ``(x0, y0, x1, y1)`` the canvas shows, clipped to the image."""
        x0, y0 = self.to_image(0, 0)
        x1, y1 = self.to_image(self.canvas_width, self.canvas_height)
        return max(x0, 0.0), max(y0, 0.0), min(x1, self.image_width), min(y1, self.image_height)

    def tolerance(self, canvas_px: float) -> float:
        """``canvas_px`` canvas pixels as a distance in image pixels (hit-test slack)."""
        return canvas_px / self.scale
