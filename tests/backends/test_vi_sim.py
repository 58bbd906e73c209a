"""The Vi simulator speaks the wire shapes of the protocol notes (part B), over real HTTP."""

from __future__ import annotations

import io
import json
import re
import socket
import struct
import subprocess
import sys
import time
import zipfile

import httpx
import pytest

from annotebook.backends._remote import crc32c_b64
from annotebook.formats.vi_jsonl import vi_jsonl_to_tables
from annotebook.testing import start
from annotebook.testing._tfrecord import tfrecord

from .conftest import VI_KEY


def api(sim, key=VI_KEY, org=None):
    headers = {"Organization-Id": org or sim.state.org_id}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=sim.url, headers=headers, timeout=10)


def ds_path(sim, name="shapes"):
    org = sim.state.org_id
    return f"/workspaces/{org}/datasets/{org}_{sim.state.dataset_ids[name]}"


def every(client, path, size=3, **params):
    """Every item of a paged listing, following ``nextPage``."""
    items, cursor = [], None
    while True:
        page = client.get(path, params={**params, "s": size, **({"p": cursor} if cursor else {})}).json()
        items += page["items"]
        cursor = page["nextPage"]
        if not cursor:
            return items


def import_session(c, sim, files, policies=None, name="shapes", upload=True):
    """Create a session, register and upload ``files`` ({name: text}), commit and poll it to its end."""
    base = ds_path(sim, name) + "/annotationImportSessions"
    spec = {"uploadBefore": int(time.time() * 1000) + 60_000, "source": "UploadedIndividualFiles",
            "failurePolicies": {"onBadAnnotation": "RejectSession", "onBadFile": "RejectSession",
                                "onOverwritten": "RejectSession", **(policies or {})}}  # fmt: skip
    session = c.post(base, json={"spec": spec, "metadata": {"attributes": {}}}).json()
    sid = session["annotationImportSessionId"]
    data = {n: t.encode() for n, t in files.items()}
    body = {"files": {n: {"sizeBytes": len(d), "crc32c": crc32c_b64(d), "kind": "Unknown"} for n, d in data.items()}}
    urls = c.post(f"{base}/{sid}/files", json=body).json()["files"]
    assert list(urls) == list(files)
    for n, target in urls.items():
        if upload:
            assert httpx.request(target["method"], target["url"], content=data[n], headers=target["headers"]).is_success
    done = {"condition": "FilesInserted", "status": "Reached", "lastTransitionTime": int(time.time() * 1000)}
    c.patch(f"{base}/{sid}/status", json={"status": {"conditions": [done]}})
    for _ in range(sim.state.op_steps + 1):
        session = c.get(f"{base}/{sid}").json()
        if all(x["status"] != "Waiting" for x in session["status"]["conditions"]):
            break
    return session, c.get(f"{base}/{sid}/logs").json()["items"]


def conditions(session):
    return {x["condition"]: x["status"] for x in session["status"]["conditions"]}


def test_organization_datasets_and_tags(vi_sim):
    state = vi_sim.state
    with api(vi_sim) as c:
        orgs = c.get("/workspaces").json()
        assert [o["workspaceId"] for o in orgs["items"]] == [state.org_id] and orgs["nextPage"] is None
        org = c.get(f"/workspaces/{state.org_id}").json()
        assert org["name"] == "Simulated organization" and org["kind"] == "Organization"
        datasets = c.get(f"/workspaces/{state.org_id}/datasets").json()["items"]
        assert {d["name"]: d["type"] for d in datasets} == {"shapes": "phrase-grounding", "shapesqa": "vqa"}
        shapes = c.get(ds_path(vi_sim)).json()
        assert shapes["datasetId"] == f"{state.org_id}_{state.dataset_ids['shapes']}"
        assert "_" not in state.dataset_ids["shapes"] and "_" not in state.dataset_ids["shapesqa"]
        assert list(shapes["tags"])[:4] == ["circle", "square", "triangle", "star"] and shapes["tags"]["sqare"] == 6
        assert shapes["tagDetails"]["circle"]["color"] == "#1f77b4"
        stats = shapes["statistic"]
        ds = state.dataset("shapes")
        assert stats["assetTotal"] == 8 and stats["annotationTotal"] == len(ds.annotations)
        assert sum(stats["tagsCount"].values()) == len(ds.annotations) - 8  # every annotation but the 8 captions


