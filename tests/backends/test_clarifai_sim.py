"""The Clarifai simulator on its own: the wire of the protocol notes, spoken with plain httpx."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx

from annotebook.testing import Simulator

from .conftest import CLARIFAI_PAT

P = "/v2/users/sim-user/apps/shapes"
AUTH = {"Authorization": f"Key {CLARIFAI_PAT}"}


def _client(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers=AUTH, timeout=10)


def test_the_simulator_never_imports_the_backends() -> None:
    for name in ("clarifai_sim.py", "clarifai_state.py"):
        tree = ast.parse((Path(__file__).parents[2] / "annotebook" / "testing" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert "backends" not in (node.module or ""), f"{name} imports {node.module}"


def test_every_answer_has_the_status_envelope_and_a_key_is_needed(clarifai_sim: Simulator) -> None:
    with httpx.Client(base_url=clarifai_sim.url, timeout=10) as c:
        refused = c.get(f"{P}/annotations")
        assert refused.status_code == 401 and refused.json()["status"]["code"] == 11009
        wrong = c.get(f"{P}/annotations", headers={"Authorization": "Key nope"})
        assert wrong.json()["status"]["code"] == 11008
    with _client(clarifai_sim) as c:
        ok = c.get(f"{P}/annotations", params=[("user_app_id.user_id", "sim-user"), ("list_all_annotations", "True")])
        assert ok.json()["status"] == {**ok.json()["status"], "code": 10000, "description": "Ok"}
        assert c.get("/v2/users/sim-user/apps/other/annotations").json()["status"]["code"] == 11101


def test_pages_end_with_an_empty_page_and_filters_repeat(clarifai_sim: Simulator) -> None:
    with _client(clarifai_sim) as c:
        seen, page = [], 1
        while True:
            body = c.get(
                f"{P}/annotations", params={"page": page, "per_page": 5, "list_all_annotations": "True"}
            ).json()
            if not body.get("annotations"):
                break
            seen += body["annotations"]
            page += 1
        assert len(seen) == len(clarifai_sim.state.annotations)
        two = [a["id"] for a in seen[:2]]
        some = c.get(f"{P}/annotations", params=[("ids", two[0]), ("ids", two[1]), ("list_all_annotations", "True")])
        assert [a["id"] for a in some.json()["annotations"]] == two
        users = c.get(f"{P}/annotations", params={"per_page": 1000}).json()["annotations"]
        assert all("model_version_id" not in a for a in users)  # user-made only unless list_all_annotations


def test_a_zero_coordinate_is_omitted_and_read_as_zero(clarifai_sim: Simulator) -> None:
    box = {"bottom_row": 0.5, "right_col": 0.5}  # top_row, left_col = 0, left out as proto3 JSON does
    ann = {
        "id": "z1",
        "input_id": "img0000",
        "data": {"regions": [{"region_info": {"bounding_box": box}, "data": {"concepts": [{"id": "cat"}]}}]},
    }
    with _client(clarifai_sim) as c:
        made = c.post(f"{P}/annotations", json={"annotations": [ann]}).json()
        assert made["status"]["code"] == 10000
        got = c.get(f"{P}/inputs/img0000/annotations/z1").json()["annotation"]
        assert got["data"]["regions"][0]["region_info"]["bounding_box"] == box
        assert clarifai_sim.state.annotations["z1"]["status"]["code"] == 24150
        again = c.post(f"{P}/annotations", json={"annotations": [ann]})
        assert again.status_code == 400 and again.json()["status"]["code"] == 24155  # the id is taken


def test_at_most_128_a_write_and_patch_actions(clarifai_sim: Simulator) -> None:
    many = [{"input_id": "img0000", "data": {"concepts": [{"id": "x", "value": 1}]}}] * 129
    with _client(clarifai_sim) as c:
        assert c.post(f"{P}/annotations", json={"annotations": many}).json()["status"]["code"] == 11102
        c.post(
            f"{P}/annotations",
            json={
                "annotations": [{"id": "t1", "input_id": "img0001", "data": {"concepts": [{"id": "a", "value": 1}]}}]
            },
        )
        c.patch(
            f"{P}/annotations",
            json={
                "action": "merge",
                "annotations": [{"id": "t1", "input_id": "img0001", "data": {"concepts": [{"id": "b", "value": 0}]}}],
            },
        )
        assert [x["id"] for x in clarifai_sim.state.annotations["t1"]["data"]["concepts"]] == ["a", "b"]
        c.patch(
            f"{P}/annotations",
            json={"action": "remove", "annotations": [{"id": "t1", "data": {"concepts": [{"id": "a"}]}}]},
        )
        assert [x["id"] for x in clarifai_sim.state.annotations["t1"]["data"]["concepts"]] == ["b"]
        gone = c.request("DELETE", f"{P}/annotations", json={"ids": ["t1", "nope"], "input_ids": ["img0001"] * 2})
        assert gone.status_code == 404 and "t1" in clarifai_sim.state.annotations  # all or none
        c.request("DELETE", f"{P}/inputs/annotations", json={"ids": ["t1"], "input_ids": ["img0001"]})
        assert "t1" not in clarifai_sim.state.annotations


def test_a_rate_limit_is_429_in_the_envelope(clarifai_sim: Simulator) -> None:
    clarifai_sim.state.faults.update({"rate_limit": 1, "retry_after": 0})
    with _client(clarifai_sim) as c:
        limited = c.get(f"{P}/inputs")
        assert limited.status_code == 429 and limited.json()["status"]["code"] == 11005
        assert c.get(f"{P}/inputs").json()["inputs"]
