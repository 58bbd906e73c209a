"""The bundled sample dataset "shapes": coloured shapes on light backgrounds, with planted mistakes.

Nothing is stored in the repository: `make_shapes` draws the images with Pillow into a folder and returns
the three canonical tables. The same seed gives the same image bytes and the same tables (every column but
``id``, which `annotebook.schema.annotations_frame` mints afresh, as for any hand-built row).

What the images hold: 1 to 5 filled circles, squares (a few of them rotated), triangles and stars in distinct
colours on a light gradient with soft noise. One asset is a JPEG stored on its side with EXIF Orientation 6:
its `width` / `height` are the displayed (upright) size, as the data contract asks.

What the annotations hold: a box row per shape (rotated squares carry their clockwise ``rotation``), an exact
outline polygon row per triangle and star, and on a few images a "star-tips" keypoints row (5 tips; one tip
is covered by a small circle drawn on top, so it has visibility 1 and the star's rows carry
``{"occluded": True}``).

Planted mistakes (see `planted_mistakes`), placed by the seed:

- ``wrong_label``: box rows with a wrong class, including the misspelling "sqare" on squares (a triangle's or
  star's polygon row keeps the true label);
- ``shifted_box``: box rows moved by about 15% of their size;
- ``duplicate``: an extra box row, an exact copy or a near copy (corners moved by at most 2% of the size);
- ``missing_box``: a drawn shape with no row at all;
- ``noise_box``: small boxes labelled "noise" on plain background.

Predictions (`make_predictions`): what a good detector would say about the same images, drawn from a seed of
their own (``model_seed``) that the checks never saw: a box per drawn shape (missing boxes included, planted
mistakes not: the model sees the pixels) with its true class, its corners jittered by about 1% of its size and a
score in [0.6, 0.99]; and a few wrong ones, all unsure (score below 0.4): a wrong class over a real shape, or a
box on plain background.

A planted mistake is identified by ``(asset, label, box)``: the box row of that asset and label whose corners
lie within a small tolerance of the recorded ``x0, y0, x1, y1``. Row ids are minted per call, so they cannot
name it; the tolerance lets the match survive a round trip through a format that rounds to whole pixels.
`find_planted` does that match.

Examples
--------
>>> import tempfile, pathlib
>>> assets, anns, labels = make_shapes(pathlib.Path(tempfile.mkdtemp()), n_assets=4)
>>> list(assets.asset)
['shapes_000', 'shapes_001', 'shapes_002', 'shapes_003']
"""

from __future__ import annotations

import math
import pathlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from annotebook.schema import annotations_frame, assets_frame, labels_frame

__all__ = ["DATASET", "find_planted", "make_predictions", "make_shapes", "planted_mistakes", "shapes_labels"]

DATASET = "shapes"
AUTHOR = "generator"

#: label -> colour of the labels table, in index order
LABEL_COLORS: dict[str, str] = {
    "circle": "#1f77b4",
    "square": "#ff7f0e",
    "triangle": "#2ca02c",
    "star": "#d62728",
    "star-tips": "#9467bd",
    "noise": "#7f7f7f",
}
STAR_TIPS = ("tip1", "tip2", "tip3", "tip4", "tip5")
STAR_SKELETON = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 0))