def test_auth_and_missing_resources(vi_sim):
    org = vi_sim.state.org_id
    with api(vi_sim, key=None) as c:
        refused = c.get("/workspaces")
        assert refused.status_code == 401 and set(refused.json()) == {"message", "error"}
    with api(vi_sim, key="dtvi_wrong") as c:
        assert c.get("/workspaces").status_code == 403
    with api(vi_sim, org="some-other-org") as c:
        assert c.get(f"/workspaces/{org}").status_code == 403
    with api(vi_sim) as c:
        assert c.get("/workspaces/0000").status_code == 404
        assert c.get(f"/workspaces/{org}/datasets/{org}_nosuch").status_code == 404
        assert c.get(f"/workspaces/{org}/datasets/{vi_sim.state.dataset_ids['shapes']}").status_code == 404
        missing = c.get(ds_path(vi_sim) + "/assets/nosuch")
        assert missing.status_code == 404 and missing.json()["error"] == "ResourceNotFoundError"
        assert c.get(ds_path(vi_sim) + "/assets", params={"s": 1001}).status_code == 400
    open_sim = start("vi", n_assets=1, image_dir=vi_sim.state.image_dir)  # key=None: any key will do
    try:
        with api(open_sim, key="anything") as c:
            assert c.get("/workspaces").status_code == 200
    finally:
        open_sim.stop()


def test_assets_pages_contents_and_signed_urls(vi_sim):
    path = ds_path(vi_sim)
    ds = vi_sim.state.dataset("shapes")
    with api(vi_sim) as c:
        first = c.get(path + "/assets", params={"s": 3}).json()
        assert len(first["items"]) == 3 and first["nextPage"] and first["prevPage"] is None
        assert "contents" not in first["items"][0]
        assets = every(c, path + "/assets", contents="y")
        assert [a["assetId"] for a in assets] == list(ds.assets)
        assert c.get(path + "/assets:count").json() == {"count": 8}
        one = assets[0]
        assert one["metadata"]["width"] == ds.assets[one["assetId"]]["width"] and one["metadata"]["height"] > 0
        assert one["metadata"]["annotations"]["total"] == len(ds.by_asset[one["assetId"]])
        url = one["contents"]["asset"]["url"]
        image = httpx.get(url)
        assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
        assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
        vi_sim.state.url_ttl = -1
        expired = c.get(f"{path}/assets/{one['assetId']}?contents=y").json()["contents"]["asset"]
        assert expired["expiry"] < time.time() * 1000 and httpx.get(expired["url"]).status_code == 403
        victim = assets[1]["assetId"]
        gone = c.delete(f"{path}/assets/{victim}")
        assert gone.status_code == 204 and gone.content == b""
        assert victim not in ds.assets and not any(a["assetId"] == victim for a in ds.annotations.values())
        assert c.get(f"{path}/assets/{victim}").status_code == 404


