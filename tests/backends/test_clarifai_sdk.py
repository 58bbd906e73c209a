"""Contract: Clarifai's own client (``clarifai-grpc``, its JSON/REST channel) against the simulator, and annotebook and
the client agree.

The client pins protobuf and grpcio, so it lives in its own virtual environment under ``$ANNOTEBOOK_TEST_CACHE``
(default ``~/.cache/annotebook-test``), built once and driven by subprocess, as ``tests/peers.py`` does for the
format peers. ``ClarifaiChannel.get_json_channel(base_url=...)`` appends each RPC's path template to ``base_url``,
so the simulator's root URL is passed as is. The driver reads its commands on stdin and the PAT from
``CLARIFAI_PAT``; it parses each request with ``json_format.ParseDict`` into the RPC's request message, so what goes
on the wire is what the client itself encodes, and prints each answer with the client's own printer (enums by name;
unlike ``MessageToDict`` it keeps a concept's ``value`` of 0.0, which a reader would otherwise take for 1.0).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import annotebook as ab
from annotebook import schema
from annotebook.backends.clarifai_rows import rows_from_wire
from annotebook.testing import Simulator
from annotebook.testing.clarifai_state import MODEL_VERSION
from tests.peers import cached_venv

from .conftest import CLARIFAI_PAT

pytestmark = pytest.mark.slow

#: protobuf 7 breaks the JSON channel's request encoder ('FieldDescriptor' object has no attribute 'label');
#: the channel imports requests but the package does not declare it
CLIENT = ("clarifai-grpc==12.6.0", "protobuf<7", "requests")

DRIVER = r"""
import json, os, sys
from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.channel.custom_converters.custom_message_to_dict import protobuf_to_dict
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from google.protobuf import json_format

cmd = json.loads(sys.stdin.read())
stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=cmd["url"]))

def call(op, request):
    auth = op.get("auth", "Key " + os.environ[op.get("key_env", "CLARIFAI_PAT")])
    answer = getattr(stub, op["rpc"])(request, metadata=(("authorization", auth),))
    return protobuf_to_dict(answer, use_integers_for_enums=False, ignore_show_empty=True)  # prints value=0.0

out = []
for op in cmd["ops"]:
    request = json_format.ParseDict(op.get("request", {}), getattr(service_pb2, op["rpc"] + "Request")())
    try:
        if not op.get("per_page"):
            out.append(call(op, request))
            continue
        items, pages = [], 0
        while True:  # as clarifai's Lister does: the next page until one comes back empty
            request.page, request.per_page = pages + 1, op["per_page"]
            got = call(op, request)
            if got["status"]["code"] != "SUCCESS" or not got.get(op["field"]):
                break
            items, pages = items + got[op["field"]], pages + 1
        out.append({"status": got["status"], op["field"]: items, "pages": pages})
    except Exception as exc:
        out.append({"raised": type(exc).__name__, "message": str(exc)[:500]})
