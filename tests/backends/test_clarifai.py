"""The Clarifai backend: rows from the wire, the envelope checked on every answer, writes batched by 128."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.clarifai import ClarifaiBackend, check_status
from annotebook.backends.clarifai_rows import annotation_id, body_from_row, rows_from_wire
from annotebook.errors import AuthError, NotCarried, NotFound, NotSupported, RateLimited, ValidationError
from annotebook.testing import Simulator

from .conftest import CLARIFAI_PAT


def _connect(sim: Simulator) -> ab.Connection:
    return ab.connect("clarifai", dataset="shapes", user_id="sim-user", app_id="shapes", pat=CLARIFAI_PAT,
                      base_url=sim.url, progress=False)  # fmt: skip


def test_rows_from_the_wire_read_y_first_and_omitted_zeros() -> None:
    ann = {"id": "a1", "input_id": "i1", "user_id": "u", "status": {"code": 24157},
           "data": {"regions": [{"region_info": {"bounding_box": {"bottom_row": 0.5, "right_col": 0.25}},
                                 "data": {"concepts": [{"id": "cat", "value": 1}]}}]}}  # fmt: skip
    (row,) = rows_from_wire(ann, "app")
    assert (row["x0"], row["y0"], row["x1"], row["y1"]) == (0.0, 0.0, 0.25, 0.5)
    assert row["status"] == "ANNOTATION_AWAITING_REVIEW" and row["author"] == "u" and row["kind"] == "box"
    model = {"id": "m", "input_id": "i1", "model_version_id": "mv", "data": {"concepts": [{"id": "dog", "value": 0.4},
                                                                                        {"id": "cat"}]}}  # fmt: skip
    rows = rows_from_wire(model, "app")
    assert [r["id"] for r in rows] == ["m#dog", "m#cat"] and rows[0]["author"] == "model:mv"
    assert rows[0]["score"] == 0.4 and rows[1]["score"] == 1.0  # a missing value reads as 1
    absent = rows_from_wire({"id": "n", "input_id": "i", "data": {"concepts": [{"id": "x", "value": 0}]}}, "app")
    assert absent[0]["value"] is False
    frame = {"id": "v", "input_id": "i", "data": {"frames": [{"frame_info": {"number": 7, "time": "1500"},
             "data": {"regions": [{"region_info": {"point": {"row": 0.5, "col": 0.25}}}]}}]}}  # fmt: skip
    (kp,) = rows_from_wire(frame, "app")
    assert kp["frame"] == 7 and kp["points"] == ((0.25, 0.5),) and kp["visibility"] == (2,)


def test_a_create_body_carries_keypoints_and_a_derived_id() -> None:
    row = {"id": "new-0123456789abcdef", "asset": "i1", "kind": "keypoints", "label": "star",
           "points": ((0.1, 0.2, math.nan, math.nan),), "visibility": (2, 0), "frame": None, "attributes": None,
           "status": None, "author": None, "value": None}  # fmt: skip
    body = body_from_row(row, annotation_id(row["id"]))
    assert body["id"] == "0123456789abcdef" == annotation_id(row["id"])  # a retried POST names the same annotation
    points = body["data"]["regions"][0]["region_info"]["keypoint_locations"]
    assert points == [{"row": 0.2, "col": 0.1, "visibility": "VISIBLE"}, {"visibility": "NOT_PRESENT"}]


def test_every_envelope_is_checked() -> None:
    assert check_status({"status": {"code": 10000}}, "x")
    for code, error in ((11009, AuthError), (11005, RateLimited), (11101, NotFound), (11102, ValidationError)):
        with pytest.raises(error, match="boom"):
            check_status({"status": {"code": code, "description": "boom"}}, "x")
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, json={"status": {"code": 11008, "description": "bad key"}})
    )
    backend = ClarifaiBackend(app_id="a", pat="p", base_url="http://clarifai.test", transport=transport)
    with pytest.raises(AuthError, match="bad key"):  # a 200 whose envelope refuses is still a refusal
        backend.annotations("a")


def test_load_sends_the_vendor_query_and_reads_every_page(clarifai_sim: Simulator) -> None:
    conn = _connect(clarifai_sim)
    anns = conn.annotations()
    wire = [a for a in clarifai_sim.state.annotations.values() if a["data"]]
    assert len(anns) == len(wire) and anns["id"].is_unique
    assert set(anns["author"]) == {"sim-user", "model:sim-general-v1"}
    preds = anns[anns.author.str.startswith("model:")]
    assert (preds["kind"] == "tag").all() and (preds["score"] == 0.75).all()
    assets = conn.assets()
    assert len(assets) == 8 and assets["width"].notna().all()
    some = conn.backend.annotations("shapes", [str(assets["asset"].iloc[0])])
    assert set(some["asset"]) == {assets["asset"].iloc[0]}


def test_push_writes_128_a_call_and_a_prediction_is_read_only(clarifai_sim: Simulator) -> None:
    conn = _connect(clarifai_sim)
    anns = conn.annotations()
    asset = str(anns["asset"].iloc[0])
    for k in range(130):
        anns.annot.add_box(asset, "square", (0.1, 0.1, 0.2 + k / 1000, 0.3))
    before = clarifai_sim.state.requests["write"]
    report = anns.annot.push()
    assert len(report.created) == 130 and clarifai_sim.state.requests["write"] - before == 2
    pred = anns[anns.author.str.startswith("model:").fillna(False)]["id"].iloc[0]
    anns.loc[anns.id == pred, "label"] = "star"
    with pytest.raises(NotCarried, match="read-only"):
        anns.annot.push()


def test_a_status_is_patched_and_filters_a_load(clarifai_sim: Simulator) -> None:
    anns = _connect(clarifai_sim).annotations()
    box = anns[anns.kind == "box"]["id"].iloc[0]
    anns.loc[anns.id == box, "status"] = "ANNOTATION_AWAITING_REVIEW"
    anns.annot.push()
    assert clarifai_sim.state.annotations[box]["status"]["code"] == 24157
    review = ab.connect(
        "clarifai",
        dataset="shapes",
        user_id="sim-user",
        app_id="shapes",
        pat=CLARIFAI_PAT,
        base_url=clarifai_sim.url,
        statuses=["ANNOTATION_AWAITING_REVIEW"],
    ).annotations()
    assert list(review["id"]) == [box]
    assert isinstance(review, pd.DataFrame)


def test_assets_filter_by_annotation_or_input_status(clarifai_sim: Simulator, tmp_path: Path) -> None:
    conn = _connect(clarifai_sim)
    anns = conn.annotations()
    box = anns[anns.kind == "box"].iloc[0]
    anns.loc[anns.id == box["id"], "status"] = "ANNOTATION_AWAITING_REVIEW"
    anns.annot.push()
    review = conn.assets(status="ANNOTATION_AWAITING_REVIEW")  # the example
    assert list(review["asset"]) == [box["asset"]]
    assert set(review.annot.load()["asset"]) == {box["asset"]}
    assert len(conn.cached_assets("shapes")) == 8  # a filtered table is not taken for the app's inputs
    other = next(i for i in clarifai_sim.state.inputs if i != box["asset"])
    clarifai_sim.state.inputs[other]["status"] = {"code": 30002, "description": "Download failed"}
    failed = conn.assets(status="INPUT_DOWNLOAD_FAILED")
    assert list(failed["asset"]) == [other] and list(failed["status"]) == ["Download failed"]
    assert set(conn.assets(status=["INPUT_DOWNLOAD_FAILED", 24157])["asset"]) == {other, box["asset"]}
    with pytest.raises(ValueError, match="unknown Clarifai status"):
        conn.assets(status="DONE")
    with pytest.raises(NotSupported, match="clarifai backend's assets take no split filter"):
        conn.assets(split="train")
    local = ab.connect("local", path=str(tmp_path / "store"))
    with pytest.raises(NotSupported, match="local backend's assets take no status filter"):
        local.assets("x", status="done")


def test_a_status_filter_goes_on_the_wire() -> None:
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, list(request.url.params.multi_items())))
        return httpx.Response(200, json={"status": {"code": 10000}})  # an empty page: the end of the listing

    backend = ClarifaiBackend(app_id="a", pat="p", base_url="http://clarifai.test",
                              transport=httpx.MockTransport(answer))  # fmt: skip
    backend.assets("a", status="INPUT_DOWNLOAD_FAILED")
    assert seen[-1][0] == "/v2/users/me/apps/a/inputs" and ("status.code", "30002") in seen[-1][1]
    seen.clear()
    backend.assets("a", status="ANNOTATION_AWAITING_REVIEW")
    (path, query), (then, rest) = seen
    assert path.endswith("/annotations") and ("statuses.code", "24157") in query
    assert ("list_all_annotations", "True") in query
    assert then.endswith("/inputs") and not [k for k, _ in rest if k.startswith("status")]


def test_coordinates_land_at_32_bits_and_the_pushed_frame_holds_them(clarifai_sim: Simulator) -> None:
    """Clarifai keeps a coordinate as a proto float: a push of 0.123456789 lands as 0.12345679. The re-read after
    the write accepts that (it is no other writer), and the frame then holds what the platform holds."""
    conn = _connect(clarifai_sim)
    anns = conn.assets("shapes").annot.load()
    box = str(anns.loc[(anns.kind == "box") & anns.author.eq("sim-user"), "id"].iloc[0])
    anns.loc[anns.id == box, ["x0", "y1"]] = [0.123456789012, 0.987654321098]
    anns.annot.add_box(str(anns["asset"].iloc[0]), "star", (0.111111111111, 0.2, 0.333333333333, 0.4))
    report = anns.annot.push()
    assert report.ok and report.updated == [box] and len(report.created) == 1, report
    new = report.created[next(iter(report.created))]
    mine = anns.set_index("id")
    assert mine.loc[box, ["x0", "y1"]].tolist() == [0.12345679, 0.9876543]  # what a listing prints
    assert mine.loc[new, "x1"] == float(str(np.float32(0.333333333333))) and mine.loc[new, "author"] == "sim-user"
    assert len(anns.annot.diff()) == 0
    fresh = conn.assets("shapes").annot.load().set_index("id")
    cols = ["x0", "y0", "x1", "y1", "label", "author", "status"]
    pd.testing.assert_frame_equal(fresh.loc[[box, new], cols], mine.loc[[box, new], cols])
    assert clarifai_sim.state.annotations[box]["data"]["regions"][0]["region_info"]["bounding_box"]["left_col"] == (
        0.123456789012
    )  # the wire held the client's digits; the listing prints them at 32 bits