SHAPES = ("circle", "square", "triangle", "star")
FILLS = (
    (220, 40, 40), (40, 120, 220), (30, 160, 60), (240, 150, 20), (150, 60, 190),
    (20, 170, 170), (200, 50, 140), (110, 80, 40), (60, 60, 60), (230, 200, 30),
)  # fmt: skip
LANDSCAPE = ((640, 480), (600, 400), (560, 420), (512, 384), (480, 360), (400, 300), (320, 240))
PORTRAIT = ((240, 320), (300, 400), (360, 480))
EXIF_SIZE = (360, 480)  # displayed size of the JPEG; it is stored 480 x 360
MISTAKE_COLUMNS = ("asset", "kind_of_mistake", "label", "x0", "y0", "x1", "y1", "detail")
#: how many of each planted mistake (fewer when a small dataset has too few shapes)
PLANTS = (
    ("misspelt", 2),
    ("wrong_label", 2),
    ("shifted_box", 3),
    ("exact_duplicate", 2),
    ("near_duplicate", 1),
    ("missing_box", 1),
)
NOISE_BOXES = 2
KEYPOINT_STARS = 4
GAP = 6.0  # pixels kept free between shapes (and to the image border)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Shape:
    """One drawn shape, in pixel edge coordinates of its image."""

    kind: str
    cx: float
    cy: float
    size: float  # half side of a square or circle, outer radius of a triangle or star
    angle: float  # clockwise degrees
    fill: tuple[int, int, int]
    keypoints: bool = False
    occluded_tip: int | None = None
    occluder: bool = False

    def outline(self) -> list[tuple[float, float]]:
        """The exact outline's vertices (a circle gives its 4 box corners)."""
        if self.kind == "triangle":
            return _ring(self.cx, self.cy, [self.size] * 3, self.angle)
        if self.kind == "star":
            return _ring(self.cx, self.cy, [self.size, self.size * 0.45] * 5, self.angle)
        if self.kind == "square" and self.angle:
            return _rotated_square(self.cx, self.cy, self.size, self.angle)
        s = self.size
        return [
            (self.cx - s, self.cy - s),
            (self.cx + s, self.cy - s),
            (self.cx + s, self.cy + s),
            (self.cx - s, self.cy + s),
        ]

    def extent(self) -> Box:
        """The drawn extent (pixels)."""
        xs, ys = zip(*self.outline(), strict=True)
        return (min(xs), min(ys), max(xs), max(ys))

    def box(self) -> Box:
        """The annotation box (pixels): the unrotated square of a rotated square, else the extent."""
        if self.kind == "square":
            s = self.size
            return (self.cx - s, self.cy - s, self.cx + s, self.cy + s)
        return self.extent()

    def rotation(self) -> float:
        """The box row's clockwise rotation: a square's angle; other boxes are the upright extent."""
        return self.angle if self.kind == "square" else 0.0

    def tips(self) -> list[tuple[float, float]]:
        """A star's 5 outer tips, clockwise from the first."""
        return self.outline()[0::2]


@dataclass
class Scene:
    """One image: its size, how it is stored, its shapes and the planted mistakes on it."""

    index: int
    width: int
    height: int
    jpeg: bool
    completed: bool
    shapes: list[Shape] = field(default_factory=list)
    plants: dict[int, tuple[str, Any]] = field(default_factory=dict)  # shape index -> (mistake, parameter)
    noise: list[Box] = field(default_factory=list)

    @property
    def asset(self) -> str:
        return f"{DATASET}_{self.index:03d}"

    @property
    def name(self) -> str:
        return f"{self.asset}.{'jpg' if self.jpeg else 'png'}"


# ----------------------------------------------------------------------------------------------------
# Geometry (pixels)


def _ring(cx: float, cy: float, radii: list[float], angle: float) -> list[tuple[float, float]]:
    n = len(radii)
    out = []
    for k, r in enumerate(radii):
        # the first vertex points straight up; with y down, growing angles go clockwise
        a = math.radians(angle - 90.0 + 360.0 * k / n)
        out.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return out


def _rotated_square(cx: float, cy: float, s: float, angle: float) -> list[tuple[float, float]]:
    c, si = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    corners = ((-s, -s), (s, -s), (s, s), (-s, s))
    return [(cx + dx * c - dy * si, cy + dx * si + dy * c) for dx, dy in corners]


def _overlaps(a: Box, b: Box, gap: float = GAP) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _inside(b: Box, width: int, height: int, gap: float = GAP) -> bool:
    return b[0] >= gap and b[1] >= gap and b[2] <= width - gap and b[3] <= height - gap


# ----------------------------------------------------------------------------------------------------
# Scenes: everything decided from the seed, before any pixel is drawn


