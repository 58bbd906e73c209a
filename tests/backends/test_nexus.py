"""The Nexus backend against the simulator over real HTTP: load, edit, push, faults."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

import annotebook as ab
from annotebook import schema
from annotebook.backends._http import MalformedResponse
from annotebook.backends.nexus import NexusBackend, NotCarried
from annotebook.errors import AuthError, ConflictError, NotFound, PushError

from .conftest import NEXUS_KEY


@pytest.fixture
def conn(nexus_sim):
    return ab.connect("nexus", project=nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)


def load(conn):
    return conn.assets(conn.backend.project).annot.load()


def contents(frame: pd.DataFrame) -> list[tuple]:
    """The live rows' content in normal form, sorted: what a fresh load must show."""
    live = frame[~frame["deleted"].to_numpy(dtype=bool)]
    cols = ["asset", "label", "kind", "x0", "y0", "x1", "y1", "points", "visibility", "value", "attributes"]
    rows = [tuple(repr(schema.normal_value(c, r[c])) for c in cols) for r in live[cols].to_dict("records")]
    return sorted(rows)


def edit(anns: pd.DataFrame) -> pd.DataFrame:
    """Move two boxes, relabel a polygon, delete a row, add a box."""
    boxes = anns.index[anns["kind"] == "box"]
    anns.loc[boxes[:2], "x1"] = anns.loc[boxes[:2], "x1"] - 0.01
    anns.loc[anns.index[anns["kind"] == "polygon"][0], "label"] = "circle"
    anns.annot.delete(anns.index == boxes[2])
    anns.annot.add_box(str(anns["asset"].iloc[0]), "brand-new", (0.1, 0.2, 0.3, 0.4))
    return anns


def test_load_matches_the_simulator(conn, nexus_sim):
    assets = conn.assets(conn.backend.project)
    assert len(assets) == 8 and assets["width"].notna().all() and assets["uri"].str.startswith("http").all()
    anns = assets.annot.load()
    assert len(anns) == len(nexus_sim.state.annotations)
    assert set(anns["kind"]) <= {"box", "polygon", "keypoints"}
    assert (anns["rotation"].dropna() == 0).all()
    assert set(conn.labels(conn.backend.project)["name"]) >= set(anns["label"])
    assert conn.datasets()["dataset"].tolist() == [conn.backend.project]


def test_edit_push_reload(conn, nexus_sim):
    anns = edit(load(conn))
    report = anns.annot.push()
    assert report.ok and len(report.created) == 1 and len(report.updated) == 3 and len(report.deleted) == 1
    assert not set(report.updated) & set(anns["id"])  # an edit is a new row: its new id is in the frame
    assert anns["id"].str.startswith("annot_").all()
    assert len(anns.annot.diff()) == 0
    fresh = load(conn)
    assert contents(fresh) == contents(anns)
    assert set(fresh["id"]) == set(anns.loc[~anns["deleted"], "id"])  # the new ids were written back
    assert len(nexus_sim.state.annotations) == len(fresh)


def test_key_refused_is_auth_error(nexus_sim):
    bad = NexusBackend(nexus_sim.state.project_id, key="wrong", endpoint=nexus_sim.url)
    with pytest.raises(AuthError, match="DATATURE_SECRET_KEY") as info:
        bad.assets(bad.project)
    assert "wrong" not in str(info.value) or "wrong" in "the key was refused"


def test_missing_key_is_a_401_auth_error(nexus_sim):
    from annotebook.backends._http import make_client

    client = make_client(nexus_sim.url, {}, 5, service="Nexus", key_env="DATATURE_SECRET_KEY")
    with pytest.raises(AuthError, match=r"401.*DATATURE_SECRET_KEY"):
        client.get(f"/projects/{nexus_sim.state.project_id}")


def test_no_key_at_all(monkeypatch):
    monkeypatch.delenv("DATATURE_SECRET_KEY", raising=False)
    with pytest.raises(AuthError, match="DATATURE_SECRET_KEY"):
        NexusBackend("proj_x", endpoint="http://127.0.0.1:9")