print(json.dumps(out))
"""

APP = {"user_id": "sim-user", "app_id": "shapes"}


def client_python() -> Path:
    """The Python of the client's own venv (its protobuf and grpcio pins are not the project's business)."""
    return cached_venv("clarifai-grpc", CLIENT)


def run_client(sim: Simulator, *ops: dict[str, Any]) -> list[dict[str, Any]]:
    """The client's answers to ``ops`` (each ``{"rpc", "request"}``, optionally ``per_page`` + ``field`` to page
    through a listing); the commands go on stdin and the PAT in the environment, so neither shows in argv."""
    cmd = {"url": sim.url, "ops": list(ops)}
    env = {**os.environ, "CLARIFAI_PAT": CLARIFAI_PAT, "WRONG_PAT": "not-the-pat"}
    run = subprocess.run([str(client_python()), "-c", DRIVER], input=json.dumps(cmd), capture_output=True,
                         text=True, timeout=600, env=env)  # fmt: skip
    if run.returncode != 0:
        raise AssertionError(f"client driver failed:\n{run.stderr[-3000:]}")
    result: list[dict[str, Any]] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def listing(**request: Any) -> dict[str, Any]:
    """A ListAnnotations of the app, paged 7 at a time to the empty page."""
    return {"rpc": "ListAnnotations", "request": {"user_app_id": APP, **request}, "per_page": 7,
            "field": "annotations"}  # fmt: skip


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer.get("status", {}).get("code") == "SUCCESS", answer
    return answer


def box(top: float, left: float, bottom: float, right: float) -> dict[str, Any]:
    return {"bounding_box": {"top_row": top, "left_col": left, "bottom_row": bottom, "right_col": right}}


def annotation(ann_id: str, input_id: str, info: dict[str, Any], *labels: str, **extra: Any) -> dict[str, Any]:
    concepts = [{"id": n, "name": n, "value": 1.0} for n in labels]
    region = {"id": f"r-{ann_id}", "region_info": info, "data": {"concepts": concepts}}
    return {"id": ann_id, "input_id": input_id, "data": {"regions": [region]}, **extra}


def ids(answer: dict[str, Any]) -> set[str]:
    return {a["id"] for a in ok(answer).get("annotations") or []}


def user_made(sim: Simulator) -> set[str]:
    return {i for i, a in sim.state.annotations.items() if "model_version_id" not in a}


def test_inputs_post_and_list(clarifai_sim: Simulator) -> None:
    new = {"id": "fresh", "data": {"image": {"url": "https://example.invalid/fresh.png",
                                             "image_info": {"width": 64, "height": 48}}}}  # fmt: skip
    posted, paged, some, mine = run_client(
        clarifai_sim,
        {"rpc": "PostInputs", "request": {"user_app_id": APP, "inputs": [new]}},
        {"rpc": "ListInputs", "request": {"user_app_id": APP}, "per_page": 3, "field": "inputs"},
        {"rpc": "ListInputs", "request": {"user_app_id": APP, "ids": ["fresh", "img0001"]}},
        {"rpc": "GetInput", "request": {"user_app_id": {"app_id": "shapes"}, "input_id": "fresh"}},  # users/me
    )
    (made,) = ok(posted)["inputs"]
    assert made["id"] == "fresh" and made["data"]["image"]["image_info"] == {"width": 64, "height": 48,
                                                                              "format": "PNG"}  # fmt: skip
    assert [i["id"] for i in ok(paged)["inputs"]] == list(clarifai_sim.state.inputs) and paged["pages"] == 3
    first = paged["inputs"][0]
    assert first["data"]["image"]["url"].startswith(clarifai_sim.url) and first["status"]["code"] == "INPUT_SUCCESS"
    assert first["data"]["metadata"] == {"filename": "shapes_000.png"}
    assert {i["id"] for i in ok(some)["inputs"]} == {"fresh", "img0001"}
    assert ok(mine)["input"]["id"] == "fresh"


def test_post_then_list_with_each_filter(clarifai_sim: Simulator) -> None:
    state = clarifai_sim.state
    poly = {"polygon": {"points": [{"row": 0.1, "col": 0.1}, {"row": 0.1, "col": 0.3}, {"row": 0.4, "col": 0.2}]}}
    bodies = [
        annotation("sdk-box", "img0001", box(0.0, 0.0, 0.5, 0.25), "cat"),  # zeros: the client leaves them out
        annotation("sdk-poly", "img0001", poly, "dog", annotation_info={"note": "by sdk"}),
        annotation("sdk-pending", "img0002", box(0.2, 0.2, 0.4, 0.4), "cat", status={"code": "ANNOTATION_PENDING"}),
    ]
    some = sorted(user_made(clarifai_sim) - {"sdk-box"})[:2]
    some_inputs = [state.annotations[i]["input_id"] for i in some]
    posted, by_input, by_ids, by_user, by_model, default, every, by_status, got = run_client(
        clarifai_sim,
        {"rpc": "PostAnnotations", "request": {"user_app_id": APP, "annotations": bodies}},
        listing(input_ids=["img0001"]),
        listing(ids=some, input_ids=some_inputs),
        listing(user_ids=["sim-user"]),
        listing(model_version_ids=[MODEL_VERSION]),
        listing(),
        listing(list_all_annotations=True),
        listing(statuses=[{"code": "ANNOTATION_PENDING"}]),
        {"rpc": "GetAnnotation", "request": {"user_app_id": APP, "input_id": "img0001", "annotation_id": "sdk-poly"}},
    )
    made = {a["id"]: a for a in ok(posted)["annotations"]}
    assert list(made) == ["sdk-box", "sdk-poly", "sdk-pending"]
    assert made["sdk-box"]["data"]["regions"][0]["region_info"] == {"bounding_box": {"bottom_row": 0.5,
                                                                                     "right_col": 0.25}}  # fmt: skip
    assert made["sdk-box"]["status"]["code"] == "ANNOTATION_SUCCESS"
    assert made["sdk-pending"]["status"]["code"] == "ANNOTATION_PENDING"
    assert made["sdk-poly"]["annotation_info"] == {"note": "by sdk"}
    assert made["sdk-poly"]["data"]["regions"][0]["region_info"] == poly
    assert ok(got)["annotation"] == made["sdk-poly"]
    assert state.annotations["sdk-box"]["data"]["regions"][0]["region_info"]["bounding_box"] == {
        "bottom_row": 0.5,
        "right_col": 0.25,
    }  # the zeros never went on the wire: the simulator reads them as 0

    def on(*inputs: str) -> set[str]:
        return {i for i, a in state.annotations.items() if a["input_id"] in inputs}

    model_made = set(state.annotations) - user_made(clarifai_sim)
    assert model_made and ids(by_input) == on("img0001") - model_made  # model output only with list_all
    assert ids(by_ids) == set(some)
    assert ids(by_user) == user_made(clarifai_sim)
    assert ids(by_model) == model_made
    assert ids(default) == user_made(clarifai_sim)
    assert ids(every) == set(state.annotations) and every["pages"] == -(-len(state.annotations) // 7)
    # the JSON channel sends a repeated message as its keys ("statuses=code"): the filter never reaches the server
    assert ids(by_status) == ids(default) and {a["status"]["code"] for a in by_status["annotations"]} == {
        "ANNOTATION_SUCCESS", "ANNOTATION_PENDING"}  # fmt: skip


def test_patch_merge_overwrite_remove(clarifai_sim: Simulator) -> None:
    def patch(action: str, *annotations: dict[str, Any]) -> dict[str, Any]:
        return {"rpc": "PatchAnnotations", "request": {"user_app_id": APP, "action": action,
                                                       "annotations": list(annotations)}}  # fmt: skip

    first = annotation("sdk-a", "img0003", box(0.1, 0.1, 0.3, 0.3), "cat")
    merged_in = {
        "id": "sdk-a",
        "input_id": "img0003",
        "data": {
            "regions": [
                {"id": "r-sdk-a", "data": {"concepts": [{"id": "dog", "value": 1.0}, {"id": "cat", "value": 0.0}]}}
            ]
        },
    }
    overwrite = annotation("sdk-a", "img0003", box(0.2, 0.25, 0.6, 0.7), "star", "dog")
    removed = {"id": "sdk-a", "input_id": "img0003", "data": {"concepts": [{"id": "star"}]}}  # fmt: skip
    posted, merged, overwritten, after_remove, listed = run_client(
        clarifai_sim,
        {"rpc": "PostAnnotations", "request": {"user_app_id": APP, "annotations": [first]}},
        patch("merge", merged_in),
        patch("overwrite", overwrite),
        patch("remove", removed),
        listing(ids=["sdk-a"], input_ids=["img0003"]),
    )
    ok(posted)
    (m,) = ok(merged)["annotations"]
    region = m["data"]["regions"][0]
    assert region["region_info"] == box(0.1, 0.1, 0.3, 0.3)  # merge kept the geometry it was not sent
    assert [(c["id"], c["value"]) for c in region["data"]["concepts"]] == [("cat", 0.0), ("dog", 1.0)]
    (o,) = ok(overwritten)["annotations"]
    assert o["data"]["regions"][0]["region_info"] == box(0.2, 0.25, 0.6, 0.7)
    assert [c["id"] for c in o["data"]["regions"][0]["data"]["concepts"]] == ["star", "dog"]
    (r,) = ok(after_remove)["annotations"]
    assert [c["id"] for c in r["data"]["regions"][0]["data"]["concepts"]] == ["dog"]
    assert ok(listed)["annotations"] == [r]
    assert o["modified_at"] < r["modified_at"] and r["created_at"] == m["created_at"]


def test_deletes_one_by_ids_and_by_inputs(clarifai_sim: Simulator) -> None:
    state = clarifai_sim.state
    users = sorted(user_made(clarifai_sim))
    one, *pair = [i for i in users if not state.annotations[i]["input_level"]][:3]
    inputs = [state.annotations[i]["input_id"] for i in (one, *pair)]
    cleared = "img0005"
    kept_level = {i for i, a in state.annotations.items() if a["input_id"] == cleared and a["input_level"]}
    gone_one, again, gone_pair, gone_inputs, left = run_client(
        clarifai_sim,
        {"rpc": "DeleteAnnotation", "request": {"user_app_id": APP, "input_id": inputs[0], "annotation_id": one}},
        {"rpc": "DeleteAnnotation", "request": {"user_app_id": APP, "input_id": inputs[0], "annotation_id": one}},
        {"rpc": "DeleteAnnotations", "request": {"user_app_id": APP, "ids": pair, "input_ids": inputs[1:]}},
        {"rpc": "DeleteAnnotations", "request": {"user_app_id": APP, "input_ids": [cleared]}},
        listing(list_all_annotations=True),
    )
    for answer in (gone_one, gone_pair, gone_inputs):
        assert ok(answer) == {"status": answer["status"]} and "annotations" not in answer
    assert again["status"]["code"] == "CONN_DOES_NOT_EXIST"  # an error is an answer, not an exception
    assert not {one, *pair} & set(state.annotations)
    assert {i for i, a in state.annotations.items() if a["input_id"] == cleared} == kept_level != set()
    assert ids(left) == set(state.annotations)


def test_errors_come_back_in_the_status_envelope(clarifai_sim: Simulator) -> None:
    elsewhere = {"user_id": "sim-user", "app_id": "nowhere"}
    wrong, unknown_app, missing_input, bad_box, not_key = run_client(
        clarifai_sim,
        {"rpc": "ListAnnotations", "request": {"user_app_id": APP}, "key_env": "WRONG_PAT"},
        {"rpc": "ListInputs", "request": {"user_app_id": elsewhere}},
        {"rpc": "GetInput", "request": {"user_app_id": APP, "input_id": "no-such-input"}},
        {
            "rpc": "PostAnnotations",
            "request": {
                "user_app_id": APP,
                "annotations": [annotation("sdk-bad", "img0001", box(0.5, 0.5, 1.5, 0.9), "cat")],
            },
        },
        {"rpc": "ListAnnotations", "request": {"user_app_id": APP}, "auth": "Bearer x"},
    )
    assert wrong["status"]["code"] == "CONN_KEY_INVALID" and "annotations" not in wrong
    assert unknown_app["status"]["code"] == "CONN_DOES_NOT_EXIST"
    assert missing_input["status"]["code"] == "INPUT_DOES_NOT_EXIST"
    assert (
        bad_box["status"]["code"] == "ANNOTATION_INVALID_ARGUMENT" and "sdk-bad" not in clarifai_sim.state.annotations
    )
    assert not_key["raised"] == "UsageError"  # refused by the client before any request


# -- annotebook and the client read each other's writes ---------------------------------------------------------


def _connect(sim: Simulator) -> ab.Connection:
    return ab.connect("clarifai", dataset="shapes", user_id="sim-user", app_id="shapes", pat=CLARIFAI_PAT,
                      base_url=sim.url, progress=False)  # fmt: skip


COLUMNS = ["id", "rev", "asset", "label", "kind", "x0", "y0", "x1", "y1", "points", "visibility", "status", "author",
           "value", "score", "attributes"]  # fmt: skip


def _f32(v: Any) -> Any:
    """Clarifai's coordinates are proto ``float``: the client decodes them to float32, so compare at that width."""
    if isinstance(v, float):
        return float(np.float32(v))
    if isinstance(v, tuple):
        return tuple(_f32(x) for x in v)
    return v