def _random_shape(rng: random.Random, kind: str, width: int, height: int, fill: tuple[int, int, int]) -> Shape:
    short = min(width, height)
    half = rng.randint(int(short * 0.08), int(short * 0.17))
    if kind in ("circle", "square"):
        x0, y0 = rng.randint(0, width - 2 * half), rng.randint(0, height - 2 * half)
        angle = float(rng.choice((15, 25, 35))) if kind == "square" and rng.random() < 0.25 else 0.0
        return Shape(kind, x0 + half, y0 + half, float(half), angle, fill)
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    # a triangle or star fills less of its box than a square: a larger radius keeps them as visible
    return Shape(kind, cx, cy, half * 1.3, rng.uniform(-30.0, 30.0), fill)


def _place(rng: random.Random, scene: Scene, kind: str, fill: tuple[int, int, int]) -> Shape | None:
    for _ in range(60):
        shape = _random_shape(rng, kind, scene.width, scene.height, fill)
        ext = shape.extent()
        if _inside(ext, scene.width, scene.height) and not any(_overlaps(ext, s.extent()) for s in scene.shapes):
            return shape
    return None


def _occlude_a_tip(rng: random.Random, scene: Scene, star: int, fill: tuple[int, int, int]) -> bool:
    """Mark shape ``star`` for keypoints and cover one of its tips with a small circle, if one fits."""
    shape = scene.shapes[star]
    others = [s.extent() for i, s in enumerate(scene.shapes) if i != star]
    half = max(4, round(shape.size * 0.3))
    for tip in rng.sample(range(5), 5):
        tx, ty = shape.tips()[tip]
        cover = Shape("circle", round(tx) + 0.0, round(ty) + 0.0, float(half), 0.0, fill, occluder=True)
        ext = cover.extent()
        if _inside(ext, scene.width, scene.height) and not any(_overlaps(ext, o) for o in others):
            scene.shapes[star] = replace(shape, keypoints=True, occluded_tip=tip)
            scene.shapes.append(cover)
            return True
    return False


def _scene(rng: random.Random, index: int, jpeg: bool, keypoints_wanted: bool) -> Scene:
    if jpeg:
        width, height = EXIF_SIZE
    else:
        width, height = rng.choice(PORTRAIT if rng.random() < 0.15 else LANDSCAPE)
    scene = Scene(index, width, height, jpeg, completed=rng.random() < 0.5)
    fills = rng.sample(FILLS, len(FILLS))
    for k in range(rng.randint(1, 4 if keypoints_wanted else 5)):
        shape = _place(rng, scene, rng.choice(SHAPES), fills[k])
        if shape is not None:
            scene.shapes.append(shape)
    stars = [i for i, s in enumerate(scene.shapes) if s.kind == "star"]
    if keypoints_wanted and stars:
        _occlude_a_tip(rng, scene, stars[0], fills[-1])
    return scene


def _noise_box(rng: random.Random, scene: Scene) -> Box | None:
    for _ in range(60):
        w, h = rng.uniform(0.03, 0.06) * scene.width, rng.uniform(0.03, 0.06) * scene.height
        x0, y0 = rng.uniform(0, scene.width - w), rng.uniform(0, scene.height - h)
        box = (x0, y0, x0 + w, y0 + h)
        if _inside(box, scene.width, scene.height) and not any(_overlaps(box, s.extent()) for s in scene.shapes):
            return box
    return None


def _plant(rng: random.Random, scenes: list[Scene]) -> None:
    """Choose the shapes that carry a mistake: at most one each, never a keypoints star or its occluder."""
    pool = [(s.index, i) for s in scenes for i, sh in enumerate(s.shapes) if not (sh.keypoints or sh.occluder)]
    rng.shuffle(pool)
    for mistake, count in PLANTS:
        fits = [(a, i) for a, i in pool if mistake != "misspelt" or scenes[a].shapes[i].kind == "square"]
        for a, i in fits[:count]:
            pool.remove((a, i))
            scenes[a].plants[i] = (mistake, _plant_parameter(rng, mistake, scenes[a].shapes[i]))
    for scene in rng.sample(scenes, min(NOISE_BOXES, len(scenes))):
        box = _noise_box(rng, scene)
        if box is not None:
            scene.noise.append(box)


