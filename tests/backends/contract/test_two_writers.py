"""Two notebooks on one dataset (issue 10's table, R-13): the second push of a row changed since its load is a
`ConflictError` and nothing is overwritten; two processes racing never leave a duplicate or both edits."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from annotebook.errors import ConflictError

from .conftest import Platform, driver_job, driver_log, start_driver
from .edits import Content, content_of, count, live


def push_expecting_a_conflict(frame: pd.DataFrame) -> None:
    """The push of a row changed since the frame's load: a `ConflictError`, never a report of it landing."""
    try:
        report = frame.annot.push()
    except ConflictError:
        return
    pytest.fail(f"the second push did not raise ConflictError but said: {report!r}")


def two_loads(platform: Platform) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """F1 and F2, two loads through two connections, and the row X both will touch."""
    f1, f2 = platform.fresh(), platform.fresh()
    return f1, f2, platform.pick(f1)


def test_an_edit_after_another_edit_is_a_conflict(platform: Platform) -> None:
    f1, f2, x = two_loads(platform)
    first = platform.edit(f1, x, 1)
    assert f1.annot.push().ok
    second = platform.edit(f2, x, 2)
    push_expecting_a_conflict(f2)
    fresh = platform.fresh()
    assert count(fresh, first) == 1 and count(fresh, second) == 0
    assert len(live(fresh)) == len(live(f1))
    assert len(f1.annot.diff()) == 0


def test_an_edit_after_a_delete_is_a_conflict(platform: Platform) -> None:
    f1, f2, x = two_loads(platform)
    was = content_of(f1, x)
    f1.annot.delete(f1.id == x)
    assert f1.annot.push().ok
    second = platform.edit(f2, x, 2)
    push_expecting_a_conflict(f2)
    fresh = platform.fresh()
    assert count(fresh, second) == 0 and count(fresh, was) == 0 and x not in set(fresh.id)  # X stays deleted
    assert len(live(fresh)) == len(live(f2)) - 1


def test_a_delete_after_an_edit_is_a_conflict(platform: Platform) -> None:
    f1, f2, x = two_loads(platform)
    first = platform.edit(f1, x, 1)
    assert f1.annot.push().ok
    f2.annot.delete(f2.id == x)
    push_expecting_a_conflict(f2)
    fresh = platform.fresh()
    assert count(fresh, first) == 1  # F1's edited copy is still there
    assert len(live(fresh)) == len(live(f1))


# -- the race --------------------------------------------------------------------------------------------------

