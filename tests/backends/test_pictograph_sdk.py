"""Contract: Pictograph's own SDK (``pictograph==1.69.146``, sync ``Client`` and ``AsyncClient``) against the
simulator, and annotebook and the SDK read each other's writes.

The SDK brings its own pydantic and httpx pins, so it lives in its own virtual environment under
``$ANNOTEBOOK_TEST_CACHE`` (default ``~/.cache/annotebook-test``), built once and driven by subprocess, as
``tests/peers.py`` does for the format peers. The driver reads its commands on stdin and the key from
``PICTOGRAPH_API_KEY`` (the SDK's own variable), so neither shows in argv; ``Client(base_url=...)`` is all it needs.
Annotations go to ``save`` / ``bulk_save`` as the SDK's own models (validated by its ``Annotation`` union), so what
goes on the wire is what the SDK itself encodes; answers come back as ``model_dump(mode="json", exclude_none=True)``.

Pictograph stores pixels: annotebook's normalised coordinates are compared with the SDK's pixels to ~1e-9.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.pictograph_poses import templates_of
from annotebook.backends.pictograph_rows import rows_from_wire
from annotebook.testing import Simulator
from tests.peers import cached_venv

from .conftest import PICTOGRAPH_KEY

pytestmark = pytest.mark.slow

SDK = ("pictograph==1.69.146",)
MODES = ("sync", "async")

DRIVER = r"""
import asyncio, json, sys
from pydantic import TypeAdapter
from pictograph import Annotation, Client
from pictograph.aio import AsyncClient

cmd = json.loads(sys.stdin.read())
ANNOTATIONS = TypeAdapter(list[Annotation])

def dump(v):
    if hasattr(v, "model_dump"):
        return v.model_dump(mode="json", exclude_none=True)
    if isinstance(v, (list, tuple)):
        return [dump(x) for x in v]
    if isinstance(v, dict):
        return {str(k): dump(x) for k, x in v.items()}
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)

def prepared(op):
    args = list(op.get("args", []))
    if op["call"] == "annotations.save":
        args[2] = ANNOTATIONS.validate_python(args[2])
    if op["call"] == "annotations.bulk_save":
        args[0] = {k: ANNOTATIONS.validate_python(v) for k, v in args[0].items()}
    return args, op.get("kwargs", {})

def failed(exc):
    return {"raised": type(exc).__name__, "status": getattr(exc, "status_code", None),
            "code": getattr(exc, "code", None), "field_errors": getattr(exc, "field_errors", None),
            "retry_after": getattr(exc, "retry_after", None), "message": str(exc)[:300]}

def method(client, call):
    resource, name = call.split(".")
    return getattr(getattr(client, resource), name)

def run_sync():
    out, client = [], Client(base_url=cmd["url"], max_retries=cmd["retries"])
    for op in cmd["ops"]:
        args, kwargs = prepared(op)
        try:
            value = method(client, op["call"])(*args, **kwargs)
            out.append({"value": dump(list(value) if op["call"].endswith(".iter") else value)})
        except Exception as exc:
            out.append(failed(exc))
    return out

async def run_async():
    out = []
    async with AsyncClient(base_url=cmd["url"], max_retries=cmd["retries"]) as client:
        for op in cmd["ops"]:
            args, kwargs = prepared(op)
            try:
                if op["call"].endswith(".iter"):  # an async pager
                    value = [x async for x in method(client, op["call"])(*args, **kwargs)]
                else:
                    value = await method(client, op["call"])(*args, **kwargs)
                out.append({"value": dump(value)})
            except Exception as exc:
                out.append(failed(exc))
    return out

