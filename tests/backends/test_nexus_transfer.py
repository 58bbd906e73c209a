"""Nexus import sessions and exports against the simulator over real HTTP."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.nexus import (
    EXPORT_FORMATS,
    ImportFailed,
    NexusBackend,
    UnsafeArchive,
    crc32c_b64,
    extract_zip,
)
from annotebook.errors import BackendError

from .conftest import NEXUS_KEY


@pytest.fixture
def backend(nexus_sim):
    b = NexusBackend(nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)
    b.poll_interval = 0.01
    return b


def assets_by_name(sim) -> dict[str, dict]:
    return {a["filename"]: a for a in sim.state.assets.values()}


def test_crc32c_is_castagnoli_big_endian():
    import base64

    assert base64.b64decode(crc32c_b64(b"123456789")).hex() == "e3069283"  # the CRC-32C check value


# -- import sessions -------------------------------------------------------------------------------------------
def test_csv_import_adds_its_boxes(backend, nexus_sim):
    first, second = list(assets_by_name(nexus_sim))[:2]
    w = assets_by_name(nexus_sim)[first]["metadata"]["width"]
    h = assets_by_name(nexus_sim)[first]["metadata"]["height"]
    text = f"filename,xmin,ymin,xmax,ymax,label\n{first},10,20,110,120,circle\n"
    normalised = f"filename,xmin,ymin,xmax,ymax,label\n{second},0.1,0.1,0.5,0.5,kite\n"
    before = len(nexus_sim.state.annotations)
    files = [("boxes.csv", text.encode()), ("normalised.csv", normalised.encode())]
    logs = backend.import_files(files, backend.project, progress=True)
    assert list(logs.columns[:4]) == ["file", "line", "level", "message"] and len(logs) == 0
    assert logs.attrs["session"].startswith("annotsess_")
    assert len(nexus_sim.state.annotations) == before + 2
    anns = backend.annotations(backend.project)
    mine = anns[anns["asset"] == assets_by_name(nexus_sim)[first]["id"]].iloc[-1]
    assert (mine["label"], mine["kind"]) == ("circle", "box")
    assert mine["x0"] == pytest.approx(10 / w) and mine["y1"] == pytest.approx(120 / h)
    assert "kite" in set(backend.labels(backend.project)["name"])  # an import creates the tags it names


def test_out_of_bounds_point_fails_the_session_with_its_line(backend, nexus_sim):
    first = next(iter(assets_by_name(nexus_sim)))
    meta = assets_by_name(nexus_sim)[first]["metadata"]
    big = meta["height"] + 20
    text = f"filename,xmin,ymin,xmax,ymax,label\n{first},1,1,5,5,circle\n{first},10,10,{big},{big},circle\n"
    before = len(nexus_sim.state.annotations)
    with pytest.raises(ImportFailed, match="out of bounds") as info:
        backend.import_files([("test_annotations2.csv", text.encode())], backend.project, progress=False)
    logs = info.value.logs
    assert logs[["file", "line", "level"]].to_dict("records") == [
        {"file": "test_annotations2.csv", "line": 3, "level": "Error"}
    ]
    assert logs["message"].iloc[0].startswith(f"Point 10.0, {float(big)} is out of bounds.")
    assert f"dimensions {meta['width']} x {meta['height']} pixels" in logs["message"].iloc[0]
    assert len(nexus_sim.state.annotations) == before  # a failed session adds nothing


def test_folder_of_coco_and_yolo_and_bytes(backend, nexus_sim, tmp_path):
    names = list(assets_by_name(nexus_sim))
    by_name = assets_by_name(nexus_sim)
    coco = {
        "images": [{"id": 1, "file_name": names[0], "width": by_name[names[0]]["metadata"]["width"],
                    "height": by_name[names[0]]["metadata"]["height"]}],
        "categories": [{"id": 1, "name": "square"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 40, 20], "area": 800,
                         "iscrowd": 0}],
    }  # fmt: skip
    folder = tmp_path / "upload"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "instances.json").write_text(json.dumps(coco))
    (folder / "notes.md").write_text("not an annotation file")
    stem = names[1].rsplit(".", 1)[0]
    yolo = {f"{stem}.txt": b"1 0.5 0.5 0.2 0.2\n0 0.25 0.25 0.1 0.1\n", "shapes.labels": b"circle\nsquare\n"}
    before = len(nexus_sim.state.annotations)
    logs = backend.import_files([folder, *yolo.items()], backend.project, progress=False)
    assert len(logs) == 0
    added = [a for a in nexus_sim.state.annotations.values() if a["_seq"] > before]
    got = sorted((by_name_id(nexus_sim, a["assetId"]), a["tag"]) for a in added)
    assert got == sorted([(names[0], "square"), (names[1], "square"), (names[1], "circle")])
    box = next(a for a in added if by_name_id(nexus_sim, a["assetId"]) == names[1] and a["tag"] == "square")
    assert box["bound"][0] == pytest.approx([0.4, 0.4]) and box["bound"][2] == pytest.approx([0.6, 0.6])


def by_name_id(sim, asset_id: str) -> str:
    return str(sim.state.assets[asset_id]["filename"])


def test_unknown_asset_and_unreadable_file_are_logged(backend, nexus_sim):
    files = {"a.csv": b"filename,xmin,ymin,xmax,ymax,label\nnope.png,0.1,0.1,0.2,0.2,circle\n", "b.json": b"{oops"}
    with pytest.raises(ImportFailed) as info:
        backend.import_files(files, backend.project, progress=False)
    logs = info.value.logs
    assert set(logs["file"]) == {"a.csv", "b.json"} and (logs["level"] == "Error").all()
    assert logs.loc[logs["file"] == "a.csv", "message"].iloc[0] == "Asset nope.png does not exist in this project."


def test_background_session_then_wait(backend, nexus_sim):
    first = next(iter(assets_by_name(nexus_sim)))
    data = f"filename,xmin,ymin,xmax,ymax,label\n{first},0.1,0.1,0.2,0.2,star\n".encode()
    early = backend.import_files({"late.csv": data}, backend.project, progress=False, wait=False)
    sid = early.attrs["session"]
    session = nexus_sim.state.sessions[sid]
    assert session.committed and session.overview == "Running"
    assert len(backend.wait_import(sid, progress=True)) == 0
    assert session.overview == "Finished" and session.polls == nexus_sim.state.op_steps
    listed = backend._api.get(f"/projects/{backend.project}/annotationimportsessions")
    assert [s["id"] for s in listed] == [sid]
    assert listed[0]["status"]["files"]["withStatus"] == {"Processing": 0, "Processed": 1, "FailedProcess": 0}


def one_box_files(sim, names: list[str], bad: str | None = None) -> dict[str, bytes]:
    """One CSV per name, each a box on the next asset; ``bad`` holds a box past its image's right edge instead."""
    assets = list(assets_by_name(sim).values())
    out = {}
    for i, name in enumerate(names):
        asset = assets[i % len(assets)]
        box = f"10,10,{asset['metadata']['width'] + 20},20" if name == bad else "0.1,0.1,0.5,0.5"
        out[name] = f"filename,xmin,ymin,xmax,ymax,label\n{asset['filename']},{box},star\n".encode()
    return out


