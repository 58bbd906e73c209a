"""The Label Studio backend on the real server of the session: what the contract suite does not ask of every
platform (the label config, annotations of other users and drafts left alone, results no row holds, predictions,
brushes, imports, snapshot exports, the ``serve`` command)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

import annotebook as ab
from annotebook.errors import PushError, ValidationError
from annotebook.testing.labelstudio_server import LabelStudioServer, sample_project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(labelstudio_server: LabelStudioServer, tmp_path: Path) -> int:
    return sample_project(labelstudio_server, n_assets=3, title="backend tests", image_dir=tmp_path / "images")


def connect(server: LabelStudioServer, project: int, **options: Any) -> ab.Connection:
    return ab.connect("labelstudio", url=server.url, project=project, token=server.token, progress=False, **options)


def api(server: LabelStudioServer, method: str, path: str, **kwargs: Any) -> Any:
    with server.client() as http:
        r = http.request(method, path, **kwargs)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:300]}"
        return r.json() if r.content else None


def test_a_label_the_config_lacks_is_refused_before_any_request_naming_its_labels(
    labelstudio_server: LabelStudioServer, project: int
) -> None:
    anns = connect(labelstudio_server, project).annotations()
    anns.annot.add_box(str(anns["asset"].iloc[0]), "zebra", (0.1, 0.1, 0.2, 0.2))
    with pytest.raises(ValidationError, match=r"zebra.*circle") as info:
        anns.annot.push()
    assert "'circle', 'square', 'triangle', 'star', 'noise'" in str(info.value)
    assert len(connect(labelstudio_server, project).annotations()) == len(anns) - 1


def test_added_rows_go_to_my_annotation_or_a_new_one_others_stay_and_drafts_are_never_lost(
    labelstudio_server: LabelStudioServer, project: int
) -> None:
    conn = connect(labelstudio_server, project)
    anns = conn.annotations()
    task = str(anns["asset"].iloc[-1])
    other = api(labelstudio_server, "POST", "/api/users/", json={"email": "other@example.com", "username": "other"})
    theirs = api(
        labelstudio_server,
        "POST",
        f"/api/tasks/{task}/annotations/",
        json={
            "completed_by": other["id"],
            "result": [
                {
                    "id": "t1",
                    "type": "choices",
                    "from_name": "choice",
                    "to_name": "image",
                    "value": {"choices": ["star"]},
                }
            ],
        },
    )
    mine = int(anns[anns["asset"] == task]["annotation"].iloc[0])
    relation = {"type": "relation", "from_id": "x", "to_id": "y", "direction": "right"}
    raw = api(labelstudio_server, "GET", f"/api/annotations/{mine}/")["result"]
    api(labelstudio_server, "PATCH", f"/api/annotations/{mine}/", json={"result": [*raw, relation]})
    draft = api(
        labelstudio_server, "POST", f"/api/tasks/{task}/annotations/{mine}/drafts", json={"result": [], "lead_time": 1}
    )
    anns = conn.annotations()
    anns.annot.add_box(task, "circle", (0.1, 0.2, 0.3, 0.4))
    with pytest.raises(PushError, match=rf"annotation {mine} has draft"):  # saving it would delete the draft
        anns.annot.push()
    assert api(labelstudio_server, "GET", f"/api/drafts/{draft['id']}/")["lead_time"] == 1
    api(labelstudio_server, "DELETE", f"/api/drafts/{draft['id']}/")
    assert anns.annot.push().ok
    now = api(labelstudio_server, "GET", f"/api/tasks/{task}/")
    by_id = {a["id"]: a for a in now["annotations"]}
    assert set(by_id) == {mine, theirs["id"]}  # no new annotation: the row joined mine
    assert relation in by_id[mine]["result"] and len(by_id[mine]["result"]) == len(raw) + 2
    assert by_id[theirs["id"]]["result"] == theirs["result"]
    fresh = conn.annotations()
    assert set(fresh[fresh["asset"] == task]["author"]) == {"annotebook@example.com", "other@example.com"}

    empty = api(
        labelstudio_server, "POST", "/api/tasks/", json={"project": project, "data": {"image": now["data"]["image"]}}
    )
    anns = conn.annotations()
    first = anns.annot.add_box(str(empty["id"]), "star", (0.5, 0.5, 0.6, 0.7))
    report = anns.annot.push()
    made = report.created[first].split("/")[0]
    anns.annot.add_box(str(empty["id"]), "noise", (0.1, 0.1, 0.15, 0.15))
    assert anns.annot.push().ok and len(anns.annot.diff()) == 0
    listed = api(labelstudio_server, "GET", f"/api/tasks/{empty['id']}/annotations/")
    assert [a["id"] for a in listed] == [int(made)] and len(listed[0]["result"]) == 2


def test_predictions_load_as_model_rows_and_an_import_brings_them(
    labelstudio_server: LabelStudioServer, project: int, tmp_path: Path
) -> None:
    conn = connect(labelstudio_server, project)
    image = str(api(labelstudio_server, "GET", "/api/tasks/", params={"project": project})["tasks"][0]["data"]["image"])
    tasks = [
        {
            "data": {"image": image},
            "predictions": [
                {
                    "model_version": "yolo-7",
                    "score": 0.8,
                    "result": [
                        {
                            "id": "p1",
                            "type": "rectanglelabels",
                            "from_name": "label",
                            "to_name": "image",
                            "score": 0.64,
                            "original_width": 512,
                            "original_height": 384,
                            "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["circle"]},
                        }
                    ],
                }
            ],
        }
    ]
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    report = conn.import_files(path)
    assert report.ok and report.files["predictions"].tolist() == [1]
    anns = conn.annotations()
    pred = anns[anns["author"] == "model:yolo-7"]
    assert len(pred) == 1 and pred["score"].iloc[0] == pytest.approx(0.64)
    assert pred["annotation"].iloc[0].startswith("p") and pred["x1"].iloc[0] == pytest.approx(0.3)
    anns.loc[pred.index, "label"] = "star"  # a prediction is a unit like an annotation
    assert anns.annot.push().ok
    again = connect(labelstudio_server, project).annotations()
    assert again[again["author"] == "model:yolo-7"]["label"].tolist() == ["star"]
    assert len(connect(labelstudio_server, project, predictions=False).annotations()) == len(again) - 1

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"data": {"picture": "x.png"}}]))
    refused = conn.import_files(bad)
    assert refused.rejected == [str(bad)] and "image" in str(refused.files["first_error"].iloc[0])


def test_a_brush_survives_a_push_of_its_annotation(labelstudio_server: LabelStudioServer, project: int) -> None:
    conn = connect(labelstudio_server, project)
    anns = conn.annotations()
    mine = int(anns["annotation"].iloc[0])
    brush = {
        "id": "br",
        "type": "brushlabels",
        "from_name": "brush",
        "to_name": "image",
        "original_width": 512,
        "original_height": 384,
        "value": {"format": "rle", "rle": [0, 1, 2, 3, 4], "brushlabels": ["star"]},
    }
    raw = api(labelstudio_server, "GET", f"/api/annotations/{mine}/")["result"]
    api(labelstudio_server, "PATCH", f"/api/annotations/{mine}/", json={"result": [*raw, brush]})
    anns = conn.annotations()
    row = anns[anns["id"] == f"{mine}/br"].iloc[0]
    assert row["kind"] == "tag" and row["label"] == "star" and row["attributes"]["mask"]["rle"] == [0, 1, 2, 3, 4]
    anns.loc[anns["id"] == f"{mine}/br", "label"] = "circle"
    assert anns.annot.push().ok
    (back,) = [r for r in api(labelstudio_server, "GET", f"/api/annotations/{mine}/")["result"] if r["id"] == "br"]
    assert back == {**brush, "value": {**brush["value"], "brushlabels": ["circle"]}}


@pytest.mark.parametrize(("fmt", "reader"), [("JSON", "labelstudio"), ("COCO", "coco"), ("YOLO", "yolo")])
def test_a_snapshot_export_downloads_and_reads_back(
    labelstudio_server: LabelStudioServer, project: int, tmp_path: Path, fmt: str, reader: str
) -> None:
    conn = connect(labelstudio_server, project)
    anns = conn.annotations()
    result = conn.export(fmt, tmp_path / "out", progress=False)
    assert result.reader == reader and result.export_id and all(p.exists() for p in result.paths)
    target = result.dest if fmt == "YOLO" else next(p for p in result.paths if p.suffix == ".json")
    back = ab.read(target, format=reader)
    boxes = anns[anns["kind"] == "box"]
    got = back[back["kind"] == "box"]
    assert len(got) == len(boxes) and sorted(got["label"]) == sorted(boxes["label"])


def test_serve_starts_the_real_server_with_the_sample_and_prints_the_simulators_line(tmp_path: Path) -> None:
    env = {**os.environ, "ANNOTEBOOK_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotebook.testing", "serve", "labelstudio", "--port", "0", "--json", "--assets", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["platform"] == "labelstudio" and info["key_env"] == "LABEL_STUDIO_API_KEY"
        from annotebook.testing.labelstudio_server import TOKEN

        conn = ab.connect("labelstudio", token=TOKEN, progress=False, **info["connect"])
        assert set(conn.annotations()["asset"]) == set(conn.assets()["asset"]) and len(conn.assets()) == 2
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{info['url']}/health", timeout=5)
