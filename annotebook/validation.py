"""Check an annotations frame against the data contract, reporting every problem at once (R-12).

:func:`validate` returns a DataFrame with one row per problem: ``id`` (the row's id; NaN for a problem of the
whole frame or of a row without an id), ``column`` (the contract column at fault) and ``problem`` (what is
wrong, in words). :func:`check` raises :class:`~annotebook.errors.ValidationError` carrying that frame.

Rows marked ``deleted`` are checked for identity only (dataset, id): they are on their way out, so their
content does not matter, and a bad row must stay deletable.

Examples
--------
>>> from annotebook import schema
>>> anns = schema.annotations_frame([{"dataset": "d", "asset": "a", "id": "1", "label": "cat", "kind": "box",
...                                    "x0": 0.5, "y0": 0.1, "x1": 0.2, "y1": 0.4, "rotation": 0.0}])
>>> validate(anns).to_dict("records")
[{'id': '1', 'column': 'x0', 'problem': 'x0 = 0.5 > x1 = 0.2'}]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from annotebook.errors import ValidationError
from annotebook.schema import ANNOTATION_COLUMNS, KINDS, POINT_KINDS, STR

__all__ = ["PROBLEM_COLUMNS", "check", "label_refusals", "validate"]

PROBLEM_COLUMNS = ("id", "column", "problem")

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
#: row positions (-1: the whole frame), the column at fault, one problem text for all of them or one each
Found = tuple[IntArray, str, str | list[str]]

_LABELLED_KINDS = ("box", "polygon", "polyline", "keypoints", "tag")
_BOXLIKE = ("box", "grounding")
_SEP = "\x1f"  # joins dataset and id / asset into one key; cannot occur in a sensible name


def validate(anns: pd.DataFrame, assets: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every contract problem of ``anns`` as a DataFrame of (id, column, problem); empty when it is valid.

    ``assets``, when given, adds the check that each row's (dataset, asset) is in the assets table.

    >>> validate(schema.annotations_frame([]))  # doctest: +SKIP
    Empty DataFrame
    Columns: [id, column, problem]
    """
    view = _View(anns)
    found = [*_missing_columns(anns), *_datasets(view), *_identity(view), *_deleted_flags(view)]
    for checker in _ROW_CHECKS:
        found.extend(checker(view))
    if assets is not None:
        found.extend(_unknown_assets(view, assets))
    return _problem_frame(view, found)


def check(anns: pd.DataFrame, assets: pd.DataFrame | None = None) -> None:
    """Raise :class:`ValidationError` (with the problems frame) when :func:`validate` finds any problem.

    >>> check(anns)  # doctest: +SKIP
    ValidationError: 1 problem in the frame ...
    """
    problems = validate(anns, assets)
    if len(problems):
        n = len(problems)
        raise ValidationError(f"{n} problem{'s' if n != 1 else ''} in the frame (see .problems)", problems)


# ------------------------------------------------------------------------------------------------------------
# The frame, seen once


