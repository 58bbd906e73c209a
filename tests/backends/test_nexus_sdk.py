"""Contract: Datature's own SDK (``datature==1.12.2``) against the simulator, and annotebook and the SDK agree.

The SDK pins numpy<2 and protobuf 5, so it lives in its own virtual environment under
``$ANNOTEBOOK_TEST_CACHE`` (default ``~/.cache/annotebook-test``), built once and driven by subprocess, as
``tests/peers.py`` does for the format peers. ``DATATURE_API_BASE_URL`` is read when the SDK is imported, so the
driver sets it first.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.nexus import row_from_wire
from tests.peers import cached_venv

from .conftest import NEXUS_KEY

pytestmark = pytest.mark.slow

SDK = ("datature==1.12.2",)

DRIVER = r"""
import json, os, sys
cmd = json.loads(sys.argv[1])
os.environ["DATATURE_API_BASE_URL"] = cmd["url"]  # read when datature.nexus is imported
import msgspec
from datature.nexus import Client, config
config.OPERATION_LOOPING_DELAY_SECONDS = 0.05  # the SDK polls every 8 s; the simulator ends in a few polls

project = Client(cmd["key"]).get_project(cmd["project"])

def every(filters=None):
    rows, page = [], None
    while True:
        pagination = {"limit": 7, **({"page": page} if page else {})}
        answer = project.annotations.list(pagination, filters, include_attributes=True)
        rows += answer.data
        page = answer.next_page
        if not page:
            return rows

out = []
for op in cmd["ops"]:
    if op["op"] == "list":
        value = every({"asset_ids": op["assets"]} if op.get("assets") else None)
    elif op["op"] == "get":
        value = project.annotations.get(op["id"], include_attributes=True)
    elif op["op"] == "create":
        value = project.annotations.create(op["body"])
    elif op["op"] == "delete":
        value = project.annotations.delete(op["id"])
    elif op["op"] == "assets":
        value = project.assets.list({"limit": 100})
    elif op["op"] == "import":
        session = project.annotations.create_import_session(background=True)
        with session as s:
            for name, text in op["files"].items():
                s.add_bytes(text.encode(), name)
        try:
            done = session.wait_until_done()
        except Exception as exc:  # an Errored session raises BadRequestError
            done = type(exc).__name__
        value = {"done": done, "logs": session.get_logs()}
    elif op["op"] == "export":
        operation = project.annotations.create_export(
            {"format": op["format"], "options": {"split_ratio": op["split_ratio"], "seed": 3, "normalized": True}}
        )
        local = project.annotations.download_exported_file(operation.id, op["dest"])
        value = {"operation": operation, "download": local}
    out.append(msgspec.to_builtins(value))
