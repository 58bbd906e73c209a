"""The Pictograph backend over the simulator: paging, every kind's mapping, field-by-field refusals,
``Idempotency-Key`` on every write, image statuses, and a ``previous_count`` that moved."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from annotebook.backends.pictograph import PictographBackend
from annotebook.errors import NotSupported, ValidationError
from annotebook.testing import Simulator

from .conftest import PICTOGRAPH_KEY


class Recording(httpx.HTTPTransport):
    """Real HTTP to the simulator, with every request kept."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return super().handle_request(request)


def _backend(sim: Simulator, **options: object) -> tuple[PictographBackend, Recording]:
    wire = Recording()
    backend = PictographBackend(key=PICTOGRAPH_KEY, base_url=sim.url, transport=wire, progress=False,
                                **options)  # type: ignore[arg-type]  # fmt: skip
    return backend, wire


def pt(x: float, y: float) -> dict[str, float]:
    return {"x": x, "y": y}


def test_images_are_paged_by_limit_and_offset(pictograph_sim: Simulator) -> None:
    backend, wire = _backend(pictograph_sim, page_size=3)
    assets = backend.assets("shapes")
    pages = [dict(r.url.params) for r in wire.requests if r.url.path.endswith("/images/")]
    assert [(p["limit"], p["offset"]) for p in pages] == [("3", "0"), ("3", "3"), ("3", "6")]
    assert assets["asset"].tolist() == list(pictograph_sim.state.images)
    assert assets["status"].tolist() == [i["status"] for i in pictograph_sim.state.images.values()]