def test_many_files_are_split_over_sessions_one_after_the_other(backend, nexus_sim):
    backend.session_files = 3
    names = [f"part{i}.csv" for i in range(7)]
    before = len(nexus_sim.state.annotations)
    logs = backend.import_files(one_box_files(nexus_sim, names), backend.project, progress=True)
    sessions = list(nexus_sim.state.sessions.values())
    assert [sorted(s.files) for s in sessions] == [names[:3], names[3:6], names[6:]]
    assert all(s.overview == "Finished" for s in sessions)
    assert logs.attrs["sessions"] == [s.id for s in sessions] and logs.attrs["session"] == sessions[0].id
    assert list(logs.columns) == ["file", "line", "level", "message", "timestamp", "session"] and len(logs) == 0
    assert len(nexus_sim.state.annotations) == before + 7


def test_an_errored_session_names_the_sessions_that_landed_and_stops(backend, nexus_sim):
    backend.session_files = 2
    names = ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"]
    before = len(nexus_sim.state.annotations)
    with pytest.raises(ImportFailed) as info:
        backend.import_files(one_box_files(nexus_sim, names, bad="d.csv"), backend.project, progress=False)
    first, second = nexus_sim.state.sessions  # the third session was never started
    message = str(info.value)
    assert f"session 2 of 3 ({second}) ended Errored" in message
    assert f"sessions 1-1 ({first}: 2 files) landed" in message and "sessions 3-3 were not started" in message
    assert "out of bounds" in message
    assert info.value.imported == ["a.csv", "b.csv"] and info.value.not_imported == ["c.csv", "d.csv", "e.csv"]
    logs = info.value.logs
    assert logs["session"].tolist() == [second] and logs["file"].tolist() == ["d.csv"]
    assert len(nexus_sim.state.annotations) == before + 2  # the first session's boxes, nothing of the second