def normal(frame: pd.DataFrame) -> pd.DataFrame:
    """Live rows, content columns only, each value in its normal form, sorted by id."""
    live = frame[~frame["deleted"].to_numpy(dtype=bool)]
    records = [{c: repr(_f32(schema.normal_value(c, r[c]))) for c in COLUMNS} for r in live[COLUMNS].to_dict("records")]
    return pd.DataFrame(records, columns=COLUMNS).sort_values("id").reset_index(drop=True)


def canonical(wire: list[dict[str, Any]]) -> pd.DataFrame:
    """What the client listed, read by the backend's own wire reader."""
    rows = [r for a in wire for r in rows_from_wire(a, "shapes")]
    return normal(ab.annotations_frame(rows) if rows else ab.annotations_frame())


def test_what_annotebook_pushed_the_client_lists_identically(clarifai_sim: Simulator) -> None:
    conn = _connect(clarifai_sim)
    anns = conn.assets("shapes").annot.load()
    boxes = anns.index[anns["kind"] == "box"]
    anns.loc[boxes[:2], "y1"] = anns.loc[boxes[:2], "y1"] - 0.02
    anns.loc[boxes[2], "label"] = "star"
    anns.annot.delete(anns.index == boxes[3])
    anns.annot.add_box(str(anns["asset"].iloc[1]), "star", (0.05, 0.05, 0.25, 0.35))
    assert anns.annot.push().ok
    (listed,) = run_client(clarifai_sim, listing(list_all_annotations=True))
    client = canonical(ok(listed)["annotations"])
    pd.testing.assert_frame_equal(client, normal(conn.assets("shapes").annot.load()))
    # the pushed frame agrees too, the server's author and status of the new row included
    pushed = normal(anns)
    assert pushed.loc[pushed["id"] == repr(client_row_id_of_new(anns)), ["status", "author"]].values.tolist() == [
        [repr("ANNOTATION_SUCCESS"), repr("sim-user")]]  # fmt: skip
    pd.testing.assert_frame_equal(client, pushed)


