"""The Pictograph simulator on its own: the wire of the protocol notes (part C), spoken with plain httpx."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from annotebook.testing import Simulator

from .conftest import PICTOGRAPH_KEY

A = "/api/v1/developer"
AUTH = {"X-API-Key": PICTOGRAPH_KEY}


def _client(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url=sim.url, headers=AUTH, timeout=10)


def _box(ident: str, name: str = "square") -> dict[str, Any]:
    return {"id": ident, "name": name, "type": "bbox", "bounding_box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0}}


def test_the_simulator_imports_nothing_of_the_backends() -> None:
    """Beyond what ``import annotebook`` itself loads (the interface and report types), no backend module: the
    simulator speaks the wire from the notes, not from the code it tests."""
    script = (
        "import sys, annotebook\n"
        "before = {m for m in sys.modules if m.startswith('annotebook.backends')}\n"
        "from annotebook.testing.pictograph_sim import PictographState, make_app\n"
        "make_app(PictographState(n_assets=1))\n"
        "print(sorted(m for m in sys.modules if m.startswith('annotebook.backends') and m not in before))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert run.stdout.strip() == "[]"
    for name in ("pictograph_sim.py", "pictograph_state.py"):
        tree = ast.parse((Path(__file__).parents[2] / "annotebook" / "testing" / name).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if "backends" in m], name


def test_a_key_is_needed_and_errors_have_the_envelope(pictograph_sim: Simulator) -> None:
    with httpx.Client(base_url=pictograph_sim.url, timeout=10) as c:
        missing = c.get(f"{A}/datasets/")
        wrong = c.get(f"{A}/datasets/", headers={"X-API-Key": "pk_wrong"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized" and wrong.json()["detail"] == "Invalid API key"
    with _client(pictograph_sim) as c:
        gone = c.get(f"{A}/annotations/shapes/no-such.png")
        elsewhere = c.get(f"{A}/datasets/elsewhere")
    assert gone.status_code == elsewhere.status_code == 404
    body = gone.json()
    assert body == {"error": {"code": "not_found", "message": body["detail"], "details": {}}, "detail": body["detail"]}


def test_datasets_and_images_page_by_has_more(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    with _client(pictograph_sim) as c:
        listed = c.get(f"{A}/datasets/").json()
        by_name = c.get(f"{A}/datasets/shapes").json()["data"]
        by_id = c.get(f"{A}/datasets/{state.dataset_id}").json()["data"]
        pages, offset = [], 0
        while True:
            page = c.get(f"{A}/images/", params={"dataset": "shapes", "limit": 3, "offset": offset}).json()
            pages.append(page)
            offset += len(page["data"])
            if not page["pagination"]["has_more"]:
                break
        capped = c.get(f"{A}/images", params={"dataset": state.dataset_id, "limit": 5000}).json()["pagination"]
        bad = c.get(f"{A}/images/", params={"dataset": "shapes", "limit": "many"})
    assert [d["name"] for d in listed["data"]] == ["shapes"] and listed["pagination"]["has_more"] is False
    assert by_name == by_id and by_name["image_count"] == len(state.images) == 8
    assert [len(p["data"]) for p in pages] == [3, 3, 2]
    assert [p["pagination"]["has_more"] for p in pages] == [True, True, False]
    assert [i["id"] for p in pages for i in p["data"]] == list(state.images)
    assert capped["limit"] == 1000 and capped["has_more"] is False
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


def test_annotations_by_path_or_id_save_bulk_delete(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    (first, img), (second, _) = list(state.images.items())[:2]
    held = len(state.annotations[first])
    with _client(pictograph_sim) as c:
        by_path = c.get(f"{A}/annotations/shapes/{img['filename']}").json()
        by_id = c.get(f"{A}/annotations/{first}").json()
        meta = c.get(f"{A}/images/{first}/metadata").json()["data"]
        saved = c.post(f"{A}/annotations/shapes/{img['filename']}", json={"annotations": [_box("a"), _box("b")]})
        seed_form = {"id": "p", "name": "triangle", "type": "polygon",
                     "polygon": {"path": [{"x": 0, "y": 0}, {"x": 4, "y": 0}, {"x": 0, "y": 3}]}}  # fmt: skip
        bulk = c.post(f"{A}/annotations/bulk", json={"saves": [
            {"image_id": second, "annotations": [seed_form]}, {"image_id": "nope", "annotations": []},
            {"image_id": first, "annotations": [_box("c", "no-such-class")]}]}).json()  # fmt: skip
        deleted = c.delete(f"{A}/annotations/{second}").json()
    assert by_path == by_id and by_path["image_id"] == first and len(by_path["annotations"]) == held
    assert meta["id"] == first and meta["annotation_url"].endswith(f"/annotations/shapes/{img['filename']}")
    assert saved.json() == {"image_id": first, "previous_count": held, "new_count": 2, "status": img["status"]}
    assert state.annotations[first][0] == {**_box("a"), "confidence": 1.0, "attributes": []}  # defaults filled
    assert [s["image_id"] for s in bulk["saved"]] == [second]
    assert [f["image_id"] for f in bulk["failed"]] == ["nope", first] and "name" in bulk["failed"][1]["error"]
    assert [a["id"] for a in state.annotations[first]] == ["a", "b"]  # the failed entry changed nothing
    assert deleted == {"image_id": second, "deleted_count": 1} and state.annotations[second] == []


def test_a_save_is_refused_field_by_field(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    first = next(iter(state.images))
    before = list(state.annotations[first])
    bad = [{**_box("a"), "class": "square"}, {**_box("a"), "bounding_box": {"x": 0, "y": 0, "w": 0, "h": 1}},
           {"id": "k", "name": "star-tips", "type": "keypoint", "keypoint": {"x": 1, "y": 1},
            "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1}}, {**_box("z"), "confidence": 2}]  # fmt: skip
    with _client(pictograph_sim) as c:
        extra = c.post(f"{A}/annotations/{first}", json={"image_id": first, "annotations": []})
        refused = c.post(f"{A}/annotations/{first}", json={"annotations": bad})
        too_many = c.post(f"{A}/annotations/bulk", json={"saves": [{"image_id": first, "annotations": []}] * 201})
    assert extra.status_code == 422
    assert extra.json()["error"]["details"]["errors"] == [
        {"loc": ["body", "image_id"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}]  # fmt: skip
    assert refused.status_code == 422
    locs = [e["loc"][2:] for e in refused.json()["error"]["details"]["errors"]]
    assert locs == [[0, "class"], [1, "id"], [1, "bounding_box"], [2, "bounding_box"], [3, "confidence"]]
    assert too_many.status_code == 422 and state.annotations[first] == before


def test_a_repeated_idempotency_key_is_answered_again_not_applied_again(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    first = next(iter(state.images))
    held = len(state.annotations[first])
    key = {"Idempotency-Key": "same-key-1"}
    with _client(pictograph_sim) as c:
        once = c.post(f"{A}/annotations/{first}", json={"annotations": [_box("a")]}, headers=key)
        again = c.post(f"{A}/annotations/{first}", json={"annotations": [_box("b"), _box("c")]}, headers=key)
        fresh = c.post(f"{A}/annotations/{first}", json={"annotations": []}, headers={"Idempotency-Key": "k2"})
    assert once.json() == again.json() == {"image_id": first, "previous_count": held, "new_count": 1,
                                           "status": state.images[first]["status"]}  # fmt: skip
    assert fresh.json()["previous_count"] == 1  # the repeat did not save "b" and "c"


def test_review_sets_a_status(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    first, img = next(iter(state.images.items()))
    with _client(pictograph_sim) as c:
        changes = c.post(f"{A}/images/shapes/{img['filename']}/review", json={"action": "request_changes"})
        listed = c.get(f"{A}/images/", params={"dataset": "shapes", "status": "annotate"}).json()["data"]
        refused = c.post(f"{A}/images/shapes/{img['filename']}/review", json={"action": "reject"})
    assert changes.json() == {"data": {"status": "annotate"}} and [i["id"] for i in listed] == [first]
    assert refused.status_code == 422 and state.images[first]["status"] == "annotate"


def test_downloads_are_signed_and_need_no_key(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    with _client(pictograph_sim) as c:
        items = c.get(f"{A}/datasets/shapes/download", params={"limit": 10000}).json()["data"]["items"]
        pixels = c.get(f"{A}/images/shapes/{items[0]['filename']}").content
    first = next(iter(state.images))
    with httpx.Client(timeout=10) as bare:
        signed = bare.get(items[0]["image_url"])
        forged = bare.get(items[0]["image_url"].split("?")[0] + "?expires=1&signature=x")
    assert len(items) == len(state.images) and signed.content == pixels == state.files[first].read_bytes()
    assert forged.status_code == 403


def test_faults_rate_limit_and_outage(pictograph_sim: Simulator) -> None:
    faults = pictograph_sim.state.faults
    faults.update({"rate_limit": 1, "retry_after": 2})
    with _client(pictograph_sim) as c:
        limited = c.get(f"{A}/datasets/")
        faults.update({"down": 1})
        down = c.get(f"{A}/datasets/")
        fine = c.get(f"{A}/datasets/")
        faults.update({"reject_after": 1})
        first = next(iter(pictograph_sim.state.images))
        rejected = c.post(f"{A}/annotations/{first}", json={"annotations": []})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json()["error"]["code"] == "rate_limited"
    assert down.status_code == 503 and down.json()["error"]["code"] == "service_unavailable"
    assert fine.status_code == 200
    assert rejected.status_code == 503 and pictograph_sim.state.annotations[first] != []
