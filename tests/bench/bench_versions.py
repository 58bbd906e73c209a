"""The working tree against a baseline revision, side by side in one run (run by hand, not collected).

    python tests/bench/bench_versions.py --baseline 16f6db0 [--repeat 3] [--only local,nexus,vi]

The baseline is checked out in a throwaway ``git worktree add --detach`` (removed at the end, also on failure).
Each turn runs annotebook's side of the other benches in a fresh subprocess (this script again, with ``--child``)
whose PYTHONPATH is one tree and whose ANNOTEBOOK_HOME is its own temp dir; the child checks that
``annotebook.__file__`` lies in that tree. Turns alternate baseline, current, baseline, current, ... and each case
reports the median over ``--repeat`` turns. Cases:

- local: ``bench_local.build`` (200,000 rows of 10,000 assets, its defaults), then ``conn.annotations`` (best of 2
  in the process, as bench_local takes a best) and ``anns.annot.push()`` of 1% of the rows edited.
- nexus, vi: a simulator in its own process, started from the current tree for both sides (so only the client
  differs) and restarted for every turn, since the push changes it; ``bench_nexus.bench_annotebook`` /
  ``bench_vi.bench_annotebook`` (50,000 annotations of 2,000 assets / 20,000 of 2,000, 20 ms a request, best of 2
  in the process), then a push of 20 edited boxes, one on each of 20 assets, through ``anns.annot.push()``
  (the baseline's ``NexusBackend.apply`` / ``ViBackend.apply``, the current tree's sync engine).

Prints a table of case, baseline s, current s and the ratio current / baseline; a ratio above 1.10 is flagged.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench_local  # beside this script (run as `python tests/bench/...`)
import bench_nexus
import bench_vi
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
SIDES = ("baseline", "current")
GROUPS = ("local", "nexus", "vi")
LIMIT = 1.10  # issue 10: within 10% of the baseline

LOCAL_ROWS, LOCAL_ASSETS = 200_000, 10_000  # bench_local.py's defaults
LOCAL_EDITS = LOCAL_ROWS // 100
REMOTE_EDITS = 20
LATENCY_MS = 20.0
NEXUS_ASSETS, NEXUS_ANNOTATIONS, NEXUS_PAGE, NEXUS_WORKERS = 2000, 50_000, 1000, 8  # bench_nexus.py's defaults
VI_ASSETS, VI_ANNOTATIONS, VI_WORKERS = 2000, 20_000, 16  # bench_vi.py's defaults


# -- the child: one turn of one group, in one tree ------------------------------------------------------------
def check_tree(tree: str) -> str:
    """``annotebook.__file__``, once it is known to come from ``tree`` (PYTHONPATH, not the editable install)."""
    import annotebook

    module = Path(annotebook.__file__).resolve()
    if not module.is_relative_to(Path(tree).resolve()):
        raise RuntimeError(f"annotebook was imported from {module}, not from {tree}")
    return str(module)


def edit_boxes(anns: pd.DataFrame, n: int) -> pd.Index:
    """Shrink the first box of ``n`` assets spread over the sorted asset ids; the edited rows' index."""
    boxes = anns[anns["x1"].notna()]
    assets = sorted(boxes["asset"].unique())
    chosen = assets[:: max(1, len(assets) // n)][:n]
    rows = boxes[boxes["asset"].isin(chosen)].groupby("asset").head(1).index
    anns.loc[rows, "x1"] = anns.loc[rows, "x0"] + (anns.loc[rows, "x1"] - anns.loc[rows, "x0"]) * 0.9
    return rows


def timed_push(anns: pd.DataFrame, edits: int) -> float:
    """Seconds of ``anns.annot.push()``, which must update exactly ``edits`` rows and nothing else."""
    start = time.perf_counter()
    report = anns.annot.push()
    seconds = time.perf_counter() - start
    if not report.ok or len(report.updated) != edits or report.created or report.deleted:
        raise RuntimeError(f"the push of {edits} edits answered {report.summary()}")
    return seconds


def child_local(spec: dict[str, Any]) -> dict[str, float]:
    import annotebook as ab
    from annotebook.sync.registry import registry

    root = Path(spec["scratch"])
    bench_local.build(root, LOCAL_ROWS, LOCAL_ASSETS)
    conn = ab.connect("local", path=str(root / "store"))
    t_load, anns = bench_local.timed(lambda: conn.annotations("big"), repeat=2)
    registry().wait()
    assert len(anns) == LOCAL_ROWS, len(anns)
    edit = anns.sample(LOCAL_EDITS, random_state=0).index
    anns.loc[edit, "label"] = "truck"
    half = edit[: LOCAL_EDITS // 2]
    anns.loc[half, "x1"] = anns.loc[half, "x1"] - 0.01
    return {"local load": t_load, "local push": timed_push(anns, LOCAL_EDITS)}


def child_remote(spec: dict[str, Any]) -> dict[str, float]:
    import annotebook as ab
    from annotebook.sync.registry import registry

    group, url = spec["group"], spec["url"]
    if group == "nexus":
        times, n = bench_nexus.bench_annotebook(url, spec["dataset"], NEXUS_PAGE, NEXUS_WORKERS, repeat=2)
        conn = ab.connect("nexus", project=spec["dataset"], key=bench_nexus.KEY, endpoint=url, progress=False)
        expected = NEXUS_ANNOTATIONS
    else:
        times, n = bench_vi.bench_annotebook(url, spec["org"], spec["dataset"], VI_WORKERS, repeat=2)
        conn = ab.connect("vi", organization=spec["org"], key=bench_vi.KEY, endpoint=url, progress=False)
        expected = VI_ANNOTATIONS
    if n != expected:
        raise RuntimeError(f"{group} listed {n} annotations, not {expected}")
    anns = conn.annotations(spec["dataset"])
    registry().wait()
    edit_boxes(anns, REMOTE_EDITS)
    return {f"{group} load": min(times), f"{group} push": timed_push(anns, REMOTE_EDITS)}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    module = check_tree(spec["tree"])
    times = child_local(spec) if spec["group"] == "local" else child_remote(spec)
    return {"module": module, "times": times}


# -- the parent: worktree, simulators, turns, table -------------------------------------------------------------
def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def worktree(revision: str, scratch: Path) -> Iterator[Path]:
    """``revision`` checked out (detached) in a throwaway worktree under ``scratch``, removed on the way out."""
    path = scratch / "baseline-tree"
    git("worktree", "add", "--detach", str(path), revision)
    try:
        yield path
    finally:
        removed = subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
        if removed.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


@contextmanager
def simulator(group: str) -> Iterator[dict[str, str]]:
    """A freshly seeded simulator of ``group`` from the current tree: what a child needs to reach it."""
    if group == "nexus":
        proc, url, project = bench_nexus.serve(NEXUS_ASSETS, NEXUS_ANNOTATIONS, LATENCY_MS)
        info = {"url": url, "dataset": project}
    else:
        proc, url, org, dataset = bench_vi.serve(VI_ASSETS, VI_ANNOTATIONS, LATENCY_MS)
        info = {"url": url, "org": org, "dataset": dataset}
    try:
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_child(tree: Path, spec: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """One turn in a fresh process importing annotebook from ``tree``, with its own ANNOTEBOOK_HOME."""
    turn = Path(tempfile.mkdtemp(prefix="turn-", dir=scratch))
    env = {**os.environ, "PYTHONPATH": str(tree), "ANNOTEBOOK_HOME": str(turn / "home")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps({**spec, "tree": str(tree),
           "scratch": str(turn)})]  # fmt: skip
    try:
        run = subprocess.run(cmd, env=env, cwd=turn, capture_output=True, text=True, timeout=900)
    finally:
        shutil.rmtree(turn, ignore_errors=True)
    if run.returncode != 0:
        raise RuntimeError(f"the {spec['group']} turn in {tree} failed:\n{run.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


def turns(groups: list[str], trees: dict[str, Path], repeat: int, scratch: Path) -> dict[str, dict[str, list[float]]]:
    """Every case's times per side, the sides taking turns (ABAB...) inside each group."""
    results: dict[str, dict[str, list[float]]] = {}
    for group in groups:
        for i in range(repeat):
            for side in SIDES:
                start = time.perf_counter()
                if group == "local":
                    out = run_child(trees[side], {"group": group}, scratch)
                else:
                    with simulator(group) as info:
                        out = run_child(trees[side], {"group": group, **info}, scratch)
                for case, seconds in out["times"].items():
                    results.setdefault(case, {s: [] for s in SIDES})[side].append(seconds)
                took = ", ".join(f"{c} {s:.2f}s" for c, s in out["times"].items())
                print(f"  {group} {i + 1}/{repeat} {side:<8} ({out['module']}): {took}"
                      f"  [turn {time.perf_counter() - start:.0f}s]", file=sys.stderr, flush=True)  # fmt: skip
    return results


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """case, baseline s, current s (medians), ratio and its flag; then every run."""
    lines = [f"{'case':<14}{'baseline s':>12}{'current s':>12}{'ratio':>8}", "-" * 46]
    for case, by_side in results.items():
        base, cur = (statistics.median(by_side[s]) for s in SIDES)
        ratio = cur / base
        flag = f"  SLOWER than {LIMIT:.2f}x" if ratio > LIMIT else ""
        lines.append(f"{case:<14}{base:>12.3f}{cur:>12.3f}{ratio:>8.2f}{flag}")
    lines.append("")
    for case, by_side in results.items():
        runs = "   ".join(f"{s}: " + ", ".join(f"{t:.3f}" for t in by_side[s]) for s in SIDES)
        lines.append(f"runs {case:<14}{runs}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="16f6db0", help="a git revision (default: before issue 10's work)")
    parser.add_argument("--repeat", type=int, default=3, help="turns of each side; the median is compared")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated: local, nexus, vi")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    if unknown := set(groups) - set(GROUPS):
        parser.error(f"unknown --only {sorted(unknown)}; known: {', '.join(GROUPS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a killed run still removes its worktree
    base = git("rev-parse", "--short", f"{args.baseline}^{{commit}}")
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "annotebook") else ""
    print(f"baseline {base} against the working tree (HEAD {git('rev-parse', '--short', 'HEAD')}{dirty}), "
          f"{args.repeat} turns each, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="annotebook-versions-") as tmp, worktree(base, Path(tmp)) as tree:
        trees = {"baseline": tree, "current": ROOT}
        for path in trees.values():  # no side pays for compiling a lazily imported module inside a timing
            compileall.compile_dir(path / "annotebook", quiet=1)
        results = turns(groups, trees, args.repeat, Path(tmp))
    print(table(results))
    print(f"total {time.perf_counter() - start:.0f}s, load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
