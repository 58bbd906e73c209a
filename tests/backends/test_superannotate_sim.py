"""The SuperAnnotate simulator on its own, spoken to with plain httpx as the notes describe the wire (part B): the
four hosts on one port, both token kinds, the streamed download's delimiter, the chunk limits, the upload's reply,
faults, and ``serve superannotate --json``."""

from __future__ import annotations

import ast
import base64
import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import annotebook as ab
from annotebook.testing import Simulator
from annotebook.testing.superannotate_sim import DELIMITER

from .conftest import SA_TOKEN

ROOT = Path(__file__).parents[2]


def _client(sim: Simulator, token: str = SA_TOKEN, authtype: str = "sdk") -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers={"Authorization": token, "authtype": authtype}, timeout=30)


def _ctx(**scope: int) -> dict[str, str]:
    return {"x-sa-entity-context": base64.b64encode(json.dumps({"team_id": 1, **scope}).encode()).decode()}


def test_the_simulator_imports_nothing_of_the_backends() -> None:
    script = (
        "import sys, annotebook\n"
        "before = {m for m in sys.modules if m.startswith('annotebook.backends')}\n"
        "from annotebook.testing.superannotate_sim import SuperAnnotateState, make_app\n"
        "make_app(SuperAnnotateState(n_assets=1))\n"
        "print(sorted(m for m in sys.modules if m.startswith('annotebook.backends') and m not in before))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]"
    for name in ("superannotate_sim.py", "superannotate_state.py"):
        tree = ast.parse((ROOT / "annotebook" / "testing" / name).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if "backends" in m or "formats" in m], name


def test_tokens_start_up_calls_and_error_body(superannotate_sim: Simulator) -> None:
    with _client(superannotate_sim) as c:
        assert c.get("/user/ME", params={"team_id": 1}).json()["email"] == superannotate_sim.state.user_email
        assert c.get("/api/v1/team/1", params={"team_id": 1, "include_users": False}).json()["id"] == 1
        assert c.get("/user/ME", params={"team_id": 2}).status_code == 403
    with _client(superannotate_sim, token="") as c:
        answer = c.get("/user/ME")
        assert answer.status_code == 401 and set(answer.json()) == {"error"}
    with _client(superannotate_sim, token="someone-else=1") as c:
        assert c.get("/user/ME").status_code == 401  # the simulator was started with SA_TOKEN only
    superannotate_sim.state.key = None
    with _client(superannotate_sim, token="a" * 40, authtype="api_key") as c:
        me = c.post("/wm/api/v1/users/me", json={}).json()
        assert me["token"]["scope"] == {"team_id": 1} and me["user"]["email"]
    with _client(superannotate_sim, token="short", authtype="api_key") as c:
        assert c.post("/wm/api/v1/users/me", json={}).status_code == 401


def test_the_stream_joins_annotation_jsons_with_the_literal_delimiter(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    ids = [i for i, it in state.items.items() if it["folder_id"] == state.root_id][:3]
    with _client(superannotate_sim) as c:
        classified = c.post("/assets/api/v4/items/annotations/download/method", params={"team_id": 1, "limit": 3},
                            json={"project_id": state.project_id, "item_ids": ids}).json()  # fmt: skip
        assert [x["id"] for g in classified["small"].values() for x in g["data"]] == ids and classified["large"] == []
        body = c.post("/assets/api/v4/items/annotations/download", params={"team_id": 1, "limit": 3,
                      "project_id": state.project_id}, json={"image_ids": ids}).content  # fmt: skip
    assert DELIMITER == b"\\n;)\\n" and body.count(DELIMITER) == 2 and b"\n" not in body
    docs = [json.loads(part) for part in body.split(DELIMITER)]
    assert [d["metadata"]["id"] for d in docs] == ids
    assert all(set(d) == {"metadata", "instances", "tags", "comments"} for d in docs)


def test_item_search_pages_filters_and_limits(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    headers = _ctx(project_id=state.project_id, folder_id=state.root_id)
    root = [it["name"] for it in state.items.values() if it["folder_id"] == state.root_id]

    def search(**query: Any) -> httpx.Response:
        with _client(superannotate_sim) as c:
            return c.post("/item/api/v1/items/search", params={"team_id": 1}, headers=headers, json={"query": query})

    first, rest = search(limit=3, offset=0).json(), search(limit=2000, offset=3).json()
    assert [i["name"] for i in first["data"] + rest["data"]] == root and first["count"] == len(root)
    named = search(limit=10, search={"$and": [{"name": {"$in": root[1:3]}}]}).json()
    assert [i["name"] for i in named["data"]] == root[1:3]
    done = search(limit=10, search={"annotation_status": {"$eq": 5}}).json()["data"]
    assert done and {i["annotation_status"] for i in done} == {5}
    assert search(limit=2001).status_code == 400  # the SDK's page is 2000


def test_chunk_limits_upload_reply_statuses_and_remove(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    item = next(i for i, it in state.items.items() if it["folder_id"] == state.root_id)
    name = state.items[item]["name"]
    q = {"team_id": 1, "project_id": state.project_id, "folder_id": state.root_id}
    with _client(superannotate_sim) as c:
        body = {"folder_id": state.root_id, "annotation_status": 2, "image_names": ["x"] * 501}
        too_many = c.put("/image/updateAnnotationStatusBulk", params=q, json=body)
        assert too_many.status_code == 400
        ok = c.put("/image/updateAnnotationStatusBulk", params=q,
                   json={"folder_id": state.root_id, "annotation_status": 4, "image_names": [name]})  # fmt: skip
        assert ok.status_code == 200 and state.items[item]["annotation_status"] == 4
        good = json.dumps({"data": {"metadata": {"name": name}, "instances": [
            {"type": "bbox", "className": "star", "points": {"x1": 1, "y1": 1, "x2": 2, "y2": 2}}]}})  # fmt: skip
        bad = json.dumps({"data": {"metadata": {"name": name}, "instances": [{"type": "bbox", "className": "zz"}]}})
        reply = c.post("/assets/api/v4/items/annotations/upload", params={**q, "image_names[]": [name, "ghost.png"]},
                       files=[(name, (name, good, "application/json")),
                              ("ghost.png", ("ghost.png", bad, "application/json"))]).json()  # fmt: skip
        nothing = {"class": [], "template": [], "attribute": [], "attributeGroup": []}
        assert reply == {"failedItems": ["ghost.png"], "missingResources": nothing}
        assert state.annotations[item]["instances"][0]["classId"]  # the server names the class by id too
        refused = c.post("/assets/api/v4/items/annotations/upload", params={**q, "image_names[]": [name]},
                         files=[(name, (name, bad, "application/json"))]).json()  # fmt: skip
        assert refused["failedItems"] == [name] and refused["missingResources"]["class"] == ["zz"]
        poll = c.post("/annotations/remove", params=q, json={"image_names": [name]}).json()["poll_id"]
        assert c.get("/annotations/getRemoveStatus", params={**q, "poll_id": poll}).json() == {"process": 100}
        assert state.annotations[item]["instances"] == []
        assert c.post("/annotations/remove", params=q, json={"image_names": ["x"] * 2001}).status_code == 400
        ids = list(range(1001))
        over = c.post("/assets/api/v4/items/annotations/download/method", params={"team_id": 1},
                      json={"project_id": state.project_id, "item_ids": ids})  # fmt: skip
        assert over.status_code == 400


def test_reads_sent_as_post_do_not_spend_write_faults(superannotate_sim: Simulator) -> None:
    faults = superannotate_sim.state.faults
    sa = ab.connect("superannotate", project="shapes", token=SA_TOKEN, url=superannotate_sim.url, progress=False)
    faults.update({"cut_after": 1})
    assert len(sa.annotations())  # item search, classification and streams are POSTs, and reads
    assert faults.cut_after == 1 and faults.writes == 0
    faults.update({"cut_after": None, "rate_limit": 2, "retry_after": 0.05})
    assert len(sa.annotations()) and faults.rate_limit == 0


@pytest.mark.slow
def test_serve_json_on_port_0_is_all_ab_connect_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    command = [sys.executable, "-m", "annotebook.testing", "serve", "superannotate", "--port", "0", "--json",
               "--assets", "3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "serve printed nothing"
        info = json.loads(proc.stdout.readline())
        assert info["key_env"] == "SA_TOKEN" and info["platform"] == "superannotate"
        monkeypatch.setenv(info["key_env"], "anyone=1")
        sa = ab.connect(info["platform"], progress=False, **info["connect"])
        assert len(sa.assets(info["dataset"])) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=20)
