"""Many annotations validated and written to YOLO partition-wise on a LocalCluster (run by hand, not collected).

    python tests/bench/bench_dask.py [--rows 10000000] [--partition-rows 250000] [--workers 2] [--out DIR]

The rows are made on the workers (``dd.from_map``: each partition makes its own page of assets, 20 boxes an asset),
so no process ever holds the whole frame. Prints the time of ``ddf.annot.validate()`` and ``ddf.annot.save(...,
"yolo")``, the files written, and each worker's peak resident memory next to the size of one partition: bounded
memory means the peak follows the partition, not the frame.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PER_ASSET = 20


def make_part(k: int, rows: int) -> pd.DataFrame:
    from annotebook import schema

    rng = np.random.default_rng(k)
    assets = [f"p{k:04d}-{i:06d}" for i in range(rows // PER_ASSET)]
    x0, y0 = rng.uniform(0, 0.8, rows), rng.uniform(0, 0.8, rows)
    return schema.annotations_frame(
        {
            "dataset": "big",
            "asset": np.repeat(assets, PER_ASSET),
            "id": [f"{k}-{i}" for i in range(rows)],
            "label": rng.choice(["car", "person", "bike"], rows),
            "kind": "box",
            "x0": x0,
            "y0": y0,
            "x1": x0 + 0.1,
            "y1": y0 + 0.1,
        }
    )


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="where the YOLO folder goes (default: a temp dir, removed)")
    args = parser.parse_args()
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import annotebook.dask  # noqa: F401  (registers ddf.annot)
    from annotebook import schema

    n_parts = max(1, args.rows // args.partition_rows)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-dask-"))
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        ddf = dd.from_map(make_part, range(n_parts), rows=args.partition_rows, meta=schema.annotations_frame())
        labels = schema.labels_frame({"name": ["bike", "car", "person"], "index": [0, 1, 2]})
        t = time.perf_counter()
        problems = ddf.annot.validate()
        t_validate = time.perf_counter() - t
        t = time.perf_counter()
        files = ddf.annot.save(out / "yolo", "yolo", labels=labels)
        t_save = time.perf_counter() - t
        peaks = client.run(peak_gb)
        part_gb = make_part(0, args.partition_rows).memory_usage(deep=True).sum() / 1e9
    print(f"{n_parts * args.partition_rows:,} rows in {n_parts} partitions of {args.partition_rows:,}, "
          f"{args.workers} workers (one thread each)")  # fmt: skip
    print(f"validate   {t_validate:8.1f} s   {len(problems)} problems")
    print(f"save yolo  {t_save:8.1f} s   {len(files):,} files")
    print(f"one partition {part_gb:.3f} GB; the whole frame about {part_gb * n_parts:.2f} GB")
    for worker, gb in sorted(peaks.items()):
        print(f"peak resident memory of {worker}: {gb:.2f} GB")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