def _plant_parameter(rng: random.Random, mistake: str, shape: Shape) -> Any:
    """The wrong label, the shift direction or the near copy's corner moves (fractions of the size)."""
    if mistake == "wrong_label":
        return rng.choice([k for k in SHAPES if k != shape.kind])
    if mistake == "shifted_box":
        return rng.choice(((1, 0), (0, 1), (1, 1)))
    if mistake == "near_duplicate":
        return tuple(rng.uniform(-0.02, 0.02) for _ in range(4))
    return None


def _scenes(seed: int, n_assets: int) -> list[Scene]:
    rng = random.Random(seed)
    jpeg = min(5, n_assets - 1)
    scenes: list[Scene] = []
    for index in range(n_assets):
        stars = sum(sh.keypoints for s in scenes for sh in s.shapes)
        scenes.append(_scene(rng, index, index == jpeg, stars < KEYPOINT_STARS and rng.random() < 0.5))
    _plant(rng, scenes)
    return scenes


# ----------------------------------------------------------------------------------------------------
# Rows


def _norm(box: Box, scene: Scene) -> Box:
    return (box[0] / scene.width, box[1] / scene.height, box[2] / scene.width, box[3] / scene.height)


def _flat(points: list[tuple[float, float]], scene: Scene) -> tuple[float, ...]:
    return tuple(v for x, y in points for v in (x / scene.width, y / scene.height))


def _shifted(box: Box, step: tuple[int, int], scene: Scene) -> Box:
    """``box`` moved by 15% of its size along ``step``, towards the image centre so that it stays inside."""
    x0, y0, x1, y1 = box
    dx = step[0] * 0.15 * (x1 - x0) * (1 if (x0 + x1) / 2 < 0.5 else -1)
    dy = step[1] * 0.15 * (y1 - y0) * (1 if (y0 + y1) / 2 < 0.5 else -1)
    return (x0 + dx, y0 + dy, x1 + dx, y1 + dy)


def _jittered(box: Box, moves: tuple[float, float, float, float]) -> Box:
    w, h = box[2] - box[0], box[3] - box[1]
    out = [v + m * s for v, m, s in zip(box, moves, (w, h, w, h), strict=True)]
    return (max(out[0], 0.0), max(out[1], 0.0), min(out[2], 1.0), min(out[3], 1.0))


def _box_row(scene: Scene, label: str, box: Box, rotation: float, attributes: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "dataset": DATASET,
        "asset": scene.asset,
        "label": label,
        "kind": "box",
        "x0": box[0],
        "y0": box[1],
        "x1": box[2],
        "y1": box[3],
        "rotation": rotation,
        "attributes": attributes,
        "author": AUTHOR,
    }


def _point_row(scene: Scene, label: str, kind: str, points: tuple[float, ...], **extra: Any) -> dict[str, Any]:
    return {
        "dataset": DATASET,
        "asset": scene.asset,
        "label": label,
        "kind": kind,
        "points": (points,),
        "author": AUTHOR,
        **extra,
    }


def _shape_rows(scene: Scene, i: int) -> Iterator[dict[str, Any]]:
    shape = scene.shapes[i]
    mistake, param = scene.plants.get(i, ("", None))
    if mistake == "missing_box":
        return
    attributes = {"occluded": True} if shape.keypoints else None
    box = _norm(shape.box(), scene)
    label = {"misspelt": "sqare", "wrong_label": param}.get(mistake, shape.kind)
    written = _shifted(box, param, scene) if mistake == "shifted_box" else box
    yield _box_row(scene, label, written, shape.rotation(), attributes)
    if mistake in ("exact_duplicate", "near_duplicate"):
        yield _box_row(scene, label, box if param is None else _jittered(box, param), shape.rotation(), attributes)
    if shape.kind in ("triangle", "star"):
        yield _point_row(scene, shape.kind, "polygon", _flat(shape.outline(), scene), attributes=attributes)
    if shape.keypoints:
        visibility = tuple(1 if k == shape.occluded_tip else 2 for k in range(5))
        yield _point_row(scene, "star-tips", "keypoints", _flat(shape.tips(), scene), visibility=visibility)


