"""Visual QA at scale, side by side in one run (run by hand, not collected by pytest).

    python tests/bench/bench_qa.py [--images 20000 --per-image 10 --repeat 2]

A synthetic detection set (`tests/qa/synthetic.py`: about 200,000 truth boxes on 20,000 images, about 230,000
predictions, 8 labels, 2% crowd) is built once. Two things are timed:

- ``qa()``: every check over the 200,000 truth rows with their assets table (target: under 10 s), and
  ``mistakes()`` of the predictions against them (no peer: reported for scale);
- evaluation of the predictions: annotebook's `evaluate` (matching and AP, `ev.map`) against pycocotools'
  ``COCOeval`` and faster-coco-eval's ``COCOeval_faster`` on the same boxes (COCO files written from the frames,
  pixels computed the same way, so the mAPs agree). The peers run in a cached venv of their own
  (`tests.peers.cached_venv`); each contender times only its evaluation, after its data is in memory (COCO
  objects loaded, frames built). All three do the same work: iouType bbox, area range "all" only, maxDets 100
  (COCOeval's default also evaluates three more area ranges and two more maxDets, which ours does not).
  Targets: faster than pycocotools, within 2x of faster-coco-eval.

The contenders take turns within each of the --repeat rounds; ratios are medians of per-round ratios against
annotebook. Timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PEER_PACKAGES = ("pycocotools==2.0.11", "faster-coco-eval==1.8.0", "orjson")

PEER = """
import contextlib, json, sys, time
import numpy as np
which, gt_path, dt_path, full = sys.argv[1:5]
with contextlib.redirect_stdout(sys.stderr):
    if which == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    gt = COCO(gt_path)
    dt = gt.loadRes(dt_path)
    ev = Eval(gt, dt, "bbox")
    if full == "0":
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.params.maxDets = [100]
    start = time.perf_counter()
    ev.evaluate()
    ev.accumulate()
    if full == "1":
        ev.summarize()
    seconds = time.perf_counter() - start
p = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]
print(json.dumps({"seconds": seconds, "map": float(p[p > -1].mean())}))
"""


def run_peer(python: Path, which: str, gt: Path, dt: Path, full: bool) -> dict:
    argv = [str(python), "-c", PEER, which, str(gt), str(dt), "1" if full else "0"]
    run = subprocess.run(argv, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{which} failed:\n{run.stderr[-2000:]}")
    return dict(json.loads(run.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--per-image", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from annotebook.qa import evaluate, mistakes, qa
    from tests.peers import cached_venv
    from tests.qa.synthetic import synthetic, write_coco

    assets, truth, preds = synthetic(args.images, per_image=args.per_image, seed=1)
    print(f"{len(truth):,} truth boxes, {len(preds):,} predictions on {len(assets):,} images")
    python = cached_venv("cocoeval", PEER_PACKAGES)
    folder = Path(tempfile.mkdtemp(prefix="bench_qa_"))
    gt_path, dt_path = write_coco(assets, truth, preds, folder)

    qa_times, mistake_times = [], []
    tasks = ("map", "stats")  # mAP at area "all" / maxDets 100, and COCOeval's full twelve numbers
    times: dict[tuple[str, str], list[float]] = {}
    maps: dict[tuple[str, str], float] = {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        findings = qa(truth, assets)
        qa_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        suspects = mistakes(truth, preds)
        mistake_times.append(time.perf_counter() - start)
        for task in tasks:
            start = time.perf_counter()
            ev = evaluate(truth, preds, assets=assets)
            maps["annotebook", task] = ev.map if task == "map" else float(ev.stats["AP"])
            times.setdefault(("annotebook", task), []).append(time.perf_counter() - start)
            for which in ("pycocotools", "faster-coco-eval"):
                got = run_peer(python, which, gt_path, dt_path, task == "stats")
                times.setdefault((which, task), []).append(got["seconds"])
                maps[which, task] = got["map"]
    qa_s = statistics.median(qa_times)
    print(f"\nqa(): {qa_s:.2f} s for {len(truth):,} rows ({len(findings):,} findings; target < 10 s)")
    print(f"mistakes(): {statistics.median(mistake_times):.2f} s ({len(suspects):,} suspects)")
    for task in tasks:
        what = "mAP, area all, maxDets 100" if task == "map" else "all 12 COCO stats (4 area ranges, maxDets 1/10/100)"
        print(f"\nevaluate: {what}")
        print(f"{'':<18}{'seconds':>10}{'vs annotebook':>16}{'mAP@[.5:.95]':>16}")
        for name in ("annotebook", "pycocotools", "faster-coco-eval"):
            ts, ours = times[name, task], times["annotebook", task]
            ratio = statistics.median(t / a for t, a in zip(ts, ours, strict=True))
            print(f"{name:<18}{statistics.median(ts):>10.2f}{ratio:>15.2f}x{maps[name, task]:>16.6f}")
    print("\n(ratios: the peer's time over annotebook's in the same round; > 1 means annotebook is faster)")


if __name__ == "__main__":
    main()