print(json.dumps(out))
"""


def sdk_python() -> Path:
    """The Python of the SDK's own venv (its pins clash with the project's)."""
    return cached_venv("datature", SDK)


def run_sdk(sim: Any, *ops: dict[str, Any]) -> list[Any]:
    cmd = {"url": sim.url, "key": NEXUS_KEY, "project": sim.state.project_id, "ops": list(ops)}
    run = subprocess.run(
        [str(sdk_python()), "-c", DRIVER, json.dumps(cmd)], capture_output=True, text=True, timeout=600
    )
    if run.returncode != 0:
        raise AssertionError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    result: list[Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def canonical(wire: list[dict[str, Any]], dataset: str) -> pd.DataFrame:
    """Wire annotations as canonical rows, keyed and sorted by id, content columns only."""
    rows = [r for r in (row_from_wire(a, dataset) for a in wire) if r is not None]
    frame = ab.annotations_frame(rows) if rows else ab.annotations_frame()
    return normal(frame)


def normal(frame: pd.DataFrame) -> pd.DataFrame:
    from annotebook import schema

    live = frame[~frame["deleted"].to_numpy(dtype=bool)]
    cols = ["id", "rev", "asset", "label", "kind", "x0", "y0", "x1", "y1", "points", "visibility", "attributes"]
    records = [{c: repr(schema.normal_value(c, r[c])) for c in cols} for r in live[cols].to_dict("records")]
    return pd.DataFrame(records, columns=cols).sort_values("id").reset_index(drop=True)


@pytest.fixture
def conn(nexus_sim):
    return ab.connect("nexus", project=nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)


def test_sdk_list_get_create_delete(nexus_sim):
    state = nexus_sim.state
    asset = next(iter(state.assets))
    rect = [[0.1, 0.1], [0.1, 0.3], [0.4, 0.3], [0.4, 0.1]]
    body = {"bound_type": "Rectangle", "bound": rect, "asset_id": asset, "tag": "circle"}
    listed, assets, made = run_sdk(nexus_sim, {"op": "list"}, {"op": "assets"}, {"op": "create", "body": body})
    assert len(listed) == len(state.annotations) - 1 and {a["id"] for a in listed} < set(state.annotations)
    assert len(assets["data"]) == 8 and assets["data"][0]["metadata"]["width"] > 0
    assert made["boundType"] == "Rectangle" and made["bound"] == rect and made["assetId"] == asset
    got, gone, after = run_sdk(
        nexus_sim, {"op": "get", "id": made["id"]}, {"op": "delete", "id": made["id"]}, {"op": "list"}
    )
    assert got["id"] == made["id"] and got["tag"] == "circle"
    assert gone == {"deleted": True, "id": made["id"]}
    assert made["id"] not in {a["id"] for a in after} and len(after) == len(state.annotations)
    one = run_sdk(nexus_sim, {"op": "list", "assets": [asset]})[0]
    assert {a["assetId"] for a in one} == {asset}


def test_what_annotebook_pushed_the_sdk_reads_identically(conn, nexus_sim):
    anns = conn.assets(conn.backend.project).annot.load()
    boxes = anns.index[anns["kind"] == "box"]
    anns.loc[boxes[:2], "y1"] = anns.loc[boxes[:2], "y1"] - 0.02
    anns.annot.delete(anns.index == boxes[3])
    anns.annot.add_box(str(anns["asset"].iloc[1]), "star", (0.05, 0.05, 0.25, 0.35), attributes={"note": "new"})
    assert anns.annot.push().ok
    (listed,) = run_sdk(nexus_sim, {"op": "list"})
    pd.testing.assert_frame_equal(canonical(listed, conn.backend.project), normal(anns))


def test_what_the_sdk_wrote_annotebook_loads_identically(conn, nexus_sim):
    asset = list(nexus_sim.state.assets)[2]
    bodies = [
        {"bound_type": "Rectangle", "bound": [[0.2, 0.2], [0.2, 0.5], [0.6, 0.5], [0.6, 0.2]], "asset_id": asset,
         "tag": "square"},
        {"bound_type": "Polygon", "bound": [[0.1, 0.1], [0.3, 0.15], [0.2, 0.4]], "asset_id": asset, "tag": "triangle"},
    ]  # fmt: skip
    made = run_sdk(nexus_sim, *({"op": "create", "body": b} for b in bodies))
    (listed,) = run_sdk(nexus_sim, {"op": "list"})
    loaded = conn.annotations(conn.backend.project)
    pd.testing.assert_frame_equal(normal(loaded), canonical(listed, conn.backend.project))
    mine = loaded.set_index("id").loc[[m["id"] for m in made]]
    assert mine["kind"].tolist() == ["box", "polygon"]
    assert mine.iloc[0][["x0", "y0", "x1", "y1"]].tolist() == [0.2, 0.2, 0.6, 0.5]


def test_sdk_import_session_waits_and_reads_logs(conn, nexus_sim):
    names = [a["filename"] for a in nexus_sim.state.assets.values()]
    good = f"filename,xmin,ymin,xmax,ymax,label\n{names[0]},0.1,0.1,0.3,0.3,star\n{names[1]},0.2,0.2,0.4,0.5,circle\n"
    before = set(nexus_sim.state.annotations)
    (ok,) = run_sdk(nexus_sim, {"op": "import", "files": {"good.csv": good}})
    assert ok["done"] is True and ok["logs"]["logs"] == []
    added = set(nexus_sim.state.annotations) - before
    assert len(added) == 2
    loaded = conn.annotations(conn.backend.project)  # what the SDK imported, annotebook loads
    assert len(loaded) == len(before) + 2
    assert set(loaded.loc[loaded["id"].isin(added), "label"]) == {"star", "circle"}
    bad = f"filename,xmin,ymin,xmax,ymax,label\n{names[0]},1,1,5,5,star\n{names[0]},259,259,900,900,star\n"
    (failed,) = run_sdk(nexus_sim, {"op": "import", "files": {"test_annotations2.csv": bad}})
    assert failed["done"] == "BadRequestError"
    (log,) = failed["logs"]["logs"]
    assert log["level"] == "Error" and log["message"].startswith("At test_annotations2.csv:3: Point 259.0,")
    assert isinstance(log["timestamp"], float) and log["timestamp"] < 1e11  # epoch seconds
    assert len(nexus_sim.state.annotations) == len(before) + 2


def test_sdk_export_and_annotebook_export_agree(conn, nexus_sim, tmp_path):
    conn.backend.poll_interval = 0.01
    (sdk,) = run_sdk(nexus_sim, {"op": "export", "format": "csv_fourcorner", "split_ratio": 0.5,
                                 "dest": str(tmp_path / "sdk")})  # fmt: skip
    assert sdk["operation"]["status"]["overview"] == "Finished"
    folder = nexus_sim.state.project_id.removeprefix("proj_")
    assert sorted(sdk["download"]["file_names"]) == [f"{folder}/train.csv", f"{folder}/validate.csv"]
    mine = conn.export("csv_fourcorner", tmp_path / "mine", conn.backend.project, split_ratio=0.5, seed=3,
                       normalized=True, progress=False)  # fmt: skip
    assert sorted(p.relative_to(tmp_path / "mine").as_posix() for p in mine.paths) == sorted(
        sdk["download"]["file_names"]
    )
    for name in sdk["download"]["file_names"]:
        assert (tmp_path / "sdk" / name).read_bytes() == (tmp_path / "mine" / name).read_bytes()
