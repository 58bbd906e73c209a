"""`evaluate` against pycocotools' COCOeval (iouType bbox, maxDets 100) on the same synthetic set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotebook.qa import evaluate
from tests.qa.synthetic import synthetic, write_coco

COCOEVAL = """
import contextlib, json, sys
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(sys.stderr):  # pycocotools prints its progress
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate(); ev.accumulate(); ev.summarize()
p = ev.eval["precision"][:, :, :, 0, 2]  # T, R, K at area "all", maxDets 100
names = {c["id"]: c["name"] for c in gt.loadCats(gt.getCatIds())}
ap = {}
for k, cat in enumerate(ev.params.catIds):
    v = p[:, :, k]
    if (v > -1).any():
        ap[names[cat]] = float(v[v > -1].mean())
ap50 = {names[c]: float(p[0, :, k][p[0, :, k] > -1].mean())
        for k, c in enumerate(ev.params.catIds) if (p[0, :, k] > -1).any()}
print(json.dumps({"stats": ev.stats.tolist(), "ap": ap, "ap50": ap50}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("n_images", [200, 10_000])
def test_map_equals_pycocotools(tmp_path: Path, n_images: int) -> None:
    """mAP@[.5:.95], AP50, AP75 and AP per label equal COCOeval's to 1e-6 (crowd regions, tied scores included)."""
    from tests.peers import run_peer

    assets, truth, preds = synthetic(n_images, seed=n_images)
    gt_path, dt_path = write_coco(assets, truth, preds, tmp_path)
    coco = run_peer(COCOEVAL, str(gt_path), str(dt_path), timeout=1800)
    ev = evaluate(truth, preds, assets=assets)
    assert ev.map == pytest.approx(coco["stats"][0], abs=1e-6)
    assert float(ev.ap_at(0.5).mean()) == pytest.approx(coco["stats"][1], abs=1e-6)
    assert float(ev.ap_at(0.75).mean()) == pytest.approx(coco["stats"][2], abs=1e-6)
    ours = ev.ap.to_dict()
    assert set(ours) == set(coco["ap"])
    assert np.allclose([ours[k] for k in coco["ap"]], list(coco["ap"].values()), atol=1e-6, rtol=0)
    ap50 = ev.ap_at(0.5).to_dict()
    assert np.allclose([ap50[k] for k in coco["ap50"]], list(coco["ap50"].values()), atol=1e-6, rtol=0)
