"""The Dask path on a real scheduler: a `distributed.LocalCluster` of 2 worker processes, one thread each.

A dataset of 120 assets (600 rows: boxes and polygons) in a local store; partitions are pages of 40 assets loaded
on the workers. Every result is compared with the pandas path on the same rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.local import LocalBackend
from annotebook.geometry import to_pixels

distributed = pytest.importorskip("distributed")  # the `dask` extra, part of the `test` extra

ASSETS, PER_ASSET, PAGE = 120, 5, 40


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    ids = [f"img{i:04d}" for i in range(ASSETS)]
    assets = ab.assets_frame({"dataset": "big", "asset": ids, "name": [a + ".jpg" for a in ids], "width": 640,
                              "height": 480})  # fmt: skip
    n = ASSETS * PER_ASSET
    x0, y0 = rng.uniform(0, 0.8, n), rng.uniform(0, 0.8, n)
    kinds = np.where(np.arange(n) % 5 == 0, "polygon", "box")
    anns = ab.annotations_frame(
        {
            "dataset": "big",
            "asset": np.repeat(ids, PER_ASSET),
            "label": rng.choice(["car", "person", "bike"], n),
            "kind": kinds,
            "x0": x0,
            "y0": y0,
            "x1": x0 + 0.1,
            "y1": y0 + 0.1,
            "points": [
                ((a, b, a + 0.1, b, a + 0.05, b + 0.1),) if k == "polygon" else None
                for a, b, k in zip(x0, y0, kinds, strict=True)
            ],
        }
    )
    labels = ab.labels_frame({"name": ["bike", "car", "person"], "index": [0, 1, 2]})
    LocalBackend(tmp_path / "store", samples=False).write_dataset("big", assets, anns, labels)
    return tmp_path / "store"


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["load"]).sort_values("id").reset_index(drop=True)


def test_partitions_are_pages_of_assets_loaded_on_the_workers(client: object, store: Path) -> None:
    conn = ab.connect("local", path=str(store))
    ddf = conn.assets("big").annot.load_dask(partition_size=PAGE)
    assert ddf.npartitions == ASSETS // PAGE
    pids = ddf.map_partitions(lambda p: pd.DataFrame({"pid": [os.getpid()], "assets": [p["asset"].nunique()]}),
                              meta={"pid": "int64", "assets": "int64"}).compute()  # fmt: skip
    assert os.getpid() not in set(pids["pid"])
    assert pids["assets"].tolist() == [PAGE] * (ASSETS // PAGE)
    pd.testing.assert_frame_equal(_sorted(ddf.compute()), _sorted(conn.annotations("big")))


def test_validate_finds_what_pandas_finds_and_ids_repeated_across_partitions(client: object, store: Path) -> None:
    conn = ab.connect("local", path=str(store))
    anns = conn.annotations("big")
    anns.loc[3, "x0"] = 0.95  # x0 > x1
    anns.loc[10, "asset"] = "nowhere"
    anns.loc[anns.index[-1], "id"] = anns.loc[0, "id"]  # the same id in the first and the last partition
    import dask.dataframe as dd

    ddf = dd.from_pandas(anns, npartitions=3, sort=False)
    assert ddf.npartitions == 3
    assets = conn.assets("big")
    got = ddf.annot.validate(assets)
    want = ab.validate(anns, assets)
    key = ["id", "column", "problem"]
    assert sorted(map(tuple, got[key].to_numpy().tolist())) == sorted(map(tuple, want[key].to_numpy().tolist()))
    assert {"x0", "asset", "id"} <= set(got["column"])


def test_summary_and_to_pixels_match_pandas(client: object, store: Path) -> None:
    conn = ab.connect("local", path=str(store))
    ddf = conn.assets("big").annot.load_dask(partition_size=PAGE)
    anns = conn.annotations("big")
    pd.testing.assert_frame_equal(ddf.annot.summary(), anns.annot.summary())
    assets = conn.assets("big")
    got = ddf.annot.to_pixels(assets).compute()
    pd.testing.assert_frame_equal(_sorted(got), _sorted(to_pixels(anns, assets)))


@pytest.mark.parametrize("fmt", ["yolo", "voc", "superannotate"])
def test_folder_formats_written_partition_wise_equal_the_pandas_files(
    client: object, store: Path, tmp_path: Path, fmt: str
) -> None:
    conn = ab.connect("local", path=str(store))
    ddf = conn.assets("big").annot.load_dask(partition_size=PAGE)
    anns = conn.annotations("big")
    assets, labels = conn.assets("big"), conn.labels("big")
    written = ddf.annot.save(tmp_path / "dask", fmt, assets=assets, labels=labels)
    anns.annot.save(tmp_path / "pandas", fmt)

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert files(tmp_path / "dask") == files(tmp_path / "pandas")
    assert len(written) == len(files(tmp_path / "dask"))
    assert not [p for p in tmp_path.rglob(".annotebook-parts-*")]


def test_coco_is_merged_from_the_partitions(client: object, store: Path, tmp_path: Path) -> None:
    conn = ab.connect("local", path=str(store))
    ddf = conn.assets("big").annot.load_dask(partition_size=PAGE)
    anns = conn.annotations("big")
    out = tmp_path / "out" / "coco.json"
    ddf.annot.save(out, "coco", assets=conn.assets("big"), labels=conn.labels("big"))
    back = ab.read(out)
    assert len(back) == len(anns)
    cols = ["asset", "label", "kind", "x0", "y0", "x1", "y1"]
    got = back[cols].astype({"asset": str})
    want = anns[cols].astype({"asset": str}).assign(asset=lambda d: d["asset"] + ".jpg")  # COCO's file_name
    got, want = (f.sort_values(cols).reset_index(drop=True) for f in (got, want))
    pd.testing.assert_frame_equal(got, want, check_exact=False, atol=1e-6)


def test_read_dask_reads_one_file_per_partition(client: object, store: Path, tmp_path: Path) -> None:
    conn = ab.connect("local", path=str(store))
    anns = conn.annotations("big")
    paths = []
    for k, chunk in enumerate(np.array_split(np.array(sorted(anns["asset"].unique())), 3)):
        part = anns[anns["asset"].isin(chunk)]
        paths.append(tmp_path / f"part{k}.json")
        part.annot.save(paths[-1], "coco")
    ddf = ab.read_dask(paths)
    assert ddf.npartitions == 3
    assert len(ddf.compute()) == len(anns)
    assert ddf.annot.summary()["count"].sum() == len(anns)


def _relabel(part: pd.DataFrame, asset: str, label: str) -> pd.DataFrame:
    part = part.copy()
    part.loc[(part["asset"] == asset).to_numpy(), "label"] = label
    return part


def test_push_needs_a_shared_path(client: object, store: Path) -> None:
    conn = ab.connect("local", path=str(store))
    ddf = conn.assets("big").annot.load_dask(partition_size=PAGE)
    with pytest.raises(ab.PushError, match="shared"):
        ddf.annot.push()


def test_push_from_the_workers_lands_once_and_a_stale_frame_conflicts(
    client: object, store: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    conn = ab.connect("local", path=str(store))
    other = conn.annotations("big")  # a second notebook, loaded before the push
    ddf = conn.assets("big").annot.load_dask(partition_size=PAGE, shared=shared).persist()
    edited = ddf.map_partitions(_relabel, "img0050", "truck", meta=ddf._meta).persist()
    report = edited.annot.push(shared=shared)
    assert report["updated"].sum() == PER_ASSET and report["created"].sum() == 0
    now = conn.annotations("big")
    assert (now.loc[now["asset"] == "img0050", "label"] == "truck").all()
    assert (now["label"] == "truck").sum() == PER_ASSET
    again = edited.annot.push(shared=shared)  # the same edits again: already landed, nothing written twice
    assert again["updated"].sum() == 0
    assert len(conn.annotations("big")) == len(now)
    other.loc[(other["asset"] == "img0050").to_numpy(), "label"] = "bus"
    with pytest.raises(ab.ConflictError):
        other.annot.push()
    assert (conn.annotations("big")["label"] == "truck").sum() == PER_ASSET
