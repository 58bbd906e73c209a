"""Contract: Clarifai's high-level SDK (``clarifai``, ``clarifai.client.input.Inputs``) against the simulator.

The SDK talks gRPC only; the protocol notes (A.6, A.7) give the offline route this test takes: build ``Inputs`` with
``base_url="http://127.0.0.1:PORT"`` (which opens an insecure gRPC channel lazily and never dials it here) and swap
its ``STUB`` for a ``V2Stub`` over clarifai-grpc's JSON channel to the REST simulator. Every call then runs the SDK's
own request building, paging (``list_pages_generator``), status handling and proto helpers (``get_bbox_proto``,
``get_mask_proto``). The SDK pins protobuf and grpcio, so it lives in its own cached venv and is driven by subprocess;
the PAT travels in the environment, never in argv.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import numpy as np
import pandas as pd
import pytest

import annotebook as ab
from annotebook.errors import ConflictError
from annotebook.testing import Simulator
from tests.peers import cached_venv

from .conftest import CLARIFAI_PAT

pytestmark = pytest.mark.slow

SDK = ("clarifai==12.5.0", "clarifai-grpc==12.6.0", "protobuf<7", "requests")

DRIVER = r"""
import json, os, sys
from clarifai.client.input import Inputs
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2_grpc
from google.protobuf import json_format

cmd = json.loads(sys.stdin.read())
inputs = Inputs(user_id="sim-user", app_id="shapes", base_url=cmd["url"], pat=os.environ["CLARIFAI_PAT"],
                logger_level="ERROR")
inputs.STUB = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=cmd["url"]))

def plain(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)

def annotation(spec):
    if spec["kind"] == "box":
        return Inputs.get_bbox_proto(input_id=spec["input"], label=spec["label"], bbox=spec["coords"],
                                     annot_id=spec["id"])
    return Inputs.get_mask_proto(input_id=spec["input"], label=spec["label"], polygons=spec["coords"],
                                 annot_id=spec["id"])

out = []
for op in cmd["ops"]:
    name = op["op"]
    if name == "list_inputs":
        out.append([i.id for i in inputs.list_inputs(**op.get("kwargs", {}))])
    elif name == "list_annotations":
        batch = [i for i in inputs.list_inputs() if i.id in op["inputs"]] if "inputs" in op else None
        out.append([plain(a) for a in inputs.list_annotations(batch_input=batch, per_page=op.get("per_page"))])
    elif name == "upload_annotations":
        failed = inputs.upload_annotations([annotation(s) for s in op["annotations"]], show_log=False)
        out.append(len(failed))
    elif name == "patch_annotations":
        inputs.patch_annotations([annotation(s) for s in op["annotations"]], action=op["action"])
        out.append(None)
    elif name == "delete_annotations":
        inputs.delete_annotations(input_ids=op["input_ids"], annotation_ids=op["annotation_ids"])
        out.append(None)
