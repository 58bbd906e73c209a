"""A synthetic detection set (truth and predictions) for evaluation tests and benchmarks, and its COCO files.

Boxes are random floats in pixels, so IoUs never sit exactly on a threshold; some truth is crowd; predictions are
jittered copies of the truth (some relabelled), plus false positives, with random scores (a few tied).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from annotebook import schema

SIZES = ((640, 480), (1280, 720), (800, 600), (500, 375))


def synthetic(
    n_images: int, per_image: int = 10, n_labels: int = 8, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(assets, truth, predictions): about ``per_image`` truth boxes an image, as many predictions."""
    rng = np.random.default_rng(seed)
    sizes = np.asarray(SIZES)[rng.integers(0, len(SIZES), n_images)]
    assets = schema.assets_frame(
        {
            "dataset": "syn",
            "asset": [f"img{i:06d}" for i in range(n_images)],
            "name": [f"img{i:06d}.jpg" for i in range(n_images)],
            "width": sizes[:, 0],
            "height": sizes[:, 1],
        }
    )
    counts = rng.poisson(per_image, n_images)
    img = np.repeat(np.arange(n_images), counts)
    n = len(img)
    w, h = rng.uniform(0.03, 0.5, n), rng.uniform(0.03, 0.5, n)
    x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    label = rng.integers(0, n_labels, n)
    crowd = rng.random(n) < 0.02
    truth = _frame(img, label, x0, y0, x0 + w, y0 + h, "t", attributes=[{"iscrowd": 1} if c else None for c in crowd])
    # predictions: most truth boxes found (jittered), some relabelled, plus false positives
    found = rng.random(n) < 0.85
    k = int(found.sum())
    jit = rng.normal(0, 0.08, (k, 4)) * np.stack([w[found], h[found], w[found], h[found]], axis=1)
    px0 = np.clip(x0[found] + jit[:, 0], 0, 1)
    py0 = np.clip(y0[found] + jit[:, 1], 0, 1)
    px1 = np.clip(x0[found] + w[found] + jit[:, 2], px0 + 1e-3, 1)
    py1 = np.clip(y0[found] + h[found] + jit[:, 3], py0 + 1e-3, 1)
    plabel = np.where(rng.random(k) < 0.1, rng.integers(0, n_labels, k), label[found])
    m = int(0.3 * n)
    fw, fh = rng.uniform(0.03, 0.4, m), rng.uniform(0.03, 0.4, m)
    fx, fy = rng.uniform(0, 1 - fw), rng.uniform(0, 1 - fh)
    score = np.r_[rng.uniform(0.3, 1.0, k), rng.uniform(0.0, 0.7, m)].round(3)  # rounding makes some ties
    preds = _frame(
        np.r_[img[found], rng.integers(0, n_images, m)],
        np.r_[plabel, rng.integers(0, n_labels, m)],
        np.r_[px0, fx], np.r_[py0, fy], np.r_[px1, fx + fw], np.r_[py1, fy + fh],
        "p", score=score,
    )  # fmt: skip
    return assets, truth, preds.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _frame(img: Any, label: Any, x0: Any, y0: Any, x1: Any, y1: Any, prefix: str, **extra: Any) -> pd.DataFrame:
    n = len(img)
    return schema.annotations_frame(
        {
            "dataset": "syn",
            "asset": [f"img{i:06d}" for i in img],
            "id": [f"{prefix}{i}" for i in range(n)],
            "label": [f"c{c}" for c in label],
            "kind": "box",
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "rotation": 0.0,
            **extra,
        }
    )


def write_coco(assets: pd.DataFrame, truth: pd.DataFrame, preds: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """The truth as a COCO file and the predictions as a COCO results file, boxes in pixels computed the way
    `annotebook.qa.evaluate` computes them (x = x0 * width, w = x1 * width - x), image ids in asset order."""
    image_id = {a: i + 1 for i, a in enumerate(sorted(assets["asset"]))}
    labels = sorted(set(truth["label"]) | set(preds["label"]))
    cat_id = {c: i + 1 for i, c in enumerate(labels)}
    size = assets.set_index("asset")[["width", "height"]].astype(float)

    def boxes(df: pd.DataFrame) -> list[dict[str, Any]]:
        s = size.reindex(df["asset"]).to_numpy()
        x, y = df["x0"].to_numpy() * s[:, 0], df["y0"].to_numpy() * s[:, 1]
        w, h = df["x1"].to_numpy() * s[:, 0] - x, df["y1"].to_numpy() * s[:, 1] - y
        return [
            {"image_id": image_id[a], "category_id": cat_id[c], "bbox": [float(xx), float(yy), float(ww), float(hh)]}
            for a, c, xx, yy, ww, hh in zip(df["asset"], df["label"], x, y, w, h, strict=True)
        ]

    gts = boxes(truth)
    crowd = [bool(isinstance(a, dict) and a.get("iscrowd")) for a in truth["attributes"]]
    for k, (g, c) in enumerate(zip(gts, crowd, strict=True)):
        g.update(id=k + 1, iscrowd=int(c), area=g["bbox"][2] * g["bbox"][3])
    dts = boxes(preds)
    for d, sc in zip(dts, preds["score"], strict=True):
        d["score"] = float(sc)
    images = [
        {"id": image_id[a], "width": int(w), "height": int(h), "file_name": a}
        for a, w, h in zip(assets["asset"], assets["width"], assets["height"], strict=True)
    ]
    gt_path, dt_path = folder / "truth.json", folder / "results.json"
    gt_path.write_text(
        json.dumps(
            {"images": images, "annotations": gts, "categories": [{"id": i, "name": c} for c, i in cat_id.items()]}
        )
    )
    dt_path.write_text(json.dumps(dts))
    return gt_path, dt_path
