"""Loading a Pictograph dataset: annotebook against Pictograph's own SDK, in one run (by hand, not collected).

    python tests/bench/bench_pictograph.py [--images 2000 --regions 25 --latency-ms 20]

Each contestant gets its own simulator process (``python -m annotebook.testing serve pictograph``: a synthetic
dataset of ``images`` images of ``regions`` boxes each, no pixels, the same seed) with a latency added to every
request, standing for the network. annotebook: ``conn.assets().annot.load()`` (the image listing in pages of 1,000,
then one GET per image, ``workers`` at once; the frame built, normalised, traced). The SDK (``pictograph==1.69.146``,
in the cached venv of ``tests/backends/test_pictograph_sdk.py``), timed inside its own process with its import and
client set-up left out, along its documented paths to every annotation of a dataset:

- ``datasets.download(mode="annotations_only")``: the dataset download, one listing then one GET per image on 10
  threads (its documented default ``max_workers``), each answer written to ``<file>.json``; then those files read
  back with ``json.load`` (timed apart: the SDK stops at files);
- the same with ``max_workers`` set to annotebook's worker count;
- ``AsyncClient``: ``images.iter`` then ``annotations.get`` of every image under ``asyncio.gather``, at most
  annotebook's worker count at once (a semaphore).

annotebook is timed twice: image by image (the default), and with ``export_from=1``, where the load reads every image
from one server-side export in Pictograph's JSON (create, polls every 0.25 s, the signed ZIP, the export deleted).
The SDK does not parse export archives (the protocol notes, C.3), so that bulk path is not one of its documented
ways to the annotations. Prints a table and the ratio of the SDK's fastest path to each annotebook load (target:
annotebook at least 3x faster).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _simulators  # beside this script (run as `python tests/bench/...`)

ROOT = Path(__file__).resolve().parents[2]
KEY = "pk_bench_pictograph"

SDK_DRIVER = r"""
import asyncio, json, os, sys, tempfile, time
from pathlib import Path
from pictograph import Client
from pictograph.aio import AsyncClient

cmd = json.loads(sys.stdin.read())
out = {}
if cmd["path"] == "download":
    client = Client(base_url=cmd["url"])
    folder = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    report = client.datasets.download("shapes", folder, mode="annotations_only", max_workers=cmd["workers"])
    out["seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    regions = sum(len(json.loads(p.read_text())["annotations"]) for p in folder.glob("*.json"))
    out["read_seconds"] = time.perf_counter() - start
    out["images"], out["regions"], out["failures"] = report.annotations_downloaded, regions, len(report.failures)
else:
    async def run():
        async with AsyncClient(base_url=cmd["url"]) as client:
            gate = asyncio.Semaphore(cmd["workers"])
            start = time.perf_counter()
            images = [i async for i in client.images.iter("shapes", page_size=1000)]

            async def one(image):
                async with gate:
                    return await client.annotations.get("shapes", image.filename)

            found = await asyncio.gather(*(one(i) for i in images))
            return time.perf_counter() - start, len(images), sum(len(f) for f in found)

    out["seconds"], out["images"], out["regions"] = asyncio.run(run())
    out["read_seconds"], out["failures"] = 0.0, 0
print(json.dumps(out))
"""


def serve(images: int, regions: int, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    proc, url, _ = _simulators.serve(
        "pictograph", KEY, "--latency-ms", str(latency_ms), "--assets", str(images), "--annotations",
        str(images * regions),
    )  # fmt: skip
    return proc, url


def bench_annotebook(url: str, workers: int, export_from: int | None = None) -> dict[str, Any]:
    import annotebook as ab

    conn = ab.connect("pictograph", dataset="shapes", key=KEY, base_url=url, progress=False, workers=workers,
                      export_from=export_from)  # fmt: skip
    conn.backend.poll_interval = 0.25
    start = time.perf_counter()
    anns = conn.assets().annot.load()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images": anns["asset"].nunique(), "regions": len(anns), "read_seconds": 0.0}


def bench_sdk(url: str, path: str, workers: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.backends.test_pictograph_sdk import sdk_python

    cmd = {"url": url, "path": path, "workers": workers}
    run = subprocess.run([str(sdk_python()), "-c", SDK_DRIVER], input=json.dumps(cmd), capture_output=True,
                         text=True, timeout=3600, env={**os.environ, "PICTOGRAPH_API_KEY": KEY})  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    if result["failures"]:
        raise RuntimeError(f"the SDK's download had {result['failures']} failures")
    return result


def run_one(name: str, args: argparse.Namespace, bench: Any) -> dict[str, Any]:
    """``bench`` against a fresh simulator of its own, which is stopped after."""
    proc, url = serve(args.images, args.regions, args.latency_ms)
    try:
        result: dict[str, Any] = bench(url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"  ... {name}: {result['seconds']:.2f}s", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--regions", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=None, help="annotebook's (default: the backend's)")
    args = parser.parse_args()
    import inspect

    from annotebook.backends.pictograph import PictographBackend

    workers = args.workers or int(inspect.signature(PictographBackend).parameters["workers"].default)
    results = {
        "annotebook assets().annot.load()": run_one("annotebook", args, lambda u: bench_annotebook(u, workers)),
        "annotebook, export_from=1 (one export)": run_one(
            "annotebook export", args, lambda u: bench_annotebook(u, workers, export_from=1)),
        "SDK datasets.download, 10 threads": run_one("sdk 10", args, lambda u: bench_sdk(u, "download", 10)),
        f"SDK datasets.download, {workers} threads": run_one(
            f"sdk {workers}", args, lambda u: bench_sdk(u, "download", workers)),
        f"SDK AsyncClient gather, {workers} at once": run_one(
            "sdk async", args, lambda u: bench_sdk(u, "async", workers)),
    }  # fmt: skip
    want = args.images * args.regions
    for name, r in results.items():
        assert (r["images"], r["regions"]) == (args.images, want), (name, r)
    print(f"{args.images:,} images of {args.regions} regions ({want:,}), {args.latency_ms:g} ms a request, each "
          f"contestant against its own simulator process; annotebook with {workers} workers")  # fmt: skip
    print(f"  {'':44} {'seconds':>8} {'+ reading the files':>20}")
    for name, r in results.items():
        extra = f"{r['read_seconds']:.2f}" if r["read_seconds"] else ""
        print(f"  {name:44} {r['seconds']:>8.2f} {extra:>20}")
    best_name, best = min(((n, r) for n, r in results.items() if n.startswith("SDK")), key=lambda x: x[1]["seconds"])
    for mine in [n for n in results if n.startswith("annotebook")]:
        ours = results[mine]["seconds"]
        print(f"  ratio SDK's fastest ({best_name}) / {mine}: {best['seconds'] / ours:.1f}x")
        for name, r in results.items():
            if name.startswith("SDK") and name != best_name:
                print(f"    ratio {name} / {mine}: {r['seconds'] / ours:.1f}x")


if __name__ == "__main__":
    main()