class _View:
    """Arrays of ``anns`` that several checks share, computed on first use."""

    def __init__(self, anns: pd.DataFrame) -> None:
        self.anns = anns

    def has(self, *columns: str) -> bool:
        return all(c in self.anns.columns for c in columns)

    @cached_property
    def live(self) -> BoolArray:
        """Rows not marked deleted: the rows whose content is checked."""
        if not self.has("deleted"):
            return np.ones(len(self.anns), dtype=bool)
        return ~self.anns["deleted"].fillna(False).to_numpy(dtype=bool)

    @cached_property
    def kind(self) -> npt.NDArray[Any]:
        return _objects(self.anns["kind"])

    def of_kind(self, *kinds: str) -> BoolArray:
        """Live rows of one of ``kinds``."""
        return self.live & self.anns["kind"].isin(kinds).to_numpy(dtype=bool)

    def number(self, column: str) -> npt.NDArray[np.float64]:
        return pd.to_numeric(self.anns[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def blank(self, column: str) -> BoolArray:
        """Missing values, and empty strings, of ``column``."""
        s = self.anns[column]
        return np.asarray(s.isna().to_numpy(dtype=bool) | (s == "").to_numpy(dtype=bool, na_value=False))

    def keys(self, column: str) -> pd.Series:
        """``dataset`` + separator + ``column`` per row (NaN where missing): matches rows within a dataset."""
        dataset = self.anns["dataset"] if self.has("dataset") else pd.Series("", index=self.anns.index)
        return dataset.astype(STR) + _SEP + self.anns[column].astype(STR)


def _problem_frame(view: _View, found: list[Found]) -> pd.DataFrame:
    """The problems frame: whole-frame problems first, then by row position, in the order the checks ran."""
    found = [f for f in found if len(f[0])]
    if not found:
        return pd.DataFrame({c: pd.Series([], dtype=STR) for c in PROBLEM_COLUMNS})
    pos = np.concatenate([f[0] for f in found])
    columns = np.concatenate([np.full(len(f[0]), f[1], dtype=object) for f in found])
    texts = np.concatenate([np.asarray(f[2] if isinstance(f[2], list) else [f[2]] * len(f[0])) for f in found])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    ids = np.full(len(pos), np.nan, dtype=object)
    if view.has("id"):
        ids[pos >= 0] = view.anns["id"].to_numpy(dtype=object)[pos[pos >= 0]]
    frame = pd.DataFrame({"id": ids, "column": columns[order], "problem": texts[order]})
    return frame.astype(STR)


def _objects(s: pd.Series) -> npt.NDArray[Any]:
    """The values of ``s`` as Python objects, None where missing."""
    out = s.to_numpy(dtype=object, copy=True)
    out[pd.isna(out)] = None
    return out


def _at(mask: BoolArray) -> IntArray:
    return np.flatnonzero(mask)


def _fmt(values: npt.NDArray[Any]) -> list[str]:
    """Numbers as Python prints them (full precision, no ``np.float64(...)``)."""
    return [repr(v) for v in values.tolist()]


# ------------------------------------------------------------------------------------------------------------
# Whole-frame and identity checks: every row, deleted or not


def _missing_columns(anns: pd.DataFrame) -> list[Found]:
    """One problem per missing contract column, naming merge suffix pairs that stand in its place (R-8)."""
    found: list[Found] = []
    for col in ANNOTATION_COLUMNS:
        if col in anns.columns:
            continue
        stand_ins = [c for c in anns.columns if isinstance(c, str) and _is_suffixed(c, col)]
        text = f"column {col!r} is missing"
        if stand_ins:
            names = ", ".join(repr(c) for c in stand_ins)
            text += (
                f"; {names} stand in its place, the suffixes of a merge with the assets table: merge with "
                'suffixes=("", "_asset") or use anns.annot.merge_assets(assets)'
            )
        found.append((np.array([-1], dtype=np.intp), col, text))
    return found


def _is_suffixed(name: str, column: str) -> bool:
    """``status_x`` / ``status.1`` / ``status-ann`` for ``status``; not ``frames`` for ``frame``."""
    return name.startswith(column) and len(name) > len(column) and name[len(column)] in "_.-"


def _datasets(view: _View) -> list[Found]:
    if not view.has("dataset"):
        return []
    dataset = view.anns["dataset"]
    found: list[Found] = [(_at(view.blank("dataset")), "dataset", "dataset is missing")]
    names = sorted(str(d) for d in dataset.dropna().unique())
    if len(names) > 1:
        shown = ", ".join(repr(n) for n in names[:5]) + (" ..." if len(names) > 5 else "")
        text = f"rows of {len(names)} datasets in one frame ({shown}); a frame holds one dataset's rows"
        found.append((np.array([-1], dtype=np.intp), "dataset", text))
    return found


def _identity(view: _View) -> list[Found]:
    """Missing ids, and ids used by more than one row of a dataset (R-1): one problem per duplicated id."""
    if not view.has("id"):
        return []
    missing = _at(view.anns["id"].isna().to_numpy(dtype=bool))
    labels = view.anns.index[missing]
    found: list[Found] = [
        (missing, "id", [f"id is missing (the row at index label {label!r})" for label in labels.tolist()])
    ]
    codes, uniques = pd.factorize(view.keys("id"))
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    first = ~pd.Series(codes).duplicated().to_numpy(dtype=bool)
    dup = _at((codes >= 0) & first & (counts[np.maximum(codes, 0)] > 1))
    dataset_of = [str(k).split(_SEP, 1)[0] for k in uniques[codes[dup]]]
    texts = [
        f"id is used by {n} rows of dataset {d!r}; ids are unique within a dataset"
        for n, d in zip(counts[codes[dup]].tolist(), dataset_of, strict=True)
    ]
    found.append((dup, "id", texts))
    return found


def _deleted_flags(view: _View) -> list[Found]:
    if not view.has("deleted") or view.anns["deleted"].dtype == bool:
        return []
    return [(_at(view.anns["deleted"].isna().to_numpy(dtype=bool)), "deleted", "deleted is missing (NaN)")]


# ------------------------------------------------------------------------------------------------------------
# Row checks: live rows only


def _kinds(view: _View) -> list[Found]:
    if not view.has("kind"):
        return []
    missing = view.live & view.blank("kind")
    unknown = _at(view.live & ~missing & ~view.anns["kind"].isin(KINDS).to_numpy(dtype=bool))
    expected = ", ".join(KINDS)
    texts = [f"unknown kind {k!r}; expected one of {expected}" for k in view.kind[unknown]]
    return [(_at(missing), "kind", "kind is missing"), (unknown, "kind", texts)]


def _labels(view: _View) -> list[Found]:
    if not view.has("kind", "label"):
        return []
    rows = _at(view.of_kind(*_LABELLED_KINDS) & view.blank("label"))
    return [(rows, "label", [f"label is missing; a {k} row needs one" for k in view.kind[rows]])]


def _boxes(view: _View) -> list[Found]:
    """Box and grounding corners: present, in [0, 1], ordered; box rotation present."""
    if not view.has("kind", "x0", "y0", "x1", "y1"):
        return []
    rows = view.of_kind(*_BOXLIKE)
    found: list[Found] = []
    coords = {c: view.number(c) for c in ("x0", "y0", "x1", "y1")}
    for col, v in coords.items():
        found.append((_at(rows & np.isnan(v)), col, f"{col} is missing (NaN)"))
        out = _at(rows & ((v < 0) | (v > 1)))
        found.append((out, col, [f"{col} = {x} is outside [0, 1]" for x in _fmt(v[out])]))
    for lo, hi in (("x0", "x1"), ("y0", "y1")):
        bad = _at(rows & (coords[lo] > coords[hi]))
        pairs = zip(_fmt(coords[lo][bad]), _fmt(coords[hi][bad]), strict=True)
        found.append((bad, lo, [f"{lo} = {a} > {hi} = {b}" for a, b in pairs]))
    if view.has("rotation"):
        rotation = view.number("rotation")
        bad = _at(view.of_kind("box") & ~np.isfinite(rotation))
        texts = [f"rotation is {r}; a box needs a finite rotation (0 for none)" for r in _fmt(rotation[bad])]
        found.append((bad, "rotation", texts))
    return found


def _tags(view: _View) -> list[Found]:
    if not view.has("kind", "value"):
        return []
    rows = _at(view.of_kind("tag") & view.anns["value"].isna().to_numpy(dtype=bool))
    return [(rows, "value", "value is missing; a tag row is true or false")]


def _texts(view: _View) -> list[Found]:
    if not view.has("kind", "text"):
        return []
    blank = view.blank("text")
    return [
        (_at(view.of_kind("caption") & blank), "text", "text is missing; a caption row holds the caption"),
        (_at(view.of_kind("qa") & blank), "text", "text is missing; a qa row holds the question"),
    ]


def _scores(view: _View) -> list[Found]:
    if not view.has("score"):
        return []
    score = view.number("score")
    bad = _at(view.live & ((score < 0) | (score > 1)))
    return [(bad, "score", [f"score = {s} is outside [0, 1]" for s in _fmt(score[bad])])]


def _attributes(view: _View) -> list[Found]:
    if not view.has("attributes"):
        return []
    values = view.anns["attributes"].to_numpy(dtype=object)
    candidates = _at(view.live & ~pd.isna(values))
    bad = candidates[[not isinstance(v, Mapping) for v in values[candidates]]]
    texts = [f"attributes must be a dict or None, not {type(v).__name__}" for v in values[bad]]
    return [(bad, "attributes", texts)]


def _unknown_assets(view: _View, assets: pd.DataFrame) -> list[Found]:
    """Rows whose (dataset, asset) is not in ``assets``; only asked for when the assets table is at hand."""
    if not view.has("asset"):
        return []
    datasets = view.anns["dataset"].to_numpy(dtype=object) if view.has("dataset") else np.array([], dtype=object)
    first = datasets[0] if len(datasets) else None
    if isinstance(first, str) and bool((datasets == first).all()):  # one dataset: the asset column alone
        known = assets.loc[(assets["dataset"] == first).to_numpy(dtype=bool), "asset"].astype(STR).dropna()
        absent = ~view.anns["asset"].astype(STR).isin(known).to_numpy(dtype=bool)
        keys = None
    else:
        table = assets["dataset"].astype(STR) + _SEP + assets["asset"].astype(STR)
        keys = view.keys("asset")
        absent = ~keys.isin(table.dropna()).to_numpy(dtype=bool)
    bad = _at(view.live & ~view.blank("asset") & absent)
    if keys is None:
        keys = view.keys("asset").iloc[bad] if len(bad) else pd.Series([], dtype=STR)
        texts = [f"asset {str(k).replace(_SEP, '/')} is not in the assets table" for k in keys.to_numpy()]
        return [(bad, "asset", texts)]
    texts = [f"asset {str(k).replace(_SEP, '/')} is not in the assets table" for k in keys.to_numpy()[bad]]
    return [(bad, "asset", texts)]


def _missing_assets(view: _View) -> list[Found]:
    if not view.has("asset"):
        return []
    return [(_at(view.live & view.blank("asset")), "asset", "asset is missing")]


# ------------------------------------------------------------------------------------------------------------
# Groundings: a phrase of a caption row in the frame


def _groundings(view: _View) -> list[Found]:
    """Parent, span and phrase of grounding rows; checked against the caption only when it is in the frame."""
    if not view.has("kind", "id", "parent", "span_start", "span_end", "text"):
        return []
    rows = view.of_kind("grounding")
    if not rows.any():
        return []
    start, end = view.number("span_start"), view.number("span_end")
    spans = rows & ~np.isnan(start) & ~np.isnan(end)
    reversed_ = _at(spans & ((start < 0) | (end < start)))
    found: list[Found] = [
        (_at(rows & view.blank("parent")), "parent", "parent is missing; it names the caption row's id"),
        (_at(rows & np.isnan(start)), "span_start", "span_start is missing"),
        (_at(rows & np.isnan(end)), "span_end", "span_end is missing"),
        (
            reversed_,
            "span_start",
            [f"[{s}, {e}) is not a span" for s, e in _int_pairs(start, end, reversed_)],
        ),
        (_at(rows & view.blank("text")), "text", "text is missing; a grounding row holds its phrase"),
    ]
    parent = _parent_positions(view, rows)
    found.append(_non_caption_parents(view, parent))
    caption = _caption_texts(view, parent)
    spans[reversed_] = False
    found.extend(_spelling(view, spans & pd.notna(caption), caption, start, end))
    return found


def _int_pairs(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], at: IntArray) -> list[tuple[int, int]]:
    return list(zip(a[at].astype(np.int64).tolist(), b[at].astype(np.int64).tolist(), strict=True))


def _non_caption_parents(view: _View, parent: IntArray) -> Found:
    found = parent >= 0
    parent_kind = _objects(view.anns["kind"])[np.maximum(parent, 0)]
    bad = _at(found & (parent_kind != "caption"))
    names = view.anns["parent"].to_numpy(dtype=object)[bad]
    return (
        bad,
        "parent",
        [f"parent {p!r} is a {k} row, not a caption" for p, k in zip(names, parent_kind[bad], strict=True)],
    )


def _caption_texts(view: _View, parent: IntArray) -> npt.NDArray[Any]:
    """Per row, the text of its parent caption row when that is in the frame; else None."""
    text = _objects(view.anns["text"])[np.maximum(parent, 0)]
    is_caption = (parent >= 0) & (view.kind[np.maximum(parent, 0)] == "caption")
    return np.where(is_caption, text, np.full(len(text), None, dtype=object))


def _spelling(
    view: _View,
    rows: BoolArray,
    caption: npt.NDArray[Any],
    start: npt.NDArray[np.float64],
    end: npt.NDArray[np.float64],
) -> list[Found]:
    """Spans past the caption's end, and spans whose caption text is not the row's phrase."""
    sd = np.dtypes.StringDType()
    length = np.zeros(len(rows), dtype=np.int64)
    length[rows] = np.strings.str_len(caption[rows].astype(sd))
    past = _at(rows & (end > length))
    past_texts = [
        f"span_end {e} is past the caption's {n} characters" for e, n in _int_pairs(end, length.astype(float), past)
    ]
    text = _objects(view.anns["text"])
    asked = rows & (end <= length) & pd.notna(text)
    spelled = np.ones(len(rows), dtype=bool)
    if asked.any():
        s, e, phrase = start[asked].astype(np.int64), end[asked].astype(np.int64), text[asked].astype(sd)
        spelled[asked] = np.strings.startswith(caption[asked].astype(sd), phrase, s, e) & (
            np.strings.str_len(phrase) == e - s
        )
    wrong = _at(asked & ~spelled)
    texts = [
        f"the caption's text[{s}:{e}] is {c[s:e]!r}, not this row's text {t!r}"
        for (s, e), c, t in zip(_int_pairs(start, end, wrong), caption[wrong], text[wrong], strict=True)
    ]
    return [(past, "span_end", past_texts), (wrong, "text", texts)]


def _parent_positions(view: _View, rows: BoolArray) -> IntArray:
    """Position of each grounding row's parent row (same dataset) in the frame; -1 when absent or unasked."""
    keys = view.keys("id")
    unique = _at(~keys.duplicated().to_numpy(dtype=bool) & keys.notna().to_numpy(dtype=bool))
    at = pd.Index(keys.iloc[unique]).get_indexer(view.keys("parent")[rows])
    out = np.full(len(rows), -1, dtype=np.intp)
    out[rows] = np.where(at >= 0, unique[np.maximum(at, 0)], -1)
    return out


# ------------------------------------------------------------------------------------------------------------
# Point kinds: the one Python loop, over polygon, polyline and keypoints rows only


def _points(view: _View) -> list[Found]:
    if not view.has("kind", "points"):
        return []
    rows = _at(view.of_kind(*POINT_KINDS))
    points = view.anns["points"].to_numpy(dtype=object)[rows]
    visibility = view.anns["visibility"].to_numpy(dtype=object)[rows] if view.has("visibility") else [None] * len(rows)
    clean = _clean_shapes(view.kind[rows], points)
    if clean.any():  # rows that pass every check, found for all at once: only the rest go through the loop
        rows, points, visibility = rows[~clean], points[~clean], np.asarray(visibility, dtype=object)[~clean]
    by_column: dict[str, tuple[list[int], list[str]]] = {"points": ([], []), "visibility": ([], [])}
    for p, kind, pts, vis in zip(rows.tolist(), view.kind[rows], points, visibility, strict=True):
        for column, text in _point_problems(kind, pts, vis):
            by_column[column][0].append(p)
            by_column[column][1].append(text)
    return [(np.asarray(at, dtype=np.intp), col, texts) for col, (at, texts) in by_column.items()]


Problems = list[tuple[str, str]]
Parts = tuple[tuple[float, ...], ...]


def _clean_shapes(kinds: npt.NDArray[Any], points: npt.NDArray[Any]) -> BoolArray:
    """Polygon and polyline rows in normal form (tuples of float tuples) with no problem `_point_problems` would
    find: every part of even length, polygon rings of 3+ vertices, a polyline's one part of 2+, every coordinate
    in [0, 1]. Judged for all rows at once over their flattened coordinates; anything unusual is left unclean."""
    n = len(points)
    clean = np.zeros(n, dtype=bool)
    polygon, polyline = kinds == "polygon", kinds == "polyline"
    shaped = np.fromiter(
        (type(p) is tuple and len(p) > 0 and all(type(q) is tuple for q in p) for p in points), dtype=bool, count=n
    )
    one_part = np.fromiter((type(p) is tuple and len(p) == 1 for p in points), dtype=bool, count=n)
    pick = np.flatnonzero(shaped & (polygon | (polyline & one_part)))
    if not len(pick):
        return clean
    parts = [q for p in points[pick] for q in p]
    lengths = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
    per_row = np.fromiter((len(p) for p in points[pick]), dtype=np.intp, count=len(pick))
    try:
        flat = np.fromiter((c for q in parts for c in q), dtype=np.float64, count=int(lengths.sum()))
    except (TypeError, ValueError):  # a coordinate that is not a number: the loop names it
        return clean
    inside = (flat >= 0.0) & (flat <= 1.0)  # NaN fails too
    bad_part = (lengths % 2 == 1) | (lengths < 4)
    bad_part |= np.repeat(polygon[pick], per_row) & (lengths < 6)
    if len(flat):
        starts = np.cumsum(lengths) - lengths
        nonempty = lengths > 0
        outside = np.zeros(len(parts), dtype=bool)
        outside[nonempty] = np.logical_and.reduceat(inside, starts[nonempty]) == 0
        bad_part |= outside
    row_starts = np.cumsum(per_row) - per_row
    clean[pick] = np.logical_or.reduceat(bad_part, row_starts) == 0
    return clean


def _point_problems(kind: str, points: Any, visibility: Any) -> Problems:
    """(column, problem) pairs of one polygon, polyline or keypoints row."""
    if points is None or (isinstance(points, float) and math.isnan(points)):
        return [("points", f"points is missing; a {kind} row needs its vertices")]
    parts = _as_parts(points)
    if parts is None:
        return [("points", "points must be a tuple of parts, each a flat tuple (x, y, x, y, ...)")]
    found = [
        ("points", f"part {k + 1} has an odd number of coordinates ({len(p)})")
        for k, p in enumerate(parts)
        if len(p) % 2
    ]
    if kind == "polygon":
        return found + _polygon_problems(parts) + _coordinate_problems(parts, "ring")
    if len(parts) != 1:
        found.append(("points", f"points has {_count(len(parts), 'part')}; a {kind} row has exactly one"))
    if kind == "polyline":
        return found + _polyline_problems(parts) + _coordinate_problems(parts, "part")
    return found + _keypoint_problems(parts, visibility)


def _as_parts(points: Any) -> Parts | None:
    """``points`` as a tuple of float tuples; None when it is not a sequence of flat number sequences."""
    sequence = (tuple, list, np.ndarray)
    if not isinstance(points, sequence) or not all(isinstance(p, sequence) for p in points):
        return None
    try:
        return tuple(tuple(float(c) for c in (np.ravel(p) if isinstance(p, np.ndarray) else p)) for p in points)
    except (TypeError, ValueError):
        return None


def _polygon_problems(parts: Parts) -> Problems:
    if not parts:
        return [("points", "points has no rings; a polygon needs at least one")]
    return [
        ("points", f"ring {k + 1} has {_vertices(len(p) // 2)}; a polygon ring needs at least 3")
        for k, p in enumerate(parts)
        if len(p) // 2 < 3
    ]


def _polyline_problems(parts: Parts) -> Problems:
    n = sum(len(p) // 2 for p in parts)
    return [] if n >= 2 else [("points", f"points has {_vertices(n)}; a polyline needs at least 2")]


def _coordinate_problems(parts: Parts, noun: str) -> Problems:
    """NaN and out-of-range coordinates of every vertex, counted, with the first of each as an example."""
    if all(0.0 <= c <= 1.0 for p in parts for c in p):  # the common case, in one pass; NaN fails it too
        return []
    coords = [(c, f"{noun} {k + 1} vertex {i // 2 + 1}") for k, p in enumerate(parts) for i, c in enumerate(p)]
    nan = [where for c, where in coords if math.isnan(c)]
    out = [(c, where) for c, where in coords if not (0.0 <= c <= 1.0 or math.isnan(c))]
    found: Problems = []
    if nan:
        found.append(("points", f"{_count(len(nan), 'coordinate')} NaN, first at {nan[0]}"))
    if out:
        c, where = out[0]
        found.append(("points", f"{_count(len(out), 'coordinate')} outside [0, 1], first {c!r} at {where}"))
    return found


def _keypoint_problems(parts: Parts, visibility: Any) -> Problems:
    """Visibility: one of 0, 1, 2 per point; labelled points inside [0, 1] and not NaN."""
    xy = [(p[i], p[i + 1]) for p in parts for i in range(0, len(p) - 1, 2)]
    vis = _as_visibility(visibility)
    found = _visibility_problems(vis, len(xy))
    if found or vis is None:  # visibility unusable: a point is labelled when it has a coordinate
        labelled = [i for i, (x, y) in enumerate(xy) if not (math.isnan(x) and math.isnan(y))]
    else:
        labelled = [i for i, v in enumerate(vis) if v != 0]
    nan = [i for i in labelled if math.isnan(xy[i][0]) or math.isnan(xy[i][1])]
    out = [i for i in labelled if i not in nan and not (0.0 <= xy[i][0] <= 1.0 and 0.0 <= xy[i][1] <= 1.0)]
    if nan:
        found.append(("points", f"{_count(len(nan), 'labelled point')} with NaN, first point {nan[0] + 1}"))
    if out:
        x, y = xy[out[0]]
        where = f"first point {out[0] + 1} at ({x!r}, {y!r})"
        found.append(("points", f"{_count(len(out), 'labelled point')} outside [0, 1], {where}"))
    return found


def _visibility_problems(vis: tuple[Any, ...] | None, n_points: int) -> Problems:
    points = _count(n_points, "point")
    if vis is None:
        return [("visibility", f"visibility must be a tuple of one int per point ({points})")]
    found: Problems = []
    if len(vis) != n_points:
        found.append(("visibility", f"visibility has {_count(len(vis), 'value')} for {points}"))
    bad = [repr(v) for v in vis if v not in (0, 1, 2) or isinstance(v, bool)]
    if bad:
        found.append(("visibility", f"visibility values are 0, 1 or 2, not {', '.join(bad[:3])}"))
    return found


def _as_visibility(visibility: Any) -> tuple[Any, ...] | None:
    if isinstance(visibility, np.ndarray):
        return tuple(visibility.ravel().tolist())
    return tuple(visibility) if isinstance(visibility, (tuple, list)) else None


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _vertices(n: int) -> str:
    return _count(n, "vertex", "vertices")


_ROW_CHECKS: tuple[Callable[[_View], list[Found]], ...] = (
    _missing_assets,
    _kinds,
    _labels,
    _boxes,
    _points,
    _tags,
    _texts,
    _groundings,
    _scores,
    _attributes,
)


def label_refusals(label: Any, platform: str) -> list[str]:
    """Why ``platform`` would refuse ``label`` half way through a push (empty, surrounding spaces, a line break), as
    ``"label: ..."`` reasons for a backend's ``check_rows``: refused before any write, so "push again" finishes.

    Nexus trims a tag's name when it creates the tag and then refuses annotations that name the untrimmed one: a push
    of 7 rows labelled ``" cat "`` created 4 and could never finish (issue 16).

    >>> label_refusals(" cat ", "Nexus")
    ["label: ' cat ' has spaces around it, which Nexus trims from a tag's name; use 'cat'"]
    """
    if label is None or (isinstance(label, float) and math.isnan(label)) or label is pd.NA:
        return []
    text = str(label)
    if not text.strip():
        return [f"label: {text!r} is blank, which {platform} refuses as a tag name"]
    out = []
    if text != text.strip():
        out.append(
            f"label: {text!r} has spaces around it, which {platform} trims from a tag's name; use {text.strip()!r}"
        )
    if any(c in text for c in "\n\r\t\0"):
        out.append(f"label: {text!r} holds a line break, tab or NUL, which {platform} refuses in a tag's name")
    return out