def test_key_from_the_environment_never_shown(nexus_sim, monkeypatch):
    monkeypatch.setenv("DATATURE_SECRET_KEY", NEXUS_KEY)
    backend = NexusBackend(nexus_sim.state.project_id.removeprefix("proj_"), endpoint=nexus_sim.url)
    assert backend.project == nexus_sim.state.project_id
    assert len(backend.assets(backend.project)) == 8
    assert NEXUS_KEY not in repr(backend) + repr(backend.spec()) + repr(backend._api)


def test_unknown_project_is_not_found(nexus_sim):
    backend = NexusBackend("proj_" + "0" * 32, key=NEXUS_KEY, endpoint=nexus_sim.url)
    with pytest.raises(NotFound):
        backend.annotations(backend.project)


@pytest.mark.parametrize("cut_after", range(1, 10))  # every write of the push (see below)
def test_cut_connection_is_reconciled_within_the_push(conn, nexus_sim, cut_after):
    anns = edit(load(conn))
    expected = contents(anns)
    nexus_sim.state.faults.update({"cut_after": cut_after})
    report = anns.annot.push()
    assert report.ok
    fresh = load(conn)
    assert contents(fresh) == expected  # no duplicate, no lost edit
    assert len(anns.annot.diff()) == 0


@pytest.mark.parametrize(
    "cut_after", [2, 7, *(pytest.param(n, marks=pytest.mark.slow) for n in (1, 3, 4, 5, 6, 8, 9))]
)  # writes: 1 tag, the 4 creates (3 edits, 1 new row), the 3 old rows' deletes, then the delete
def test_cut_then_outage_then_push_again(conn, nexus_sim, cut_after):
    anns = edit(load(conn))
    expected = contents(anns)
    nexus_sim.state.faults.update({"cut_after": cut_after, "down_after_cut": 50})
    with pytest.raises(PushError, match="push again") as info:
        anns.annot.push()
    assert info.value.report is not None
    nexus_sim.state.faults.update({"down": 0, "cut_after": None})
    report = anns.annot.push()
    assert report.ok
    assert contents(load(conn)) == expected  # exactly once: no duplicate, no lost edit
    assert len(anns.annot.diff()) == 0


def test_every_kind_is_confirmed_by_one_listing_not_a_get_per_row(conn, nexus_sim):
    anns = load(conn)
    keypoints = anns.index[anns["kind"] == "keypoints"][0]
    anns.loc[keypoints, "label"] = "square"  # unlabelled points (NaN, visibility 0) must compare equal on re-read
    anns.loc[anns.index[anns["kind"] == "polygon"][0], "label"] = "circle"
    asset = str(anns["asset"].iloc[0])
    tag = anns.annot.new_rows([{"asset": asset, "kind": "tag", "label": "square", "value": True}])
    anns.annot.add_rows(tag)
    anns.annot.add_box(asset, "circle", (0.1, 0.2, 0.3, 0.4), attributes={"occluded": "no", "count": 3})
    sent: list[tuple[str, str]] = []
    send = conn.backend._api._client.send

    def spy(request, *args, **kwargs):
        sent.append((request.method, request.url.path))
        return send(request, *args, **kwargs)

    conn.backend._api._client.send = spy
    report = anns.annot.push()
    assert report.ok and len(report.created) == 2 and len(report.updated) == 2
    assert not [p for m, p in sent if m == "GET" and "/annotations/" in p]  # no GET of one row
    assert contents(load(conn)) == contents(anns)


