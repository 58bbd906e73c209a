"""Datature Vi JSONL: both dialects from the Vi docs and SDK, spans, round trips, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import annotebook as ab
from annotebook import schema
from annotebook.errors import FormatError
from annotebook.formats import Tables, find_format
from annotebook.formats._kept import FieldNotKept
from annotebook.formats.vi_jsonl import load_vi_jsonl, save_vi_jsonl, tables_to_vi_jsonl, vi_jsonl_to_tables

DATA = Path(__file__).parent / "data" / "vi_jsonl"
COLS = ["asset", "kind", "label", "text", "answer", "span_start", "span_end", "x0", "y0", "x1", "y1"]


def _content(df: pd.DataFrame) -> list[list]:
    out = []
    for r in df[COLS].to_dict("records"):
        out.append([None if (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v for v in r.values()])
    return out


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    ca, cb = _content(a), _content(b)
    assert len(ca) == len(cb)
    for ra, rb in zip(ca, cb, strict=True):
        for x, y in zip(ra, rb, strict=True):
            same = math.isclose(x, y, abs_tol=1e-9) if isinstance(x, float) and isinstance(y, float) else x == y
            assert same, (ra, rb)


def test_upload_form_golden_from_the_docs() -> None:
    anns = ab.read(DATA / "upload.jsonl")
    assert find_format(DATA / "upload.jsonl").name == "vi_jsonl"
    assert anns["kind"].tolist() == ["caption", "grounding", "grounding", "qa"]
    cap, cat, couch, qa = (anns.iloc[i] for i in range(4))
    assert cap["text"] == "A cat sitting on a couch" and cap["asset"] == "asset_123"
    assert (cat["text"], cat["span_start"], cat["span_end"], cat["parent"]) == ("cat", 2, 5, cap["id"])
    assert [cat[c] for c in ("x0", "y0", "x1", "y1")] == [0.1, 0.2, 0.5, 0.7]
    assert cap["text"][couch["span_start"] : couch["span_end"]] == "couch"
    assert (qa["text"], qa["answer"]) == ("What is the cat doing?", "Sitting on a couch")
    assert anns["id"].tolist() == ["asset_123#0", "asset_123#1", "asset_123#2", "asset_123#3"]


def test_export_form_golden_tokens_to_characters_and_splits() -> None:
    t = load_vi_jsonl(DATA / "export")
    anns = t.annotations
    cap = anns.iloc[0]
    assert (cap["id"], cap["label"], cap["split"]) == ("annot_1", "pets", "train")
    g = anns[anns["kind"] == "grounding"]
    assert [cap["text"][s:e] for s, e in zip(g["span_start"], g["span_end"], strict=True)] == [
        "A cat",
        "couch",
        "cat toy",
        "cat toy",
    ]
    assert g["span_start"].tolist() == [0, 19, 36, 36]  # token 9 is the second "cat", not the first
    assert (g["parent"] == "annot_1").all()
    qa = anns[anns["kind"] == "qa"]
    assert qa["text"].tolist() == ["Is it daytime?", "How many cars?"]  # sorted by "order"
    assert (qa["split"] == "validate").all()
    assert t.assets[["asset", "width", "height"]].values.tolist() == [["cat.jpg", 1920, 1080], ["street.jpg", 640, 480]]


def test_character_offsets_and_corner_pair_bounds_are_accepted() -> None:
    line = {
        "id": "x",
        "asset": {"type": "Image", "filename": "a.jpg", "width": 4, "height": 4},
        "contents": {
            "type": "PhraseGrounding",
            "caption": "two  spaces here",
            "groundedPhrases": [
                {
                    "phrase": "spaces",
                    "startTokenIndex": 5,
                    "endTokenIndex": 11,
                    "bounds": [[0.1, 0.2], [0.5, 0.2], [0.5, 0.6], [0.1, 0.6]],
                }
            ],
        },
    }
    anns = vi_jsonl_to_tables(json.dumps(line)).annotations
    g = anns.iloc[1]
    assert (g["span_start"], g["span_end"]) == (5, 11)
    assert [g[c] for c in ("x0", "y0", "x1", "y1")] == [0.1, 0.2, 0.5, 0.6]


def test_write_is_the_upload_form_and_reads_back_exactly(tmp_path: Path) -> None:
    t = load_vi_jsonl(DATA / "export")
    out = save_vi_jsonl(t, tmp_path / "out.jsonl")[0]
    first = json.loads(out.read_text().splitlines()[0])
    assert set(first) == {"asset_id", "caption", "grounded_phrases", "category"}
    assert first["grounded_phrases"][0] == {"phrase": "A cat", "bbox": [0.1, 0.2, 0.5, 0.7]}
    back = load_vi_jsonl(out)
    _assert_same(t.annotations, back.annotations)
    assert tables_to_vi_jsonl(back) == out.read_text()


def test_repeated_and_overlapping_phrases_get_an_explicit_span_only_when_needed() -> None:
    caption = "a dog and a dog near a black dog"
    spans = [(2, 5), (2, 5), (12, 15), (29, 32), (23, 32)]
    rows = [{"dataset": "d", "asset": "p.png", "id": "c", "kind": "caption", "text": caption}]
    rows += [
        {
            "dataset": "d",
            "asset": "p.png",
            "id": f"g{i}",
            "kind": "grounding",
            "parent": "c",
            "text": caption[s:e],
            "span_start": s,
            "span_end": e,
            "x0": 0.0,
            "y0": 0.0,
            "x1": 1.0,
            "y1": 1.0 / (i + 1),
        }
        for i, (s, e) in enumerate(spans)
    ]
    t = Tables(schema.annotations_frame(rows), schema.assets_frame([]), schema.labels_frame([]))
    text = tables_to_vi_jsonl(t)
    phrases = json.loads(text)["grounded_phrases"]
    assert ["span" in p for p in phrases] == [False, False, True, False, False]
    back = vi_jsonl_to_tables(text).annotations
    got = sorted(zip(back["span_start"].iloc[1:], back["span_end"].iloc[1:], back["y1"].iloc[1:], strict=True))
    assert got == sorted((s, e, 1.0 / (i + 1)) for i, (s, e) in enumerate(spans))


def test_round_trip_edge_cases_unicode_and_borders(tmp_path: Path) -> None:
    caption = "Ünïcödé 猫 on a mat, 猫"
    rows = [
        {"dataset": "d", "asset": "dir/x.png", "id": "c1", "kind": "caption", "text": caption, "label": "pets"},
        {
            "dataset": "d",
            "asset": "dir/x.png",
            "id": "g1",
            "kind": "grounding",
            "parent": "c1",
            "text": "猫",
            "span_start": 8,
            "span_end": 9,
            "x0": 0.0,
            "y0": 0.0,
            "x1": 1.0,
            "y1": 1.0,
        },
        {
            "dataset": "d",
            "asset": "dir/x.png",
            "id": "g2",
            "kind": "grounding",
            "parent": "c1",
            "text": "猫",
            "span_start": 20,
            "span_end": 21,
            "x0": 0.1 / 3,
            "y0": 0.2,
            "x1": 0.1 / 3 + 1 / 640,
            "y1": 0.2 + 1 / 480,
        },
        {"dataset": "d", "asset": "dir/x.png", "id": "q1", "kind": "qa", "text": 'Say "hi"?', "answer": "hi\nthere"},
        {"dataset": "d", "asset": "y.png", "id": "c2", "kind": "caption", "text": "no phrases"},
    ]
    t = Tables(schema.annotations_frame(rows), schema.assets_frame([]), schema.labels_frame([]))
    save_vi_jsonl(t, tmp_path)
    back = load_vi_jsonl(tmp_path / "annotations.jsonl")
    order = ["c1", "g1", "g2", "c2", "q1"]  # the writer puts an asset's captions first, then its qa line
    _assert_same(t.annotations.set_index("id").loc[[*order[:3], "q1", "c2"]].reset_index(), back.annotations)


def test_a_span_that_does_not_spell_its_phrase_is_refused_and_a_missing_one_is_found(tmp_path: Path) -> None:
    rows = [
        {"dataset": "d", "asset": "a", "id": "c", "kind": "caption", "text": "a red car"},
        {
            "dataset": "d",
            "asset": "a",
            "id": "g",
            "kind": "grounding",
            "parent": "c",
            "text": "car",
            "span_start": 0,
            "span_end": 3,
            "x0": 0,
            "y0": 0,
            "x1": 1,
            "y1": 1,
        },
    ]
    t = Tables(schema.annotations_frame(rows), schema.assets_frame([]), schema.labels_frame([]))
    with pytest.raises(FormatError, match=r"row g: span .* does not spell 'car'"):
        save_vi_jsonl(t, tmp_path / "o.jsonl")
    t.annotations.loc[1, ["span_start", "span_end"]] = pd.NA
    save_vi_jsonl(t, tmp_path / "o.jsonl")
    back = load_vi_jsonl(tmp_path / "o.jsonl").annotations
    assert back[["span_start", "span_end"]].iloc[1].tolist() == [6, 9]


def test_unsupported_rows_raise_unless_skipped(tmp_path: Path) -> None:
    rows = [
        {"dataset": "d", "asset": "a", "id": "b", "kind": "box", "x0": 0, "y0": 0, "x1": 1, "y1": 1},
        {
            "dataset": "d",
            "asset": "a",
            "id": "orphan",
            "kind": "grounding",
            "parent": "nope",
            "text": "x",
            "x0": 0,
            "y0": 0,
            "x1": 1,
            "y1": 1,
        },
        {"dataset": "d", "asset": "a", "id": "q", "kind": "qa", "text": "?", "answer": "!"},
    ]
    t = Tables(schema.annotations_frame(rows), schema.assets_frame([]), schema.labels_frame([]))
    with pytest.raises(FormatError, match=r"field 'kind'.*'b' \(box\), 'orphan' \(grounding\)"):
        save_vi_jsonl(t, tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()
    save_vi_jsonl(t, tmp_path / "o.jsonl", skip_unsupported=True)
    assert len(load_vi_jsonl(tmp_path / "o.jsonl").annotations) == 1


GOOD = '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "cat", "bbox": [0, 0, 1, 1]}]}'


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "cat", "bbox": [0, 0, 1', "json"),
        ('["asset_id"]', "json"),
        ('{"caption": "x"}', "asset_id"),
        ('{"asset_id": "a", "caption": 5}', "caption"),
        ('{"asset_id": "a", "caption": "a cat", "grounded_phrases": {}}', "grounded_phrases"),
        (
            '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"bbox": [0, 0, 1, 1]}]}',
            "grounded_phrases[0].phrase",
        ),
        (
            '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "cat", "bbox": [0, 0, 1]}]}',
            "grounded_phrases[0].bbox",
        ),
        (
            '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "cat", "bbox": [0, NaN, 1, 1]}]}',
            r"grounded_phrases[0].bbox[1]",
        ),
        (
            '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "cat", "bbox": [0.5, 0, 0.1, 1]}]}',
            "grounded_phrases[0].bbox",
        ),
        (
            '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "dog", "bbox": [0, 0, 1, 1]}]}',
            "grounded_phrases[0].phrase",
        ),
        (
            '{"asset_id": "a", "caption": "a cat", "grounded_phrases": [{"phrase": "cat", "span": [0, 3], '
            '"bbox": [0, 0, 1, 1]}]}',
            "grounded_phrases[0].span",
        ),
        ('{"asset_id": "a", "contents": {"interactions": [{"question": "q"}]}}', "contents.interactions[0].answer"),
        (
            '{"asset": {"filename": "a", "width": -3, "height": 4}, "contents": {"type": "Vqa", "interactions": []}}',
            "asset.width",
        ),
        ('{"asset": {"filename": "a"}, "contents": {"type": "Freeform"}}', "contents.type"),
        (
            '{"asset": {"filename": "a"}, "contents": {"type": "PhraseGrounding", "caption": "a cat", '
            '"groundedPhrases": [{"phrase": "cat", "startTokenIndex": 0, "endTokenIndex": 1, '
            '"bounds": [[0, 0, 1, 1]]}]}}',
            "contents.groundedPhrases[0].startTokenIndex",
        ),
        (
            '{"asset": {"filename": "a"}, "contents": {"type": "PhraseGrounding", "caption": "a cat", '
            '"groundedPhrases": [{"phrase": "cat", "startTokenIndex": "1", "bounds": []}]}}',
            "contents.groundedPhrases[0].startTokenIndex",
        ),
    ],
)
def test_hostile_lines_name_file_line_and_field(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=rf"bad.jsonl, line 3, field '{__import__('re').escape(field)}'"):
        load_vi_jsonl(path)


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (GOOD + "\r\n" + GOOD + "\r\n").encode())
    anns = load_vi_jsonl(path).annotations
    assert anns["id"].tolist() == ["a#0", "a#1", "a#2", "a#3"]
    assert find_format(path).name == "vi_jsonl"


def test_annot_save_from_a_frame_read_from_another_format(tmp_path: Path) -> None:
    """Label Studio captions -> Vi JSONL; everything else in that file is refused unless skipped."""
    anns = ab.read(Path(__file__).parent / "data" / "labelstudio" / "regions.json")
    with pytest.warns(FieldNotKept):  # what the target cannot hold is named (issue 16)
        anns.annot.save(tmp_path / "vi.jsonl", format="vijsonl", skip_unsupported=True)
    back = ab.read(tmp_path / "vi.jsonl")
    assert back["text"].tolist() == ["Cars parked in a street ☀"]
    assert back["asset"].tolist() == ["/data/upload/1/8c2f1e0a-street.png"]


def test_a_phrase_tag_is_written_as_the_tag_extension_and_read_back() -> None:
    line = {
        "asset_id": "a.jpg",
        "caption": "a cat and a dog",
        "grounded_phrases": [
            {"phrase": "cat", "bbox": [0.1, 0.1, 0.2, 0.2], "tag": "animal"},
            {"phrase": "dog", "bbox": [0.3, 0.3, 0.4, 0.4]},
        ],
    }
    tables = vi_jsonl_to_tables(json.dumps(line) + "\n")
    grounding = tables.annotations[tables.annotations["kind"] == "grounding"]
    assert grounding["label"].tolist()[0] == "animal" and pd.isna(grounding["label"].tolist()[1])
    written = json.loads(tables_to_vi_jsonl(tables))
    assert [p.get("tag") for p in written["grounded_phrases"]] == ["animal", None]
    with pytest.raises(FormatError, match=r"grounded_phrases\[0\]\.tag"):
        vi_jsonl_to_tables(json.dumps({**line, "grounded_phrases": [{**line["grounded_phrases"][0], "tag": 3}]}))
