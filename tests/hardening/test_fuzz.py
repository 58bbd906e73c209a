"""Issue 16: every reader and every backend's response parser, fuzzed with structure-aware mutations (`fuzz.py`).

The property: a named error (`FormatError` naming the file and a line or field; `MalformedResponse` /
`CorruptStore` for a backend), or a frame whose rows build; never a bare exception, never a write. Runs are
derandomized (the same cases in CI every time, the kept seeds); cases that once broke a reader are kept as
``@example``s. ``FUZZ_EXAMPLES=<n>`` runs more cases per target locally. The counts a run saw are printed at the
end of the session (``-s``) for the issue's note.

To fuzz a new backend, add one line to `BACKENDS`: ``Backend("name", seed_wire_annotations, parse_a_list)``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annotebook as ab
from annotebook import schema
from tests.hardening.fuzz import Backend, mutate_file, mutate_json

DATA = Path(__file__).resolve().parents[1] / "formats" / "data"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
#: what the fuzzers saw, for the note: cases, named errors by class, frames, bare exceptions
SEEN: Counter[str] = Counter()

#: format -> its seed: a golden file or folder (written from the vendors' documentation)
FORMATS = {
    "coco": "coco/instances.json",
    "coco ": "coco/person_keypoints.json",
    "csv_four_corner": "csv_boxes/four_corner_pixels_bom_crlf.csv",
    "csv_width_height": "csv_boxes/width_height_pixels.csv",
    "labelstudio": "labelstudio/task_format.json",
    "labelstudio ": "labelstudio/regions.json",
    "superannotate": "superannotate/project",
    "vi_jsonl": "vi_jsonl/upload.jsonl",
    "vi_jsonl ": "vi_jsonl/export",
    "voc": "voc/labelimg",
    "voc ": "voc/devkit",
    "yolo": "yolo/ultralytics",
    "yolo_keras": "yolo_keras/train",
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_and_judge(path: Path, fmt: str, target: Path) -> None:
    SEEN["cases"] += 1
    before = _snapshot(path.parent if path.is_file() else path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a path outside the dataset, a dropped field: warned, not failed
            anns = ab.read(path, format=fmt)
    except ab.FormatError as exc:
        SEEN["named FormatError"] += 1
        assert exc.file, f"a FormatError that names no file: {exc}"
        assert exc.line is not None or exc.field, f"a FormatError that names neither line nor field: {exc}"
    except ab.AnnotebookError as exc:
        SEEN[f"named {type(exc).__name__}"] += 1
    except Exception as exc:
        SEEN["bare exceptions"] += 1
        raise AssertionError(f"{fmt}: {target.name} mutated gave a bare {type(exc).__name__}: {exc}") from exc
    else:
        SEEN["frames"] += 1
        problems = ab.validate(anns, anns.annot.assets if len(anns) else None)
        SEEN["frames that validate" if problems.empty else "frames with validation problems listed"] += 1
        assert anns["id"].notna().all() and anns["kind"].isin(schema.KINDS).all()
    after = _snapshot(path.parent if path.is_file() else path)
    if after != before:
        SEEN["partial writes"] += 1
        raise AssertionError(f"reading {path} wrote into its folder")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@FUZZ
@given(data=st.data())
def test_reader_fuzz(fmt: str, data: st.DataObject) -> None:
    seed = DATA / FORMATS[fmt]
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        copy = work / seed.name
        (shutil.copytree if seed.is_dir() else shutil.copy)(seed, copy)
        target, mutated = data.draw(mutate_file(copy if copy.is_dir() else work))
        target.write_bytes(mutated)
        _read_and_judge(copy, fmt.strip(), target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- backends' response parsers ------------------------------------------------------------------------------------
def _state(cls: Any) -> Any:
    return cls(n_assets=4, image_dir=tempfile.mkdtemp(prefix="fuzz-sim-"))


def _public(items: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in a.items() if not k.startswith("_")} for a in items]


def _nexus_seed() -> list[dict[str, Any]]:
    from annotebook.testing.nexus_state import NexusState

    return _public(list(_state(NexusState).annotations.values())[:12])


def _nexus_parse(items: list[Any]) -> list[dict[str, Any]]:
    from annotebook.backends.nexus import row_from_wire
    from annotebook.backends.nexus_rows import _objects

    return [r for a in _objects(items, "a page", "id") if (r := row_from_wire(a, "d")) is not None]


def _vi_seed() -> list[dict[str, Any]]:
    from annotebook.testing.vi_state import ViState

    ds = next(iter(_state(ViState).datasets.values()))
    return _public(list(ds.annotations.values())[:12])


def _vi_parse(items: list[Any]) -> list[dict[str, Any]]:
    from annotebook.backends.vi import rows_from_wire

    return rows_from_wire(items, "d", "a", {0: "cat", 1: "dog"})[0]


def _clarifai_seed() -> list[dict[str, Any]]:
    from annotebook.testing.clarifai_state import ClarifaiState

    return _public(list(_state(ClarifaiState).annotations.values())[:12])


def _clarifai_parse(items: list[Any]) -> list[dict[str, Any]]:
    from annotebook.backends.clarifai import rows_from_wire

    return [r for a in items for r in rows_from_wire(a, "d")]


def _pictograph_seed() -> list[dict[str, Any]]:
    from annotebook.testing.pictograph_state import PictographState

    return _public([a for items in _state(PictographState).annotations.values() for a in items][:12])


def _pictograph_parse(items: list[Any]) -> list[dict[str, Any]]:
    from annotebook.backends.pictograph_rows import rows_from_wire

    return rows_from_wire(items, "d", "a", (640.0, 480.0))


def _superannotate_seed() -> list[dict[str, Any]]:
    from annotebook.testing.superannotate_state import SuperAnnotateState

    return list(_state(SuperAnnotateState).annotations.values())[:3]


def _superannotate_parse(items: list[Any]) -> list[dict[str, Any]]:
    from annotebook.backends.superannotate_rows import rows_from_item

    return [r for doc in items for r in rows_from_item(doc, "d")[1]]


def _labelstudio_seed() -> list[dict[str, Any]]:
    data = Path(__file__).parents[1] / "formats" / "data" / "labelstudio"
    tasks: list[dict[str, Any]] = []
    for name in ("task_format.json", "regions.json"):
        loaded = json.loads((data / name).read_text())
        tasks += loaded if isinstance(loaded, list) else [loaded]
    return tasks


def _labelstudio_parse(items: list[Any]) -> list[dict[str, Any]]:
    from annotebook.backends.labelstudio import read_server_tasks

    return read_server_tasks(items, "d")


BACKENDS = [
    Backend("nexus", _nexus_seed, _nexus_parse),
    Backend("vi", _vi_seed, _vi_parse),
    Backend("clarifai", _clarifai_seed, _clarifai_parse),
    Backend("pictograph", _pictograph_seed, _pictograph_parse),
    Backend("superannotate", _superannotate_seed, _superannotate_parse),  # merged during issue 16: one line
    Backend("labelstudio", _labelstudio_seed, _labelstudio_parse),
]


@pytest.fixture(scope="module")
def seeds() -> Iterator[dict[str, list[dict[str, Any]]]]:
    yield {b.name: b.seed() for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])
@FUZZ
@given(data=st.data())
def test_backend_parser_fuzz(backend: Backend, data: st.DataObject, seeds: dict[str, list[dict[str, Any]]]) -> None:
    wire = data.draw(mutate_json(seeds[backend.name]))
    SEEN["cases"] += 1
    try:
        rows = backend.parse(wire)
        frame = schema.annotations_frame(rows)
        ab.validate(frame)
    except ab.MalformedResponse:
        SEEN["named MalformedResponse"] += 1
    except Exception as exc:
        SEEN["bare exceptions"] += 1
        raise AssertionError(f"{backend.name}: a mutated answer gave a bare {type(exc).__name__}: {exc}") from exc
    else:
        SEEN["frames"] += 1


def test_backend_seeds_parse_whole(seeds: dict[str, list[dict[str, Any]]]) -> None:
    """The seeds are valid: each parses into rows (a fuzzer on a broken seed would prove nothing)."""
    for b in BACKENDS:
        assert len(schema.annotations_frame(b.parse(seeds[b.name]))) > 0, b.name


# -- the local store: its file's cells mutated ---------------------------------------------------------------------
COLUMNS = ["x0", "points", "visibility", "attributes", "kind", "value", "span_start", "frame", "rev", "asset"]


@pytest.fixture(scope="module")
def store_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("ANNOTEBOOK_HOME", str(tmp_path_factory.mktemp("home")))
    path = tmp_path_factory.mktemp("store-seed")
    ab.connect("local", path=str(path)).datasets()
    return path


CELLS = ["x", "[", "[[1, 2", "{}", '[["a"]]', "1e400", -1, 2**62, 1.5, b"\x00\xff", "null", '{"a": [', None]


@FUZZ
@given(column=st.sampled_from(COLUMNS), value=st.sampled_from(CELLS))
def test_local_store_fuzz(store_seed: Path, column: str, value: Any) -> None:
    work = Path(tempfile.mkdtemp(prefix="fuzz-store-"))
    try:
        shutil.copytree(store_seed, work / "s")
        with sqlite3.connect(work / "s" / "store.sqlite") as db:
            db.execute(f'UPDATE annotations SET "{column}" = ? WHERE pk = (SELECT MAX(pk) FROM annotations)', (value,))
        SEEN["cases"] += 1
        try:
            frame = ab.connect("local", path=str(work / "s")).annotations("shapes")
            ab.validate(frame)
        except (ab.CorruptStore, ab.MalformedResponse) as exc:
            SEEN[f"named {type(exc).__name__}"] += 1
            assert "store.sqlite" in str(exc)
        except Exception as exc:
            SEEN["bare exceptions"] += 1
            raise AssertionError(f"local store with {column} = {value!r}: bare {type(exc).__name__}: {exc}") from exc
        else:
            SEEN["frames"] += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def teardown_module() -> None:
    print("\nfuzz counts:", dict(sorted(SEEN.items())))


# -- kept cases: answers and files the fuzzers found breaking a parser, each now a named error -------------------
_NEXUS = {"id": "annot_1", "assetId": "asset_1", "tag": "cat", "boundType": "Rectangle", "createDate": 1}
KEPT_WIRE = [
    ("nexus", [{**_NEXUS, "bound": []}]),  # min() of an empty sequence
    ("nexus", [{**_NEXUS, "bound": [["v", 0.1], [0.2, 0.3]]}]),  # a coordinate that is text
    ("nexus", [{**_NEXUS, "bound": [[0.1], [0.2]]}]),  # a point without y
    ("nexus", [{**_NEXUS, "boundType": "Keypoints", "bound": [[0.1, 0.2, "x"]]}]),
    ("vi", [{"annotationId": "a", "spec": {"contents": ["Caption"]}}]),  # contents that are a list
    (
        "clarifai",
        [
            {
                "id": "a",
                "input_id": "i",
                "data": {
                    "regions": [
                        {
                            "region_info": {
                                "bounding_box": {"top_row": [0.1], "left_col": 0.1, "bottom_row": 0.5, "right_col": 0.5}
                            },
                            "data": {"concepts": [{"id": "c", "name": "c", "value": 1}]},
                        }
                    ]
                },
            }
        ],
    ),
    ("pictograph", [{"id": "a", "name": "cat", "type": "bbox", "bounding_box": {"x": "1", "y": 2, "w": [3], "h": 4}}]),
]


@pytest.mark.parametrize(("backend", "wire"), KEPT_WIRE, ids=[f"{b}-{i}" for i, (b, _) in enumerate(KEPT_WIRE)])
def test_kept_wire_cases_are_named(backend: str, wire: list[Any]) -> None:
    parse = next(b.parse for b in BACKENDS if b.name == backend)
    with pytest.raises(ab.MalformedResponse):
        schema.annotations_frame(parse(wire))


def test_kept_coco_area_that_is_a_list_is_named(tmp_path: Path) -> None:
    import json

    doc = json.loads((DATA / "coco" / "instances.json").read_text())
    doc["annotations"][0]["area"] = [1, 2]
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(ab.FormatError, match=r"annotations\[0\]\.area"):
        ab.read(tmp_path / "c.json")


def test_kept_vi_jsonl_asset_with_a_width_only_is_named(tmp_path: Path) -> None:
    line = {"asset": {"filename": "a.png", "width": 10}, "contents": {"type": "PhraseGrounding", "caption": "a cat",
            "groundedPhrases": []}}  # fmt: skip
    (tmp_path / "v.jsonl").write_text(__import__("json").dumps(line) + "\n")
    with pytest.raises(ab.FormatError, match="height"):
        ab.read(tmp_path / "v.jsonl", format="vi_jsonl")


def test_kept_coco_polygon_with_a_list_among_its_coordinates_is_named(tmp_path: Path) -> None:
    import json

    doc = json.loads((DATA / "coco" / "instances.json").read_text())
    ann = next(a for a in doc["annotations"] if isinstance(a.get("segmentation"), list) and a["segmentation"])
    ann["segmentation"][0][1] = [1, 2]
    (tmp_path / "c.json").write_text(json.dumps(doc))
    with pytest.raises(ab.FormatError, match=r"segmentation"):
        ab.read(tmp_path / "c.json")
