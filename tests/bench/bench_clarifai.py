"""Pushing 10,000 edits to a Clarifai app: annotebook against Clarifai's own client, in one run (by hand, not
collected).

    python tests/bench/bench_clarifai.py [--edits 10000 --assets 500 --latency-ms 20]

The edits are a third new boxes, a third changed boxes (label and geometry) and a third deleted boxes. Each
contestant gets its own simulator process (``python -m annotebook.testing serve clarifai``, a synthetic app of boxes,
no pixels, the same seed) with a latency added to every request, standing for the network; the simulator counts the
requests (``/_sim/state``), reads and writes apart. annotebook edits a loaded frame with pandas and calls
``anns.annot.push()``: its writes must be ceil(n/128) per action (POST, PATCH overwrite, DELETE); the reads during
the push are the engine's re-checks and re-reads (Clarifai has no conditional write) and are shown apart. Clarifai's
client (``clarifai-grpc`` and its JSON channel, in the cached venv of ``tests/backends/test_clarifai_sdk.py``) sends
the same edits once one annotation a call (PostAnnotations, PatchAnnotations overwrite, DeleteAnnotation) and once
128 a call (DeleteAnnotations by ids); it is timed inside its own process, its import and channel set-up left out.
Loading the frame and planning the edits are not timed. Prints a table and the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import _simulators  # beside this script (run as `python tests/bench/...`)
import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PAT = "bench-clarifai-pat"
APP = {"user_id": "sim-user", "app_id": "shapes"}
BATCH = 128
#: the label a changed box gets
NEXT_LABEL = {"circle": "square", "square": "triangle", "triangle": "circle"}

CLIENT_DRIVER = r"""
import json, os, sys, time
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import json_format

cmd = json.loads(sys.stdin.read())
stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=cmd["url"]))
meta = (("authorization", "Key " + os.environ["CLARIFAI_PAT"]),)
app = cmd["app"]
size = cmd["batch"]
requests = []  # built before the clock starts: the edits are the caller's data, not the client's work
for action, items in (("post", cmd["create"]), ("overwrite", cmd["modify"]), ("delete", cmd["delete"])):
    for i in range(0, len(items), size):
        part = items[i : i + size]
        if action == "post":
            requests.append(("PostAnnotations", {"user_app_id": app, "annotations": part}))
        elif action == "overwrite":
            requests.append(("PatchAnnotations", {"user_app_id": app, "action": "overwrite", "annotations": part}))
        elif size == 1:
            requests.append(("DeleteAnnotation", {"user_app_id": app, "input_id": part[0]["input_id"],
                                                  "annotation_id": part[0]["id"]}))
        else:
            requests.append(("DeleteAnnotations", {"user_app_id": app, "ids": [a["id"] for a in part],
                                                   "input_ids": [a["input_id"] for a in part]}))
parsed = [(rpc, json_format.ParseDict(body, getattr(service_pb2, rpc + "Request")())) for rpc, body in requests]
start = time.perf_counter()
for rpc, request in parsed:
    answer = getattr(stub, rpc)(request, metadata=meta)
    if answer.status.code != status_code_pb2.SUCCESS:  # the JSON channel never raises on a refusal: look
        raise SystemExit(f"{rpc} refused: {answer.status.code} {answer.status.description}")
print(json.dumps({"seconds": time.perf_counter() - start, "calls": len(parsed)}))
"""


def serve(assets: int, annotations: int, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    proc, url, _ = _simulators.serve(
        "clarifai", PAT, "--latency-ms", str(latency_ms), "--assets", str(assets), "--annotations", str(annotations)
    )
    return proc, url


def requests_of(url: str) -> dict[str, int]:
    return dict(httpx.get(f"{url}/_sim/state", timeout=10).json()["requests"])


Plan = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]


def plan(url: str, edits: int) -> Plan:
    """The app's rows (loaded by annotebook, untimed), the boxes to change, the boxes to delete, the new boxes."""
    import annotebook as ab

    conn = ab.connect("clarifai", user_id=APP["user_id"], app_id=APP["app_id"], pat=PAT, base_url=url,
                      progress=False)  # fmt: skip
    anns = conn.assets().annot.load().sort_values("id", kind="stable")
    n_new, n_mod = edits // 3, edits // 3
    n_del = edits - n_new - n_mod
    boxes = anns[anns.kind == "box"]
    if len(boxes) < n_mod + n_del:
        raise RuntimeError(f"the app holds {len(boxes)} boxes, fewer than {n_mod + n_del} to change and delete")
    assets = sorted(set(anns["asset"]))
    new = [{"asset": assets[k % len(assets)], "label": "square", "kind": "box", "x0": 0.1, "y0": 0.1,
            "x1": 0.2 + (k % 500) / 1000, "y1": 0.3} for k in range(n_new)]  # fmt: skip
    return anns, boxes.iloc[:n_mod], boxes.iloc[n_mod : n_mod + n_del], new


def edited_box(row: Any) -> tuple[str, float, float, float, float]:
    """The edit every contestant makes to a changed box: another label, the right edge moved in."""
    label = NEXT_LABEL.get(str(row["label"]), "circle")
    return label, float(row["x0"]), float(row["y0"]), float(row["x1"]) - 0.01, float(row["y1"])


