"""A frame outlives its kernel: read back from parquet after a restart it diffs empty and pushes (R-2, R-10), and a
push killed half way is finished by a fresh process, every edit exactly once (R-11)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pandas as pd
import pytest

from .conftest import Platform, driver_job, driver_log, run_driver, start_driver
from .edits import Content, count, live

#: seconds the simulator waits on each request while a push is killed: writes come at least this far apart
LATENCY = 0.1


@pytest.mark.slow
def test_a_frame_read_back_from_parquet_after_a_restart_diffs_empty_and_pushes(
    platform: Platform, tmp_path: Path
) -> None:
    parquet = tmp_path / "frame.parquet"
    saved = run_driver(platform, driver_job(platform, tmp_path, "save", action="save", parquet=str(parquet)))
    assert saved["outcome"] == "saved"  # that process loaded, wrote the parquet and exited
    frame = pd.read_parquet(parquet)
    x = platform.pick(frame)
    edited = platform.edit(frame.copy(), x, 1)
    job = driver_job(platform, tmp_path, "push", action="push", parquet=str(parquet), changes=[[x, 1]])
    result = run_driver(platform, job)
    assert result["diff_before"] == {"changes": 0, "conflicts": 0, "fast_forward": 0}, result
    assert result["outcome"] == "ok" and result["diff_after"] == 0, result
    fresh = platform.fresh()
    assert count(fresh, edited) == 1 and len(live(fresh)) == len(live(frame))


def killed_push(platform: Platform, tmp_path: Path, n: int, changes: list[list[object]], delay: float | None) -> bool:
    """Start a process that loads, makes ``changes``, saves the frame and pushes; SIGKILL it after the ``n``-th
    write reached the simulator (remote), or ``delay`` seconds into the push (local). Whether it was still running.
    """
    parquet = tmp_path / f"kill-{n}.parquet"
    marker = tmp_path / f"kill-{n}.pushing"
    job = driver_job(platform, tmp_path, f"kill-{n}", action="save", parquet=str(parquet), changes=changes,
                     push=True, marker=str(marker))  # fmt: skip
    faults = platform.faults
    if faults is not None:
        faults.update({"latency_ms": LATENCY * 1000})
        start = faults.writes  # every write the simulator was asked for
    proc = start_driver(platform, job)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if faults is not None and faults.writes >= start + n:
            time.sleep(LATENCY / 3)  # the n-th write is applied; the next one is still on its way
            break
        if faults is None and marker.exists():
            time.sleep(delay or 0)
            break
        time.sleep(0.002)
    running = proc.poll() is None
    proc.kill()
    proc.wait()
    if faults is not None:
        faults.update({"latency_ms": 0})
    assert running or proc.returncode == 0, f"the pushing process failed on its own:\n{driver_log(job)}"
    return running


@pytest.mark.slow
def test_a_push_killed_half_way_is_finished_by_a_fresh_process(platform: Platform, tmp_path: Path) -> None:
    """Remote: kill after write n, for n = 1, 2, ... until the push ends first. Local: at a random point of each
    fifth of the first 100 ms of a push of 80 edits (which takes about 80 ms)."""
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    remote = bool(platform.declares("remote"))
    killed = []
    for n in range(1, 30 if remote else 6):
        frame = platform.fresh()
        rows = platform.edits.candidates(frame)
        if remote:  # several edits, on two assets
            first = platform.pick(frame)
            picked = [first, platform.pick(frame, not_on=(frame.loc[frame.id == first, "asset"].iloc[0],))]
        else:  # many edits in one transaction
            picked = [str(i) for i in rows["id"].iloc[:80]]
        variants = {row: 100 * n + i for i, row in enumerate(picked)}
        wanted: list[Content] = [platform.edit(frame.copy(), r, v) for r, v in variants.items()]
        running = killed_push(platform, tmp_path, n, [[r, v] for r, v in variants.items()], rng.uniform(n - 1, n) / 50)
        job = driver_job(platform, tmp_path, f"after-{n}", action="push", parquet=str(tmp_path / f"kill-{n}.parquet"))
        result = run_driver(platform, job)
        assert result["outcome"] == "ok" and result["diff_after"] == 0, f"round {n} (seed {seed}): {result}"
        fresh = platform.fresh()
        assert [count(fresh, c) for c in wanted] == [1] * len(wanted), f"round {n} (seed {seed})"
        assert len(live(fresh)) == len(live(frame)), f"round {n} (seed {seed}): a duplicate or a lost row"
        killed.append(f"{n}:{'killed' if running else 'done first'}")
        if remote and not running:
            break
    print(f"{platform.name} (seed {seed}): " + ", ".join(killed))