def test_split_sessions_in_the_background(backend, nexus_sim):
    backend.session_files = 2
    before = len(nexus_sim.state.annotations)
    early = backend.import_files(one_box_files(nexus_sim, ["x.csv", "y.csv", "z.csv"]), backend.project,
                                 progress=False, wait=False)  # fmt: skip
    assert len(early) == 0 and len(early.attrs["sessions"]) == 2
    assert all(nexus_sim.state.sessions[s].committed for s in early.attrs["sessions"])
    for sid in early.attrs["sessions"]:
        assert len(backend.wait_import(sid, progress=False)) == 0
    assert len(nexus_sim.state.annotations) == before + 3


def test_import_limits_are_checked_before_any_request(backend, nexus_sim, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.csv").write_text("")
    (tmp_path / "b" / "x.csv").write_text("")
    with pytest.raises(ValueError, match=r"two files named 'x\.csv'"):
        backend.import_files([tmp_path], backend.project, progress=False)
    with pytest.raises(FileNotFoundError):
        backend.import_files([tmp_path / "missing.csv"], backend.project, progress=False)
    assert nexus_sim.state.sessions == {}


def test_upload_with_a_wrong_digest_is_refused(nexus_sim, backend):
    import httpx

    base = f"{nexus_sim.url}/projects/{backend.project}/annotationimportsessions"
    headers = {"Secret-Key": NEXUS_KEY}
    sid = httpx.post(base, headers=headers).json()["id"]
    files = {"files": [{"filename": "a.csv", "size": 3, "crc32c": crc32c_b64(b"abc")}]}
    upload = httpx.post(f"{base}/{sid}/files", headers=headers, json=files).json()["files"][0]["upload"]
    assert httpx.put(upload["url"], content=b"abd", headers=upload["headers"]).status_code == 400
    assert httpx.put(upload["url"] + "0", content=b"abc").status_code == 403  # a tampered signature
    assert httpx.put(upload["url"], content=b"abc", headers=upload["headers"]).status_code == 200


def test_connection_import_files(nexus_sim, tmp_path):
    conn = ab.connect("nexus", project=nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)
    conn.backend.poll_interval = 0.01
    first = next(iter(assets_by_name(nexus_sim)))
    path = tmp_path / "one.csv"
    path.write_text(f"filename,xmin,ymin,xmax,ymax,label\n{first},0.1,0.1,0.2,0.2,star\n")
    before = len(nexus_sim.state.annotations)
    logs = conn.import_files(path, dataset=conn.backend.project, progress=False)
    assert len(logs) == 0 and len(nexus_sim.state.annotations) == before + 1


# -- exports ---------------------------------------------------------------------------------------------------
def boxes(frame: pd.DataFrame, names: dict[str, str] | None = None) -> list[tuple]:
    live = frame[(frame["kind"] == "box") & ~frame["deleted"].to_numpy(dtype=bool)]
    out = []
    for r in live.to_dict("records"):
        asset = (names or {}).get(r["asset"], str(r["asset"]).rsplit("/", 1)[-1])
        out.append((asset, r["label"], *(round(float(r[c]), 4) for c in ("x0", "y0", "x1", "y1"))))
    return sorted(out)


def test_export_csv_reads_back_as_the_loaded_boxes(backend, nexus_sim, tmp_path):
    loaded = backend.annotations(backend.project)
    names = {a: by_name_id(nexus_sim, a) for a in nexus_sim.state.assets}
    files = backend.export("csv_fourcorner", tmp_path / "out", backend.project, split_ratio=0.5, seed=7)
    folder = tmp_path / "out" / nexus_sim.state.project_id.removeprefix("proj_")
    assert sorted(Path(f).name for f in files["file"]) == ["train.csv", "validate.csv"]
    assert all(Path(f).parent == folder for f in files["file"]) and (files["bytes"] > 0).all()
    back = ab.read(folder, format="csv_fourcorner")
    assert set(back["split"]) == {"train", "validate"}
    assert boxes(back) == boxes(loaded, names)
    job = next(iter(nexus_sim.state.exports.values()))
    assert job.polls == nexus_sim.state.op_steps  # polled while it ran


def test_export_coco_reads_back_boxes_and_polygons(backend, nexus_sim, tmp_path):
    loaded = backend.annotations(backend.project)
    names = {a: by_name_id(nexus_sim, a) for a in nexus_sim.state.assets}
    files = backend.export("coco", tmp_path, backend.project, progress=True)
    assert [Path(f).name for f in files["file"]] == ["train.json"]  # split_ratio 0: everything in train
    back = ab.read(files["file"].iloc[0])
    assert boxes(back) == boxes(loaded, names)
    assert (back["kind"] == "polygon").sum() == (loaded["kind"] == "polygon").sum()


def test_export_yolo_with_images(backend, nexus_sim, tmp_path):
    files = backend.export("yolo", tmp_path, backend.project, images=True, progress=False)
    names = {Path(f).name for f in files["file"]}
    assert set(assets_by_name(nexus_sim)) <= names and "classes.txt" in names
    assert (tmp_path / "images").is_dir()


def test_export_format_checks(backend, nexus_sim, tmp_path):
    tmp_path = tmp_path / "dest"
    assert "tfrecord" in EXPORT_FORMATS and backend.capabilities.export_formats == EXPORT_FORMATS
    with pytest.raises(ValueError, match="no export format 'parquet'"):
        backend.export("parquet", tmp_path, backend.project)
    with pytest.raises(BackendError, match="errored: The simulator cannot write 'tfrecord'"):
        backend.export("tfrecord", tmp_path, backend.project, progress=False)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def zip_with(name: str, data: bytes = b"x", link: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("fine/train.csv", "filename\n")
        info = zipfile.ZipInfo(name)
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "link"),
    [("../evil.txt", False), ("fine/../../evil.txt", False), ("/tmp/evil.txt", False), ("fine/link", True)],
)
def test_zip_slip_and_links_are_refused_before_writing(tmp_path, name, link):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive):
        extract_zip(io.BytesIO(zip_with(name, b"/etc/passwd" if link else b"x", link)), dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_hostile_export_from_the_server_is_refused(backend, nexus_sim, tmp_path):
    nexus_sim.state.tamper_export = lambda z: z.writestr("../../escape.txt", "gotcha")
    dest = tmp_path / "a" / "b"
    with pytest.raises(UnsafeArchive, match=r"escape\.txt"):
        backend.export("csv_fourcorner", dest, backend.project, progress=False)
    assert list(dest.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


def test_cut_upload_is_sent_again_and_polls_ride_out_429(backend, nexus_sim):
    first = next(iter(assets_by_name(nexus_sim)))
    data = f"filename,xmin,ymin,xmax,ymax,label\n{first},0.1,0.1,0.2,0.2,star\n".encode()
    before = len(nexus_sim.state.annotations)
    nexus_sim.state.faults.update({"cut_after": 3})  # writes: create session, register files, then the PUT
    early = backend.import_files({"cut.csv": data}, backend.project, progress=False, wait=False)
    assert nexus_sim.state.faults.cut_after is None  # the cut fired
    nexus_sim.state.faults.update({"rate_limit": 2, "retry_after": 0.01})
    assert len(backend.wait_import(early.attrs["session"], progress=False)) == 0
    assert len(nexus_sim.state.annotations) == before + 1