def _rows(scenes: list[Scene]) -> Iterator[dict[str, Any]]:
    for scene in scenes:
        for i in range(len(scene.shapes)):
            yield from _shape_rows(scene, i)
        for box in scene.noise:
            yield _box_row(scene, "noise", _norm(box, scene), 0.0, None)


def _mistake_records(scene: Scene) -> Iterator[dict[str, Any]]:
    for i, (mistake, param) in sorted(scene.plants.items()):
        shape = scene.shapes[i]
        box = _norm(shape.box(), scene)
        written, label, kind = box, shape.kind, mistake
        if mistake == "misspelt":
            label, kind, detail = "sqare", "wrong_label", "misspelling of 'square'"
        elif mistake == "wrong_label":
            label, detail = param, f"true label {shape.kind!r}"
        elif mistake == "shifted_box":
            written = _shifted(box, param, scene)
            detail = "moved by 15% of its size; true box ({:.4f}, {:.4f}, {:.4f}, {:.4f})".format(*box)
        elif mistake == "exact_duplicate":
            kind, detail = "duplicate", "exact copy of another row"
        elif mistake == "near_duplicate":
            written, kind = _jittered(box, param), "duplicate"
            detail = "near copy of another row (corners moved by at most 2% of the size)"
        else:
            detail = f"a drawn {shape.kind} with no annotation"
        yield _mistake(scene, kind, label, written, detail)
    for box in scene.noise:
        yield _mistake(scene, "noise_box", "noise", _norm(box, scene), "a box on plain background")


def _mistake(scene: Scene, kind: str, label: str, box: Box, detail: str) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {
        "asset": scene.asset,
        "kind_of_mistake": kind,
        "label": label,
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "detail": detail,
    }


# ----------------------------------------------------------------------------------------------------
# Pixels


def _background(scene: Scene, seed: int) -> Image.Image:
    """A light diagonal gradient with soft, low-frequency noise (cheap to compress)."""
    rng = random.Random(f"{seed}:{scene.index}")
    w, h = scene.width, scene.height
    c0 = np.array([rng.randint(215, 250) for _ in range(3)], dtype=np.float32)
    c1 = np.array([rng.randint(215, 250) for _ in range(3)], dtype=np.float32)
    t = np.add.outer(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)) / (w + h - 2)
    gw, gh = w // 32 + 2, h // 32 + 2
    coarse = np.array([rng.uniform(-6.0, 6.0) for _ in range(gw * gh)], dtype=np.float32).reshape(gh, gw)
    noise = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR))
    pixels = c0 + (c1 - c0) * t[..., None] + noise[..., None]
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))


def _draw(scene: Scene, seed: int) -> Image.Image:
    image = _background(scene, seed)
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        x0, y0, x1, y1 = shape.box()
        if shape.kind == "circle":
            draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=shape.fill)  # Pillow's box is inclusive of x1, y1
        elif shape.kind == "square" and not shape.angle:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=shape.fill)
        else:  # Pillow puts pixel i's centre at i: an edge coordinate x is Pillow's x - 0.5
            draw.polygon([(x - 0.5, y - 0.5) for x, y in shape.outline()], fill=shape.fill)
    return image


def _write(image: Image.Image, scene: Scene, path: pathlib.Path) -> None:
    if not scene.jpeg:
        image.save(path, format="PNG", compress_level=3)
        return
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    stored = image.transpose(Image.Transpose.ROTATE_90)  # undone by exif_transpose's ROTATE_270
    stored.save(path, format="JPEG", quality=85, exif=exif.tobytes())


# ----------------------------------------------------------------------------------------------------
# Public