def test_annotations_per_asset_paging_get_patch_put_delete(vi_sim):
    path = ds_path(vi_sim)
    ds = vi_sim.state.dataset("shapes")
    asset = max(ds.by_asset, key=lambda a: len(ds.by_asset[a]))
    base = f"{path}/assets/{asset}/annotations"
    with api(vi_sim) as c:
        listed = every(c, base, size=2)
        assert [a["annotationId"] for a in listed] == list(ds.by_asset[asset])
        caption, box = listed[0], listed[1]
        assert caption["spec"]["boundType"] == "Caption" and caption["spec"]["tag"] == -1
        assert box["kind"] == "Annotation" and box["datasetId"] == path.rsplit("/", 1)[1]
        assert "_" not in box["annotationId"] and box["etag"].startswith('"') and box["etag"].endswith('"')
        assert c.get(f"{base}/{box['annotationId']}").json() == box
        patched = c.patch(f"{base}/{box['annotationId']}", json={"spec": {"tag": 3}})
        assert patched.status_code == 200 and patched.json()["spec"]["tag"] == 3
        assert patched.json()["metadata"]["generation"] == 2 and patched.json()["etag"] != box["etag"]
        assert patched.json()["spec"]["contents"] == box["spec"]["contents"]
        stale = c.patch(f"{base}/{box['annotationId']}", json={"spec": {"tag": 0}}, headers={"If-Match": box["etag"]})
        assert stale.status_code == 412
        spec = {**box["spec"], "contents": {**box["spec"]["contents"], "bound": [[0.1, 0.1]] * 4}}
        put = c.put(f"{base}/{box['annotationId']}", json={"kind": "Annotation", "spec": spec})
        assert put.status_code == 200 and put.json()["spec"] == spec and put.json()["metadata"]["generation"] == 3
        out = {**spec, "contents": {**spec["contents"], "bound": [[1.5, 0.1]] * 4}}
        bad = c.put(f"{base}/{box['annotationId']}", json={"spec": out})
        assert bad.status_code == 400 and "out of [0, 1]" in bad.json()["message"]
        far = {**spec, "contents": {**spec["contents"], "target": [0, 10_000]}}
        assert c.put(f"{base}/{box['annotationId']}", json={"spec": far}).status_code == 400
        assert c.patch(f"{base}/{box['annotationId']}", json={"annotationId": "x"}).status_code == 400
        gone = c.delete(f"{base}/{box['annotationId']}")
        assert gone.status_code == 204 and gone.content == b""
        assert c.get(f"{base}/{box['annotationId']}").status_code == 404
        assert len(every(c, base)) == len(listed) - 1


def test_vqa_annotations(vi_sim):
    path = ds_path(vi_sim, "shapesqa")
    qa = vi_sim.state.dataset("shapesqa")
    asset = next(iter(qa.assets))
    with api(vi_sim) as c:
        items = c.get(f"{path}/assets/{asset}/annotations").json()["items"]
    assert 2 <= len(items) <= 3
    assert [x["spec"]["contents"]["order"] for x in items] == list(range(len(items)))
    assert items[0]["spec"]["contents"]["question"] == "How many shapes are there?"
    assert items[0]["spec"]["contents"]["answer"].isdigit() and "tag" not in items[0]["spec"]
    assert len({x["spec"]["aggregation"]["whole"]["id"] for x in items}) == 1


def test_import_session_creates_annotations_and_replaces_with_warn(vi_sim):
    ds = vi_sim.state.dataset("shapes")
    first, second = list(ds.assets)[:2]
    old = set(ds.by_asset[second])
    lines = [
        {"asset_id": first, "caption": "a big cat and a small cat",
         "grounded_phrases": [{"phrase": "cat", "bbox": [0.1, 0.1, 0.2, 0.2], "span": [22, 25], "tag": "circle"}]},
        {"asset": {"type": "Image", "filename": ds.assets[second]["filename"]},
         "contents": {"type": "PhraseGrounding", "caption": "one star here",
                      "groundedPhrases": [{"phrase": "star", "startTokenIndex": 1, "endTokenIndex": 2,
                                           "bounds": [[0.5, 0.5, 0.6, 0.6], [0.7, 0.7, 0.8, 0.8]]}]}},
    ]  # fmt: skip
    text = "".join(json.dumps(x) + "\n" for x in lines)
    with api(vi_sim) as c:
        for aid in list(ds.by_asset[first]):
            ds.delete_annotation(aid)
        session, logs = import_session(c, vi_sim, {"mixed.jsonl": text}, {"onOverwritten": "Warn"})
    assert conditions(session) == {"FilesInserted": "Reached", "AnnotationsCommitted": "Reached"}
    assert session["status"]["annotations"]["statusCount"] == {"Created": 5, "Rejected": 0}
    assert session["status"]["files"]["statusCount"] == {"Processed": 1, "Rejected": 0}
    warning = next(x for x in logs if x["level"] == "Warning")
    assert warning["line"] == 2 and "already has" in warning["message"] and warning["file"] == "mixed.jsonl"
    assert isinstance(warning["timestamp"], int) and warning["timestamp"] > 1e12  # epoch ms
    a = [x["spec"] for x in ds.by_asset[first].values()]
    assert a[1]["contents"]["target"] == [22, 25] and a[1]["tag"] == ds.tags["circle"]  # our span and tag extensions
    assert a[1]["aggregation"]["whole"]["id"] == a[0]["aggregation"]["whole"]["id"]
    b = list(ds.by_asset[second].values())
    assert not old & {x["annotationId"] for x in b} and len(b) == 3  # every old annotation replaced by fresh ones
    assert [x["spec"]["contents"]["target"] for x in b[1:]] == [[4, 8], [4, 8]] and b[1]["spec"]["tag"] == 3