#: offsets (seconds) between the two pushes: a few near 0 where writes are conditional, 22 from 0 to 1 s where not
CONDITIONAL_OFFSETS = (0.0, 0.0, 0.005, 0.02, 0.05)
UNCONDITIONAL_OFFSETS = (0.0, 0.0, 0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4,
                         0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # fmt: skip
SEEN = ("ConflictError", "PushError")  # outcomes that tell the user the push did not simply land


@dataclass
class Round:
    """One round of the race: what each side did, and what the platform held afterwards."""

    offset: float
    outcomes: dict[str, dict[str, Any]]
    held: dict[str, int]  # side -> rows holding that side's edit
    rows_on_asset: tuple[int, int]  # before, after
    verdict: str = ""


class Racers:
    """Two driver processes (sides "a" and "b") that load, edit X, meet at a barrier and push, once a round."""

    def __init__(self, platform: Platform, folder: Path):
        self.folder = folder
        folder.mkdir()
        self.job = driver_job(platform, folder.parent, "race", action="race", folder=str(folder))
        self.procs = {side: start_driver(platform, self.job, side) for side in "ab"}

    def run(self, n: int, row: str, variants: dict[str, int], offsets: dict[str, float]) -> dict[str, dict[str, Any]]:
        task = self.folder / f"round-{n}.json"
        tmp = task.with_suffix(".tmp")
        tmp.write_text(json.dumps({"row": row, "variants": variants, "offsets": offsets}))
        tmp.replace(task)
        outs = {side: self.folder / f"round-{n}.{side}.out" for side in "ab"}
        deadline = time.monotonic() + 60
        while not all(p.exists() for p in outs.values()):
            dead = [s for s, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"side {s}:\n{driver_log(self.job, s)}" for s in self.procs)
                pytest.fail(f"racer {dead or 'timeout'} in round {n}:\n{logs}")
            time.sleep(0.01)
        return {side: json.loads(p.read_text()) for side, p in outs.items()}

    def stop(self) -> None:
        (self.folder / "stop").touch()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def judge(r: Round, conditional: bool) -> None:
    """Set ``r.verdict``: "seen", "blind" (neither side could see the other), "unknown" (no timings), or a failure."""
    a, b = r.outcomes["a"], r.outcomes["b"]
    kinds = sorted(o["outcome"] for o in (a, b))
    landed = sum(r.held.values())
    if r.rows_on_asset[0] != r.rows_on_asset[1] or landed != 1:
        r.verdict = f"FAIL: the platform holds {r.held} of the two edits, asset rows {r.rows_on_asset}"
    elif "failed" in kinds:
        said = next(o["summary"] for o in (a, b) if o["outcome"] == "failed")
        r.verdict = f"FAIL: a push returned failures instead of raising PushError (R-14): {said}"
    elif any(k not in ("ok", *SEEN) for k in kinds):
        said = next(o["error"] for o in (a, b) if o["outcome"] not in ("ok", *SEEN))
        r.verdict = f"FAIL: a push raised something else: {said[:300]}"
    elif conditional:
        ok = [s for s, o in r.outcomes.items() if o["outcome"] == "ok"]
        if kinds != ["ConflictError", "ok"] or r.held[ok[0]] != 1:
            r.verdict = f"FAIL: wanted one ConflictError and the other side's edit; got {kinds}, held {r.held}"
        else:
            r.verdict = "seen"
    elif any(k in SEEN for k in kinds):
        r.verdict = "seen"
    elif a["started"] > b["ended"] or b["started"] > a["ended"]:
        r.verdict = "FAIL: one push started after the other ended, and both said ok"
    elif not (a["timings"] and b["timings"]):
        r.verdict = "unknown"
    elif _checked_after_written(a, b) or _checked_after_written(b, a):
        r.verdict = "FAIL: a side re-checked after the other's write, and both said ok"
    else:
        r.verdict = "blind"


def _checked_after_written(one: dict[str, Any], other: dict[str, Any]) -> bool:
    checked, written = one["timings"].get("checked"), other["timings"].get("written")
    return checked is not None and written is not None and checked > written


@pytest.mark.slow
def test_two_processes_racing_leave_one_edit_and_never_a_duplicate(platform: Platform, tmp_path: Path) -> None:
    conditional = bool(platform.declares("conditional_write"))
    offsets = CONDITIONAL_OFFSETS if conditional else UNCONDITIONAL_OFFSETS
    if platform.faults is not None:
        platform.faults.update({"latency_ms": 20})  # a network's worth of time between a re-check and a write
    racers = Racers(platform, tmp_path / "race")
    rounds: list[Round] = []
    try:
        for n, offset in enumerate(offsets):
            rounds.append(race_round(platform, racers, n, offset))
    finally:
        racers.stop()
    summary = {v: sum(r.verdict == v for r in rounds) for v in ("seen", "blind", "unknown")}
    record = {"platform": platform.name, "conditional_write": conditional, "summary": summary,
              "rounds": [vars(r) for r in rounds]}  # fmt: skip
    (tmp_path / "race.json").write_text(json.dumps(record, indent=1, default=str))
    told = f"{summary['seen']} seen by a side, {summary['blind']} where neither side could see the overlap"
    print(f"\n{platform.name} race, {len(rounds)} rounds: {told}, {summary['unknown']} without timings to tell")
    print(f"details: {tmp_path / 'race.json'}")
    failed = [f"round {i} (offset {r.offset}): {r.verdict}" for i, r in enumerate(rounds) if r.verdict.startswith("F")]
    assert not failed, "\n".join(failed)


def race_round(platform: Platform, racers: Racers, n: int, offset: float) -> Round:
    """Both sides edit the same row differently and push ``offset`` apart (the late side alternates)."""
    frame = platform.fresh()
    x = platform.pick(frame)
    asset = frame.loc[frame.id == x, "asset"].iloc[0]
    variants = {"a": 2 * n + 1, "b": 2 * n + 2}
    wanted: dict[str, Content] = {s: platform.edit(frame.copy(), x, v) for s, v in variants.items()}
    offsets = {"a": 0.0, "b": offset} if n % 2 else {"a": offset, "b": 0.0}
    outcomes = racers.run(n, x, variants, offsets)
    fresh = platform.fresh()
    rows = (int((live(frame).asset == asset).sum()), int((live(fresh).asset == asset).sum()))
    r = Round(offset, outcomes, {s: count(fresh, c) for s, c in wanted.items()}, rows)
    judge(r, bool(platform.declares("conditional_write")))
    return r
