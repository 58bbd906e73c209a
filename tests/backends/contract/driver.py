"""A second notebook, as a process: the contract tests run it to load, edit and push from outside the test process.

``python driver.py JOB.json [SIDE]``. The job (JSON) carries ``connect`` (backend, dataset and options: no key; the
key comes from the environment, as does ``ANNOTEBOOK_HOME``), ``edits`` (the kind of rows edited, a key of
`edits.EDITS`) and ``action``:

- ``save``: load, apply ``changes`` ([[row id, variant], ...]), write the frame to ``parquet``, then, with ``push``,
  touch ``marker`` and push;
- ``push``: read ``parquet`` back, note its diff, apply ``changes``, push;
- ``race``: for round n = 0, 1, ... wait for ``folder/round-n.json`` (``{"row", "variants": {side: v},
  "offsets": {side: s}}``), load, edit the row, meet the other sides at a file barrier, sleep this side's offset,
  push, write ``folder/round-n.SIDE.out``; ``folder/stop`` ends it.

``save`` and ``push`` write their outcome to the job's ``.result.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from edits import EDITS, Edits

import annotebook as ab
from annotebook.errors import ConflictError, PushError


def write_json(path: Path, body: Any) -> None:
    """Write ``body`` so a reader polling for ``path`` never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, default=str))
    os.replace(tmp, path)


def _timings(report: Any) -> dict[str, float] | None:
    timings = getattr(report, "timings", None)
    if not isinstance(timings, Mapping) or not timings:
        return None
    return {str(k): float(v) for k, v in timings.items()}


def push_outcome(frame: pd.DataFrame) -> dict[str, Any]:
    """Push ``frame``: ok / failed (a report not ok) / ConflictError / PushError / other, timings when told."""
    started = time.time()
    out: dict[str, Any]
    try:
        report = frame.annot.push()
        out = {"outcome": "ok" if report.ok else "failed", "summary": repr(report), "timings": _timings(report)}
    except (ConflictError, PushError) as exc:
        name = "ConflictError" if isinstance(exc, ConflictError) else "PushError"
        out = {"outcome": name, "error": str(exc)[:3000], "timings": _timings(getattr(exc, "report", None))}
    except Exception as exc:
        out = {"outcome": "other", "error": f"{type(exc).__name__}: {exc}"[:3000], "timings": None}
    out.update(started=started, ended=time.time(), diff_after=_diff_size(frame))
    return out


def _diff_size(frame: pd.DataFrame) -> int | str:
    try:
        return len(frame.annot.diff())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def apply_changes(frame: pd.DataFrame, edits: Edits, changes: list[list[Any]]) -> None:
    for row_id, variant in changes:
        edits.edit(frame, str(row_id), int(variant))


def save(conn: ab.Connection, job: dict[str, Any], edits: Edits) -> dict[str, Any]:
    frame = conn.annotations()
    apply_changes(frame, edits, job.get("changes", []))
    frame.to_parquet(job["parquet"])
    if not job.get("push"):
        return {"outcome": "saved", "rows": len(frame)}
    Path(job["marker"]).touch()
    return push_outcome(frame)


def push(job: dict[str, Any], edits: Edits) -> dict[str, Any]:
    frame = pd.read_parquet(job["parquet"])
    before = frame.annot.diff()
    seen = {"changes": len(before), "conflicts": len(before.conflicts), "fast_forward": len(before.fast_forward)}
    apply_changes(frame, edits, job.get("changes", []))
    return {**push_outcome(frame), "diff_before": seen}


def race(conn: ab.Connection, job: dict[str, Any], edits: Edits, side: str) -> None:
    folder = Path(job["folder"])
    for n in itertools.count():
        task_file = folder / f"round-{n}.json"
        while not task_file.exists():
            if (folder / "stop").exists():
                return
            time.sleep(0.005)
        task = json.loads(task_file.read_text())
        frame = conn.annotations()
        edits.edit(frame, task["row"], task["variants"][side])
        (folder / f"round-{n}.{side}.ready").touch()
        while len(list(folder.glob(f"round-{n}.*.ready"))) < len(task["variants"]):
            time.sleep(0.0005)
        time.sleep(task["offsets"][side])
        write_json(folder / f"round-{n}.{side}.out", push_outcome(frame))


def main(argv: list[str]) -> None:
    job_path = Path(argv[1])
    job = json.loads(job_path.read_text())
    edits = EDITS[job["edits"]]()
    kw = job["connect"]
    if job["action"] == "push":  # reconnects from the registry, as a restarted kernel does
        result = push(job, edits)
    else:
        conn = ab.connect(kw["backend"], dataset=kw["dataset"], **kw["options"])
        if job["action"] == "race":
            race(conn, job, edits, argv[2])
            return
        result = save(conn, job, edits)
    write_json(job_path.with_suffix(".result.json"), result)


if __name__ == "__main__":
    main(sys.argv)
