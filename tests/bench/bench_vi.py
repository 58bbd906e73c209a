"""Loading a big Vi dataset: annotebook against the Vi SDK's own per-asset listing, in one run (run by hand).

    python tests/bench/bench_vi.py [--assets 2000 --annotations 20000 --latency-ms 20]

The simulator runs in its own process (``python -m annotebook.testing serve vi``, a synthetic phrase-grounding
dataset: per asset a caption and its grounding boxes, no pixels) with a latency added to every request, standing
for the network. Vi lists annotations per asset only, so both sides list the assets, then each asset's annotations:
annotebook with `ViBackend.annotations` (16 threads), the SDK (``vi-sdk==0.1.0b7`` in its cached venv, see
``tests/backends/test_vi_sdk.py``) with ``client.annotations.list(...).all_items()`` asset by asset, as its docs
show, timed inside its process (import and client set-up left out). Both must see every annotation. Prints both
times and the ratio; the target is annotebook >= 3x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _simulators  # beside this script (run as `python tests/bench/...`)

ROOT = Path(__file__).resolve().parents[2]
KEY = "dtvi_" + "b" * 98

SDK_DRIVER = r"""
import json, sys, time
cmd = json.loads(sys.argv[1])
import vi
client = vi.Client(secret_key=cmd["key"], organization_id=cmd["org"], endpoint=cmd["url"])
times = []
for _ in range(cmd["repeat"]):
    start = time.perf_counter()
    assets, page = [], None
    while True:  # one page of assets at a time: the SDK's own all_items() breaks on page 2 (protocol notes B4.2)
        pagination = {"page_size": 1000, **({"page_token": page} if page else {})}
        answer = client.assets.list(cmd["dataset"], pagination=pagination)
        assets += [a.asset_id for a in answer.items]
        page = answer.next_page
        if not page:
            break
    rows = []
    for asset in assets:
        rows += list(client.annotations.list(cmd["dataset"], asset, pagination={"page_size": 1000}).all_items())
    times.append(time.perf_counter() - start)
ids = {r.annotation_id for r in rows}
print(json.dumps({"times": times, "rows": len(rows), "ids": len(ids), "assets": len(assets)}))
"""


def serve(assets: int, annotations: int, latency_ms: float) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """The simulator in its own process; its URL, organization and dataset id once it answers."""
    proc, url, state = _simulators.serve(
        "vi", KEY, "--latency-ms", str(latency_ms), "--assets", str(assets), "--annotations", str(annotations)
    )
    [ds] = state["datasets"].values()
    if ds["annotations"] != annotations or ds["assets"] != assets:
        proc.kill()
        raise RuntimeError(f"the simulator holds {state}, not {assets} assets and {annotations} annotations")
    return proc, url, str(state["organizationId"]), str(ds["id"])


def bench_annotebook(url: str, org: str, dataset: str, workers: int, repeat: int) -> tuple[list[float], int]:
    from annotebook.backends.vi import ViBackend

    times, n = [], 0
    for _ in range(repeat):
        backend = ViBackend(org, key=KEY, endpoint=url, workers=workers, progress=False)
        start = time.perf_counter()
        anns = backend.annotations(dataset)
        times.append(time.perf_counter() - start)
        n = len(anns)
        assert anns["id"].is_unique
    return times, n


def bench_sdk(url: str, org: str, dataset: str, repeat: int) -> tuple[list[float], int]:
    sys.path.insert(0, str(ROOT))
    from tests.backends.test_vi_sdk import sdk_python

    cmd = {"url": url, "key": KEY, "org": org, "dataset": dataset, "repeat": repeat}
    env = {**os.environ, "VI_ENABLE_FILE": "false"}
    run = subprocess.run(
        [str(sdk_python()), "-c", SDK_DRIVER, json.dumps(cmd)], capture_output=True, text=True, timeout=3600, env=env
    )
    if run.returncode != 0:
        raise RuntimeError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["ids"] == out["rows"]
    return out["times"], int(out["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--annotations", type=int, default=20_000, help="10 an asset: a caption and 9 phrases")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=16, help="annotebook's listing threads")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best is compared")
    args = parser.parse_args()

    proc, url, org, dataset = serve(args.assets, args.annotations, args.latency_ms)
    try:
        sdk_times, sdk_rows = bench_sdk(url, org, dataset, args.repeat)
        ab_times, ab_rows = bench_annotebook(url, org, dataset, args.workers, args.repeat)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert ab_rows == sdk_rows == args.annotations, (ab_rows, sdk_rows)
    ab_best, sdk_best = min(ab_times), min(sdk_times)
    print(f"{args.annotations:,} annotations of {args.assets:,} assets, {args.latency_ms:g} ms a request")
    runs = {"ab": ", ".join(f"{t:.2f}" for t in ab_times), "sdk": ", ".join(f"{t:.2f}" for t in sdk_times)}
    print(f"  annotebook ({args.workers} threads): best {ab_best:.2f}s   runs {runs['ab']}")
    print(f"  vi-sdk 0.1.0b7 (per asset): best {sdk_best:.2f}s   runs {runs['sdk']}")
    ratio = sdk_best / ab_best
    print(f"  ratio SDK / annotebook   : {ratio:.1f}x  (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