print(json.dumps(asyncio.run(run_async()) if cmd["mode"] == "async" else run_sync()))
"""


def sdk_python() -> Path:
    """The Python of the SDK's own venv (its pins are not the project's business)."""
    return cached_venv("pictograph-sdk", SDK)


def run_sdk(sim: Simulator, mode: str, *ops: dict[str, Any], retries: int = 0,
            key: str = PICTOGRAPH_KEY) -> list[dict[str, Any]]:  # fmt: skip
    """The SDK's answers to ``ops`` (each ``{"call": "resource.method", "args", "kwargs"}``), one per op: ``{"value"}``
    or, when the call raised, ``{"raised", "status", "code", "field_errors", "retry_after", "message"}``."""
    cmd = {"url": sim.url, "mode": mode, "retries": retries, "ops": list(ops)}
    env = {**os.environ, "PICTOGRAPH_API_KEY": key}
    run = subprocess.run([str(sdk_python()), "-c", DRIVER], input=json.dumps(cmd), capture_output=True, text=True,
                         timeout=300, env=env)  # fmt: skip
    if run.returncode != 0:
        raise AssertionError(f"SDK driver failed:\n{run.stderr[-3000:]}")
    result: list[dict[str, Any]] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def op(call: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"call": call, "args": list(args), "kwargs": kwargs}


def value(answer: dict[str, Any]) -> Any:
    assert "value" in answer, answer
    return answer["value"]


def images(sim: Simulator) -> list[tuple[str, str]]:
    """(image id, filename) of every simulated image, in the simulator's order."""
    return [(i, img["filename"]) for i, img in sim.state.images.items()]


def pt(x: float, y: float) -> dict[str, float]:
    return {"x": x, "y": y}


def every_kind(prefix: str) -> list[dict[str, Any]]:
    """One annotation of every type the SDK models, in pixels: an oriented bbox, a polygon with a hole, a polyline,
    a keypoint of a pose with its occlusion attribute."""
    box = {"x": 10.5, "y": 20.25, "w": 30.0, "h": 40.0}
    turned = {"cx": 25.5, "cy": 40.25, "w": 30.0, "h": 40.0, "angle": 30.0}
    rings = [[pt(100, 100), pt(200, 100), pt(200, 200), pt(100, 200)], [pt(120, 120), pt(140, 120), pt(130, 140)]]
    return [
        {"id": f"{prefix}-box", "name": "square", "type": "bbox", "bounding_box": box, "oriented_box": turned,
         "confidence": 0.75, "attributes": {"truncated": "true"}},
        {"id": f"{prefix}-poly", "name": "triangle", "type": "polygon", "polygon": {"paths": rings}},
        {"id": f"{prefix}-line", "name": "circle", "type": "polyline", "polyline": {"path": [pt(5, 6), pt(7.125, 8)]},
         "created_by": "sdk"},
        {"id": f"{prefix}-kp", "name": "star-tips", "type": "keypoint", "keypoint": pt(300.5, 200.5),
         "instance_id": 2, "attributes": {"occluded": "true"}},
    ]  # fmt: skip