def region(label: str, x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    box = {"top_row": y0, "left_col": x0, "bottom_row": y1, "right_col": x1}
    return {"region_info": {"bounding_box": box}, "data": {"concepts": [{"id": label, "name": label, "value": 1.0}]}}


def bench_annotebook(url: str, edits: int) -> dict[str, Any]:
    anns, modify, delete, new = plan(url, edits)
    changed = anns["id"].isin(modify["id"])
    anns.loc[changed, "label"] = anns.loc[changed, "label"].map(lambda label: NEXT_LABEL.get(str(label), "circle"))
    anns.loc[changed, "x1"] = anns.loc[changed, "x1"] - 0.01
    anns.annot.delete(anns["id"].isin(delete["id"]))
    anns.annot.add_rows(anns.annot.new_rows(new))
    before = requests_of(url)
    start = time.perf_counter()
    report = anns.annot.push()
    seconds = time.perf_counter() - start
    after = requests_of(url)
    counts = {"created": len(report.created), "updated": len(report.updated), "deleted": len(report.deleted)}
    return {"seconds": seconds, "writes": after["write"] - before["write"], "reads": after["read"] - before["read"],
            "counts": counts}  # fmt: skip


def bench_client(url: str, edits: int, batch: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.backends.test_clarifai_sdk import client_python

    _, modify, delete, new = plan(url, edits)
    create = [{"id": uuid.uuid4().hex, "input_id": r["asset"], "data": {"regions": [region(r["label"], r["x0"],
              r["y0"], r["x1"], r["y1"])]}} for r in new]  # fmt: skip
    changed = [{"id": r["id"], "input_id": r["asset"], "data": {"regions": [region(*edited_box(r))]}}
              for _, r in modify.iterrows()]  # fmt: skip
    gone = [{"id": r["id"], "input_id": r["asset"]} for _, r in delete.iterrows()]
    cmd = {"url": url, "app": APP, "batch": batch, "create": create, "modify": changed, "delete": gone}
    before = requests_of(url)
    run = subprocess.run([str(client_python()), "-c", CLIENT_DRIVER], input=json.dumps(cmd), capture_output=True,
                         text=True, timeout=3600, env={**os.environ, "CLARIFAI_PAT": PAT})  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"client driver failed:\n{run.stderr[-3000:]}")
    after = requests_of(url)
    out = json.loads(run.stdout.strip().splitlines()[-1])
    return {"seconds": out["seconds"], "writes": after["write"] - before["write"],
            "reads": after["read"] - before["read"], "calls": out["calls"]}  # fmt: skip


def run_one(name: str, args: argparse.Namespace, bench: Any) -> dict[str, Any]:
    """``bench`` against a fresh simulator of its own, which is stopped after."""
    proc, url = serve(args.assets, args.edits, args.latency_ms)
    try:
        result: dict[str, Any] = bench(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"  ... {name}: {result['seconds']:.1f}s", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10_000)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    n_new, n_mod = args.edits // 3, args.edits // 3
    n_del = args.edits - n_new - n_mod
    ab = run_one("annotebook", args, lambda url: bench_annotebook(url, args.edits))
    one = run_one("client, 1 a call", args, lambda url: bench_client(url, args.edits, 1))
    many = run_one("client, 128 a call", args, lambda url: bench_client(url, args.edits, BATCH))

    expected = sum(math.ceil(n / BATCH) for n in (n_new, n_mod, n_del))
    assert ab["counts"] == {"created": n_new, "updated": n_mod, "deleted": n_del}, ab["counts"]
    assert ab["writes"] == expected, (ab["writes"], expected)
    assert one["writes"] == args.edits and many["writes"] == expected, (one, many)
    print(f"{args.edits:,} edits ({n_new:,} new, {n_mod:,} changed, {n_del:,} deleted boxes) on {args.assets:,} "
          f"inputs, {args.latency_ms:g} ms a request, each against its own simulator process")  # fmt: skip
    print(f"  {'':32} {'writes':>7} {'reads':>6} {'seconds':>8}")
    print(f"  {'annotebook push':32} {ab['writes']:>7,} {ab['reads']:>6,} {ab['seconds']:>8.1f}"
          f"   (writes: ceil(n/128) per action = {expected}; reads: the engine's re-checks and re-reads)")  # fmt: skip
    print(f"  {'clarifai-grpc, 1 a call':32} {one['writes']:>7,} {one['reads']:>6,} {one['seconds']:>8.1f}")
    print(f"  {'clarifai-grpc, 128 a call':32} {many['writes']:>7,} {many['reads']:>6,} {many['seconds']:>8.1f}")
    print(f"  ratio client 1-a-call / annotebook  : {one['seconds'] / ab['seconds']:.1f}x time, "
          f"{one['writes'] / ab['writes']:.0f}x writes")  # fmt: skip
    print(f"  ratio client 128-a-call / annotebook: {many['seconds'] / ab['seconds']:.1f}x time, "
          f"{(many['writes'] + many['reads']) / (ab['writes'] + ab['reads']):.2f}x requests")  # fmt: skip


if __name__ == "__main__":
    main()