def test_every_kind_maps_to_rows(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    first = next(iter(state.images))
    w, h = float(state.images[first]["width"]), float(state.images[first]["height"])
    state.annotations[first] = [
        {"id": "b", "name": "square", "type": "bbox", "bounding_box": {"x": 10, "y": 20, "w": 30, "h": 40},
         "confidence": 0.5, "attributes": [{"name": "truncated", "value": "yes"}, "difficult"]},
        {"id": "o", "name": "square", "type": "bbox", "bounding_box": {"x": 0, "y": 0, "w": 1, "h": 1},
         "oriented_box": {"cx": 100, "cy": 50, "w": 40, "h": 20, "angle": 90}},
        {"id": "p", "name": "triangle", "type": "polygon", "polygon": {"paths": [
            [pt(0, 0), pt(w, 0), pt(w, h), pt(0, 0)], [pt(10, 10), pt(20, 10), pt(15, 20)]]}},
        {"id": "s", "name": "triangle", "type": "polygon", "polygon": {"path": [pt(0, 0), pt(8, 0), pt(0, 6)]}},
        {"id": "l", "name": "circle", "type": "polyline", "polyline": {"path": [pt(0, 0), pt(w / 2, h)]},
         "created_by": "someone"},
        {"id": "k", "name": "star-tips", "type": "keypoint", "keypoint": pt(w / 4, h / 4), "instance_id": 3,
         "attributes": {"occluded": "true"}},
    ]  # fmt: skip
    rows = backend_rows(pictograph_sim, first)
    box = rows.loc["b"]
    assert (box["kind"], box["score"], box["rotation"]) == ("box", 0.5, 0.0)
    assert [box["x0"] * w, box["y0"] * h, box["x1"] * w, box["y1"] * h] == pytest.approx([10, 20, 40, 60])
    assert box["attributes"] == {"truncated": "yes", "difficult": True}
    turned = rows.loc["o"]  # the oriented box wins over its axis-aligned extent
    assert turned["rotation"] == 90.0
    assert [turned["x0"] * w, turned["y0"] * h, turned["x1"] * w, turned["y1"] * h] == pytest.approx([80, 40, 120, 60])
    holed = rows.loc["p"]["points"]
    assert len(holed) == 2 and len(holed[0]) == 6  # ring closed on the wire, open in the row; the hole kept
    assert rows.loc["s"]["points"] == ((0.0, 0.0, 8 / w, 0.0, 0.0, 6 / h),)  # the seed docs' single path
    assert (rows.loc["l", "kind"], rows.loc["l", "author"], rows.loc["l", "points"]) == (
        "polyline", "someone", ((0.0, 0.0, 0.5, 1.0),))  # fmt: skip
    kp = rows.loc["k"]
    assert (kp["kind"], kp["points"], kp["visibility"], kp["attributes"]) == (
        "keypoints", ((0.25, 0.25),), (1,), {"instance_id": 3})  # fmt: skip


def backend_rows(sim: Simulator, asset: str) -> pd.DataFrame:
    backend, _ = _backend(sim)
    return backend.annotations("shapes", [asset]).set_index("id")


def test_rows_saved_back_are_what_was_read(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    backend, wire = _backend(pictograph_sim)
    frame = backend.annotations("shapes")
    units = {a: rows for a, rows in frame.groupby("asset", sort=False)}
    before = {a: list(state.annotations[a]) for a in units}
    assert backend.replace_units("shapes", units, lambda: None) == {}
    assert {a: state.annotations[a] for a in units} == before  # bulk (8 images >= bulk_from), unchanged bit for bit
    writes = [r for r in wire.requests if r.method != "GET"]
    assert [r.url.path for r in writes] == ["/api/v1/developer/annotations/bulk"]


def test_a_refused_save_names_every_field(pictograph_sim: Simulator) -> None:
    backend, _ = _backend(pictograph_sim)
    frame = backend.annotations("shapes")
    asset = frame["asset"].iloc[0]
    rows = frame[frame["asset"] == asset].copy()
    rows["label"] = "no-such-class"  # check_rows would stop this first: the server's own refusal is the point
    with pytest.raises(ValidationError) as caught:
        backend.replace_units("shapes", {asset: rows}, lambda: None)
    problems = caught.value.problems
    assert problems is not None and len(problems) == len(rows)
    assert problems["column"].tolist() == [f"body.annotations.{i}.name" for i in range(len(rows))]
    with pytest.raises(ValidationError) as early:
        backend.check_rows("shapes", rows)
    assert early.value.problems is not None and set(early.value.problems["column"]) == {"label"}


def test_every_write_carries_its_own_idempotency_key(pictograph_sim: Simulator) -> None:
    backend, wire = _backend(pictograph_sim)
    frame = backend.annotations("shapes")
    assets = list(dict.fromkeys(frame["asset"]))
    backend.replace_units("shapes", {a: frame[frame["asset"] == a] for a in assets[:2]}, lambda: None)  # one each
    backend.replace_units("shapes", {a: frame[frame["asset"] == a] for a in assets[:4]}, lambda: None)  # bulk
    backend.write_statuses("shapes", {assets[0]: "complete"})
    posts = [r for r in wire.requests if r.method == "POST"]
    keys = [r.headers.get("Idempotency-Key") for r in posts]
    assert len(posts) == 4 and all(keys) and len(set(keys)) == len(keys)


def test_statuses_are_written_by_review(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    backend, wire = _backend(pictograph_sim)
    a, b = list(state.images)[:2]
    backend.write_statuses("shapes", {a: "annotate", b: "complete"})
    assert (state.images[a]["status"], state.images[b]["status"]) == ("annotate", "complete")
    assert backend.assets("shapes").set_index("asset").loc[[a, b], "status"].tolist() == ["annotate", "complete"]
    sent = len(wire.requests)
    with pytest.raises(NotSupported, match="review"):
        backend.write_statuses("shapes", {a: "review", b: "complete"})
    assert len(wire.requests) == sent and state.images[a]["status"] == "annotate"  # nothing was written


@pytest.mark.parametrize("bulk_from", [1, 3])
def test_a_moved_previous_count_is_reported(pictograph_sim: Simulator, bulk_from: int) -> None:
    state = pictograph_sim.state
    backend, _ = _backend(pictograph_sim, bulk_from=bulk_from)
    frame = backend.annotations("shapes")
    asset = frame["asset"].iloc[0]
    other = {"id": "elsewhere", "name": "square", "type": "bbox", "bounding_box": {"x": 1, "y": 1, "w": 2, "h": 2}}

    def another_writer() -> None:  # saves between the re-check's count and this save
        state.annotations[asset].append({**other, "confidence": 1.0, "attributes": []})

    refused = backend.replace_units("shapes", {asset: frame[frame["asset"] == asset]}, another_writer)
    assert list(refused) == [asset] and "another writer" in refused[asset]


# -- poses: the joints of one object are one keypoints row ---------------------------------------------------------
TIPS = ("tip1", "tip2", "tip3", "tip4", "tip5")


def test_a_seeded_pose_loads_as_the_samples_keypoints_row(pictograph_sim: Simulator, tmp_path) -> None:
    from annotebook.samples import make_shapes

    _, sample, _ = make_shapes(tmp_path, n_assets=8, seed=0)
    backend, _ = _backend(pictograph_sim)
    loaded = backend.annotations("shapes")
    poses, expected = loaded[loaded["kind"] == "keypoints"], sample[sample["kind"] == "keypoints"]
    assert len(poses) == len(expected) >= 1
    for got, want in zip(poses.to_dict("records"), expected.to_dict("records"), strict=True):
        assert (got["label"], got["visibility"]) == ("star-tips", tuple(want["visibility"]))
        assert got["points"][0] == pytest.approx(want["points"][0], abs=1e-9, nan_ok=True)
        assert got["attributes"]["instance_id"] >= 1
    labels = backend.labels("shapes").set_index("name")
    assert labels.loc["star-tips", "keypoints"] == TIPS and set(TIPS) <= set(labels.index)


def joint(ident: str, name: str, x: float, y: float, instance: int | None, **extra: object) -> dict:
    grouped = {} if instance is None else {"instance_id": instance}
    return {"id": ident, "name": name, "type": "keypoint", "keypoint": pt(x, y), **grouped, "confidence": 1.0,
            "attributes": {}, **extra}  # fmt: skip


def test_joints_group_by_instance_and_template_and_the_rest_stay_points(pictograph_sim: Simulator) -> None:
    state = pictograph_sim.state
    first = next(iter(state.images))
    state.annotations[first] = [
        joint("a3", "tip3", 30, 30, 1, attributes={"occluded": "yes"}),
        joint("b1", "tip1", 50, 50, 2),
        joint("a1", "tip1", 10, 10, 1),
        joint("a1x", "tip1", 11, 11, 1),  # a second tip1 of object 1: a point of its own
        joint("lone", "tip2", 5, 5, None),  # no instance: a lone landmark
        joint("c1", "tip1", 70, 70, 3, confidence=0.5),
        joint("c2", "tip2", 71, 71, 3),  # object 3's joints differ in confidence: not one row
    ]
    w, h = float(state.images[first]["width"]), float(state.images[first]["height"])
    rows = backend_rows(pictograph_sim, first)
    assert list(rows.index) == ["a1", "b1", "a1x", "lone", "c1", "c2"]  # a pose sits where its first joint is
    pose = rows.loc["a1"]
    assert (pose["label"], pose["visibility"], pose["attributes"]) == ("star-tips", (2, 0, 1, 0, 0), {"instance_id": 1})
    assert pose["points"][0][:6] == pytest.approx((10 / w, 10 / h, float("nan"), float("nan"), 30 / w, 30 / h),
                                                  nan_ok=True)  # fmt: skip
    assert rows.loc["b1", "visibility"] == (2, 0, 0, 0, 0)
    for single, label in (("a1x", "tip1"), ("lone", "tip2"), ("c1", "tip1"), ("c2", "tip2")):
        assert (rows.loc[single, "label"], len(rows.loc[single, "points"][0])) == (label, 2)
    backend, _ = _backend(pictograph_sim)
    frame = backend.annotations("shapes", [first])
    before = list(state.annotations[first])
    assert backend.replace_units("shapes", {first: frame}, lambda: None) == {}

    def held(anns: list[dict]) -> list[str]:
        return sorted(json.dumps(a, sort_keys=True) for a in anns)

    assert held(state.annotations[first]) == held(before)  # every joint saved back as it was read


def test_a_pose_is_written_back_as_its_joints(pictograph_sim: Simulator) -> None:
    import annotebook as ab

    state = pictograph_sim.state
    conn = ab.connect("pictograph", dataset="shapes", key=PICTOGRAPH_KEY, base_url=pictograph_sim.url, progress=False)
    anns = conn.annotations()
    pose = anns.index[anns["kind"] == "keypoints"][0]
    asset = anns.at[pose, "asset"]
    ids = {a["name"]: a["id"] for a in state.annotations[asset] if a["type"] == "keypoint"}
    part = list(anns.at[pose, "points"][0])
    part[2:4] = [float("nan"), float("nan")]  # tip2 removed
    part[0] += 0.01  # tip1 moved
    anns.at[pose, "points"] = (tuple(part),)
    anns.at[pose, "visibility"] = (1, 0, 2, 2, 2)  # tip1 occluded now
    other = next(a for a in anns["asset"] if a != asset)
    new = ((0.1, 0.1, 0.2, 0.2, 0.3, 0.3, float("nan"), float("nan"), 0.5, 0.5),)
    anns.annot.add_rows(anns.annot.new_rows([{"asset": other, "label": "star-tips", "kind": "keypoints",
                                              "points": new, "visibility": (2, 2, 1, 0, 2)}]))  # fmt: skip
    assert anns.annot.push().ok
    joints = {a["name"]: a for a in state.annotations[asset] if a["type"] == "keypoint"}
    assert sorted(joints) == ["tip1", "tip3", "tip4", "tip5"]
    assert {n: j["id"] for n, j in joints.items()} == {n: ids[n] for n in joints}  # the joints keep their ids
    w = float(state.images[asset]["width"])
    assert joints["tip1"]["keypoint"]["x"] == pytest.approx(part[0] * w) and joints["tip1"]["attributes"] == {
        "occluded": "true"}  # fmt: skip
    made = [a for a in state.annotations[other] if a["type"] == "keypoint"]
    assert [(a["name"], a["instance_id"]) for a in made] == [("tip1", 1), ("tip2", 1), ("tip3", 1), ("tip5", 1)]
    again = conn.annotations()
    mine = again[(again["asset"] == other) & (again["kind"] == "keypoints")].iloc[0]
    assert mine["points"][0] == pytest.approx(new[0], nan_ok=True) and mine["visibility"] == (2, 2, 1, 0, 2)
    assert len(anns.annot.diff()) == 0


def test_a_pose_the_dataset_cannot_hold_is_named_before_any_write(pictograph_sim: Simulator) -> None:
    backend, wire = _backend(pictograph_sim)
    asset = next(iter(pictograph_sim.state.images))
    bad = pd.DataFrame([{"id": "new-1", "asset": asset, "label": "circle", "kind": "keypoints",
                         "points": ((0.1, 0.1, 0.2, 0.2),), "visibility": (2, 2)},
                        {"id": "new-2", "asset": asset, "label": "star-tips", "kind": "keypoints",
                         "points": ((0.1, 0.1, 0.2, 0.2),), "visibility": (2, 2)},
                        {"id": "new-3", "asset": asset, "label": "star-tips", "kind": "keypoints",
                         "points": ((0.1, 0.1) * 5,), "visibility": (2,) * 5,
                         "attributes": {"occluded": True}}])  # fmt: skip
    sent = len(wire.requests)
    with pytest.raises(ValidationError) as caught:
        backend.check_rows("shapes", bad)
    problems = caught.value.problems
    assert problems is not None and problems["id"].tolist() == ["new-1", "new-2", "new-3"]
    assert "not a pose class" in problems["problem"].iloc[0] and "has 5 joints" in problems["problem"].iloc[1]
    assert "by their visibility" in problems["problem"].iloc[2]
    assert all(r.method == "GET" for r in wire.requests[sent:])


def test_the_plain_box_path_gives_the_general_rows_rev() -> None:
    """Boxes without rotation or attributes are read by a shortcut: its rev must be the one `fingerprint` gives."""
    import random

    from annotebook.backends.pictograph_rows import _plain_box, fingerprint, row_from_wire

    rng = random.Random(7)
    for i in range(3000):
        box = {"x": rng.random() * 600, "y": rng.random() * 400, "w": 1 + rng.random() * 90, "h": 1 + rng.random()}
        who = {"created_by": "me"} if i % 3 else {}
        ann = {"id": f"a{i}", "name": "square", "type": "bbox", "bounding_box": box, "attributes": [],
               "confidence": rng.choice([1.0, 0.5, rng.random()]), **who}  # fmt: skip
        row = row_from_wire(ann, "d", "a", (640.0, 480.0))
        assert _plain_box(ann, "d", "a", 640.0, 480.0) == row and row["rev"] == fingerprint(row)