@pytest.mark.parametrize("fault", ["drop_attributes", "round_coordinates"])
def test_an_edit_nexus_stores_short_of_a_field_keeps_the_old_row(conn, nexus_sim, fault):
    state = nexus_sim.state
    anns = load(conn)
    boxes = anns.index[anns["kind"] == "box"]
    victim, fine = boxes[0], boxes[1]
    anns.at[victim, "attributes"] = {"occluded": "yes"}
    anns.loc[victim, "x1"] = anns.loc[victim, "x1"] - 0.012345
    anns.loc[fine, "label"] = "circle"
    anns.loc[fine, ["x0", "y0", "x1", "y1"]] = [0.1, 0.2, 0.3, 0.4]  # no attributes, 2 decimals: stored as sent
    old_victim, old_fine = str(anns.loc[victim, "id"]), str(anns.loc[fine, "id"])
    expected = contents(anns)
    before = len(state.annotations)
    state.lossy_create = fault
    with pytest.raises(PushError, match="did not land as sent") as info:
        anns.annot.push()
    (failed,) = info.value.report.failed
    differ = {"drop_attributes": {"attributes"}, "round_coordinates": {"x0", "y0", "x1", "y1"}}[fault]
    assert failed["id"] == old_victim and failed["op"] == "update" and differ <= set(failed["fields"])
    assert old_victim in failed["error"] and failed["new_id"] in failed["error"]
    assert "was not deleted, so both are on Nexus" in failed["error"]
    assert old_victim in state.annotations and failed["new_id"] in state.annotations  # both, side by side
    assert old_fine not in state.annotations  # the other edit was confirmed, so its old row went
    assert len(state.annotations) == before + 1
    state.lossy_create = None
    report = anns.annot.push()  # pushing again replaces the short copy
    assert report.ok
    assert old_victim not in state.annotations and failed["new_id"] not in state.annotations
    fresh = load(conn)
    assert contents(fresh) == expected and len(fresh) == before
    assert len(anns.annot.diff()) == 0


def test_a_create_nexus_stores_short_of_a_field_is_named(conn, nexus_sim):
    state = nexus_sim.state
    anns = load(conn)
    asset = str(anns["asset"].iloc[0])
    kept = anns.annot.add_box(asset, "circle", (0.1, 0.2, 0.3, 0.4))
    short = anns.annot.add_box(asset, "circle", (0.123456, 0.2, 0.3, 0.4))
    state.lossy_create = "round_coordinates"
    with pytest.raises(PushError) as info:
        anns.annot.push()
    (failed,) = info.value.report.failed
    assert failed["id"] == short and failed["op"] == "create" and failed["fields"] == ["x0"]
    assert "stays on Nexus" in failed["error"] and "sent 0.123456, stored 0.12" in failed["error"]
    assert kept not in [f["id"] for f in info.value.report.failed]


def test_remote_change_is_a_conflict(conn, nexus_sim):
    anns = load(conn)
    victim = str(anns["id"].iloc[0])
    del nexus_sim.state.annotations[victim]  # a colleague deleted it
    anns.loc[anns.index[0], "x1"] = anns["x1"].iloc[0] - 0.01
    count = len(nexus_sim.state.annotations)
    with pytest.raises(ConflictError) as info:
        anns.annot.push()
    assert info.value.conflicts["id"].tolist() == [victim]
    assert len(nexus_sim.state.annotations) == count  # nothing written


def test_rows_nexus_cannot_carry_are_refused_by_name(conn, nexus_sim):
    anns = load(conn)
    row = anns.index[anns["kind"] == "box"][0]
    anns.loc[row, "rotation"] = 15.0
    anns.annot.add_box(str(anns["asset"].iloc[0]), "circle", (0.1, 0.1, 0.2, 0.2), author="someone")
    count = len(nexus_sim.state.annotations)
    with pytest.raises(NotCarried) as info:
        anns.annot.push()
    assert set(info.value.problems["column"]) == {"rotation", "author"}
    assert len(nexus_sim.state.annotations) == count


def test_images_are_cached_and_expired_urls_refetched(nexus_sim, ab_home):
    nexus_sim.state.url_ttl = 1
    backend = NexusBackend(nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)
    assets = backend.assets(backend.project)
    time.sleep(2.1)  # every signed URL of that listing has expired
    first = str(assets["asset"].iloc[0])
    path = backend.image_path(backend.project, first)
    assert path is not None and path.startswith(str(ab_home))
    with open(path, "rb") as f:
        assert f.read(4) in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")
    assert backend.image_path(backend.project, first) == path


