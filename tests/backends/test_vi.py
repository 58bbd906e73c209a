"""The Vi backend against the Vi simulator over real HTTP: load, push by per-asset upload, conflicts, faults, export."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.vi import ImportRejected, ViBackend, read_export
from annotebook.errors import AuthError, ConflictError, NotFound, NotSupported, PushError, ValidationError

from .conftest import VI_KEY


@pytest.fixture
def vi(vi_sim):
    return ab.connect("vi", organization=vi_sim.state.org_id, key=VI_KEY, endpoint=vi_sim.url, dataset="shapes")


@pytest.fixture
def anns(vi):
    return vi.assets().annot.load()


def wire(sim, name="shapes"):
    """What the simulator holds: asset -> sorted (kind, text-or-tag, target, rounded bound) of its annotations."""
    ds = sim.state.dataset(name)
    return {a: len(ds.by_asset.get(a, {})) for a in ds.assets}


def content(frame: pd.DataFrame) -> list[tuple]:
    cols = ["asset", "kind", "label", "text", "answer", "span_start", "span_end", "x0", "y0", "x1", "y1"]
    rows = frame[~frame.deleted][cols].astype(object).where(frame[cols].notna(), None)
    return sorted(tuple(None if v is None else (round(v, 9) if isinstance(v, float) else v) for v in r)
                  for r in rows.itertuples(index=False))  # fmt: skip


def test_load_maps_captions_phrases_tags_and_assets(vi, vi_sim, anns):
    ds = vi_sim.state.dataset("shapes")
    assert len(anns) == len(ds.annotations)
    assets = vi.assets()
    assert set(assets.asset) == set(ds.assets) and (assets.width > 0).all() and assets.uri.notna().all()
    caps = anns[anns.kind == "caption"].set_index("id")
    g = anns[anns.kind == "grounding"]
    assert len(g) and g.parent.isin(caps.index).all()
    for r in g.itertuples():  # a phrase's text is its caption's text at its span, its label a dataset tag
        assert caps.loc[r.parent, "text"][r.span_start : r.span_end] == r.text == r.label
    assert set(g.label) <= set(vi.labels().name)
    assert anns.rev.str.startswith('"').all()  # etags
    path = vi.backend.image_path(vi.dataset, assets.asset.iloc[0])
    assert path and Path(path).read_bytes()[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1")
    assert not ab.validate(anns).shape[0]


def test_datasets_name_type_and_a_name_stands_for_the_id(vi, vi_sim):
    ds = vi.datasets()
    assert dict(zip(ds.name, ds.type, strict=True)) == {"shapes": "phrase-grounding", "shapesqa": "vqa"}
    assert vi.dataset == "shapes" and vi.assets().dataset.iloc[0] == vi_sim.state.dataset("shapes").id


def test_edit_a_phrase_box_uploads_its_asset_and_maps_every_new_id(vi, vi_sim, anns):
    g = anns[anns.kind == "grounding"].iloc[0]
    asset = g.asset
    before = set(anns.loc[anns.asset == asset, "id"])
    anns.loc[anns.id == g.id, ["x0", "x1"]] = [0.05, 0.5]
    report = anns.annot.push()
    assert report.ok and len(report.updated) == 1
    after = set(anns.loc[anns.asset == asset, "id"])
    assert not before & after  # the upload replaced the asset: every row of it has a new id, in the frame too
    assert not len(anns.annot.diff())
    fresh = vi.annotations()
    assert sorted(fresh.id) == sorted(anns.id) and content(fresh) == content(anns)
    caps = set(fresh.loc[fresh.kind == "caption", "id"])
    assert fresh.loc[fresh.kind == "grounding", "parent"].isin(caps).all()
    assert dict(zip(fresh.id, fresh.rev, strict=True)) == dict(zip(anns.id, anns.rev, strict=True))


def test_a_subset_push_fast_forwards_the_parent_frame(vi, anns):
    cap = anns[anns.kind == "caption"].iloc[0]
    sub = anns[anns.asset == cap.asset].copy()
    sub.loc[sub.id == cap.id, "text"] = cap.text.replace("on a plain background", "on a red couch")
    sub.annot.push()
    cs = anns.annot.diff()
    assert not len(cs.conflicts) and not len(cs.modified) and len(cs.fast_forward) == (anns.asset == cap.asset).sum()
    anns.annot.push()  # writes the fast-forward: the parent now holds the new ids and the new caption
    assert set(anns.loc[anns.asset == cap.asset, "id"]) == set(sub.id)
    assert content(vi.annotations()) == content(anns)


def test_a_caption_edit_that_breaks_a_span_is_refused_before_any_request(vi_sim, anns):
    cap = anns[anns.kind == "caption"].iloc[0]
    anns.loc[anns.id == cap.id, "text"] = "the " + cap.text
    writes = vi_sim.state.faults.writes
    with pytest.raises(ValidationError, match=r"the caption.s text\[2:7\]"):
        anns.annot.push()
    assert vi_sim.state.faults.writes == writes and not vi_sim.state.sessions


def test_add_a_phrase_and_delete_only_rows(vi, vi_sim, anns):
    cap = anns[anns.kind == "caption"].iloc[0]
    start = cap.text.index("background")
    [new] = anns.annot.add_rows(anns.annot.new_rows([{
        "asset": cap.asset, "kind": "grounding", "label": anns[anns.kind == "grounding"].label.iloc[0],
        "text": "background", "parent": cap.id, "span_start": start, "span_end": start + 10,
        "x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0}]))  # fmt: skip
    other = anns[(anns.kind == "grounding") & (anns.asset != cap.asset)].iloc[0]
    keep = set(anns.loc[(anns.asset == other.asset) & (anns.id != other.id), "id"])
    anns.annot.delete(anns.id == other.id)
    sessions = len(vi_sim.state.sessions)
    report = anns.annot.push()
    assert report.ok and new in report.created and report.deleted == [other.id]
    assert len(vi_sim.state.sessions) == sessions + 1  # one session for the added phrase; the deletion is a DELETE
    fresh = vi.annotations()
    assert set(fresh.loc[fresh.asset == other.asset, "id"]) == keep  # a pure deletion re-ids nothing
    added = fresh[fresh.id == report.created[new]].iloc[0]
    assert (added.text, added.parent, added.x1) == (
        "background",
        anns.loc[anns.id == report.created[new], "parent"].iloc[0],
        1.0,
    )
    assert content(fresh) == content(anns)


def test_a_remote_change_since_the_load_is_a_conflict_by_row_and_nothing_is_written(vi, vi_sim, anns):
    g = anns[anns.kind == "grounding"].iloc[0]
    twin = vi.annotations()  # a colleague's frame pushes first
    twin.loc[twin.id == g.id, "x0"] = 0.01
    twin.annot.push()
    anns.loc[anns.id == g.id, "x0"] = 0.02
    sessions = len(vi_sim.state.sessions)
    with pytest.raises(ConflictError) as info:
        anns.annot.push()
    assert g.id in set(info.value.conflicts["id"]) and len(vi_sim.state.sessions) == sessions


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_push_cut_half_way_then_run_again_lands_once(vi, vi_sim, anns, cut):
    """Cut the n-th write of the upload (session, files, upload, commit): a second push finishes, no duplicate."""
    g = anns[anns.kind == "grounding"].iloc[0]
    anns.loc[anns.id == g.id, "y1"] = min(1.0, g.y1 + 0.02)
    vi_sim.state.faults.update({"cut_after": cut})
    with contextlib.suppress(PushError):
        anns.annot.push()
    vi_sim.state.faults.update({"cut_after": None})
    anns.annot.push()
    assert not len(anns.annot.diff())
    fresh = vi.annotations()
    assert len(fresh) == len(anns) and content(fresh) == content(anns)
    assert (fresh.loc[fresh.asset == g.asset, "y1"].round(9) == round(min(1.0, g.y1 + 0.02), 9)).sum() == 1


def test_vqa_rows_load_edit_and_push(vi_sim):
    qa = ab.connect("vi", organization=vi_sim.state.org_id, key=VI_KEY, endpoint=vi_sim.url, dataset="shapesqa")
    anns = qa.assets().annot.load()
    assert set(anns.kind) == {"qa"} and anns.answer.notna().all()
    first = anns.iloc[0]
    anns.loc[anns.id == first.id, "answer"] = "forty-two"
    assert anns.annot.push().ok
    fresh = qa.annotations()
    assert "forty-two" in set(fresh.answer) and content(fresh) == content(anns)
    with pytest.raises(ValueError, match="vqa"):
        qa.export("coco", "unused")


def test_import_files_reports_per_file_and_a_rejected_file_lands_nothing(vi, vi_sim, anns, tmp_path):
    asset = anns.asset.iloc[0]
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "good.jsonl").write_text(
        json.dumps({"asset_id": asset, "caption": "a cat", "grounded_phrases": []}) + "\n"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"asset_id": "nope", "caption": "a dog", "grounded_phrases": []}\n')
    before = wire(vi_sim)
    report = vi.import_files([bad, folder])
    assert report.files.set_index("file").status.to_dict() == {"bad.jsonl": "rejected", "good.jsonl": "imported"}
    assert report.files.set_index("file").loc["bad.jsonl", "errors"] >= 1
    assert report.rejected == ["bad.jsonl"] and report.imported == ["good.jsonl"] and not report.ok
    logs = report.logs
    assert ((logs.file == "bad.jsonl") & (logs.level == "Error") & (logs.line == 1)).any()
    after = wire(vi_sim)
    assert after[asset] == 1 and {a: n for a, n in after.items() if a != asset} == {
        a: n for a, n in before.items() if a != asset}  # fmt: skip
    with pytest.raises(ImportRejected) as info:  # RejectSession: nothing of the session lands
        vi.import_files([bad, folder], on_bad_annotation="RejectSession")
    assert info.value.report.files.status.tolist() == ["rejected", "rejected"] and wire(vi_sim) == after
    assert info.value.logs is info.value.report.logs and len(info.value.logs)
    with pytest.raises(ValueError, match="onBadFile"):
        vi.import_files([bad], on_bad_file="Ignore")
    early = vi.import_files([folder], wait=False)
    assert early.counts["pending"] == 1 and len(early.sessions) == 1
    assert vi.backend.wait_import(early).imported == ["good.jsonl"]


@pytest.mark.parametrize("fmt", ["CsvFourCorner", "CsvWidthHeight", "PascalVoc", "YoloDarknet", "YoloKerasPytorch"])
def test_every_box_export_reads_back(vi, anns, tmp_path, fmt):
    result = vi.export(fmt, tmp_path / fmt)
    assert result.format == fmt and len(result.files) and result.dest == tmp_path / fmt
    back = read_export(result, assets=vi.assets())
    g = anns[anns.kind == "grounding"]
    assert len(back) == len(g) and sorted(back.label) == sorted(g.label)


def test_tfrecord_is_downloaded_and_named_and_vqa_exports_its_pairs(vi_sim, vi, tmp_path):
    result = vi.export("ViTfrecord", tmp_path / "tf")
    assert result.reader is None and any(f.endswith(".tfrecord") for f in result.files.file)
    with pytest.raises(ValueError, match="no reader for ViTfrecord"):
        read_export(result)
    with pytest.raises(ab.NotSupported, match="carry no images"):
        vi.export("coco", tmp_path / "images", images=True)
    qa = ab.connect("vi", organization=vi_sim.state.org_id, key=VI_KEY, endpoint=vi_sim.url, dataset="shapesqa")
    qa.export("ViJsonl", tmp_path / "qa")
    back = ab.read(tmp_path / "qa", format="vi_jsonl")
    loaded = qa.annotations()
    assert sorted(zip(back.text, back.answer, strict=True)) == sorted(zip(loaded.text, loaded.answer, strict=True))


def test_export_coco_reads_back_the_boxes(vi, anns, tmp_path):
    files = vi.export("coco", tmp_path / "coco").files
    exported = ab.read(next(f for f in files.file if f.endswith(".json")))
    g = anns[anns.kind == "grounding"]
    assert len(exported) == len(g)
    assert sorted(exported.label) == sorted(g.label)
    split = read_export(vi.export("coco", tmp_path / "split", split_ratio=0.5))
    assert set(split.split) == {"train", "validate"} and len(split) == len(g)
    jsonl = vi.export("ViJsonl", tmp_path / "jsonl")
    back = ab.read(tmp_path / "jsonl", format="vi_jsonl")
    assert len(jsonl.files) and sorted(back[back.kind == "caption"].text) == sorted(anns[anns.kind == "caption"].text)


def test_keys_are_checked_locally_and_never_shown(vi_sim, monkeypatch):
    monkeypatch.delenv("DATATURE_VI_SECRET_KEY", raising=False)
    with pytest.raises(AuthError, match="DATATURE_VI_SECRET_KEY"):
        ViBackend(organization="o", key="sk_not_a_vi_key")
    wrong = "dtvi_" + "w" * 98
    backend = ViBackend(organization=vi_sim.state.org_id, key=wrong, endpoint=vi_sim.url)
    with pytest.raises(AuthError) as info:
        backend.datasets()
    assert wrong not in str(info.value) and wrong not in repr(backend) and "DATATURE_VI_SECRET_KEY" in str(info.value)
    ok = ViBackend(organization=vi_sim.state.org_id, key=VI_KEY, endpoint=vi_sim.url)
    with pytest.raises(NotFound):
        ok.annotations(vi_sim.state.dataset("shapes").id, ["no-such-asset"])


def test_rate_limits_and_outages_of_reads_are_waited_out(vi, vi_sim):
    vi_sim.state.faults.update({"rate_limit": 2, "retry_after": 0.05})
    assert len(vi.datasets()) == 2
    n = len(vi_sim.state.dataset("shapes").annotations)
    vi_sim.state.faults.update({"down": 2})  # two 503s: the reads are retried
    assert len(vi.annotations()) == n


def test_malformed_pages_are_named(vi_sim):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": "nope"})

    backend = ViBackend(organization="org", key=VI_KEY, endpoint="http://x", transport=httpx.MockTransport(handler))
    with pytest.raises(Exception, match=r"not \{items"):
        backend.datasets()


def test_an_upload_vi_rejects_is_reported_by_file_and_its_rows_stay_unpushed(vi, vi_sim, anns, monkeypatch):
    """A file the server rejects (here: a document spoiled on its way) fails its asset's rows only."""
    from annotebook.backends import vi as vi_module

    caps = anns[anns.kind == "caption"]
    bad, good = caps.iloc[0], caps.iloc[1]
    for cap in (bad, good):
        anns.loc[anns.id == cap.id, "text"] = cap.text.replace("plain background", "plain backdrop")
    real = vi_module._document

    def spoiled(asset: str, rows: list) -> str:
        text = real(asset, rows)
        return text.replace('"phrase": "', '"phrase": "zz') if asset == bad.asset else text

    monkeypatch.setattr(vi_module, "_document", spoiled)
    with pytest.raises(PushError) as info:
        anns.annot.push()
    report = info.value.report
    assert not report.ok and {f["id"] for f in report.failed} == {bad.id}
    assert "does not occur" in report.failed[0]["error"] and bad.asset in report.failed[0]["error"]
    assert report.updated == [good.id] or set(report.updated) == {good.id}
    left = anns.annot.diff()  # the rejected asset's edit is still there to push; the landed one is traced
    assert left.modified["id"].tolist() == [bad.id] and not len(left.conflicts)
    monkeypatch.setattr(vi_module, "_document", real)
    assert anns.annot.push().ok and not len(anns.annot.diff())
    assert content(vi.annotations()) == content(anns)


def test_asset_statuses_are_refused_by_name_not_with_an_attribute_error(vi):
    assets = vi.assets()
    assert not len(assets.annot.push())  # nothing changed: nothing to say
    assets.loc[assets.index[0], "status"] = "Completed-by-me"
    with pytest.raises(NotSupported, match="vi takes no asset statuses"):
        assets.annot.push()


def test_an_expired_image_url_is_fetched_again_and_the_image_cached(vi, vi_sim):
    vi_sim.state.url_ttl = 0.5
    assets = vi.assets()  # its signed URLs expire in half a second
    time.sleep(1.1)
    asset = assets.asset.iloc[1]
    path = vi.backend.image_path(vi.dataset, asset)
    assert path and Path(path).stat().st_size > 100
    vi_sim.state.url_ttl = 3600
    assert vi.backend.image_path(vi.dataset, asset) == path  # from the cache, no second download