def test_import_policies_reject_file_session_and_warn(vi_sim):
    ds = vi_sim.state.dataset("shapes")
    first, second = list(ds.assets)[:2]
    for aid in list(ds.by_asset[first]):
        ds.delete_annotation(aid)
    dog = [{"phrase": "dog", "bbox": [0, 0, 1, 1]}]
    good = json.dumps({"asset_id": first, "caption": "a dog", "grounded_phrases": dog})
    cat = json.dumps({"asset_id": ds.assets[first]["filename"].rsplit(".", 1)[0], "caption": "a dog",
                      "grounded_phrases": [{"phrase": "cat", "bbox": [0, 0, 1, 1]}]})  # fmt: skip
    unknown = json.dumps({"asset_id": "nowhere.png", "caption": "x"})
    qa = json.dumps({"asset_id": first, "contents": {"interactions": [{"question": "q", "answer": "a"}]}})
    wide = json.dumps({"asset_id": first, "caption": "a dog",
                       "grounded_phrases": [{"phrase": "dog", "bbox": [0, 0, 1.5, 1]}]})  # fmt: skip
    bad = "\n".join([good, cat, unknown, qa, wide, "{not json"]) + "\n"
    snapshot = {a: list(ds.by_asset[a]) for a in ds.assets}
    with api(vi_sim) as c:
        session, logs = import_session(c, vi_sim, {"bad.jsonl": bad})  # RejectSession everywhere: nothing lands
        assert conditions(session)["AnnotationsCommitted"] == "FailedReach" and session["status"]["reason"]
        assert next(x for x in session["status"]["conditions"] if x["condition"] == "AnnotationsCommitted")[
            "reason"] is None  # fmt: skip
        assert {a: list(ds.by_asset[a]) for a in ds.assets} == snapshot
        by_line = {x["line"]: x["message"] for x in logs if x["file"] == "bad.jsonl" and x["line"]}
        assert sorted(by_line) == [2, 3, 4, 5, 6]
        assert "'cat'" in by_line[2] and "caption" in by_line[2]
        assert "nowhere.png" in by_line[3] and "phrase-grounding" in by_line[4] and "out of [0, 1]" in by_line[5]
        assert "onBadFile" in by_line[6] and "onBadAnnotation" in by_line[2]

        warned, logs = import_session(c, vi_sim, {"bad.jsonl": bad},
                                      {"onBadAnnotation": "Warn", "onBadFile": "Warn"})  # fmt: skip
        assert conditions(warned)["AnnotationsCommitted"] == "Reached"
        # rows of refused lines: 1 + 1 + 2 (the unreadable lines 2 and 6 hold no rows)
        assert warned["status"]["annotations"]["statusCount"] == {"Created": 2, "Rejected": 4}
        assert [x["spec"]["contents"].get("contents") for x in ds.by_asset[first].values()] == ["a dog", None]
        assert {x["level"] for x in logs if x["line"]} == {"Warning"}

        other = json.dumps({"asset_id": second, "caption": "a cat"})
        files = {"one.jsonl": good.replace('"a dog"', '"a cow"') + "\n" + unknown + "\n", "two.jsonl": other + "\n"}
        mixed, logs = import_session(c, vi_sim, files, {"onBadAnnotation": "RejectFile", "onOverwritten": "Warn"})
        assert conditions(mixed)["AnnotationsCommitted"] == "Reached"
        assert mixed["status"]["files"]["statusCount"] == {"Processed": 1, "Rejected": 1}
        assert [x["spec"]["contents"].get("contents") for x in ds.by_asset[first].values()] == ["a dog", None]
        assert [x["spec"]["contents"]["contents"] for x in ds.by_asset[second].values()] == ["a cat"]
        assert any(x["file"] == "one.jsonl" and "rejected" in x["message"] for x in logs)