print(json.dumps(out))
"""


def run_sdk(sim: Simulator, *ops: dict[str, Any]) -> list[Any]:
    run = subprocess.run([str(cached_venv("clarifai-sdk", SDK)), "-c", DRIVER],
                         input=json.dumps({"url": sim.url, "ops": list(ops)}), capture_output=True, text=True,
                         timeout=600, env={**os.environ, "CLARIFAI_PAT": CLARIFAI_PAT})  # fmt: skip
    if run.returncode != 0:
        raise AssertionError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    result: list[Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def connect(sim: Simulator) -> ab.Connection:
    return ab.connect("clarifai", dataset="shapes", user_id="sim-user", app_id="shapes", pat=CLARIFAI_PAT,
                      base_url=sim.url, progress=False)  # fmt: skip


def f32(*values: float) -> list[float]:
    """Clarifai keeps coordinates as proto floats."""
    return [float(np.float32(v)) for v in values]


def box(frame: pd.DataFrame, row_id: str) -> list[float]:
    return f32(*frame.set_index("id").loc[row_id, ["x0", "y0", "x1", "y1"]].tolist())


def test_inputs_listed_by_the_sdk_are_annotebooks_assets(clarifai_sim: Simulator) -> None:
    second_page = {"op": "list_inputs", "kwargs": {"page_no": 2, "per_page": 5}}
    every, page = run_sdk(clarifai_sim, {"op": "list_inputs"}, second_page)
    assets = connect(clarifai_sim).assets("shapes")
    assert every == assets["asset"].tolist() and len(every) > 5
    assert page == every[5:10]


def test_sdk_uploads_annotebook_loads_edits_and_the_sdk_lists_the_edit(clarifai_sim: Simulator) -> None:
    made = [
        {"kind": "box", "id": "hl-box", "input": "img0003", "label": "circle", "coords": [0.1, 0.2, 0.3, 0.45]},
        {"kind": "polygon", "id": "hl-poly", "input": "img0003", "label": "triangle",
         "coords": [[0.5, 0.5], [0.9, 0.5], [0.7, 0.8]]},
    ]  # fmt: skip
    (failed,) = run_sdk(clarifai_sim, {"op": "upload_annotations", "annotations": made})
    assert failed == 0
    anns = connect(clarifai_sim).assets("shapes").annot.load()
    mine = anns.set_index("id").loc[["hl-box", "hl-poly"]]
    assert mine["kind"].tolist() == ["box", "polygon"] and mine["label"].tolist() == ["circle", "triangle"]
    assert box(anns, "hl-box") == f32(0.1, 0.2, 0.3, 0.45)
    assert [f32(*ring) for ring in mine.loc["hl-poly", "points"]] == [f32(0.5, 0.5, 0.9, 0.5, 0.7, 0.8)]
    assert mine["author"].tolist() == ["sim-user", "sim-user"]

    anns.loc[anns.id == "hl-box", ["x1", "y1"]] = [0.35, 0.5]
    anns.loc[anns.id == "hl-poly", "label"] = "star"
    report = anns.annot.push()
    assert report.ok and sorted(report.updated) == ["hl-box", "hl-poly"], report
    (listed,) = run_sdk(clarifai_sim, {"op": "list_annotations", "inputs": ["img0003"]})
    by_id = {a["id"]: a for a in listed}
    region = by_id["hl-box"]["data"]["regions"][0]
    listed_box = region["region_info"]["bounding_box"]
    assert f32(*(listed_box[k] for k in ("top_row", "left_col", "bottom_row", "right_col"))) == f32(0.2, 0.1, 0.5, 0.35)
    assert [c["id"] for c in by_id["hl-poly"]["data"]["regions"][0]["data"]["concepts"]] == ["star"]
    # the SDK pages until an empty page: the input's user-made annotations, none lost or doubled; the one more is
    # the empty input-level annotation Clarifai makes for every input, which carries no row
    fresh = connect(clarifai_sim).annotations("shapes")
    user_made = set(fresh.loc[(fresh.asset == "img0003") & fresh.author.eq("sim-user"), "id"].str.split("#").str[0])
    (empty,) = [a for a in listed if a["id"] not in user_made]
    assert len(listed) == len(user_made) + 1 and not empty.get("data") and "hl-box" in user_made


def test_an_sdk_overwrite_between_load_and_push_is_a_conflict(clarifai_sim: Simulator) -> None:
    anns = connect(clarifai_sim).assets("shapes").annot.load()
    target = str(anns.loc[(anns.kind == "box") & anns.author.eq("sim-user"), "id"].iloc[0])
    row = anns.set_index("id").loc[target]
    theirs = {"kind": "box", "id": target, "input": str(row["asset"]), "label": str(row["label"]),
              "coords": [0.01, 0.02, 0.21, 0.22]}  # fmt: skip
    run_sdk(clarifai_sim, {"op": "patch_annotations", "action": "overwrite", "annotations": [theirs]})
    anns.loc[anns.id == target, "x1"] = 0.9
    with pytest.raises(ConflictError) as caught:
        anns.annot.push()
    assert target in str(caught.value)
    fresh = connect(clarifai_sim).annotations("shapes")
    assert box(fresh, target) == f32(0.01, 0.02, 0.21, 0.22)  # the SDK's write stands; ours did not land


def test_sdk_deletes_by_input_and_id_and_annotebook_no_longer_loads_them(clarifai_sim: Simulator) -> None:
    anns = connect(clarifai_sim).assets("shapes").annot.load()
    mine = anns[anns.author.eq("sim-user") & anns.kind.isin(["box", "polygon"])].head(3)
    run_sdk(clarifai_sim, {"op": "delete_annotations", "input_ids": mine["asset"].tolist(),
                           "annotation_ids": mine["id"].tolist()})  # fmt: skip
    fresh = connect(clarifai_sim).annotations("shapes")
    assert not set(mine["id"]) & set(fresh["id"]) and len(fresh) == len(anns) - 3
    anns.annot.delete(anns.id == mine["id"].iloc[0])  # deleting what is already gone is not an error
    assert anns.annot.push().ok
