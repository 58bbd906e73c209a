"""The Nexus simulator speaks the wire shapes of the protocol notes, over real HTTP."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import NEXUS_KEY


def api(sim, key=NEXUS_KEY):
    return httpx.Client(base_url=sim.url, headers={"Secret-Key": key} if key else {}, timeout=10)


def test_project_assets_and_tags(nexus_sim):
    pid = nexus_sim.state.project_id
    with api(nexus_sim) as c:
        project = c.get(f"/projects/{pid}").json()
        assert project["statistic"]["totalAssets"] == 8 and project["statistic"]["annotatedAssets"] > 0
        assert c.get("/workspace/projects").json()[0]["id"] == pid
        tags = c.get(f"/projects/{pid}/tags").json()
        assert [t["name"] for t in tags][:2] == ["circle", "square"] and tags[0]["index"] == 0
        page = c.get(f"/projects/{pid}/assets?limit=3&").json()
        assert len(page["data"]) == 3 and page["nextPage"] and page["prevPage"] is None
        asset = page["data"][0]
        assert isinstance(asset["metadata"]["width"], int) and asset["url"].startswith(nexus_sim.url)
        image = httpx.get(asset["url"])
        assert image.status_code == 200 and image.content[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")
        assert httpx.get(asset["url"].replace("signature=", "signature=0")).status_code == 403


def test_annotation_paging_filters_and_attributes(nexus_sim):
    pid = nexus_sim.state.project_id
    total = len(nexus_sim.state.annotations)
    seen, cursor = [], None
    with api(nexus_sim) as c:
        while True:
            query = (f"?page={cursor}&" if cursor else "?") + "limit=7&includeAttributes=false&"
            page = c.get(f"/projects/{pid}/annotations{query}").json()
            seen += page["data"]
            cursor = page["nextPage"]
            if cursor is None:
                break
        assert len(seen) == total == len({a["id"] for a in seen})
        assert all("attributes" not in a for a in seen)
        asset = seen[0]["assetId"]
        some = c.get(f"/projects/{pid}/annotations?assetId%5B%5D={asset}&includeAttributes=true&").json()["data"]
        assert some and {a["assetId"] for a in some} == {asset} and all("attributes" in a for a in some)
        rect = next(a for a in seen if a["boundType"] == "Rectangle")
        (x0, y0), (_, y1), (x1, _), _ = rect["bound"]
        assert rect["bound"] == [[x0, y0], [x0, y1], [x1, y1], [x1, y0]] and x0 < x1 and y0 < y1


def test_create_get_delete(nexus_sim):
    pid = nexus_sim.state.project_id
    asset = next(iter(nexus_sim.state.assets))
    body = {"assetId": asset, "tag": "circle", "boundType": "Rectangle",
            "bound": [[0.1, 0.1], [0.1, 0.3], [0.4, 0.3], [0.4, 0.1]]}  # fmt: skip
    with api(nexus_sim) as c:
        made = c.post(f"/projects/{pid}/annotations", json=body).json()
        assert made["id"].startswith("annot_") and isinstance(made["createDate"], int)
        assert c.get(f"/projects/{pid}/annotations/{made['id']}").json()["bound"] == body["bound"]
        triangle = [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2]]
        snake = {"asset_id": asset, "tag": "circle", "bound_type": "Polygon", "bound": triangle}
        assert c.post(f"/projects/{pid}/annotations", json=snake).json()["boundType"] == "Polygon"
        gone = c.delete(f"/projects/{pid}/annotations/{made['id']}")
        assert gone.json() == {"deleted": True, "id": made["id"]}
        missing = c.get(f"/projects/{pid}/annotations/{made['id']}")
        assert missing.status_code == 404 and missing.json()["code"] == "ResourceNotFoundError"
        bad = c.post(f"/projects/{pid}/annotations", json={**body, "bound": [[1.5, 0.1]] * 4})
        assert bad.status_code == 400 and "out of bounds" in bad.json()["message"]


def test_key_check(nexus_sim):
    pid = nexus_sim.state.project_id
    with api(nexus_sim, key=None) as c:
        assert c.get(f"/projects/{pid}").status_code == 401
    with api(nexus_sim, key="wrong") as c:
        refused = c.get(f"/projects/{pid}")
        assert refused.status_code == 403 and refused.json()["code"] == "ForbiddenError"
    with api(nexus_sim) as c:
        assert c.get("/projects/proj_0000").status_code == 404


def test_faults_rate_limit_and_cut(nexus_sim):
    pid = nexus_sim.state.project_id
    with api(nexus_sim) as c:
        c.post("/_sim/faults", json={"rate_limit": 1, "retry_after": 2})
        limited = c.get(f"/projects/{pid}")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        assert c.get(f"/projects/{pid}").status_code == 200
        before = len(nexus_sim.state.annotations)
        c.post("/_sim/faults", json={"cut_after": 1})
        body = {"assetId": next(iter(nexus_sim.state.assets)), "tag": "circle", "boundType": "Classification",
                "bound": []}  # fmt: skip
        with pytest.raises(httpx.RemoteProtocolError):
            c.post(f"/projects/{pid}/annotations", json=body)
    assert len(nexus_sim.state.annotations) == before + 1  # it landed; only the answer was lost


def test_latency(nexus_sim):
    nexus_sim.state.faults.latency_ms = 100
    with api(nexus_sim) as c:
        start = time.perf_counter()
        c.get("/workspace")
        assert time.perf_counter() - start >= 0.1


@pytest.mark.slow
def test_serve_command():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["serve", "nexus", "--port", str(port), "--key", "k", "--assets", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "annotebook.testing", *command], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        project = re.fullmatch(
            rf'Nexus simulator at {url}: ab.connect\("nexus", project="(proj_[0-9a-f]+)", endpoint="{url}"\) '
            r"with the key it was started with \(--key\) in DATATURE_SECRET_KEY\n",
            line,
        )
        assert project, line
        answer = httpx.get(f"{url}/projects/{project[1]}", headers={"Secret-Key": "k"})  # listening once printed
        assert answer.status_code == 200 and answer.json()["id"] == project[1]
        assert httpx.get(f"{url}/workspace", headers={"Secret-Key": "x"}).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)