def test_import_into_the_vqa_dataset(vi_sim):
    qa = vi_sim.state.dataset("shapesqa")
    first, second = list(qa.assets)[:2]
    pairs = {"asset_id": qa.assets[first]["filename"],
             "contents": {"interactions": [{"question": "What colour is the circle?", "answer": "red"},
                                           {"question": "Is it round?", "answer": "yes"}]}}  # fmt: skip
    caption = {"asset_id": second, "caption": "a circle"}
    text = json.dumps(pairs) + "\n" + json.dumps(caption) + "\n"
    with api(vi_sim) as c:
        warn = {"onOverwritten": "Warn", "onBadAnnotation": "Warn"}
        session, logs = import_session(c, vi_sim, {"qa.jsonl": text}, warn, name="shapesqa")
    assert conditions(session)["AnnotationsCommitted"] == "Reached"
    assert session["status"]["annotations"]["statusCount"] == {"Created": 2, "Rejected": 1}
    specs = [a["spec"] for a in qa.by_asset[first].values()]
    assert [(s["contents"]["order"], s["contents"]["question"], s["contents"]["answer"]) for s in specs] == [
        (0, "What colour is the circle?", "red"), (1, "Is it round?", "yes")]  # fmt: skip
    assert specs[0]["aggregation"] == specs[1]["aggregation"] and specs[0]["boundType"] == "Vqa"
    assert any(x["line"] == 2 and "vqa dataset" in x["message"] for x in logs)
    assert len(qa.by_asset[second]) >= 2  # the refused line left the asset as it was


def test_import_session_edges(vi_sim):
    base = ds_path(vi_sim) + "/annotationImportSessions"
    with api(vi_sim) as c:
        session, logs = import_session(c, vi_sim, {"never.jsonl": "{}\n"}, upload=False)
        assert conditions(session)["AnnotationsCommitted"] == "FailedReach"
        assert any("never uploaded" in x["message"] for x in logs)
        sid = session["annotationImportSessionId"]
        assert c.get(base).json()["items"][0]["annotationImportSessionId"] == sid
        sample = c.get(f"{base}/{sid}/filesSample").json()["items"]
        assert sample[0]["name"] == "never.jsonl" and sample[0]["status"] == "Registered"
        bad_policy = {"spec": {"failurePolicies": {"onBadFile": "Ignore"}}}
        assert c.post(base, json=bad_policy).status_code == 400
        fresh = c.post(base, json={"spec": {}}).json()
        assert fresh["spec"]["failurePolicies"]["onBadFile"] == "RejectSession"
        fid = fresh["annotationImportSessionId"]
        assert conditions(fresh) == {"FilesInserted": "Waiting"}
        assert c.post(f"{base}/{fid}/files", json={"files": {}}).status_code == 400
        data = b'{"asset_id": "x", "caption": "y"}\n'
        reg = {"files": {"a.jsonl": {"sizeBytes": len(data), "crc32c": crc32c_b64(data), "kind": "Unknown"}}}
        target = c.post(f"{base}/{fid}/files", json=reg).json()["files"]["a.jsonl"]
        assert httpx.put(target["url"], content=data + b"x").status_code == 400  # size and CRC32C are checked
        assert httpx.put(target["url"].replace("signature=", "signature=0"), content=data).status_code == 403
        assert httpx.put(target["url"], content=data).status_code == 200
        gone = c.delete(f"{base}/{fid}/files/a.jsonl")
        assert gone.status_code == 204 and gone.content == b""
        cancel = {"status": {"conditions": [{"condition": "FilesInserted", "status": "FailedReach",
                                             "reason": "CancelledByUser", "lastTransitionTime": 1}]}}  # fmt: skip
        ended = c.patch(f"{base}/{fid}/status", json=cancel).json()
        assert ended["status"]["conditions"][0]["reason"] == "CancelledByUser"
        assert c.patch(f"{base}/{fid}/status", json=cancel).status_code == 409


