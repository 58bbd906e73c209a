"""Contract: SuperAnnotate's own SDK (``superannotate==4.6.2``, ``SAClient``) against the simulator, and annotebook and
the SDK read each other's writes.

The SDK pins its own stack (aiohttp, boto3, OpenCV, pandas), so it lives in its own virtual environment under
``$ANNOTEBOOK_TEST_CACHE``, built once and driven by subprocess. Its sibling hosts are hard-coded, so the driver
points the SDK's three URL getters at the simulator's prefixes (protocol notes, part B.1) and turns off its version
check and telemetry; the token comes from ``SA_TOKEN`` (never argv). ``search_items`` is not in 4.6.2 (it is
``list_items`` with filters there), so the item search is driven through ``list_items``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import annotebook as ab
from annotebook.testing import Simulator
from tests.peers import cached_venv

from .conftest import SA_TOKEN

pytestmark = pytest.mark.slow

SDK = ("superannotate==4.6.2",)

DRIVER = r"""
import json, os, sys
os.environ["SA_VERSION_CHECK"] = "false"
os.environ["SA_SKIP_METRICS"] = "true"
cmd = json.loads(sys.stdin.read())
BASE = cmd["url"]
import superannotate
for name, mod in list(sys.modules.items()):  # both the 'lib.*' and the 'superannotate.lib.*' aliases
    if name.endswith("infrastructure.serviceprovider") and hasattr(mod, "ServiceProvider"):
        mod.ServiceProvider._get_work_management_url = staticmethod(lambda c: f"{BASE}/wm/api/v1/")
        mod.ServiceProvider._get_item_service_url = staticmethod(lambda c: f"{BASE}/item/api/v1/")
    if name.endswith("infrastructure.services.annotation") and hasattr(mod, "AnnotationService"):
        mod.AnnotationService.get_assets_provider_url = (
            lambda self, version=None: f"{BASE}/assets/api/{version or self.ASSETS_PROVIDER_VERSION}/")
    if name.endswith("infrastructure.services.auth"):
        mod._get_work_management_url = lambda api_url: f"{BASE}/wm/api/v1/"
sa = superannotate.SAClient(config={"SA_TOKEN": os.environ["SA_TOKEN"], "SA_URL": BASE})
out = []
for op in cmd["ops"]:
    try:
        value = getattr(sa, op["call"])(*op.get("args", []), **op.get("kwargs", {}))
        out.append({"value": json.loads(json.dumps(value, default=str))})
    except Exception as exc:
        out.append({"raised": type(exc).__name__, "message": str(exc)[:500]})
