"""Nexus import sessions and exports against the simulator over real HTTP."""

from __future__ import annotations

import base64
import csv
import io
import json
import stat
import struct
import zipfile
from pathlib import Path

import httpx
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
    report = backend.import_files(files, backend.project, progress=True)
    assert isinstance(report, ab.ImportReport) and report.ok and report.imported == ["boxes.csv", "normalised.csv"]
    assert list(report.logs.columns[:4]) == ["file", "line", "level", "message"] and len(report.logs) == 0
    assert report.sessions[0].startswith("annotsess_") and report.files["session"].tolist() == [report.sessions[0]] * 2
    assert repr(report) == f"<ImportReport nexus {backend.project}: 2 files, 2 imported>"
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
    report = info.value.report
    assert report.rejected == ["test_annotations2.csv"] and not report.ok and report.counts["rejected"] == 1
    assert report.files["first_error"].iloc[0].startswith("Point 10.0") and report.files["errors"].iloc[0] == 1
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
    report = backend.import_files([folder, *yolo.items()], backend.project, progress=False)
    assert report.ok and sorted(report.imported) == sorted(["instances.json", *yolo]) and len(report.logs) == 0
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
    (sid,) = early.sessions
    assert early.counts["pending"] == 1 and not early.ok
    session = nexus_sim.state.sessions[sid]
    assert session.committed and session.overview == "Running"
    done = backend.wait_import(early, progress=True)
    assert done.ok and done.imported == ["late.csv"] and len(done.logs) == 0 and done.sessions == (sid,)
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
    report = backend.import_files(one_box_files(nexus_sim, names), backend.project, progress=True)
    sessions = list(nexus_sim.state.sessions.values())
    assert [sorted(s.files) for s in sessions] == [names[:3], names[3:6], names[6:]]
    assert all(s.overview == "Finished" for s in sessions)
    assert report.sessions == tuple(s.id for s in sessions) and report.imported == names
    assert report.files["session"].tolist() == [sessions[i // 3].id for i in range(7)]
    logs = report.logs
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
    statuses = info.value.report.files.set_index("file")["status"].to_dict()
    assert statuses == {"a.csv": "imported", "b.csv": "imported", "c.csv": "rejected", "d.csv": "rejected",
                        "e.csv": "skipped"}  # fmt: skip
    logs = info.value.logs
    assert logs["session"].tolist() == [second] and logs["file"].tolist() == ["d.csv"]
    assert len(nexus_sim.state.annotations) == before + 2  # the first session's boxes, nothing of the second


def test_split_sessions_in_the_background(backend, nexus_sim):
    backend.session_files = 2
    before = len(nexus_sim.state.annotations)
    early = backend.import_files(one_box_files(nexus_sim, ["x.csv", "y.csv", "z.csv"]), backend.project,
                                 progress=False, wait=False)  # fmt: skip
    assert early.counts["pending"] == 3 and len(early.sessions) == 2
    assert all(nexus_sim.state.sessions[s].committed for s in early.sessions)
    assert len(backend.wait_import(early.sessions[0], progress=False).logs) == 0  # one session, by its id
    assert backend.wait_import(early, progress=False).imported == ["x.csv", "y.csv", "z.csv"]
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
    report = conn.import_files(path, progress=False)  # the connection's project is its default dataset
    assert report.imported == ["one.csv"] and len(nexus_sim.state.annotations) == before + 1


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
    result = backend.export("csv_fourcorner", tmp_path / "out", backend.project, split_ratio=0.5, seed=7)
    assert (result.format, result.reader, result.dest) == ("csv_fourcorner", "csv_four_corner", tmp_path / "out")
    assert result.export_id and repr(result).startswith(f"<ExportResult nexus {backend.project}: 2 files (")
    files = result.files
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
    files = backend.export("coco", tmp_path, backend.project, progress=True).files
    assert [Path(f).name for f in files["file"]] == ["train.json"]  # split_ratio 0: everything in train
    back = ab.read(files["file"].iloc[0])
    assert boxes(back) == boxes(loaded, names)
    assert (back["kind"] == "polygon").sum() == (loaded["kind"] == "polygon").sum()


def test_export_yolo_with_images(backend, nexus_sim, tmp_path):
    files = backend.export("yolo", tmp_path, backend.project, images=True, progress=False).files
    names = {Path(f).name for f in files["file"]}
    assert set(assets_by_name(nexus_sim)) <= names and "classes.txt" in names
    assert (tmp_path / "images").is_dir()


def test_export_format_checks(backend, nexus_sim, tmp_path):
    tmp_path = tmp_path / "dest"
    assert "tfrecord" in EXPORT_FORMATS and backend.capabilities.export_formats == EXPORT_FORMATS
    with pytest.raises(ValueError, match="no export format 'parquet'"):
        backend.export("parquet", tmp_path, backend.project)
    asset = next(iter(nexus_sim.state.assets))  # a 2-vertex polygon the create endpoint refuses, stored behind it
    line = {"assetId": asset, "tag": "circle", "boundType": "Polygon", "bound": [[0.1, 0.1], [0.2, 0.2]]}
    nexus_sim.state._store(line)
    with pytest.raises(BackendError, match=r"errored: Export failed: .*at least 3 finite \(x, y\) vertices"):
        backend.export("coco", tmp_path, backend.project, progress=False)
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
    assert not dest.exists() and not (tmp_path / "escape.txt").exists()  # nothing left behind (issue 16)


def test_cut_upload_is_sent_again_and_polls_ride_out_429(backend, nexus_sim):
    first = next(iter(assets_by_name(nexus_sim)))
    data = f"filename,xmin,ymin,xmax,ymax,label\n{first},0.1,0.1,0.2,0.2,star\n".encode()
    before = len(nexus_sim.state.annotations)
    nexus_sim.state.faults.update({"cut_after": 3})  # writes: create session, register files, then the PUT
    early = backend.import_files({"cut.csv": data}, backend.project, progress=False, wait=False)
    assert nexus_sim.state.faults.cut_after is None  # the cut fired
    nexus_sim.state.faults.update({"rate_limit": 2, "retry_after": 0.01})
    assert backend.wait_import(early, progress=False).ok
    assert len(nexus_sim.state.annotations) == before + 1


# -- every Nexus export format ----------------------------------------------------------------------------------
def project_rows(backend, sim) -> pd.DataFrame:
    """The project's annotations as loaded, each asset named by its file name."""
    anns = backend.annotations(backend.project)
    return anns.assign(asset=anns["asset"].map(lambda a: by_name_id(sim, a)))


def sizes(sim) -> pd.DataFrame:
    return pd.DataFrame(
        [{"asset": a["filename"], "name": a["filename"], **a["metadata"]} for a in sim.state.assets.values()]
    )[["asset", "name", "width", "height"]]


def stem(asset) -> str:
    """An asset's file name without suffix (YOLO label files do not keep the image's suffix)."""
    return Path(str(asset)).name.rsplit(".", 1)[0]


def extents(frame: pd.DataFrame, kinds=("box",)) -> list[tuple]:
    live = frame[frame["kind"].isin(kinds)]
    return [(stem(r["asset"]), r["label"], *(float(r[c]) for c in ("x0", "y0", "x1", "y1")))
            for r in live.to_dict("records")]  # fmt: skip


def assert_same_boxes(got: list[tuple], want: list[tuple], tol: float) -> None:
    """The same (asset, label, x0, y0, x1, y1) boxes, in any order, coordinates within ``tol``."""
    assert len(got) == len(want)
    left = list(got)
    for w in want:
        hit = next((g for g in left if g[:2] == w[:2] and near(g[2:], w[2:], tol)), None)
        assert hit is not None, f"{w} is not in the export: {sorted(left)}"
        left.remove(hit)


def near(a: tuple, b: tuple, tol: float) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def read_files(folder: Path, names: list[str], fmt: str, **options) -> pd.DataFrame:
    return pd.concat([ab.read(folder / n, format=fmt, **options) for n in names], ignore_index=True)


def tfrecord_records(data: bytes) -> list[bytes]:
    """The records of a TFRecord file, each length and record checked against its masked CRC32C."""

    def masked(chunk: bytes) -> int:
        crc = int.from_bytes(base64.b64decode(crc32c_b64(chunk)), "big")
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack("<Q", data[at : at + 8])
        assert struct.unpack("<I", data[at + 8 : at + 12])[0] == masked(data[at : at + 8])
        record = data[at + 12 : at + 12 + n]
        assert struct.unpack("<I", data[at + 12 + n : at + 16 + n])[0] == masked(record)
        out.append(record)
        at += 16 + n
    return out


def _varint(data: bytes, at: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[at]
        n, at, shift = n | (b & 0x7F) << shift, at + 1, shift + 7
        if b < 0x80:
            return n, at


def _fields(data: bytes) -> list[tuple[int, bytes]]:
    """(number, payload) of each field of a protobuf message made only of length-delimited fields."""
    out, at = [], 0
    while at < len(data):
        key, at = _varint(data, at)
        assert key & 7 == 2
        n, at = _varint(data, at)
        out.append((key >> 3, data[at : at + n]))
        at += n
    return out


def tf_example(record: bytes) -> dict[str, list]:
    """A ``tf.train.Example`` decoded by hand: feature name -> its values."""
    ((number, features),) = _fields(record)
    assert number == 1
    out: dict[str, list] = {}
    for _, entry in _fields(features):
        parts = dict(_fields(entry))
        ((kind, values),) = _fields(parts[2])
        payload = b"".join(v for _, v in _fields(values))
        if kind == 1:
            out[parts[1].decode()] = [v.decode() for _, v in _fields(values)]
        elif kind == 2:
            out[parts[1].decode()] = list(struct.unpack(f"<{len(payload) // 4}f", payload))
        else:
            ints, at = [], 0
            while at < len(payload):
                v, at = _varint(payload, at)
                ints.append(v)
            out[parts[1].decode()] = ints
    return out


def rle_runs(counts: str) -> list[int]:
    """The run lengths of COCO's compressed RLE string (pycocotools ``rleFrString``)."""
    runs, at = [], 0
    while at < len(counts):
        x = k = 0
        more = True
        while more:
            c = ord(counts[at]) - 48
            x |= (c & 0x1F) << 5 * k
            more, at, k = bool(c & 0x20), at + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << 5 * k
        runs.append(x + runs[-2] if len(runs) > 2 else x)
    return runs


def check_coco(folder, names, rows, sim):
    back = read_files(folder, names, "coco")
    assert_same_boxes(extents(back), extents(rows), 1e-9)
    assert_same_boxes(extents(back, ("polygon",)), extents(rows, ("polygon",)), 1e-9)
    assert_same_boxes(extents(back, ("keypoints",)), extents(rows, ("keypoints",)), 1e-9)
    assert set(back["split"].dropna()) <= {"train", "validate"}


def check_polygon_coco(folder, names, rows, sim):
    back = read_files(folder, names, "coco")
    assert set(back["kind"]) == {"polygon"} and all(len(p) == 1 for p in back["points"])  # one ring each
    assert_same_boxes(extents(back, ("polygon",)), extents(rows, ("box", "polygon")), 1e-9)


def check_keypoints_coco(folder, names, rows, sim):
    back = read_files(folder, names, "coco")
    want = rows[rows["kind"] == "keypoints"]
    assert list(back["kind"]) == ["keypoints"] * len(want) and list(back["label"]) == list(want["label"])
    assert back["points"].iloc[0][0] == pytest.approx(want["points"].iloc[0][0])
    assert list(back["visibility"].iloc[0]) == list(want["visibility"].iloc[0])


def check_rle_coco(folder, names, rows, sim, semantic=False):
    back = read_files(folder, names, "coco")
    assert set(back["kind"]) == {"box"}
    for r in back.to_dict("records"):
        a = r["attributes"]
        runs, (h, w) = rle_runs(a["rle_counts"]), a["rle_size"]
        assert a["mask"] == "rle" and sum(runs) == h * w and all(n >= 0 for n in runs)
        box_pixels = (r["x1"] - r["x0"]) * w * (r["y1"] - r["y0"]) * h
        assert 0 < sum(runs[1::2]) <= box_pixels + (r["x1"] - r["x0"]) * w + (r["y1"] - r["y0"]) * h + 1
        assert a.get("iscrowd") == (1 if semantic else None)
    want = extents(rows, ("box", "polygon"))
    if semantic:
        groups: dict[tuple, list[tuple]] = {}
        for e in want:
            groups.setdefault(e[:2], []).append(e)
        want = [(*k, min(e[2] for e in g), min(e[3] for e in g), max(e[4] for e in g), max(e[5] for e in g))
                for k, g in groups.items()]  # fmt: skip
    assert_same_boxes(extents(back), want, 1e-9)


#: exported with normalized=False: their values are pixels, read back with the image sizes
PIXEL_EXPORTS = ("csv_widthheight", "csv_vott")


def first_values(path: Path) -> list[float]:
    """The four numbers of a box CSV's first row."""
    return [float(v) for v in next(csv.reader(io.StringIO(path.read_text().splitlines()[1])))[1:5]]


def check_csv(fmt: str, pixels: bool = False):
    def check(folder, names, rows, sim):
        assert names == ["train.csv", "validate.csv"]
        assert (max(first_values(folder / names[0])) > 1) == pixels
        back = ab.read(folder, format=fmt, **({"assets": sizes(sim)} if pixels else {}))
        assert set(back["split"]) == {"train", "validate"}
        assert_same_boxes(extents(back), extents(rows), 1e-9)

    return check


def check_csv_vott(folder, names, rows, sim):
    assert (folder / names[0]).read_text().startswith('"image","xmin","ymin","xmax","ymax","label"\n')
    assert max(first_values(folder / names[0])) > 1
    back = ab.read(folder, format="csv_four_corner", assets=sizes(sim))  # in pixels: one of PIXEL_EXPORTS
    assert_same_boxes(extents(back), extents(rows), 1e-9)


def check_voc(folder, names, rows, sim):
    assert {n.split("/")[0] for n in names} == {"train", "validate"} and all(n.endswith(".xml") for n in names)
    assert_same_boxes(extents(ab.read(folder, format="voc")), extents(rows), 0.5 / 240)  # whole pixels


def check_yolo(folder, names, rows, sim):
    assert {"classes.txt", "data.yaml"} <= set(names) and any(n.startswith("labels/val/") for n in names)
    back = ab.read(folder, format="yolo")
    assert set(back["split"]) == {"train", "validate"}
    assert_same_boxes(extents(back), extents(rows), 1e-6)


def check_yolo_keras(folder, names, rows, sim):
    assert set(names) == {f"{s}/{f}" for s in ("train", "validate") for f in ("_annotations.txt", "_classes.txt")}
    back = read_files(folder, ["train", "validate"], "yolo_keras", assets=sizes(sim))
    assert_same_boxes(extents(back), extents(rows), 0.5 / 240)  # whole pixels


def json_files(folder, names) -> list:
    return [json.loads((folder / n).read_text()) for n in names]


def check_createml(folder, names, rows, sim):
    size = {stem(r["asset"]): (r["width"], r["height"]) for r in sizes(sim).to_dict("records")}
    got = []
    for doc in json_files(folder, names):
        for image in doc:
            w, h = size[stem(image["image"])]
            for a in image["annotations"]:
                c = a["coordinates"]
                got.append((stem(image["image"]), a["label"], (c["x"] - c["width"] / 2) / w,
                            (c["y"] - c["height"] / 2) / h, (c["x"] + c["width"] / 2) / w,
                            (c["y"] + c["height"] / 2) / h))  # fmt: skip
    assert_same_boxes(got, extents(rows), 1e-9)


def check_vott(folder, names, rows, sim):
    got, kinds = [], []
    for doc in json_files(folder, names):
        assert {t["name"] for t in doc["tags"]} >= set(rows["label"])
        for entry in doc["assets"].values():
            w, h = entry["asset"]["size"]["width"], entry["asset"]["size"]["height"]
            for r in entry["regions"]:
                b = r["boundingBox"]
                got.append((stem(entry["asset"]["name"]), r["tags"][0], b["left"] / w, b["top"] / h,
                            (b["left"] + b["width"]) / w, (b["top"] + b["height"]) / h))  # fmt: skip
                kinds.append(r["type"])
                assert len(r["points"]) >= 3
    assert_same_boxes(got, extents(rows, ("box", "polygon")), 1e-9)
    assert kinds.count("POLYGON") == (rows["kind"] == "polygon").sum()


def check_ibm(folder, names, rows, sim):
    assert names == ["train/_annotations.json", "validate/_annotations.json"]
    docs = json_files(folder, names)
    assert all(d["type"] == "localization" for d in docs)
    got = [(stem(image), b["label"], b["x"], b["y"], b["x2"], b["y2"])
           for d in docs for image, found in d["annotations"].items() for b in found]  # fmt: skip
    assert_same_boxes(got, extents(rows), 1e-9)


def check_openai(polygons: bool):
    def check(folder, names, rows, sim):
        got = []
        for n in names:
            for line in (folder / n).read_text().splitlines():
                chat = json.loads(line)["messages"]
                assert [m["role"] for m in chat] == ["system", "user", "assistant"]
                image = chat[1]["content"][1]["image_url"]["url"]
                for obj in chat[2]["content"].splitlines():
                    label, *locs = obj.replace(">", "").split("<loc_")
                    xy = [int(v) / 1000 for v in locs]
                    got.append((stem(image), label, min(xy[0::2]), min(xy[1::2]), max(xy[0::2]), max(xy[1::2])))
        assert_same_boxes(got, extents(rows, ("box", "polygon") if polygons else ("box",)), 1e-3)

    return check


def check_keypoints_raw(folder, names, rows, sim):
    (doc,) = json_files(folder, names)  # the one keypoints annotation is in train
    found = [a for image in doc for a in image["annotations"]]
    want = next(a for a in sim.state.annotations.values() if a["boundType"] == "Keypoints")
    assert [(a["id"], a["tag"], a["bound"]) for a in found] == [(want["id"], want["tag"], want["bound"])]


def examples(folder, names) -> list[dict]:
    assert "label_map.pbtxt" in names and 'name: "circle"' in (folder / "label_map.pbtxt").read_text()
    records = [r for n in names if n.endswith(".tfrecord") for r in tfrecord_records((folder / n).read_bytes())]
    return [tf_example(r) for r in records]


def check_tfrecord(folder, names, rows, sim):
    found = examples(folder, names)
    assert len(found) == len(sim.state.assets)  # one Example per image, with objects or not
    got = [(stem(e["image/filename"][0]), t, x0, y0, x1, y1) for e in found for t, x0, y0, x1, y1 in zip(
        e["image/object/class/text"], e["image/object/bbox/xmin"], e["image/object/bbox/ymin"],
        e["image/object/bbox/xmax"], e["image/object/bbox/ymax"], strict=True)]  # fmt: skip
    assert_same_boxes(got, extents(rows), 1e-6)  # float32
    assert {e["image/width"][0] for e in found} <= set(sizes(sim)["width"])


def check_polygon_tfrecord(folder, names, rows, sim):
    found = examples(folder, names)
    texts = sorted(t for e in found for t in e["image/object/class/text"])
    assert texts == sorted(rows[rows["kind"].isin(["box", "polygon"])]["label"])
    for e in found:
        assert sum(e["image/object/polygon/num_points"]) * 2 == len(e["image/object/polygon"])


def check_keypoints_tfrecord(folder, names, rows, sim):
    found = [e for e in examples(folder, names) if e["image/object/class/text"]]
    want = rows[rows["kind"] == "keypoints"].iloc[0]
    assert [e["image/object/class/text"] for e in found] == [[want["label"]]]
    assert found[0]["image/object/keypoint/x"] == pytest.approx(list(want["points"][0][0::2]), abs=1e-6)
    assert found[0]["image/object/keypoint/visibility"] == list(want["visibility"])


def check_readme(label_map: str):
    def check(folder, names, rows, sim):
        assert names == sorted(["README.txt", label_map])
        assert "holds no annotations" in (folder / "README.txt").read_text()
        assert "circle" in (folder / label_map).read_text()

    return check


EXPORT_CHECKS = {
    "coco": check_coco,
    "csv_fourcorner": check_csv("csv_four_corner"),
    "csv_widthheight": check_csv("csv_width_height", pixels=True),
    "csv_vott": check_csv_vott,
    "vott": check_vott,
    "ibm": check_ibm,
    "pascal_voc": check_voc,
    "yolo_darknet": check_yolo,
    "yolo_keras_pytorch": check_yolo_keras,
    "createml": check_createml,
    "tfrecord": check_tfrecord,
    "polygon_tfrecord": check_polygon_tfrecord,
    "polygon_coco": check_polygon_coco,
    "polygon_single": check_polygon_coco,
    "rle_coco": check_rle_coco,
    "rle_semantic_coco": lambda *a: check_rle_coco(*a, semantic=True),
    "box_openai_positional_encoding": check_openai(polygons=False),
    "polygon_openai_positional_encoding": check_openai(polygons=True),
    "csv_classification": check_readme("labels.json"),  # the sample project has no Classification rows
    "classification_tfrecord": check_readme("label_map.pbtxt"),
    "classification_3d_tfrecord": check_readme("label_map.pbtxt"),
    "keypoints_coco": check_keypoints_coco,
    "keypoints_tfrecord": check_keypoints_tfrecord,
    "keypoints_datature_raw": check_keypoints_raw,
    "bitmask_tfrecord": check_readme("label_map.pbtxt"),
    "bitmask_rle_coco": check_readme("labels.json"),
    "bitmask_rle_semantic_coco": check_readme("labels.json"),
    "bitmask_openai_positional_encoding": check_readme("labels.json"),
    "nifti_one_hot_segmentation": check_readme("labels.json"),
    "nifti_class_index_segmentation": check_readme("labels.json"),
    "segmentation_3d_tfrecord": check_readme("label_map.pbtxt"),
}


def test_every_export_format_is_built_and_checked():
    from annotebook.testing.nexus_exports import EXPORTS

    assert sorted(EXPORT_CHECKS) == sorted(EXPORTS) == sorted(EXPORT_FORMATS)


@pytest.fixture(scope="module")
def export_sim(tmp_path_factory):
    """One simulator for the export tests that only read the project (starting one is most of a test's time)."""
    from annotebook.testing import start

    sim = start("nexus", key=NEXUS_KEY, n_assets=8, image_dir=tmp_path_factory.mktemp("nexus-export-sim"))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_format_gives_its_files(export_sim, tmp_path, fmt):
    nexus_sim = export_sim
    backend = NexusBackend(nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)
    backend.poll_interval = 0.01
    rows = project_rows(backend, nexus_sim)
    pixels = {"normalized": False} if fmt in PIXEL_EXPORTS else {}
    files = backend.export(fmt, tmp_path, backend.project, split_ratio=0.25, seed=3, progress=False, **pixels).files
    folder = tmp_path / nexus_sim.state.project_id.removeprefix("proj_")
    paths = [Path(f) for f in files["file"]]
    assert paths and all(p.is_file() and p.stat().st_size > 0 for p in paths) and (files["bytes"] > 0).all()
    assert all(folder in p.parents for p in paths)
    EXPORT_CHECKS[fmt](folder, sorted(p.relative_to(folder).as_posix() for p in paths), rows, nexus_sim)


def test_classification_formats_carry_classifications(backend, nexus_sim, tmp_path):
    asset = next(a for a in nexus_sim.state.assets.values() if a["filename"] == "shapes_003.png")
    nexus_sim.state._store({"assetId": asset["id"], "tag": "noise", "boundType": "Classification", "bound": []})
    folder = tmp_path / "csv" / nexus_sim.state.project_id.removeprefix("proj_")
    backend.export("csv_classification", tmp_path / "csv", backend.project, progress=False)
    assert (folder / "train.csv").read_text() == "filename,label\nshapes_003.png,noise\n"
    backend.export("classification_tfrecord", tmp_path / "tf", backend.project, progress=False)
    folder = tmp_path / "tf" / folder.name
    found = {e["image/filename"][0]: e for e in examples(folder, ["label_map.pbtxt", "train.tfrecord"])}
    assert found["shapes_003.png"]["image/class/text"] == ["noise"]
    assert found["shapes_003.png"]["image/class/label"] == [6]  # tag index 5, label maps count from 1
    assert found["shapes_000.png"]["image/class/text"] == []


def test_export_split_without_shuffle_takes_the_first_file_names(backend, nexus_sim, tmp_path):
    backend.export("csv_fourcorner", tmp_path, backend.project, split_ratio=0.25, shuffle=False, progress=False)
    back = ab.read(tmp_path / nexus_sim.state.project_id.removeprefix("proj_"), format="csv_four_corner")
    split = dict(zip(back["asset"].map(stem), back["split"], strict=True))
    assert {a for a, s in split.items() if s == "validate"} == {"shapes_000", "shapes_001"}  # 2 of 8, by name


# -- one signature, named refusals, and no raw httpx exception ------------------------------------------------
def test_a_project_connection_defaults_to_its_project(nexus_sim):
    conn = ab.connect("nexus", project=nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)
    assert conn.dataset == conn.backend.project
    assert len(conn.assets()) == len(nexus_sim.state.assets) and len(conn.labels())


def test_a_misspelt_option_is_refused_by_name(backend, nexus_sim, tmp_path):
    with pytest.raises(TypeError, match=r"split_ration.*split_ratio, seed, normalized, shuffle"):
        backend.export("coco", tmp_path, backend.project, split_ration=0.2)
    with pytest.raises(TypeError, match=r"wiat.*takes wait"):
        backend.import_files({"a.csv": b"x"}, backend.project, wiat=False)
    assert nexus_sim.state.sessions == {} and nexus_sim.state.exports == {}


class Dropping(httpx.HTTPTransport):
    """The real transport, except that requests ``drop`` picks raise ``error`` (as a dropped connection does)."""

    def __init__(self, drop, error: Exception):
        super().__init__()
        self.drop, self.error, self.dropped = drop, error, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.drop(request):
            self.dropped += 1
            raise self.error
        return super().handle_request(request)


CUTS = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("peer closed")]


def dropping(sim, path: str, error: Exception) -> tuple[NexusBackend, Dropping]:
    transport = Dropping(lambda r: r.url.path.startswith(path), error)
    b = NexusBackend(sim.state.project_id, key=NEXUS_KEY, endpoint=sim.url, transport=transport)
    b.poll_interval, b._files.backoff, b._api.backoff = 0.01, 0, 0
    return b, transport


@pytest.mark.parametrize("error", CUTS, ids=lambda e: type(e).__name__)
def test_dropped_export_download_is_connection_failed(nexus_sim, tmp_path, error):
    b, transport = dropping(nexus_sim, "/downloads/", error)
    with pytest.raises(ab.ConnectionFailed, match=r"Nexus export .* download \(http://127\.0\.0\.1") as info:
        b.export("coco", tmp_path, b.project, progress=False)
    assert isinstance(info.value.__cause__, type(error)) and transport.dropped == 4  # tried again 3 times
    assert "signature" not in str(info.value)


class CutBody(httpx.HTTPTransport):
    """The real transport, except that the first export download loses its connection half way through the body."""

    def __init__(self) -> None:
        super().__init__()
        self.downloads: list[tuple[str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.startswith("/downloads/"):
            return response
        self.downloads.append((request.method, request.headers.get("Range")))
        if len(self.downloads) > 1:
            return response
        half = response.read()[: int(response.headers["content-length"]) // 2]

        class Cut(httpx.SyncByteStream):
            def __iter__(self):
                yield half
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

        return httpx.Response(response.status_code, headers=response.headers, stream=Cut())


def test_an_export_download_cut_half_way_is_fetched_again_whole(nexus_sim, tmp_path):
    transport = CutBody()
    b = NexusBackend(nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url, transport=transport)
    b.poll_interval, b._files.backoff = 0.01, 0
    files = b.export("csv_fourcorner", tmp_path, b.project, progress=False).files
    assert len(files) and (files["bytes"] > 0).all()
    assert transport.downloads == [("GET", None), ("GET", None)]  # no HEAD, no Range: one GET, then one again


@pytest.mark.parametrize("error", CUTS, ids=lambda e: type(e).__name__)
def test_dropped_upload_is_connection_failed_and_abandons_the_session(nexus_sim, error):
    b, transport = dropping(nexus_sim, "/uploads/", error)
    first = next(iter(assets_by_name(nexus_sim)))
    data = f"filename,xmin,ymin,xmax,ymax,label\n{first},0.1,0.1,0.2,0.2,star\n".encode()
    with pytest.raises(ab.ConnectionFailed, match=r"upload of a\.csv"):
        b.import_files({"a.csv": data}, b.project, progress=False)
    assert transport.dropped == 4
    (session,) = nexus_sim.state.sessions.values()
    assert session.overview == "Errored"  # told the server it was abandoned


@pytest.mark.parametrize("error", CUTS, ids=lambda e: type(e).__name__)
def test_dropped_image_download_and_api_call_are_connection_failed(nexus_sim, error):
    b, _ = dropping(nexus_sim, "/files/", error)
    asset = b.assets(b.project)["asset"].iloc[0]
    with pytest.raises(ab.ConnectionFailed, match=f"image of {asset}"):
        b.image_path(b.project, asset)
    b, _ = dropping(nexus_sim, "/projects/", error)
    with pytest.raises(ab.ConnectionFailed):
        b.assets(b.project)


def test_a_connection_cut_by_the_server_is_connection_failed(backend, nexus_sim):
    nexus_sim.state.faults.update({"cut_after": 1})  # the session's create lands, its answer is cut
    with pytest.raises(ab.ConnectionFailed) as info:
        backend.import_files({"a.csv": b"filename,xmin,ymin,xmax,ymax,label\n"}, backend.project, progress=False)
    assert isinstance(info.value.__cause__, httpx.HTTPError)
