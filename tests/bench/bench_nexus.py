"""Listing a big Nexus project: annotebook against Datature's own SDK, in one run (run by hand, not collected).

    python tests/bench/bench_nexus.py [--assets 2000 --annotations 50000 --latency-ms 20 --page-size 1000]

The simulator runs in its own process (``python -m annotebook.testing serve nexus``, a synthetic project of boxes,
no pixels) with a latency added to every request, standing for the network. annotebook lists every annotation
with `NexusBackend.annotations` (the project's assets, then shards of asset ids, each about a page, fetched
by 8 threads); the SDK (``datature==1.12.2`` in its cached venv, see ``tests/backends/test_nexus_sdk.py``) pages
through ``project.annotations.list`` with the same page size, timed inside its process (its import and client
set-up left out). Both must see every annotation. Prints both times and the ratio; the target is annotebook >= 3x.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _simulators  # beside this script (run as `python tests/bench/...`)

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-secret-key"

SDK_DRIVER = r"""
import json, os, sys, time
cmd = json.loads(sys.argv[1])
os.environ["DATATURE_API_BASE_URL"] = cmd["url"]  # read when datature.nexus is imported
from datature.nexus import Client

project = Client(cmd["key"]).get_project(cmd["project"])
times = []
for _ in range(cmd["repeat"]):
    start = time.perf_counter()
    rows, page = [], None
    while True:
        pagination = {"limit": cmd["limit"], **({"page": page} if page else {})}
        answer = project.annotations.list(pagination, include_attributes=True)
        rows += answer.data
        page = answer.next_page
        if not page:
            break
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "rows": len(rows), "ids": len({r.id for r in rows})}))
"""


def serve(assets: int, annotations: int, latency_ms: float) -> tuple[subprocess.Popen[bytes], str, str]:
    """The simulator in its own process; its URL and project id once it answers."""
    proc, url, state = _simulators.serve(
        "nexus", KEY, "--latency-ms", str(latency_ms), "--assets", str(assets), "--annotations", str(annotations)
    )
    if state["annotations"] != annotations or state["assets"] != assets:
        proc.kill()
        raise RuntimeError(f"the simulator holds {state}, not {assets} assets and {annotations} annotations")
    return proc, url, str(state["projectId"])


def bench_annotebook(url: str, project: str, page_size: int, workers: int, repeat: int) -> tuple[list[float], int]:
    from annotebook.backends.nexus import NexusBackend

    times, n = [], 0
    for _ in range(repeat):
        backend = NexusBackend(project, key=KEY, endpoint=url, page_size=page_size, workers=workers, progress=False)
        start = time.perf_counter()
        anns = backend.annotations(project)
        times.append(time.perf_counter() - start)
        n = len(anns)
        assert anns["id"].is_unique
    return times, n


def bench_sdk(url: str, project: str, page_size: int, repeat: int) -> tuple[list[float], int]:
    sys.path.insert(0, str(ROOT))
    from tests.backends.test_nexus_sdk import sdk_python

    cmd = {"url": url, "key": KEY, "project": project, "limit": page_size, "repeat": repeat}
    run = subprocess.run(
        [str(sdk_python()), "-c", SDK_DRIVER, json.dumps(cmd)], capture_output=True, text=True, timeout=3600
    )
    if run.returncode != 0:
        raise RuntimeError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["ids"] == out["rows"]
    return out["times"], int(out["rows"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--annotations", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--page-size", type=int, default=1000, help="the same for both (the simulator's maximum)")
    parser.add_argument("--workers", type=int, default=8, help="annotebook's listing threads")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is compared")
    args = parser.parse_args()

    proc, url, project = serve(args.assets, args.annotations, args.latency_ms)
    try:
        sdk_times, sdk_rows = bench_sdk(url, project, args.page_size, args.repeat)
        ab_times, ab_rows = bench_annotebook(url, project, args.page_size, args.workers, args.repeat)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert ab_rows == sdk_rows == args.annotations, (ab_rows, sdk_rows)
    ab_best, sdk_best = min(ab_times), min(sdk_times)
    print(f"{args.annotations:,} annotations of {args.assets:,} assets, {args.latency_ms:g} ms a request, "
          f"page size {args.page_size} for both")  # fmt: skip
    runs = {"ab": ", ".join(f"{t:.2f}" for t in ab_times), "sdk": ", ".join(f"{t:.2f}" for t in sdk_times)}
    print(f"  annotebook ({args.workers} threads): best {ab_best:.2f}s   runs {runs['ab']}")
    print(f"  datature SDK 1.12.2     : best {sdk_best:.2f}s   runs {runs['sdk']}")
    ratio = sdk_best / ab_best
    print(f"  ratio SDK / annotebook  : {ratio:.1f}x  (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