# -- the SDK's calls, sync and async ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_annotations_get_save_bulk_save_delete(pictograph_sim: Simulator, mode: str) -> None:
    state = pictograph_sim.state
    (first, name1), (second, name2), (third, _) = images(pictograph_sim)[:3]
    before = [dict(a) for a in state.annotations[first]]
    had = {i: len(state.annotations[i]) for i in (first, second, third)}
    mine = every_kind("sdk")
    got, saved, by_id, bulk, gone, again = run_sdk(
        pictograph_sim,
        mode,
        op("annotations.get", "shapes", name1),
        op("annotations.save", "shapes", name2, mine),
        op("annotations.get", state.dataset_id, second),  # an id: the SDK looks it up by its metadata first
        op("annotations.bulk_save", {first: mine[:1], third: [], "no-such-image": []}),
        op("annotations.delete", "shapes", name2),
        op("annotations.get", "shapes", name2),
    )
    assert [a["id"] for a in value(got)] == [a["id"] for a in before]
    assert value(got) == [{k: v for k, v in a.items() if v is not None} for a in before]  # read as it is held
    assert value(saved) == {"image_id": second, "previous_count": had[second], "new_count": 4,
                            "status": state.images[second]["status"]}  # fmt: skip
    sent = value(by_id)
    assert [a["id"] for a in sent] == [a["id"] for a in mine]
    extent = {"x": 100.0, "y": 100.0, "w": 100.0, "h": 100.0}  # computed by the server on save
    assert sent[1]["polygon"] == mine[1]["polygon"] and sent[1]["bounding_box"] == extent
    assert sent[0]["oriented_box"] == mine[0]["oriented_box"] and sent[3]["instance_id"] == 2
    assert sent[2]["confidence"] == 1.0 and sent[2]["attributes"] == []  # the SDK's defaults go on the wire
    result = value(bulk)
    assert [(s["image_id"], s["previous_count"], s["new_count"]) for s in result["saved"]] == [
        (first, had[first], 1), (third, had[third], 0)]  # fmt: skip
    assert result["failed"] == [{"image_id": "no-such-image", "error": "image not found"}]
    assert value(gone) == {"image_id": second, "deleted_count": 4} and value(again) == []
    assert [a["id"] for a in state.annotations[first]] == ["sdk-box"] and state.annotations[third] == []
    assert len(state.idempotent) == 2  # each POST carried its own Idempotency-Key; DELETE carries none


@pytest.mark.parametrize("mode", MODES)
def test_images_list_iter_download(pictograph_sim: Simulator, mode: str, tmp_path: Path) -> None:
    state = pictograph_sim.state
    order = images(pictograph_sim)
    done = [i for i, img in state.images.items() if img["status"] == "complete"]
    page, every, only_done, one, download = run_sdk(
        pictograph_sim,
        mode,
        op("images.list", "shapes", limit=3, offset=2),
        op("images.iter", "shapes", page_size=3),
        op("images.list", "shapes", status="complete"),
        op("images.list", "shapes", filename=order[4][1]),
        op("images.download", "shapes", order[5][1], str(tmp_path / "got" / "pixels.bin")),
    )
    assert [i["id"] for i in value(page)] == [i for i, _ in order[2:5]]
    listed = value(every)
    assert [(i["id"], i["filename"]) for i in listed] == order  # three pages, the last short
    first = listed[0]
    assert (first["width"], first["height"], first["status"]) == (
        state.images[first["id"]]["width"],
        state.images[first["id"]]["height"],
        state.images[first["id"]]["status"],
    )
    assert first["annotation_count"] == len(state.annotations[first["id"]])
    assert done and [i["id"] for i in value(only_done)] == done
    assert [i["id"] for i in value(one)] == [order[4][0]]
    written = Path(value(download))
    assert written.read_bytes() == state.files[order[5][0]].read_bytes()
    assert not list(written.parent.glob("*.part"))


