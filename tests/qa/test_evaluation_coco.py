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
    # all twelve numbers COCOeval.summarize prints: AP by area range, AR at 1 / 10 / 100 detections and by area
    assert np.allclose(ev.stats.to_numpy(), coco["stats"], atol=1e-6, rtol=0), (ev.stats.tolist(), coco["stats"])


MATCHES = """
import contextlib, json, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(sys.stderr):
    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    ev = COCOeval(gt, dt, "bbox")
    ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = [[0, 1e10]], ["all"], [100]
    ev.evaluate()
t = [round(x, 2) for x in ev.params.iouThrs].index(float(sys.argv[3]))
out = {}
for e in ev.evalImgs:
    if e is None:
        continue
    for d, g, ignored in zip(e["dtIds"], e["dtMatches"][t], e["dtIgnore"][t]):
        out[int(d)] = [int(g), bool(ignored)]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("iou", [0.5, 0.75])
def test_each_prediction_matches_the_truth_cocoeval_picks(tmp_path: Path, iou: float) -> None:
    """Not only the AP: every prediction is matched to the same truth box (or none) as COCOeval's evaluateImg."""
    from tests.peers import run_peer

    assets, truth, preds = synthetic(300, seed=7)
    gt_path, dt_path = write_coco(assets, truth, preds, tmp_path)
    coco = run_peer(MATCHES, str(gt_path), str(dt_path), str(iou))
    m = evaluate(truth, preds, iou=iou, assets=assets).matches
    m = m[m["source"] == "prediction"].set_index("id")
    gt_number = {f"t{k}": k + 1 for k in range(len(truth))}
    ours = {}
    for pos, pid in enumerate(preds["id"]):
        row = m.loc[pid]
        if row["outcome"] == "skipped":
            continue
        ours[pos + 1] = [
            gt_number[row["match"]] if row["outcome"] in ("TP", "ignored") else 0,
            row["outcome"] == "ignored",
        ]
    assert {int(k): v for k, v in coco.items()} == ours
    assert sum(v[0] > 0 for v in ours.values()) > 0.3 * len(ours)  # many predictions are matched: a real test