def shapes_labels() -> pd.DataFrame:
    """The labels table of "shapes": fixed colours, ``index`` 0..5, names and skeleton of "star-tips".

    >>> list(shapes_labels().name)
    ['circle', 'square', 'triangle', 'star', 'star-tips', 'noise']
    """
    return labels_frame(
        {
            "dataset": DATASET,
            "name": name,
            "index": i,
            "color": color,
            "keypoints": STAR_TIPS if name == "star-tips" else None,
            "skeleton": STAR_SKELETON if name == "star-tips" else None,
        }
        for i, (name, color) in enumerate(LABEL_COLORS.items())
    )


def make_shapes(
    image_dir: pathlib.Path, n_assets: int = 36, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Draw the "shapes" images into ``image_dir`` and return its (assets, annotations, labels) tables.

    Files are (over)written on every call, named ``shapes_000.png`` ...; one is a ``.jpg`` with EXIF rotation.

    >>> import tempfile, pathlib
    >>> assets, anns, labels = make_shapes(pathlib.Path(tempfile.mkdtemp()), n_assets=2, seed=1)
    >>> sorted(set(anns.kind)) <= ["box", "keypoints", "polygon"]
    True
    """
    if n_assets < 1:
        raise ValueError("n_assets must be at least 1")
    image_dir = pathlib.Path(image_dir).absolute()
    image_dir.mkdir(parents=True, exist_ok=True)
    scenes = _scenes(seed, n_assets)
    records = []
    for scene in scenes:
        path = image_dir / scene.name
        _write(_draw(scene, seed), scene, path)
        records.append(
            {
                "dataset": DATASET,
                "asset": scene.asset,
                "name": scene.name,
                "width": scene.width,
                "height": scene.height,
                "uri": str(path),
                "status": "Completed" if scene.completed else "NotStarted",
            }
        )
    return assets_frame(records), annotations_frame(list(_rows(scenes))), shapes_labels()


def planted_mistakes(seed: int = 0, n_assets: int = 36) -> pd.DataFrame:
    """The mistakes `make_shapes` plants for ``seed`` and ``n_assets`` (no image is drawn).

    Columns: asset, kind_of_mistake (``wrong_label``, ``shifted_box``, ``duplicate``, ``missing_box``,
    ``noise_box``), label (as written in the planted row; a missing box gives the shape's class),
    x0, y0, x1, y1 (the planted row's box; a missing box gives the shape's), detail (the truth, in words).
    `find_planted` finds the rows that carry them.

    >>> sorted(set(planted_mistakes().kind_of_mistake))
    ['duplicate', 'missing_box', 'noise_box', 'shifted_box', 'wrong_label']
    """
    if n_assets < 1:
        raise ValueError("n_assets must be at least 1")
    records = [r for scene in _scenes(seed, n_assets) for r in _mistake_records(scene)]
    frame = pd.DataFrame(records, columns=list(MISTAKE_COLUMNS))
    return frame.astype({c: "float64" for c in ("x0", "y0", "x1", "y1")}).astype(
        {c: "str" for c in ("asset", "kind_of_mistake", "label", "detail")}
    )


def find_planted(anns: pd.DataFrame, mistakes: pd.DataFrame, tol: float = 0.01) -> pd.DataFrame:
    """``mistakes`` joined with the ids of the non-deleted box rows of ``anns`` that carry them.

    A row carries a mistake when asset and label are equal and each box corner is within ``tol`` (normalised).
    One mistake may match several rows (a duplicate matches the row it copies too); a missing box matches
    none and keeps ``id`` missing.

    >>> import tempfile, pathlib
    >>> _, anns, _ = make_shapes(pathlib.Path(tempfile.mkdtemp()))
    >>> found = find_planted(anns, planted_mistakes())
    >>> bool(found[found.kind_of_mistake != "missing_box"].id.notna().all())
    True
    """
    boxes = anns.loc[(anns["kind"] == "box") & ~anns["deleted"], ["asset", "label", "id", "x0", "y0", "x1", "y1"]]
    pairs = (
        mistakes.reset_index(drop=True)
        .reset_index(names="mistake")
        .merge(boxes, on=["asset", "label"], how="left", suffixes=("", "_row"))
    )
    close = np.ones(len(pairs), dtype=bool)
    for c in ("x0", "y0", "x1", "y1"):
        close &= (pairs[c] - pairs[f"{c}_row"]).abs().to_numpy(dtype=float, na_value=np.inf) <= tol
    hits = pairs[close]
    misses = pairs[~pairs["mistake"].isin(hits["mistake"])].drop_duplicates("mistake")
    misses = misses.assign(id=pd.Series(np.nan, index=misses.index, dtype=hits["id"].dtype))  # one dtype to concat
    out = pd.concat([hits, misses]).sort_values(["mistake", "id"], kind="stable", na_position="last")
    ids = pd.array([None if pd.isna(v) else str(v) for v in out["id"]], dtype=pd.StringDtype(na_value=np.nan))
    return out[list(mistakes.columns)].assign(id=ids).reset_index(drop=True)  # not astype("str"): pandas 2 writes "nan"


MODEL = "model:shapes-detector"
MODEL_ERRORS = 4  # unsure wrong predictions per call (fewer on a small dataset)


def make_predictions(seed: int = 0, n_assets: int = 36, model_seed: int = 1) -> pd.DataFrame:
    """Box predictions for the images `make_shapes` draws for ``seed`` and ``n_assets`` (no image is drawn).

    One box per drawn shape with its true class, jittered and scored from ``model_seed``, plus a few unsure
    wrong ones (see the module). Rows carry ``author`` ``model:shapes-detector`` and a ``score``.

    >>> preds = make_predictions(n_assets=4)
    >>> bool(preds.score.between(0, 1).all()), set(preds.kind)
    (True, {'box'})
    """
    if n_assets < 1:
        raise ValueError("n_assets must be at least 1")
    scenes = _scenes(seed, n_assets)
    rng = random.Random(f"predictions:{seed}:{model_seed}")
    rows = []
    for scene in scenes:
        for shape in scene.shapes:
            moves = (rng.gauss(0.0, 0.01), rng.gauss(0.0, 0.01), rng.gauss(0.0, 0.01), rng.gauss(0.0, 0.01))
            box = _jittered(_norm(shape.box(), scene), moves)
            rows.append({**_box_row(scene, shape.kind, box, shape.rotation(), None), "score": rng.uniform(0.6, 0.99)})
    for scene in rng.sample(scenes, min(MODEL_ERRORS, len(scenes))):
        error = _model_error(rng, scene)
        if error is not None:
            rows.append(error)
    return annotations_frame([{**r, "author": MODEL} for r in rows])


def _model_error(rng: random.Random, scene: Scene) -> dict[str, Any] | None:
    """An unsure wrong prediction: another class over one of the scene's shapes, else a box on background."""
    score = rng.uniform(0.1, 0.4)
    if scene.shapes and rng.random() < 0.5:
        shape = rng.choice(scene.shapes)
        wrong = rng.choice([k for k in SHAPES if k != shape.kind])
        return {**_box_row(scene, wrong, _norm(shape.box(), scene), 0.0, None), "score": score}
    box = _noise_box(rng, scene)
    if box is None:
        return None
    return {**_box_row(scene, rng.choice(SHAPES), _norm(box, scene), 0.0, None), "score": score}


def reset(path: str | pathlib.Path | None = None) -> Any:
    """Put the sample dataset "shapes" back as shipped, with its planted mistakes; returns the `Connection`.

    ``path``: the local store's folder (default: the store ``ab.connect()`` opens). Everything earlier runs did to
    "shapes" there is dropped (other datasets are left alone), so a notebook that starts with ``reset()`` gives
    the same output on every run.

    >>> import annotebook as ab
    >>> conn = ab.samples.reset()                # doctest: +SKIP
    >>> len(conn.assets("shapes"))               # doctest: +SKIP
    36
    """
    from .backends.local import LocalBackend
    from .connection import connect

    conn = connect("local", **({"path": str(path)} if path is not None else {}))
    assert isinstance(conn.backend, LocalBackend)
    conn.backend.install_samples()
    conn._assets_cache.pop(DATASET, None)
    return conn