@pytest.mark.parametrize("mode", MODES)
def test_dataset_download_fetches_pixels_and_annotation_files(
    pictograph_sim: Simulator, mode: str, tmp_path: Path
) -> None:
    state = pictograph_sim.state
    full, only_json = run_sdk(
        pictograph_sim,
        mode,
        op("datasets.download", "shapes", str(tmp_path / "full")),
        op("datasets.download", "shapes", str(tmp_path / "json"), mode="annotations_only"),
    )
    report = value(full)
    n = len(state.images)
    assert report == {"dataset_id": state.dataset_id, "images_downloaded": n, "annotations_downloaded": n,
                      "failures": [], "truncated": False}  # fmt: skip
    assert value(only_json)["images_downloaded"] == 0 and value(only_json)["annotations_downloaded"] == n
    for image_id, img in state.images.items():
        assert (tmp_path / "full" / img["filename"]).read_bytes() == state.files[image_id].read_bytes()
        saved = json.loads((tmp_path / "full" / f"{img['filename']}.json").read_text())
        assert saved == {"image_id": image_id, "annotations": state.annotations[image_id]}
    assert sorted(p.name for p in (tmp_path / "json").iterdir()) == sorted(f"{i['filename']}.json"
                                                                           for i in state.images.values())  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_error_classes(pictograph_sim: Simulator, mode: str) -> None:
    state = pictograph_sim.state
    (image_id, name), *_ = images(pictograph_sim)
    held = list(state.annotations[image_id])
    box = {"type": "bbox", "bounding_box": {"x": 1, "y": 1, "w": 2, "h": 2}}
    unknown = [{"id": "a", "name": "no-such-class", **box}, {"id": "a", "name": "square", **box}]
    missing, refused, no_dataset = run_sdk(
        pictograph_sim,
        mode,
        op("annotations.get", "shapes", "no-such.png"),
        op("annotations.save", "shapes", name, unknown),
        op("images.list", "elsewhere"),
    )
    assert (missing["raised"], missing["status"], missing["code"]) == ("NotFoundError", 404, "not_found")
    assert (refused["raised"], refused["status"], refused["code"]) == ("ValidationError", 422, "validation_error")
    assert [(e["loc"], e["type"]) for e in refused["field_errors"]] == [
        (["body", "annotations", 0, "name"], "value"), (["body", "annotations", 1, "id"], "value")]  # fmt: skip
    assert state.annotations[image_id] == held  # a refused save changes nothing
    assert no_dataset["raised"] == "NotFoundError"
    (wrong,) = run_sdk(pictograph_sim, mode, op("images.list", "shapes"), key="pk_not_the_key")
    assert (wrong["raised"], wrong["status"], wrong["code"]) == ("AuthError", 401, "unauthorized")

    state.faults.update({"rate_limit": 1, "retry_after": 0})
    (limited,) = run_sdk(pictograph_sim, mode, op("images.list", "shapes"))
    assert (limited["raised"], limited["status"], limited["code"], limited["retry_after"]) == (
        "RateLimitError", 429, "rate_limited", 0.0)  # fmt: skip
    state.faults.update({"rate_limit": 1, "retry_after": 0})
    (retried,) = run_sdk(pictograph_sim, mode, op("images.list", "shapes"), retries=1)  # Retry-After honoured
    assert len(value(retried)) == len(state.images)


def test_dataset_get_reads_the_class_list(pictograph_sim: Simulator) -> None:
    (got,) = run_sdk(pictograph_sim, "sync", op("datasets.get", "shapes"))
    assert [c["name"] for c in value(got)["classes"]] == [c["name"] for c in pictograph_sim.state.classes]


# -- annotebook and the SDK read each other's writes --------------------------------------------------------------


def _connect(sim: Simulator) -> ab.Connection:
    return ab.connect("pictograph", dataset="shapes", key=PICTOGRAPH_KEY, base_url=sim.url, progress=False)


GEOMETRY = ["x0", "y0", "x1", "y1", "rotation"]
CONTENT = ["id", "asset", "label", "kind", "visibility", "author", "score", "attributes"]


def _live(frame: pd.DataFrame) -> pd.DataFrame:
    live = frame[~frame["deleted"].to_numpy(dtype=bool)] if "deleted" in frame else frame
    return live.sort_values(["asset", "id"]).reset_index(drop=True)


