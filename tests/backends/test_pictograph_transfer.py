"""Pictograph exports and the dataset download against the simulator over real HTTP: every format, read back into
a frame; the download paged past its listing's cap; an export that fails on the server; cut transfers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.pictograph import EXPORT_FORMATS, PictographBackend, read_export
from annotebook.errors import BackendError, ConnectionFailed, ValidationError
from annotebook.testing import Simulator

from .conftest import PICTOGRAPH_KEY


class Recording(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


def _backend(sim: Simulator) -> tuple[PictographBackend, Recording]:
    wire = Recording()
    backend = PictographBackend(key=PICTOGRAPH_KEY, base_url=sim.url, transport=wire, progress=False)
    backend.poll_interval = 0.01
    backend._files.backoff = 0
    return backend, wire


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- server-side exports -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_format_is_created_polled_and_extracted(pictograph_sim: Simulator, tmp_path: Path, fmt: str) -> None:
    backend, wire = _backend(pictograph_sim)
    result = backend.export(fmt, tmp_path, "shapes", progress=True, via="export", name=f"e-{fmt}")
    assert isinstance(result, ab.ExportResult) and result.format == fmt and len(result.files)
    assert sorted(str(p.relative_to(tmp_path)) for p in result.paths) == files_under(tmp_path)
    (job,) = pictograph_sim.state.exports.values()
    assert (job.name, job.format, job.status, result.export_id) == (f"e-{fmt}", fmt, "completed", job.id)
    (create,) = [r for r in wire.requests if r.method == "POST"]
    assert create.headers.get("Idempotency-Key") and json.loads(create.content)["format"] == fmt
    polls = [r for r in wire.requests if r.url.path.endswith(f"/exports/e-{fmt}")]
    assert len(polls) >= 2 and all(dict(r.url.params) == {"dataset": "shapes"} for r in polls)
    assert not any("X-API-Key" in r.headers for r in wire.requests if r.url.path.startswith("/export-files/"))


BOXES = ["asset", "label", "x0", "y0", "x1", "y1"]


def _boxes(frame: pd.DataFrame, by_name: dict[str, str] | None = None) -> pd.DataFrame:
    boxes = frame[frame["kind"] == "box"][BOXES].copy()
    if by_name is not None:
        boxes["asset"] = boxes["asset"].map(lambda a: by_name[Path(str(a)).stem])
    return boxes.sort_values(BOXES).reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["coco", "pascal_voc", "csv", "yolo"])
def test_exports_read_back_hold_the_datasets_boxes(pictograph_sim: Simulator, tmp_path: Path, fmt: str) -> None:
    backend, _ = _backend(pictograph_sim)
    loaded = backend.annotations("shapes")
    rotated = set(loaded.loc[loaded["rotation"].fillna(0) != 0, "id"])
    result = backend.export(fmt, tmp_path, "shapes", progress=False)
    assert result.reader == {"pascal_voc": "voc", "csv": "csv_four_corner"}.get(fmt, fmt)
    back = backend.read_export(result)
    assert set(back["dataset"]) == {"shapes"}
    assets = backend.assets("shapes")
    by_name = {Path(str(n)).stem: str(a) for a, n in zip(assets["asset"], assets["name"], strict=True)}
    got = _boxes(back, by_name)
    assert len(got) == (loaded["kind"] == "box").sum()  # a rotated box as its axis-aligned enclosure
    tolerance = {"pascal_voc": 1.0 / 64, "yolo": 1e-5}.get(fmt, 1e-9)  # VOC: whole pixels; YOLO: 6 decimals
    for want in _boxes(loaded[~loaded["id"].isin(rotated)]).to_dict("records"):
        same = got[(got["asset"] == want["asset"]) & (got["label"] == want["label"])]
        error = (same[BOXES[2:]] - pd.Series({c: want[c] for c in BOXES[2:]})).abs().max(axis=1)
        assert len(error) and error.min() <= tolerance, want


def test_coco_export_carries_the_poses_and_polygons(pictograph_sim: Simulator, tmp_path: Path) -> None:
    backend, _ = _backend(pictograph_sim)
    loaded = backend.annotations("shapes")
    back = backend.read_export(backend.export("coco", tmp_path, "shapes", progress=False))
    assert back["kind"].value_counts().to_dict() == loaded["kind"].value_counts().to_dict()
    pose, want = back[back["kind"] == "keypoints"].iloc[0], loaded[loaded["kind"] == "keypoints"].iloc[0]
    assert (pose["label"], pose["visibility"]) == ("star-tips", want["visibility"])
    assert pose["points"][0] == pytest.approx(want["points"][0], abs=1e-9, nan_ok=True)


@pytest.mark.parametrize("via", ["download", "export"])
def test_pictograph_json_reads_back_as_the_load(pictograph_sim: Simulator, tmp_path: Path, via: str) -> None:
    backend, _ = _backend(pictograph_sim)
    loaded = backend.annotations("shapes")
    result = backend.export("pictograph", tmp_path, "shapes", progress=False, via=via)
    assert result.reader is None and result.format == "pictograph"
    back = read_export(result, backend.assets("shapes"), backend.templates("shapes"))
    columns = ["asset", "id", "rev", "label", "kind", "x0", "y0", "x1", "y1", "visibility", "attributes"]
    key = ["asset", "id"]
    pd.testing.assert_frame_equal(back[columns].sort_values(key).reset_index(drop=True),
                                  loaded[columns].sort_values(key).reset_index(drop=True))  # fmt: skip


def test_class_and_status_filters_and_split_folders_go_to_the_server(pictograph_sim: Simulator, tmp_path: Path) -> None:
    state = pictograph_sim.state
    done = [i for i, img in state.images.items() if img["status"] == "complete"]
    backend, _ = _backend(pictograph_sim)
    result = backend.export("coco", tmp_path, "shapes", progress=False, class_filter=["square"],
                            status_filter="complete", organize_by_split=True)  # fmt: skip
    assert files_under(tmp_path) == ["train/annotations.json"]
    doc = json.loads((tmp_path / "train" / "annotations.json").read_text())
    assert len(doc["images"]) == len(done) and {a["category_id"] for a in doc["annotations"]} <= {
        next(c["id"] for c in doc["categories"] if c["name"] == "square")}  # fmt: skip
    assert set(backend.read_export(result)["label"]) <= {"square"}


def test_an_unknown_format_or_option_is_refused_before_any_request(pictograph_sim: Simulator, tmp_path: Path) -> None:
    backend, wire = _backend(pictograph_sim)
    with pytest.raises(ValueError, match="no export format 'tfrecord'"):
        backend.export("tfrecord", tmp_path, "shapes")
    with pytest.raises(TypeError, match="split_ratio"):
        backend.export("coco", tmp_path, "shapes", split_ratio=0.2)
    assert wire.requests == [] and files_under(tmp_path) == []
    with pytest.raises(ValidationError, match=r"already exists|refused"):
        backend.export("coco", tmp_path, "shapes", name="x" * 101, progress=False)


def test_an_export_that_fails_on_the_server_says_why_and_writes_nothing(
    pictograph_sim: Simulator, tmp_path: Path
) -> None:
    pictograph_sim.state.export_failure = "the exporter ran out of memory"
    backend, _ = _backend(pictograph_sim)
    with pytest.raises(BackendError, match=r"export 'broken' of 'shapes' failed on the server: .*out of memory"):
        backend.export("yolo", tmp_path / "out", "shapes", progress=True, name="broken")
    assert not (tmp_path / "out").exists()


def test_a_cut_export_download_is_fetched_again_whole(pictograph_sim: Simulator, tmp_path: Path) -> None:
    pictograph_sim.state.cut_downloads = 1
    backend, wire = _backend(pictograph_sim)
    result = backend.export("coco", tmp_path, "shapes", progress=False)
    assert pictograph_sim.state.cut_downloads == 0
    assert len([r for r in wire.requests if r.url.path.startswith("/export-files/")]) == 2
    assert json.loads((tmp_path / "annotations.json").read_text())["images"] and result.paths


def test_a_download_cut_every_time_is_a_clear_error_and_leaves_no_file(
    pictograph_sim: Simulator, tmp_path: Path
) -> None:
    pictograph_sim.state.cut_downloads = 100
    backend, _ = _backend(pictograph_sim)
    with pytest.raises(ConnectionFailed, match=r"Pictograph export .* download \(http://127\.0\.0\.1") as caught:
        backend.export("coco", tmp_path / "zip", "shapes", progress=False)
    assert "signature" not in str(caught.value) and files_under(tmp_path) == []
    with pytest.raises(BackendError, match=r"8 of 16 file\(s\) of the 'shapes' download failed") as caught:
        backend.export("pictograph", tmp_path / "dl", "shapes", images=True, progress=False)
    left = files_under(tmp_path / "dl")
    assert len(left) == 8 and all(f.endswith(".json") for f in left)  # the annotation files, whole; no .part
    for name in left:
        json.loads((tmp_path / "dl" / name).read_text())


def test_a_broken_zip_is_named_and_nothing_is_extracted(pictograph_sim: Simulator, tmp_path: Path) -> None:
    state = pictograph_sim.state
    backend, _ = _backend(pictograph_sim)
    wait = backend._wait_export

    def wait_then_spoil(dataset: str, name: str, progress: bool) -> None:
        wait(dataset, name, progress)
        job = next(j for j in state.exports.values() if j.name == name)
        job.archive = b"PK\x03\x04" + bytes(64)  # damaged on the server: well-formed HTTP, not a ZIP

    backend._wait_export = wait_then_spoil  # type: ignore[method-assign]
    with pytest.raises(ab.MalformedResponse, match=r"corrupt or truncated \(.*\); nothing was extracted"):
        backend.export("csv", tmp_path / "bad", "shapes", progress=False)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("fault", ["fail_after", "cut_after"])
def test_a_create_whose_answer_is_lost_makes_one_export(pictograph_sim: Simulator, tmp_path: Path, fault: str) -> None:
    state = pictograph_sim.state
    backend, wire = _backend(pictograph_sim)
    state.faults.update({fault: 1})  # the create lands, its answer is lost
    result = backend.export("coco", tmp_path, "shapes", progress=False, name="once")
    creates = [r for r in wire.requests if r.method == "POST"]
    assert len(creates) == 2 and len({r.headers["Idempotency-Key"] for r in creates}) == 1
    assert [j.name for j in state.exports.values()] == ["once"] and result.paths


def test_polls_ride_out_a_rate_limit_and_latency(pictograph_sim: Simulator, tmp_path: Path) -> None:
    backend, _ = _backend(pictograph_sim)
    backend._api.backoff = 0
    pictograph_sim.state.faults.update({"latency_ms": 5, "rate_limit": 2, "retry_after": 0})
    result = backend.export("labelme", tmp_path, "shapes", progress=False)
    assert len(result.files) == len(pictograph_sim.state.images)


# -- the dataset download --------------------------------------------------------------------------------------------
def test_the_dataset_download_writes_pixels_and_annotation_files(pictograph_sim: Simulator, tmp_path: Path) -> None:
    state = pictograph_sim.state
    backend, _ = _backend(pictograph_sim)
    result = ab.connect("pictograph", dataset="shapes", key=PICTOGRAPH_KEY, base_url=pictograph_sim.url,
                        progress=False).export("pictograph", tmp_path, images=True)  # fmt: skip
    names = [img["filename"] for img in state.images.values()]
    assert files_under(tmp_path) == sorted([*names, *(f"{n}.json" for n in names)])
    for image_id, img in state.images.items():
        assert (tmp_path / img["filename"]).read_bytes() == state.files[image_id].read_bytes()
        saved = json.loads((tmp_path / f"{img['filename']}.json").read_text())
        assert saved == {"image_id": image_id, "annotations": state.annotations[image_id]}
    back = read_export(result, templates=backend.templates("shapes"))  # sizes from the images beside the files
    assert len(back) == len(backend.annotations("shapes")) and set(back["asset"]) == set(state.images)


def test_the_download_goes_past_its_listing_cap_by_the_image_pages(pictograph_sim: Simulator, tmp_path: Path) -> None:
    state = pictograph_sim.state
    state.download_cap = 3  # the platform's 10,000, made small
    backend, wire = _backend(pictograph_sim)
    backend.page_size = 5
    result = backend.export("pictograph", tmp_path, "shapes", progress=False, status_filter=None)
    assert len(result.files) == len(state.images)
    listing = [r for r in wire.requests if r.url.path.endswith("/download")]
    assert [dict(r.url.params) for r in listing] == [{"mode": "annotations_only", "limit": "10000"}]
    pages = [dict(r.url.params)["offset"] for r in wire.requests if r.url.path.endswith("/images/")]
    assert pages == ["0", "5"]
    assert len(backend.read_export(result)) == len(backend.annotations("shapes"))


def test_the_download_of_one_status(pictograph_sim: Simulator, tmp_path: Path) -> None:
    state = pictograph_sim.state
    done = sorted(img["filename"] for img in state.images.values() if img["status"] == "complete")
    backend, _ = _backend(pictograph_sim)
    backend.export("pictograph", tmp_path, "shapes", progress=False, status_filter="complete")
    assert files_under(tmp_path) == [f"{n}.json" for n in done]
    assert backend.assets("shapes", status="complete")["name"].tolist() == [
        img["filename"] for img in state.images.values() if img["status"] == "complete"]  # fmt: skip


# -- a load read from one export -------------------------------------------------------------------------------------
def test_a_load_from_one_export_equals_the_load_image_by_image(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    backend, _ = _backend(pictograph_sim)
    by_image = backend.annotations("shapes")
    bulk, wire = _backend(pictograph_sim)
    bulk.export_from = 4
    assets = list(state.images)
    late = {"id": "late", "name": "square", "type": "bbox", "bounding_box": {"x": 1, "y": 2, "w": 3, "h": 4}}
    state.annotations[assets[-1]].append({**late, "confidence": 1.0, "attributes": []})
    by_export = bulk.annotations("shapes")
    assert [r.url.path for r in wire.requests if "/annotations/" in r.url.path] == []  # no GET per image
    assert state.exports == {}  # deleted after it was read
    pd.testing.assert_frame_equal(by_export[by_export["id"] != "late"].reset_index(drop=True), by_image)
    assert "late" in set(by_export["id"])
    few = bulk.annotations("shapes", assets[:2])  # fewer than export_from: image by image
    assert set(few["asset"]) <= set(assets[:2]) and state.exports == {}
    assert len([r for r in wire.requests if "/annotations/" in r.url.path]) == 2


@pytest.mark.slow
def test_the_download_of_more_than_ten_thousand_images_gets_them_all(tmp_path: Path) -> None:
    """At the platform's own cap: the listing stops at 10,000 items, the image pages bring the other 50."""
    from annotebook.testing import start

    sim = start("pictograph", key=PICTOGRAPH_KEY, n_assets=10_050, n_annotations=10_050)
    try:
        backend, wire = _backend(sim)
        backend.workers = 32
        result = backend.export("pictograph", tmp_path, "shapes", progress=False)
        assert len(result.files) == 10_050 and len(list(tmp_path.glob("*.json"))) == 10_050
        (listing,) = [r for r in wire.requests if r.url.path.endswith("/download")]
        answered = json.loads(httpx.get(str(listing.url), headers={"X-API-Key": PICTOGRAPH_KEY}).content)
        assert len(answered["data"]["items"]) == 10_000  # the cap is the platform's, not made small here
        pages = [dict(r.url.params)["offset"] for r in wire.requests if r.url.path.endswith("/images/")]
        assert pages == [str(n) for n in range(0, 11_000, 1000)]
        back = read_export(result, backend.assets("shapes"))
        assert len(back) == 10_050 and back["asset"].nunique() == 10_050
    finally:
        sim.stop()