def _export(c, sim, fmt, name="shapes", **options):
    base = ds_path(sim, name) + "/datasetExports"
    made = c.post(base, json={"spec": {"format": fmt, "options": {"normalized": True, "splitRatio": None,
                                                                  **options}}})  # fmt: skip
    assert made.status_code == 200, made.text
    job = made.json()
    seen = [conditions(job)]
    while "downloadUrl" not in job["status"]:
        job = c.get(f"{base}/{job['datasetExportId']}").json()
        seen.append(conditions(job))
    return job, seen


def test_export_vi_jsonl_with_ranges(vi_sim):
    ds = vi_sim.state.dataset("shapes")
    with api(vi_sim) as c:
        job, seen = _export(c, vi_sim, "ViJsonl")
        assert seen[0] == {"Started": "Waiting"} and seen[-1] == {"Started": "Reached", "Finished": "Reached"}
        assert len(seen) == vi_sim.state.op_steps + 1
        assert job["spec"]["format"] == "ViJsonl" and job["spec"]["options"]["format"] == "ViJsonl"
        assert c.get(ds_path(vi_sim) + "/datasetExports").json()["items"][0]["datasetExportId"] == job[
            "datasetExportId"]  # fmt: skip
    url = job["status"]["downloadUrl"]["url"]
    head = httpx.head(url)
    size = int(head.headers["content-length"])
    assert head.status_code == 200 and head.headers["accept-ranges"] == "bytes" and size > 100
    whole = httpx.get(url).content
    part = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    assert httpx.get(url, headers={"Range": "bytes=-5"}).content == whole[-5:]
    assert httpx.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        assert z.namelist() == ["dump/annotations/annotations.jsonl"]
        text = z.read("dump/annotations/annotations.jsonl").decode()
    first = json.loads(text.splitlines()[0])
    assert first["asset"]["type"] == "Image" and first["contents"]["type"] == "PhraseGrounding"
    phrase = first["contents"]["groundedPhrases"][0]
    assert len(phrase["bounds"][0]) == 4 and isinstance(phrase["startTokenIndex"], int)
    words = first["contents"]["caption"].split()
    assert words[phrase["startTokenIndex"]].rstrip(",") == phrase["phrase"]
    assert phrase["endTokenIndex"] == phrase["startTokenIndex"] + 1
    tables = vi_jsonl_to_tables(text)  # annotebook reads the export dialect back
    assert (tables.annotations["kind"] == "grounding").sum() == sum(a["spec"]["tag"] >= 0
                                                                    for a in ds.annotations.values())  # fmt: skip


def test_export_formats_splits_and_refusals(vi_sim):
    with api(vi_sim) as c:
        coco, _ = _export(c, vi_sim, "Coco", splitRatio=0.5)
        assert coco["spec"]["format"] == "ViJsonl" and coco["spec"]["options"]["format"] == "Coco"
        with zipfile.ZipFile(io.BytesIO(httpx.get(coco["status"]["downloadUrl"]["url"]).content)) as z:
            assert z.namelist() == ["training/annotations/annotations.json", "validation/annotations/annotations.json"]
            images = [len(json.loads(z.read(n))["images"]) for n in z.namelist()]
        assert sum(images) == 8 and images == [4, 4]
        yolo, _ = _export(c, vi_sim, "YoloDarknet")
        with zipfile.ZipFile(io.BytesIO(httpx.get(yolo["status"]["downloadUrl"]["url"]).content)) as z:
            names = z.namelist()
        assert any(n.startswith("dump/annotations/") and n.endswith(".txt") for n in names)
        record, _ = _export(c, vi_sim, "ViTfrecord", name="shapesqa")
        assert record["spec"]["format"] == "ViTfrecord"
        with zipfile.ZipFile(io.BytesIO(httpx.get(record["status"]["downloadUrl"]["url"]).content)) as z:
            data = z.read("dump/annotations/annotations.tfrecord")
        (length,) = struct.unpack("<Q", data[:8])
        first = json.loads(data[12 : 12 + length])
        assert first["contents"]["type"] == "Vqa" and first["contents"]["interactions"][0]["order"] == 0
        assert data == tfrecord(_records(data))  # framing and masked CRCs as written
        base = ds_path(vi_sim, "shapesqa") + "/datasetExports"
        refused = c.post(base, json={"spec": {"format": "Coco", "options": {"normalized": True}}})
        assert refused.status_code == 400 and "ViJsonl" in refused.json()["message"]
        full = c.post(ds_path(vi_sim) + "/datasetExports", json={"spec": {"format": "ViFull", "options": {}}})
        assert full.status_code == 400