RECT = {"id": "annot_1", "assetId": "asset_a", "tag": "cat", "boundType": "Rectangle", "bound": []}


@pytest.mark.parametrize(
    ("body", "call"),
    [
        ({"nextPage": None, "data": "oops"}, "annotations"),
        ({"nextPage": None, "data": [["not", "an", "object"]]}, "annotations"),
        ({"nextPage": None, "data": [{**RECT, "attributes": [{"value": 1}]}]}, "annotations"),
        ({"nextPage": None, "data": [{"filename": "x.png"}]}, "assets"),
        ({"tags": []}, "labels"),
        ({"oops": 1}, "datasets"),
    ],
)
def test_malformed_body_is_a_named_error(body, call):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    backend = NexusBackend("proj_x", key="k", endpoint="http://sim.test", transport=transport, progress=False)
    with pytest.raises(MalformedResponse, match="Nexus sent"):
        getattr(backend, call)(*([] if call == "datasets" else [backend.project]))


def test_bound_types_without_a_kind_are_listed_not_dropped_silently():
    page = {
        "nextPage": None,
        "data": [
            {"id": "annot_1", "assetId": "asset_a", "tag": "cat", "boundType": "Bitmask3d", "bound": []},
            {"id": "annot_2", "assetId": "asset_a", "tag": "cat", "boundType": "Classification", "bound": []},
        ],
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=page))
    backend = NexusBackend("proj_x", key="k", endpoint="http://sim.test", transport=transport)
    anns = backend.annotations(backend.project)
    assert anns["id"].tolist() == ["annot_2"] and anns["kind"].tolist() == ["tag"]
    assert backend.skipped == [{"id": "annot_1", "asset": "asset_a", "boundType": "Bitmask3d"}]


def test_an_edit_cut_before_its_old_row_went_is_finished_by_the_next_push_of_any_frame(conn, nexus_sim, monkeypatch):
    """Create confirmed, delete lost: the frame keeps the old id; another frame's push removes the old row."""
    from annotebook.backends._http import ServerError

    anns = load(conn)
    parent = anns.copy()
    row = anns[anns.kind == "box"].iloc[0]
    anns.loc[anns.id == row.id, "label"] = "edited"
    real = NexusBackend.delete_rows

    def lost(self, dataset, rows):  # the old row's delete never reaches Nexus (an outage)
        raise ServerError("Nexus DELETE: server error HTTP 503")

    monkeypatch.setattr(NexusBackend, "delete_rows", lost)
    with pytest.raises(PushError) as info:
        anns.annot.push()
    monkeypatch.setattr(NexusBackend, "delete_rows", real)
    assert row.id not in info.value.report.updated  # not whole: the frame still holds the row at its old id
    assert (anns.id == row.id).sum() == 1 and row.id in set(load(conn).id)  # both copies are on Nexus now
    other = parent[parent.id != row.id].iloc[0]
    parent.loc[parent.id == other.id, "label"] = "also edited"
    assert parent.annot.push().ok  # a frame that never edited the row
    fresh = load(conn)
    assert row.id not in set(fresh.id) and (fresh.label == "edited").sum() == 1  # no duplicate left behind
    assert anns.annot.push().ok  # the frame that made the edit finishes it without a second copy
    assert (load(conn).label == "edited").sum() == 1 and not len(anns.annot.diff())


def test_get_one_annotation_by_id(conn, nexus_sim):
    anns = load(conn)
    row = anns[anns.kind == "polygon"].iloc[0]
    got = conn.backend.get(conn.backend.project, row.id)
    assert len(got) == 1 and contents(got) == contents(anns[anns.id == row.id])
    with pytest.raises(NotFound):
        conn.backend.get(conn.backend.project, "annot_missing")
