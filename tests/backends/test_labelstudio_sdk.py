"""Contract: Label Studio's own SDK (``label-studio-sdk``, the one the pinned server brings) and annotebook read
each other's writes on the real server.

The SDK pins its own pydantic stack, so it runs in the server's cached venv (`annotebook.testing.labelstudio_server`),
driven by subprocess; the key travels in ``LABEL_STUDIO_API_KEY``, never in argv. What the SDK reads comes back
as ``model_dump(mode="json")``; the test converts its percent to normalised coordinates with its own arithmetic.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pandas as pd
import pytest

import annotebook as ab
from annotebook.testing.labelstudio_server import LabelStudioServer, sample_project, venv_python

pytestmark = pytest.mark.slow

DRIVER = r"""
import json, os, sys
from label_studio_sdk import LabelStudio

cmd = json.loads(sys.stdin.read())
ls = LabelStudio(base_url=cmd["url"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
out = {"version": __import__("importlib.metadata").metadata.version("label-studio-sdk")}
if cmd["op"] == "read":
    tasks = ls.tasks.list(project=cmd["project"], fields="all")
    out["tasks"] = [t.model_dump(mode="json") for t in tasks]
elif cmd["op"] == "write":
    made = ls.annotations.create(id=cmd["task"], result=cmd["result"])
    out["created"] = made.model_dump(mode="json")
    if cmd.get("update"):
        changed = ls.annotations.update(id=cmd["update"]["id"], result=cmd["update"]["result"])
        out["updated"] = changed.model_dump(mode="json")
print(json.dumps(out))
"""


def sdk(server: LabelStudioServer, **cmd: Any) -> Any:
    env = {**os.environ, "LABEL_STUDIO_API_KEY": server.token}
    run = subprocess.run(
        [str(venv_python()), "-c", DRIVER],
        input=json.dumps({"url": server.url, **cmd}),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.fixture
def project(labelstudio_server: LabelStudioServer, tmp_path: Any) -> int:
    return sample_project(labelstudio_server, n_assets=4, title="sdk contract", image_dir=tmp_path)


def connect(server: LabelStudioServer, project: int) -> ab.Connection:
    return ab.connect("labelstudio", url=server.url, project=project, token=server.token, progress=False)


def test_the_sdk_reads_back_what_annotebook_pushed(labelstudio_server: LabelStudioServer, project: int) -> None:
    conn = connect(labelstudio_server, project)
    anns = conn.annotations()
    boxes = anns[anns["kind"] == "box"]
    x = str(boxes["id"].iloc[0])
    anns.loc[anns["id"] == x, ["x0", "x1"]] = [0.125, 0.625]
    gone = str(anns[anns["kind"] == "polygon"]["id"].iloc[0])
    anns.annot.delete(anns["id"] == gone)
    task = str(boxes["asset"].iloc[-1])
    new = anns.annot.add_box(task, "circle", (0.25, 0.5, 0.75, 0.875))
    tag = anns.annot.add_rows(anns.annot.new_rows([{"asset": task, "kind": "tag", "label": "star", "value": True}]))
    cap = anns.annot.add_rows(anns.annot.new_rows([{"asset": task, "kind": "caption", "text": "three shapes"}]))
    report = anns.annot.push()
    assert report.ok and len(report.created) == 3 and list(report.updated) == [x], report

    got = sdk(labelstudio_server, op="read", project=project)
    assert got["version"] == "2.1.2"
    results = {}
    for t in got["tasks"]:
        for a in t["annotations"]:
            for r in a["result"]:
                results.setdefault(f"{a['id']}/{r['id']}", []).append({**r, "task": str(t["id"])})
    assert gone not in results
    (edited,) = results[x]
    v = edited["value"]
    assert (v["x"] / 100, (v["x"] + v["width"]) / 100) == pytest.approx((0.125, 0.625), abs=1e-12)
    assert edited["original_width"] and edited["original_height"]  # Label Studio's converters need them
    ids = {c: report.created[c] for c in report.created}
    (box,) = results[ids[new]]
    b = box["value"]
    assert box["type"] == "rectanglelabels" and b["rectanglelabels"] == ["circle"] and box["task"] == task
    assert (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) == pytest.approx((25, 50, 75, 87.5), abs=1e-9)
    (choice,) = results[ids[tag[0]]]
    assert (choice["type"], choice["from_name"], choice["value"]) == ("choices", "choice", {"choices": ["star"]})
    (text,) = results[ids[cap[0]]]
    assert (text["type"], text["value"]) == ("textarea", {"text": ["three shapes"]})


def test_annotebook_loads_what_the_sdk_wrote(labelstudio_server: LabelStudioServer, project: int) -> None:
    conn = connect(labelstudio_server, project)
    before = conn.annotations()
    task = int(before["asset"].iloc[0])
    mine = before[before["asset"] == str(task)]
    annotation = int(mine["annotation"].iloc[0])
    size = {"original_width": 400, "original_height": 300, "image_rotation": 0}
    result = [
        {
            "id": "sdkbox",
            "type": "rectanglelabels",
            "from_name": "label",
            "to_name": "image",
            **size,
            "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["star"]},
        },
        {
            "id": "sdkrot",
            "type": "rectanglelabels",
            "from_name": "label",
            "to_name": "image",
            **size,
            "value": {"x": 50, "y": 50, "width": 20, "height": 10, "rotation": 90, "rectanglelabels": ["square"]},
        },
        {
            "id": "sdkpoly",
            "type": "polygonlabels",
            "from_name": "polygon",
            "to_name": "image",
            **size,
            "value": {"points": [[10, 10], [40, 10], [40, 35]], "closed": True, "polygonlabels": ["triangle"]},
        },
        {
            "id": "sdkpt",
            "type": "keypointlabels",
            "from_name": "keypoint",
            "to_name": "image",
            **size,
            "value": {"x": 5, "y": 95, "width": 1, "keypointlabels": ["noise"]},
        },
        {
            "id": "sdkch",
            "type": "choices",
            "from_name": "choice",
            "to_name": "image",
            "value": {"choices": ["circle", "star"]},
        },
        {"id": "sdktx", "type": "textarea", "from_name": "caption", "to_name": "image", "value": {"text": ["hello"]}},
    ]
    kept = next(r for r in sdk(labelstudio_server, op="read", project=project)["tasks"] if r["id"] == task)
    first = kept["annotations"][0]["result"][:1]
    update = {
        "id": annotation,
        "result": [*first, {**first[0], "id": "sdkmoved", "value": {**first[0]["value"], "x": 1.5}}],
    }
    wrote = sdk(labelstudio_server, op="write", task=task, result=result, update=update)
    made = wrote["created"]["id"]

    after = conn.annotations().set_index("id")
    row = after.loc[f"{made}/sdkbox"]
    assert (row["kind"], row["label"], row["annotation"], row["asset"]) == ("box", "star", str(made), str(task))
    assert [row[c] for c in ("x0", "y0", "x1", "y1")] == pytest.approx([0.1, 0.2, 0.4, 0.6], abs=1e-12)
    rot = after.loc[f"{made}/sdkrot"]  # turned 90 degrees about its top-left corner: the centre moves
    assert rot["rotation"] == 90
    assert ((rot["x0"] + rot["x1"]) / 2 * 400, (rot["y0"] + rot["y1"]) / 2 * 300) == pytest.approx((200 - 15, 150 + 40))
    poly = after.loc[f"{made}/sdkpoly"]
    assert poly["kind"] == "polygon" and poly["points"][0] == pytest.approx((0.1, 0.1, 0.4, 0.1, 0.4, 0.35))
    pt = after.loc[f"{made}/sdkpt"]
    assert (pt["kind"], pt["label"]) == ("keypoints", "noise") and pt["points"] == ((0.05, 0.95),)
    tags = after[(after["annotation"] == str(made)) & (after["kind"] == "tag")]
    assert sorted(tags["label"]) == ["circle", "star"] and tags["value"].all()
    assert after.loc[f"{made}/sdktx", "text"] == "hello"
    assert after.loc[f"{made}/sdkbox", "author"] == "annotebook@example.com"
    moved = after.loc[f"{annotation}/sdkmoved"]
    assert moved["x0"] == pytest.approx(0.015) and moved["rev"] == wrote["updated"]["updated_at"]
    assert len(after[after["annotation"] == str(annotation)]) == 2  # the update replaced the whole list
    assert isinstance(after, pd.DataFrame)
