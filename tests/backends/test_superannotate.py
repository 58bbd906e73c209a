"""SuperAnnotate on its simulator: datasets and folders, statuses (filter, keep_status, bulk push), classes refused or
created before any request, the files path (import_files report per file, export read back), and what survives a
write (cuboids, comments, the sa. fields)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
from annotebook.errors import AuthError, NotSupported, ValidationError
from annotebook.testing import Simulator

from .conftest import SA_TOKEN


def _connect(sim: Simulator, project: str = "shapes", **options: object) -> ab.Connection:
    return ab.connect("superannotate", project=project, token=SA_TOKEN, url=sim.url, progress=False, **options)


def _item(sim: Simulator, n: int = 0, folder: int | None = None) -> int:
    folder = sim.state.root_id if folder is None else folder
    return [i for i, it in sim.state.items.items() if it["folder_id"] == folder][n]


def test_datasets_folders_assets_and_labels(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    sa = _connect(superannotate_sim)
    assert sa.datasets()["dataset"].tolist() == ["shapes", "shapes/folder1", "clips"]
    assets = sa.assets()
    root = [it for it in state.items.values() if it["folder_id"] == state.root_id]
    assert assets["name"].tolist() == [it["name"] for it in root]
    assert assets["width"].tolist() == [it["width"] for it in root]
    assert set(assets["status"]) == {"Completed", "NotStarted"}
    folder = sa.assets("shapes/folder1")
    assert len(folder) == 2 and folder["dataset"].unique().tolist() == ["shapes/folder1"]
    anns = folder.annot.load()
    assert set(anns["asset"]) <= set(folder["asset"]) and len(anns)
    labels = sa.labels()
    assert labels["name"].tolist() == [c["name"] for c in state.classes[state.project_id]]
    assert labels["index"].tolist() == [c["id"] for c in state.classes[state.project_id]]
    with pytest.raises(ValidationError, match="no SuperAnnotate project named 'nope'"):
        sa.assets("nope")
    with pytest.raises(ValidationError, match="no folder 'nope'"):
        sa.assets("shapes/nope")


def test_status_filter_keep_status_and_bulk_status_push(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    sa = _connect(superannotate_sim)
    done = sa.assets(status="Completed")
    assert set(done["status"]) == {"Completed"}
    assert len(done) == sum(1 for it in state.items.values() if it["folder_id"] == state.root_id
                            and it["annotation_status"] == 5)  # fmt: skip
    with pytest.raises(ValidationError, match="unknown SuperAnnotate status"):
        sa.assets(status="Done")
    anns = done.annot.load()
    first, second = anns["asset"].unique()[:2]
    for asset in (first, second):
        row = anns.index[anns["asset"] == asset][0]
        anns.loc[row, "label"] = "star" if anns.loc[row, "label"] != "star" else "square"
    assert anns[anns["asset"] == first].annot.push(keep_status=True).ok
    assert state.items[int(first)]["annotation_status"] == 5  # kept
    assert anns.annot.push().ok
    assert state.items[int(second)]["annotation_status"] == 2  # InProgress, as the SDK sets it
    assets = sa.assets()
    assets.loc[assets["asset"].isin([first, second]), "status"] = "QualityCheck"
    changed = assets.annot.push()
    assert sorted(changed["asset"]) == sorted([first, second])
    assert {state.items[int(a)]["annotation_status"] for a in (first, second)} == {3}
    assets.loc[assets["asset"] == first, "status"] = "Finished"
    with pytest.raises(ValidationError, match="Finished"):
        assets.annot.push()


def test_unknown_class_refused_before_any_request_or_created(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    anns = _connect(superannotate_sim).annotations()
    anns.annot.add_box(str(anns["asset"].iloc[0]), "zebra", (0.1, 0.1, 0.2, 0.2))
    writes = state.faults.writes
    with pytest.raises(ValidationError, match="zebra") as info:
        anns.annot.push()
    assert state.faults.writes == writes  # nothing was sent
    assert info.value.problems["column"].tolist() == ["label"]
    again = _connect(superannotate_sim, create_classes=True).annotations()
    again.annot.add_box(str(again["asset"].iloc[0]), "zebra", (0.1, 0.1, 0.2, 0.2))
    assert again.annot.push().ok
    assert "zebra" in {c["name"] for c in state.classes[state.project_id]}
    fresh = _connect(superannotate_sim).annotations()
    assert (fresh["label"] == "zebra").sum() == 1


def test_rows_it_cannot_carry_are_named(superannotate_sim: Simulator) -> None:
    anns = _connect(superannotate_sim).annotations()
    asset = str(anns["asset"].iloc[0])
    new = anns.annot.new_rows([{"asset": asset, "kind": "caption", "text": "a cat", "label": "square"},
                               {"asset": asset, "kind": "tag", "label": "square", "value": False}])  # fmt: skip
    anns.annot.add_rows(new)
    with pytest.raises(ValidationError) as info:
        anns.annot.push()
    problems = info.value.problems
    assert set(problems["column"]) == {"kind", "text", "value"}


def test_what_a_write_keeps_cuboids_comments_and_own_fields(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    iid = _item(superannotate_sim, 1)
    cuboid = {"type": "cuboid", "className": "square", "points": {"f1": {"x": 0, "y": 0}, "f2": {"x": 5, "y": 5},
              "r1": {"x": 1, "y": 1}, "r2": {"x": 6, "y": 6}}, "attributes": []}  # fmt: skip
    locked = {"type": "bbox", "className": "square", "points": {"x1": 1, "y1": 2, "x2": 30, "y2": 40}, "locked": True,
              "groupId": 3, "trackingId": "t-1", "attributes": [{"name": "clear", "groupName": "quality"}]}  # fmt: skip
    comment = {"x": 1, "y": 2, "resolved": False, "correspondence": [{"text": "look", "email": "qa@example.com"}]}
    state.set_annotation(iid, {"instances": [locked, cuboid], "tags": ["night"], "comments": [comment]})
    anns = _connect(superannotate_sim).annotations(assets=[str(iid)])
    assert anns["kind"].tolist() == ["box", "tag"]
    assert anns["attributes"].iloc[0] == {"quality": "clear", "sa.locked": True, "sa.group": 3}
    anns.annot.add_box(str(iid), "star", (0.5, 0.5, 0.6, 0.6))
    assert anns.annot.push().ok
    doc = state.annotations[iid]
    assert doc["instances"][0] == {**locked, "classId": doc["instances"][0]["classId"]}  # sent back as read
    assert [i["type"] for i in doc["instances"]] == ["bbox", "bbox", "cuboid"]
    assert doc["comments"] == [comment] and doc["tags"] == ["night"]


def test_import_files_reports_each_file_and_export_reads_back(superannotate_sim: Simulator, tmp_path: Path) -> None:
    state = superannotate_sim.state
    sa = _connect(superannotate_sim)
    a, b = (state.items[_item(superannotate_sim, n)]["name"] for n in (0, 1))
    folder = tmp_path / "annotations"
    folder.mkdir()
    box = {"type": "bbox", "className": "star", "points": {"x1": 1, "y1": 2, "x2": 30, "y2": 40}, "attributes": []}
    (folder / f"{a}___objects.json").write_text(json.dumps({"metadata": {"name": a}, "instances": [box]}))
    (folder / f"{b}.json").write_text(json.dumps({"metadata": {"name": b}, "instances": [{**box, "className": "x"}]}))
    (folder / "ghost.png___objects.json").write_text(json.dumps({"metadata": {}, "instances": []}))
    (folder / "broken.png___objects.json").write_text("{not json")
    (folder / "classes").mkdir()
    (folder / "classes" / "classes.json").write_text("[]")
    report = sa.import_files([folder], keep_status=True)
    table = report.to_frame().set_index("file")
    status = {Path(f).name: s for f, s in table["status"].items()}
    assert status == {f"{a}___objects.json": "imported", f"{b}.json": "rejected",
                      "ghost.png___objects.json": "rejected", "broken.png___objects.json": "rejected"}  # fmt: skip
    errors = {Path(f).name: e for f, e in table["first_error"].items()}
    assert "class" in errors[f"{b}.json"] and "'x'" in errors[f"{b}.json"]
    assert "no item named 'ghost.png'" in errors["ghost.png___objects.json"]
    assert "not JSON" in errors["broken.png___objects.json"]
    assert state.annotations[_item(superannotate_sim, 0)]["instances"][0]["className"] == "star"
    with pytest.raises(TypeError, match="unexpected option"):
        sa.import_files([folder], keep_stats=True)

    result = sa.export("superannotate", tmp_path / "out")
    assert result.reader == "superannotate"
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in result.paths)
    root = [it["name"] for it in state.items.values() if it["folder_id"] == state.root_id]
    assert files == sorted([*(f"{n}.json" for n in root), "classes/classes.json"])
    back = ab.read(tmp_path / "out", format=result.reader)
    loaded = sa.annotations()
    assert len(back) == len(loaded) and sorted(back["label"]) == sorted(loaded["label"])
    coco = sa.export("coco", tmp_path / "coco.json", skip_unsupported=True)  # rotated boxes have no COCO form
    turned = int((loaded["rotation"].fillna(0) != 0).sum())
    assert turned and ab.read(coco.paths[0]).shape[0] == len(loaded) - turned


def test_token_rules_and_no_token_in_repr(superannotate_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SA_TOKEN", raising=False)
    with pytest.raises(AuthError, match="SA_TOKEN"):
        ab.connect("superannotate", project="shapes", url=superannotate_sim.url)
    monkeypatch.setenv("SA_TOKEN", SA_TOKEN)
    sa = ab.connect("superannotate", project="shapes", url=superannotate_sim.url, progress=False)
    assert (
        SA_TOKEN not in repr(sa) and SA_TOKEN not in repr(sa.backend) and SA_TOKEN not in json.dumps(sa.backend.spec())
    )
    wrong = ab.connect("superannotate", project="shapes", url=superannotate_sim.url, token="other=1", progress=False)
    with pytest.raises(AuthError) as info:
        wrong.assets()
    assert "other=1" not in str(info.value)


def test_a_status_failure_after_the_upload_is_a_warning(superannotate_sim: Simulator) -> None:
    state = superannotate_sim.state
    anns = _connect(superannotate_sim).annotations()
    row = anns.index[0]
    anns.loc[row, "label"] = "star"
    state.faults.update({"reject_after": 2, "down_after": 3})  # the upload lands; the status PUT and its retries fail
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = anns.annot.push()
    state.faults.update({"down": 0, "down_after": 0})
    assert report.ok
    assert any("could not be set to InProgress" in str(w.message) for w in caught)


def test_push_options_a_backend_does_not_take_are_named(tmp_path: Path) -> None:
    conn = ab.connect("local", path=str(tmp_path / "store"))
    anns = conn.annotations("shapes")
    anns.loc[anns.index[0], "label"] = "star"
    with pytest.raises(NotSupported, match="keep_status"):
        anns.annot.push(keep_status=True)
    assert isinstance(anns.annot.diff().to_frame(), pd.DataFrame)