def assert_same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Same live rows: content exactly, coordinates (box edges, points) to 1e-9."""
    a, b = _live(left), _live(right)
    assert a["id"].tolist() == b["id"].tolist()
    for column in CONTENT:
        assert [repr(v) for v in a[column]] == [repr(v) for v in b[column]], column
    pd.testing.assert_frame_equal(a[GEOMETRY].astype(float), b[GEOMETRY].astype(float), atol=1e-9, rtol=0)
    for p, q in zip(a["points"], b["points"], strict=True):
        assert (p is None) == (q is None)
        for part_p, part_q in zip(p or (), q or (), strict=True):
            assert part_p == pytest.approx(part_q, abs=1e-9)


def sdk_frame(sim: Simulator, mode: str) -> pd.DataFrame:
    """Every image's annotations as the SDK reads them (by filename), read into rows by the backend's wire reader
    (poses grouped by the class templates the SDK reads)."""
    order = images(sim)
    dataset, *answers = run_sdk(sim, mode, op("datasets.get", "shapes"),
                                *(op("annotations.get", "shapes", name) for _, name in order))  # fmt: skip
    templates = templates_of(value(dataset)["classes"])
    assert templates == {"star-tips": ("tip1", "tip2", "tip3", "tip4", "tip5")}
    rows = []
    for (image_id, _), answer in zip(order, answers, strict=True):
        img = sim.state.images[image_id]
        size = (float(img["width"]), float(img["height"]))
        rows += rows_from_wire(value(answer), "shapes", image_id, size, templates)
    return ab.annotations_frame(rows)


@pytest.mark.parametrize("mode", MODES)
def test_what_annotebook_pushed_the_sdk_reads_identically(pictograph_sim: Simulator, mode: str) -> None:
    conn = _connect(pictograph_sim)
    anns = conn.annotations()
    boxes = anns.index[anns["kind"] == "box"]
    anns.loc[boxes[:2], "y1"] = anns.loc[boxes[:2], "y1"] - 0.0137
    anns.loc[boxes[2], "label"] = "circle"
    anns.annot.delete(anns.index == boxes[3])
    anns.annot.add_box(str(anns["asset"].iloc[1]), "square", (0.05, 0.05, 0.25, 0.35))
    assert anns.annot.push().ok
    loaded = conn.annotations()
    assert_same_rows(sdk_frame(pictograph_sim, mode), loaded)
    pushed = _live(anns)
    assert_same_rows(loaded[loaded["id"].isin(pushed["id"])], pushed)  # the new box's id came back to the frame


@pytest.mark.parametrize("mode", MODES)
def test_what_the_sdk_saved_annotebook_loads_identically(pictograph_sim: Simulator, mode: str) -> None:
    state = pictograph_sim.state
    (first, name1), (second, _) = images(pictograph_sim)[:2]
    w, h = float(state.images[first]["width"]), float(state.images[first]["height"])
    mine = every_kind("sdk")
    saved, bulk = run_sdk(
        pictograph_sim,
        mode,
        op("annotations.save", "shapes", name1, mine),
        op("annotations.bulk_save", {second: [{**mine[0], "id": "sdk-bulk", "oriented_box": None}]}),
    )
    assert value(saved)["new_count"] == 4 and value(bulk)["failed"] == []
    loaded = _connect(pictograph_sim).annotations()
    assert_same_rows(loaded, sdk_frame(pictograph_sim, mode))
    rows = loaded.set_index("id")
    box = rows.loc["sdk-box"]
    assert (box["kind"], box["label"], box["score"], box["rotation"]) == ("box", "square", 0.75, 30.0)
    assert [box["x0"] * w, box["y0"] * h, box["x1"] * w, box["y1"] * h] == pytest.approx(
        [10.5, 20.25, 40.5, 60.25], abs=1e-9)  # the oriented box's extent, about its centre  # fmt: skip
    poly = rows.loc["sdk-poly"]
    assert len(poly["points"]) == 2  # the hole kept as a second ring
    assert [c * s for c, s in zip(poly["points"][1], (w, h) * 3, strict=True)] == pytest.approx(
        [120, 120, 140, 120, 130, 140], abs=1e-9)  # fmt: skip
    line = rows.loc["sdk-line"]
    assert (line["kind"], line["author"]) == ("polyline", "sdk")
    kp = rows.loc["sdk-kp"]
    assert (kp["kind"], kp["visibility"], kp["attributes"]) == ("keypoints", (1,), {"instance_id": 2})
    assert [kp["points"][0][0] * w, kp["points"][0][1] * h] == pytest.approx([300.5, 200.5], abs=1e-9)
    other = rows.loc["sdk-bulk"]
    assert (other["asset"], other["rotation"]) == (second, 0.0)


# -- exports and the dataset download, by the SDK and read back by annotebook ------------------------------------------
FORMATS = ("pictograph", "darwin", "coco", "yolo", "yolo_obb", "yolo_pose", "dota", "pascal_voc", "cvat", "datumaro",
           "labelme", "csv")  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_exports_in_every_format_are_created_polled_and_downloaded(
    pictograph_sim: Simulator, mode: str, tmp_path: Path
) -> None:
    import zipfile

    state = pictograph_sim.state
    ops = []
    for fmt in FORMATS:
        ops += [op("exports.create", "shapes", f"sdk-{fmt}", format=fmt, include_images=fmt == "coco",
                   poll_interval=0.01),
                op("exports.download", "shapes", f"sdk-{fmt}", str(tmp_path / f"{fmt}.zip"))]  # fmt: skip
    *answers, listed = run_sdk(pictograph_sim, mode, *ops, op("exports.list", dataset_name="shapes"))
    for fmt, made, got in zip(FORMATS, answers[::2], answers[1::2], strict=True):
        export = value(made)
        assert (export["name"], export["format"], export["status"]) == (f"sdk-{fmt}", fmt, "completed")
        assert export["image_count"] == len(state.images) and export["download_url"]
        with zipfile.ZipFile(value(got)) as z:
            assert z.testzip() is None and z.namelist()
            assert (fmt == "coco") == any(n.startswith("images/") for n in z.namelist())
    assert sorted(e["name"] for e in value(listed)) == sorted(f"sdk-{f}" for f in FORMATS)
    assert not list(tmp_path.glob("*.part"))

    state.export_failure = "the exporter ran out of memory"
    failed, again = run_sdk(
        pictograph_sim,
        mode,
        op("exports.create", "shapes", "sdk-bad", format="coco", poll_interval=0.01),
        op("exports.create", "shapes", "sdk-coco", format="coco", poll_interval=0.01),
    )
    assert failed["raised"] == "ApiError" and "the exporter ran out of memory" in failed["message"]
    assert (again["raised"], again["status"], again["code"]) == ("ConflictError", 409, "conflict")


def _load(sim: Simulator) -> pd.DataFrame:
    return _connect(sim).annotations()


@pytest.mark.parametrize("mode", MODES)
def test_what_the_sdk_downloaded_annotebook_reads_as_its_load(
    pictograph_sim: Simulator, mode: str, tmp_path: Path
) -> None:
    from annotebook.backends.pictograph import read_export

    full, exported, _ = run_sdk(
        pictograph_sim,
        mode,
        op("datasets.download", "shapes", str(tmp_path / "full")),
        op("exports.create", "shapes", "sdk-json", format="pictograph", poll_interval=0.01),
        op("exports.download", "shapes", "sdk-json", str(tmp_path / "json.zip")),
    )
    assert value(full)["failures"] == [] and value(exported)["status"] == "completed"
    loaded = _load(pictograph_sim)
    templates = _connect(pictograph_sim).backend.templates("shapes")
    written = sorted(p for p in (tmp_path / "full").iterdir())
    downloaded = read_export(ab.ExportResult.of("pictograph", "shapes", "pictograph", tmp_path / "full", written),
                             templates=templates)  # sizes from the images the SDK wrote beside the files  # fmt: skip
    assert_same_rows(downloaded, loaded)
    assert downloaded.sort_values("id")["rev"].tolist() == loaded.sort_values("id")["rev"].tolist()
    import zipfile

    with zipfile.ZipFile(tmp_path / "json.zip") as z:
        z.extractall(tmp_path / "json")
    files = sorted(p for p in (tmp_path / "json").rglob("*") if p.is_file())
    from_export = read_export(ab.ExportResult.of("pictograph", "shapes", "pictograph", tmp_path / "json", files))
    assert_same_rows(from_export, loaded)
