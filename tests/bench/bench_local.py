"""Local store at scale, side by side with pandas.read_sql in one run (run by hand, not collected).

    python tests/bench/bench_local.py [--rows 200000 --assets 10000 --edits 10000]

Prints: load vs read_sql of the same table, diff of N edits, push of N edits, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build(root: Path, rows: int, assets: int) -> None:
    import annotebook as ab
    from annotebook.backends.local import LocalBackend

    rng = np.random.default_rng(0)
    store = LocalBackend(root / "store", samples=False)
    asset_ids = [f"img{i:05d}" for i in range(assets)]
    assets_df = ab.assets_frame(
        {
            "dataset": "big",
            "asset": asset_ids,
            "name": [a + ".jpg" for a in asset_ids],
            "width": 640,
            "height": 480,
        }
    )
    x0, y0 = rng.uniform(0, 0.8, rows), rng.uniform(0, 0.8, rows)
    kinds = np.where(rng.uniform(size=rows) < 0.1, "polygon", "box")
    points = [
        ((a, b, a + 0.1, b, a + 0.05, b + 0.1),) if k == "polygon" else None
        for a, b, k in zip(x0, y0, kinds, strict=True)
    ]
    anns = ab.annotations_frame(
        {
            "dataset": "big",
            "asset": rng.choice(asset_ids, rows),
            "label": rng.choice(["car", "person", "bike"], rows),
            "kind": kinds,
            "x0": x0,
            "y0": y0,
            "x1": x0 + 0.1,
            "y1": y0 + 0.1,
            "rotation": 0.0,
            "points": points,
            "author": "bench",
        }
    )
    store.write_dataset("big", assets_df, anns)


def timed(fn, repeat: int = 3):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["ANNOTEBOOK_HOME"] = str(root / "home")
        import annotebook as ab
        from annotebook.sync.registry import registry

        t = time.perf_counter()
        build(root, args.rows, args.assets)
        print(f"built {args.rows:,} rows of {args.assets:,} assets in {time.perf_counter() - t:.1f} s")
        conn = ab.connect("local", path=str(root / "store"))
        db = sqlite3.connect(root / "store" / "store.sqlite")
        t_sql, ref = timed(lambda: pd.read_sql("SELECT * FROM annotations WHERE dataset = 'big'", db))
        t_load, anns = timed(lambda: conn.annotations("big"))
        registry().wait()
        assert len(ref) == len(anns) == args.rows
        edit = anns.sample(args.edits, random_state=0).index
        anns.loc[edit, "label"] = "truck"
        anns.loc[edit[: args.edits // 2], "x1"] = anns.loc[edit[: args.edits // 2], "x1"] - 0.01
        t_diff, cs = timed(lambda: anns.annot.diff())
        assert len(cs.modified) == args.edits
        t = time.perf_counter()
        report = anns.annot.push()
        t_push = time.perf_counter() - t
        assert len(report.updated) == args.edits
        t_after, _ = timed(lambda: anns.annot.diff(), repeat=1)
        print(f"{'operation':<44}{'seconds':>10}")
        print(f"{'pandas.read_sql (same table, peer)':<44}{t_sql:>10.3f}")
        print(f"{'conn.annotations (annotebook load)':<44}{t_load:>10.3f}   ratio {t_load / t_sql:.2f}x read_sql")
        print(f"{f'diff of {args.edits:,} edits on {args.rows:,} rows':<44}{t_diff:>10.3f}")
        print(f"{f'push of {args.edits:,} edits (validate+write)':<44}{t_push:>10.3f}")
        print(f"{'diff after the push (empty)':<44}{t_after:>10.3f}")


if __name__ == "__main__":
    main()