def _records(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i : i + 8])
        out.append(data[i + 12 : i + 12 + n])
        i += 16 + n
    return out


def test_tfrecord_framing_of_a_known_record():
    # b"hello" framed by TensorFlow's rule (masked CRC32C of the 8-byte length, then of the data), reference
    # value computed with google-crc32c
    assert tfrecord([b"hello"]).hex() == "0500000000000000eab2043e68656c6c6fbb1f1c19"
    assert tfrecord([b"a", b"bc"]) == tfrecord([b"a"]) + tfrecord([b"bc"])


def test_faults_rate_limit_cut_and_latency(vi_sim):
    path = ds_path(vi_sim)
    ds = vi_sim.state.dataset("shapes")
    asset = next(iter(ds.assets))
    victim = list(ds.by_asset[asset])[1]
    with api(vi_sim) as c:
        c.post("/_sim/faults", json={"rate_limit": 1, "retry_after": 2})
        limited = c.get(path)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2" and limited.json()["message"]
        assert c.get(path).status_code == 200
        c.post("/_sim/faults", json={"cut_after": 1})
        with pytest.raises(httpx.RemoteProtocolError):
            c.patch(f"{path}/assets/{asset}/annotations/{victim}", json={"spec": {"tag": 2}})
        assert ds.annotations[victim]["spec"]["tag"] == 2  # it landed; only the answer was lost
        vi_sim.state.faults.latency_ms = 100
        start_time = time.perf_counter()
        c.get("/workspaces")
        assert time.perf_counter() - start_time >= 0.1


def test_synthetic_dataset_is_fast_to_seed_and_list(tmp_path):
    began = time.perf_counter()
    sim = start("vi", n_assets=2000, n_annotations=20_000, image_dir=tmp_path)
    try:
        assert time.perf_counter() - began < 3  # well under a second on a quiet machine
        ds = sim.state.dataset("synthetic")
        assert len(ds.assets) == 2000 and len(ds.annotations) == 20_000
        with api(sim) as c:
            assets = c.get(ds_path(sim, "synthetic") + "/assets", params={"s": 1000, "contents": "y"}).json()
            assert len(assets["items"]) == 1000 and assets["items"][0]["contents"]["asset"]["url"] == ""
            aid = assets["items"][0]["assetId"]
            t0 = time.perf_counter()
            anns = c.get(f"{ds_path(sim, 'synthetic')}/assets/{aid}/annotations", params={"s": 100}).json()["items"]
            assert time.perf_counter() - t0 < 1
        caption, *boxes = anns
        assert len(boxes) == 9 and caption["spec"]["contents"]["kind"] == "Caption"
        text = caption["spec"]["contents"]["contents"]
        names = {i: n for n, i in ds.tags.items()}
        assert all(text[slice(*b["spec"]["contents"]["target"])] == names[b["spec"]["tag"]] for b in boxes)
    finally:
        sim.stop()


@pytest.mark.slow
def test_serve_command():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["serve", "vi", "--port", str(port), "--assets", "2"]
    proc = subprocess.Popen([sys.executable, "-m", "annotebook.testing", *command], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        found = re.fullmatch(
            rf'Vi simulator at {url}: ab.connect\("vi", organization="([0-9a-f-]+)", endpoint="{url}"\) '
            r'with any key of "dtvi_" and 98 characters in DATATURE_VI_SECRET_KEY; '
            r"datasets shapes=(ds[0-9a-f]+), shapesqa=(ds[0-9a-f]+)\n",
            line,
        )
        assert found, line
        org, shapes = found[1], found[2]
        headers = {"Authorization": f"Bearer {VI_KEY}", "Organization-Id": org}
        answer = httpx.get(f"{url}/workspaces/{org}/datasets/{org}_{shapes}", headers=headers)  # listening once printed
        assert answer.status_code == 200 and answer.json()["name"] == "shapes"
        assert httpx.get(f"{url}/workspaces", headers={**headers, "Authorization": ""}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