def client_row_id_of_new(anns: pd.DataFrame) -> str:
    """The id of the one row the test added (its label and box are unique in the frame)."""
    (row_id,) = anns.loc[(anns["label"] == "star") & (anns["x0"] == 0.05) & (anns["y1"] == 0.35), "id"]
    return str(row_id)


def test_what_the_client_posted_annotebook_loads_identically(clarifai_sim: Simulator) -> None:
    kp = {"keypoint_locations": [{"row": 0.2, "col": 0.3, "visibility": "VISIBLE"}, {"visibility": "NOT_PRESENT"},
                                 {"row": 0.6, "col": 0.1, "visibility": "NOT_VISIBLE"}]}  # fmt: skip
    concepts = [{"id": "circle", "value": 1.0}, {"id": "square", "value": 0.0}]
    tags = {"id": "sdk-tags", "input_id": "img0004", "data": {"concepts": concepts}}
    bodies = [annotation("sdk-box", "img0004", box(0.0, 0.1, 0.45, 0.5), "square"),
              annotation("sdk-kp", "img0004", kp, "star"), tags]  # fmt: skip
    posted, listed = run_client(
        clarifai_sim,
        {"rpc": "PostAnnotations", "request": {"user_app_id": APP, "annotations": bodies}},
        listing(list_all_annotations=True),
    )
    ok(posted)
    loaded = _connect(clarifai_sim).annotations("shapes")
    pd.testing.assert_frame_equal(normal(loaded), canonical(ok(listed)["annotations"]))
    mine = loaded.set_index("id").loc[["sdk-box", "sdk-kp", "sdk-tags#circle", "sdk-tags#square"]]
    assert mine["kind"].tolist() == ["box", "keypoints", "tag", "tag"]
    assert mine.loc["sdk-box", ["x0", "y0", "x1", "y1"]].tolist() == [0.1, 0.0, 0.5, 0.45]
    assert mine.loc["sdk-kp", "visibility"] == (2, 0, 1) and mine["value"].tolist()[2:] == [True, False]
