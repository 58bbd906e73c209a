"""`evaluate` on small frames: the match table, summary, confusion with background, plots; the accessor."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from annotebook import schema
from annotebook.qa import evaluate, mistakes
from annotebook.qa.plots import label_counts, plot_confusion, plot_sizes

matplotlib.use("Agg")


def rows(prefix: str, specs: list[tuple], **extra: object) -> pd.DataFrame:
    return schema.annotations_frame(
        [
            {
                "dataset": "d",
                "asset": a,
                "id": f"{prefix}{k}",
                "label": lab,
                "kind": "box",
                "x0": x0,
                "y0": y0,
                "x1": x1,
                "y1": y1,
                "rotation": 0.0,
                **({"score": s} if s is not None else {}),
            }
            for k, (a, lab, x0, y0, x1, y1, s) in enumerate(specs)
        ]
    )


TRUTH = rows(
    "t",
    [
        ("a", "cat", 0.1, 0.1, 0.4, 0.4, None),
        ("a", "dog", 0.5, 0.5, 0.9, 0.9, None),
        ("b", "cat", 0.1, 0.1, 0.3, 0.3, None),
    ],
)
PREDS = rows(
    "p",
    [
        ("a", "cat", 0.11, 0.1, 0.4, 0.41, 0.9),  # TP
        ("a", "cat", 0.5, 0.5, 0.9, 0.9, 0.8),  # wrong label on the dog: FP, and the dog is FN
        ("b", "cat", 0.6, 0.6, 0.8, 0.8, 0.3),  # background: FP
    ],
)


def test_match_table_outcomes() -> None:
    ev = evaluate(TRUTH, PREDS, iou=0.5)
    m = ev.matches.set_index("id")
    assert m.loc[["t0", "t1", "t2"], "outcome"].tolist() == ["TP", "FN", "FN"]
    assert m.loc[["p0", "p1", "p2"], "outcome"].tolist() == ["TP", "FP", "FP"]
    assert m.loc["t0", "match"] == "p0" and m.loc["p0", "match"] == "t0" and m.loc["p0", "iou"] > 0.9


def test_summary_precision_recall_and_ap() -> None:
    s = evaluate(TRUTH, PREDS).summary()
    assert s.loc["cat", ["truth", "predicted", "TP", "FP", "FN"]].tolist() == [2, 3, 1, 2, 1]
    assert s.loc["cat", "precision"] == pytest.approx(1 / 3) and s.loc["cat", "recall"] == pytest.approx(0.5)
    assert s.loc["dog", "AP"] == 0.0 and s.loc["all", "TP"] == 1
    only_sure = evaluate(TRUTH, PREDS).summary(score=0.5)
    assert only_sure.loc["cat", "FP"] == 1


def test_confusion_has_background() -> None:
    c = evaluate(TRUTH, PREDS).confusion(score=0.5)
    assert c.loc["cat", "cat"] == 1 and c.loc["dog", "cat"] == 1 and c.loc["cat", "(background)"] == 1
    assert c.loc["(background)"].sum() == 0  # the 0.3 prediction is below the score threshold
    assert evaluate(TRUTH, PREDS).confusion(score=0.0).loc["(background)", "cat"] == 1


def test_crowd_regions_absorb_detections() -> None:
    truth = rows("t", [("a", "cat", 0.0, 0.0, 1.0, 1.0, None)]).assign(attributes=[{"iscrowd": 1}])
    preds = rows("p", [("a", "cat", 0.1, 0.1, 0.2, 0.2, 0.9), ("a", "cat", 0.3, 0.3, 0.4, 0.4, 0.8)])
    m = evaluate(truth, preds).matches
    assert set(m["outcome"]) == {"ignored"}


def test_plots_return_axes() -> None:
    ev = evaluate(TRUTH, PREDS)
    for ax in (
        ev.plot_pr(),
        ev.plot_confusion(),
        plot_confusion(ev.confusion(), normalize=True),
        label_counts(TRUTH),
        plot_sizes(TRUTH),
        plot_sizes(TRUTH, what="aspect"),
    ):
        assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ev.plot_pr().lines) == 2  # one curve per label with truth


def test_accessor_verbs() -> None:
    assert TRUTH.annot.qa(checks=["duplicate"]).empty
    assert TRUTH.annot.evaluate(PREDS, iou=0.5).summary().loc["cat", "TP"] == 1
    mk = TRUTH.annot.mistakes(PREDS)
    assert mk.set_index("id").loc["t1", "mistake"] == "label"  # the dog, called a cat with 0.8
    pd.testing.assert_frame_equal(mk, mistakes(TRUTH, PREDS))


def test_hand_built_predictions_without_dataset_or_score() -> None:
    """Predictions often come from a model's own code: no dataset column, no score; they still match."""
    assets = schema.assets_frame([{"dataset": "d", "asset": a, "width": 200, "height": 100} for a in ("a", "b")])
    preds = PREDS.drop(columns=["dataset", "score"])
    ev = evaluate(TRUTH, preds, assets=assets)
    assert ev.matches.set_index("id").loc["p0", "outcome"] == "TP"
    assert ev.summary().loc["cat", "TP"] == 1


def test_by_asset_worst_first() -> None:
    table = evaluate(TRUTH, PREDS).by_asset()
    assert table.index.tolist() == ["a", "b"] and table.loc["a", ["TP", "FP", "FN"]].tolist() == [1, 1, 1]
    assert table.loc["b", ["TP", "FP", "FN"]].tolist() == [0, 1, 1]


def test_worklist_groups_findings_and_suspects_by_asset() -> None:
    from annotebook.qa import qa, worklist

    anns = pd.concat([TRUTH, rows("d", [("a", "cat", 0.1, 0.1, 0.4, 0.4, None)])], ignore_index=True)
    items = worklist(qa(anns, checks=["duplicate", "rare_label"]))
    first = items.iloc[0]
    assert first["asset"] == "a" and first["ids"][:2] == ("d0", "t0") and first["severity"] == "warning"
    assert first["details"][0].startswith("exact duplicate of t0")
    suspects = worklist(mistakes(TRUTH, PREDS))
    assert set(suspects["asset"]) == {"a", "b"}
    assert all(isinstance(b, tuple) for b in suspects["boxes"]) and "severity" not in suspects.columns


def test_accessor_qa_takes_thresholds_per_check() -> None:
    near = rows("n", [("a", "cat", 0.1, 0.1, 0.4, 0.42, None)])
    anns = pd.concat([TRUTH, near], ignore_index=True)
    assert anns.annot.qa(checks=["duplicate"])["id"].tolist() == ["n0"]
    assert anns.annot.qa(checks=["duplicate"], duplicate={"iou": 0.99}).empty
