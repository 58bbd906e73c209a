"""The local store at 100k / 300k / 1M rows, a baseline revision and the working tree side by side (run by hand).

    python tests/bench/bench_scale.py [--baseline 6a414b4] [--current REV] [--sizes 100000,300000,1000000]

For each size and each side (the baseline in a throwaway ``git worktree add --detach``, removed at the end), one
fresh subprocess (this script with ``--child``, PYTHONPATH = that tree, its own ANNOTEBOOK_HOME and store) times:

- import: ``LocalBackend.write_dataset`` of ``bench_local``'s synthetic rows (10% polygons; 20 rows an asset);
- fetch: the bare reference, ``sqlite3`` ``SELECT * FROM annotations`` of the same rows, ``fetchall``;
- load: ``conn.annotations`` with its base snapshot written (``registry().wait()``); the first load after the
  import, then a second (the one a user pays from then on);
- diff: ``anns.annot.diff()`` with nothing changed;
- push 1 / push 1%: ``anns.annot.push()`` of one edited label, then of 1% of the rows' labels (10,000 at 1M);
- peak memory: the child's maximum resident set, and the frame's own size (``memory_usage(deep=True)``).

Prints a table per size: baseline s, current s, current / baseline, and load / fetch per side. Timings are single
runs in a fresh process; on a shared machine they are noisy, so read the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = "6a414b4"  # main when issue 18's store work started
STEPS = ("import", "fetch", "load", "load again", "diff", "push 1", "push 1%", "peak GB", "frame GB")


def child(tree: str, rows: int) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_local  # the synthetic rows (its build, split to time the write alone)
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    os.environ["ANNOTEBOOK_HOME"] = str(tmp / "home")
    try:
        import annotebook as ab
        from annotebook.backends.local import LocalBackend
        from annotebook.sync.registry import registry

        assert Path(ab.__file__).resolve().is_relative_to(Path(tree).resolve()), ab.__file__
        out: dict[str, float] = {}
        store = LocalBackend(tmp / "store", samples=False)
        frames: dict[str, object] = {}

        class Capture(LocalBackend):  # bench_local.build writes through write_dataset: keep its arguments
            def write_dataset(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                frames["args"], frames["kwargs"] = args, kwargs

        import annotebook.backends.local as local_module

        local_module.LocalBackend = Capture  # type: ignore[misc]
        try:
            bench_local.build(tmp, rows, max(1, rows // 20))
        finally:
            local_module.LocalBackend = LocalBackend  # type: ignore[misc]
        t = time.perf_counter()
        store.write_dataset(*frames.pop("args"), **frames.pop("kwargs"))  # type: ignore[arg-type]
        out["import"] = time.perf_counter() - t
        frames.clear()
        conn = ab.connect("local", path=str(tmp / "store"))
        db = sqlite3.connect(tmp / "store" / "store.sqlite")
        t = time.perf_counter()
        fetched = db.execute("SELECT * FROM annotations WHERE dataset = 'big'").fetchall()
        out["fetch"] = time.perf_counter() - t
        assert len(fetched) == rows
        del fetched
        db.close()
        for step in ("load", "load again"):
            t = time.perf_counter()
            anns = conn.annotations("big")
            registry().wait()
            out[step] = time.perf_counter() - t
        assert len(anns) == rows
        t = time.perf_counter()
        cs = anns.annot.diff()
        out["diff"] = time.perf_counter() - t
        assert len(cs) == 0
        anns.loc[anns.index[rows // 2], "label"] = "truck"
        t = time.perf_counter()
        report = anns.annot.push()
        out["push 1"] = time.perf_counter() - t
        assert len(report.updated) == 1, report
        edit = np.random.default_rng(1).choice(len(anns), rows // 100, replace=False)
        anns.loc[anns.index[edit], "label"] = "van"
        t = time.perf_counter()
        report = anns.annot.push()
        out["push 1%"] = time.perf_counter() - t
        assert len(report.updated) == rows // 100, report
        out["frame GB"] = anns.memory_usage(deep=True).sum() / 1e9
        out["peak GB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_side(tree: Path, rows: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(tree), "--sizes", str(rows)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"the child for {tree} at {rows} rows failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--current", help="a revision to time instead of the working tree (checked out likewise)")
    parser.add_argument("--child")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        print(json.dumps(child(args.child, sizes[0])))
        return
    trees = {"baseline": Path(tempfile.mkdtemp(prefix="bench-scale-base-")) / "tree", "current": ROOT}
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(trees["baseline"]), args.baseline], check=True
    )
    if args.current:
        trees["current"] = Path(tempfile.mkdtemp(prefix="bench-scale-cur-")) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(trees["current"]), args.current], check=True
        )
    try:
        for rows in sizes:
            sides = {name: run_side(tree, rows) for name, tree in trees.items()}
            print(f"\n{rows:,} rows ({max(1, rows // 20):,} assets), edits {rows // 100:,}; seconds unless GB")
            print(f"{'step':<14}{'baseline':>10}{'current':>10}{'cur/base':>10}")
            for step in STEPS:
                b, c = sides["baseline"][step], sides["current"][step]
                print(f"{step:<14}{b:>10.2f}{c:>10.2f}{c / b:>9.2f}x")
            for name, side in sides.items():
                print(
                    f"{name}: load / fetch {side['load'] / side['fetch']:.2f}x, "
                    f"load again / fetch {side['load again'] / side['fetch']:.2f}x, "
                    f"peak / frame {side['peak GB'] / side['frame GB']:.1f}x"
                )
            sys.stdout.flush()
    finally:
        for tree in trees.values():
            if tree != ROOT:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
