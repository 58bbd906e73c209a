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


@pytest.mark.parametrize("cut_after", [1, 2, 3, 4, 5, 6])
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
    "cut_after", [2, *(pytest.param(n, marks=pytest.mark.slow) for n in (1, 3, 4, 5, 6))]
)  # writes: 1 tag, then create / delete per edit, then the create and the delete
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


def test_malformed_page_is_a_named_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"nextPage": None, "data": "oops"})

    backend = NexusBackend("proj_x", key="k", endpoint="http://sim.test", transport=httpx.MockTransport(handler))
    with pytest.raises(MalformedResponse):
        backend.annotations(backend.project)


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