print(json.dumps(out))
"""


def sdk_python() -> Path:
    return cached_venv("superannotate-sdk", SDK)


def run_sdk(sim: Simulator, *ops: dict[str, Any], token: str = SA_TOKEN, home: Path) -> list[dict[str, Any]]:
    """The SDK's answers to ``ops``, one per op: ``{"value"}`` or ``{"raised", "message"}``."""
    env = {**os.environ, "SA_TOKEN": token, "HOME": str(home)}  # a scratch HOME: ~/.superannotate stays untouched
    run = subprocess.run([str(sdk_python()), "-c", DRIVER], input=json.dumps({"url": sim.url, "ops": list(ops)}),
                         capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    if run.returncode != 0:
        raise AssertionError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    result: list[dict[str, Any]] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def op(call: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"call": call, "args": list(args), "kwargs": kwargs}


def value(answer: dict[str, Any]) -> Any:
    assert "value" in answer, answer
    return answer["value"]


def names(sim: Simulator, folder: int | None = None) -> list[str]:
    folder = sim.state.root_id if folder is None else folder
    return [it["name"] for it in sim.state.items.values() if it["folder_id"] == folder]


def _connect(sim: Simulator) -> ab.Connection:
    return ab.connect("superannotate", project="shapes", token=SA_TOKEN, url=sim.url, progress=False)


BOX = {"type": "bbox", "className": "star", "points": {"x1": 10.5, "y1": 20.25, "x2": 110.0, "y2": 60.0},
       "attributes": [], "probability": 80}  # fmt: skip
POLY = {"type": "polygon", "className": "triangle", "points": [1, 2, 30, 2, 30, 40], "exclude": [[5, 5, 9, 5, 9, 9]],
        "attributes": []}  # fmt: skip


def test_reads_get_annotations_list_items_download(superannotate_sim: Simulator, tmp_path: Path) -> None:
    state = superannotate_sim.state
    first, second = names(superannotate_sim)[:2]
    got, listed, in_folder, filtered, downloaded = run_sdk(
        superannotate_sim,
        op("get_annotations", "shapes", [first, second]),
        op("list_items", "shapes"),
        op("list_items", "shapes", "folder1"),
        op("list_items", "shapes", annotation_status="Completed"),
        op("download_annotations", "shapes", str(tmp_path / "dl")),
        home=tmp_path,
    )
    docs = value(got)
    ids = [state.item_by_name(state.root_id, n) for n in (first, second)]
    assert [d["metadata"]["name"] for d in docs] == [first, second]
    assert docs == [json.loads(state.encoded(i)) for i in ids]  # every byte the stream sent was read
    assert [i["name"] for i in value(listed)] == names(superannotate_sim)
    assert {i["path"] for i in value(listed)} == {"shapes"}
    assert [i["name"] for i in value(in_folder)] == names(superannotate_sim, state.folder_id)
    done = [
        it["name"] for it in state.items.values() if it["folder_id"] == state.root_id and it["annotation_status"] == 5
    ]
    assert done and [i["name"] for i in value(filtered)] == done
    assert value(downloaded) == str(tmp_path / "dl")
    classes = json.loads((tmp_path / "dl" / "classes" / "classes.json").read_text())
    assert [c["name"] for c in classes] == [c["name"] for c in state.classes[state.project_id]]
    # annotebook reads the SDK's download as files, the same rows as its own load of the platform
    files = ab.read(tmp_path / "dl", format="superannotate")
    loaded = _connect(superannotate_sim).annotations()
    assert len(files) == len(loaded)
    assert sorted(files["label"]) == sorted(loaded["label"])


def test_writes_upload_statuses_delete_and_folder_upload(superannotate_sim: Simulator, tmp_path: Path) -> None:
    state = superannotate_sim.state
    a, b, c, d = names(superannotate_sim)[:4]
    iid = {n: state.item_by_name(state.root_id, n) for n in (a, b, c, d)}
    state.set_status(iid[a], 5)
    state.set_status(iid[b], 5)
    folder = tmp_path / "up"
    folder.mkdir()
    (folder / f"{d}___objects.json").write_text(json.dumps({"metadata": {"name": d}, "instances": [POLY]}))
    kept, moved, unknown, statuses, deleted, from_folder = run_sdk(
        superannotate_sim,
        op("upload_annotations", "shapes", [{"metadata": {"name": a}, "instances": [BOX]}], keep_status=True),
        op("upload_annotations", "shapes", [{"metadata": {"name": b}, "instances": [BOX]}]),
        op("upload_annotations", "shapes", [{"metadata": {"name": c}, "instances": [{**BOX, "className": "nope"}]}]),
        op("set_annotation_statuses", "shapes", "QualityCheck", [c]),
        op("delete_annotations", "shapes", [b]),
        op("upload_annotations_from_folder_to_project", "shapes", str(folder)),
        home=tmp_path,
    )
    assert value(kept) == {"succeeded": [a], "failed": [], "skipped": []}
    assert value(moved) == {"succeeded": [b], "failed": [], "skipped": []}
    assert value(unknown) == {"succeeded": [], "failed": [c], "skipped": []}
    assert value(statuses) is None and value(deleted) is None
    assert value(from_folder) == [[d], [], []]
    status = {n: state.items[i]["annotation_status"] for n, i in iid.items()}
    assert (status[a], status[b], status[c], status[d]) == (5, 2, 3, 2)  # kept, InProgress, QualityCheck, InProgress
    doc = state.annotations[iid[a]]
    assert [i["type"] for i in doc["instances"]] == ["bbox"] and doc["instances"][0]["creationType"] == "Preannotation"
    assert doc["metadata"]["lastAction"]["email"] == state.user_email  # the SDK signs its uploads
    assert state.annotations[iid[b]]["instances"] == []
    assert state.annotations[iid[d]]["instances"][0]["exclude"] == [[5, 5, 9, 5, 9, 9]]
    # annotebook reads what the SDK wrote: the box in pixels, its probability as the score, the polygon's hole
    loaded = _connect(superannotate_sim).annotations(assets=[str(iid[a]), str(iid[d])])
    box = loaded[loaded["asset"] == str(iid[a])].iloc[0]
    w, h = state.items[iid[a]]["width"], state.items[iid[a]]["height"]
    assert [box["x0"] * w, box["y0"] * h, box["x1"] * w, box["y1"] * h] == pytest.approx([10.5, 20.25, 110, 60])
    assert (box["label"], box["score"], box["author"]) == ("star", 0.8, "Preannotation")
    poly = loaded[loaded["asset"] == str(iid[d])].iloc[0]
    assert len(poly["points"]) == 2


def test_what_annotebook_pushed_the_sdk_reads(superannotate_sim: Simulator, tmp_path: Path) -> None:
    state = superannotate_sim.state
    conn = _connect(superannotate_sim)
    anns = conn.annotations()
    boxes = anns.index[anns["kind"] == "box"]
    anns.loc[boxes[0], "x1"] = anns.loc[boxes[0], "x0"] + 0.05
    anns.loc[boxes[1], "rotation"] = 30.0
    anns.annot.delete(anns.index == anns.index[anns["kind"] == "polygon"][0])
    target = str(anns.loc[boxes[2], "asset"])
    anns.annot.add_box(target, "star", (0.1, 0.1, 0.3, 0.3))
    touched = sorted({str(anns.loc[i, "asset"]) for i in (boxes[0], boxes[1], boxes[2])})
    before = {a: state.items[int(a)]["annotation_status"] for a in touched}
    assert anns.annot.push(keep_status=True).ok
    assert {a: state.items[int(a)]["annotation_status"] for a in touched} == before
    item_names = [state.items[int(a)]["name"] for a in touched]
    (got,) = run_sdk(superannotate_sim, op("get_annotations", "shapes", item_names), home=tmp_path)
    docs = {d["metadata"]["name"]: d for d in value(got)}
    fresh = conn.annotations(assets=touched)
    for a, n in zip(touched, item_names, strict=True):
        mine = fresh[fresh["asset"] == a]
        assert len(docs[n]["instances"]) + len(docs[n]["tags"]) == len(mine)
    turned = docs[state.items[int(anns.loc[boxes[1], "asset"])]["name"]]
    assert "rbbox" in [i["type"] for i in turned["instances"]]
    added = [i for i in docs[state.items[int(target)]["name"]]["instances"] if i.get("className") == "star"]
    w, h = state.items[int(target)]["width"], state.items[int(target)]["height"]
    assert any(i["points"] == pytest.approx({"x1": 0.1 * w, "y1": 0.1 * h, "x2": 0.3 * w, "y2": 0.3 * h})
               for i in added if i["type"] == "bbox")  # fmt: skip


def test_api_key_and_video_frames(superannotate_sim: Simulator, tmp_path: Path) -> None:
    api_key = "k" * 40
    state = superannotate_sim.state
    state.key = api_key
    try:
        (items,) = run_sdk(superannotate_sim, op("list_items", "shapes"), token=api_key, home=tmp_path)
        assert len(value(items)) == len(names(superannotate_sim))
        (frames,) = run_sdk(superannotate_sim, op("get_annotations_per_frame", "clips", "drive.mp4"), token=api_key,
                            home=tmp_path)  # fmt: skip
        anns = ab.connect("superannotate", project="clips", token=api_key, url=superannotate_sim.url,
                          progress=False).annotations()  # fmt: skip
    finally:
        state.key = SA_TOKEN
    per_frame = value(frames)
    assert [f["frame"] for f in per_frame] == [1, 2, 3]
    keyed = [f["annotations"][0]["points"]["x1"] for f in per_frame if f["annotations"]]
    assert anns["frame"].tolist() == [0, 1, 2] and len(keyed) >= 2
    # the SDK interpolates its own frames (from 1); annotebook keeps the keyframes: both start on the first one
    assert anns["x0"].iloc[0] * 640 == pytest.approx(keyed[0]) and anns["x0"].iloc[-1] * 640 == pytest.approx(30.0)
