"""The traps of a first session, each refused with a clear message (or made impossible), on the sample store."""

from __future__ import annotations

import pydoc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import annotebook as ab


@pytest.fixture
def shapes(samples: ab.Connection) -> pd.DataFrame:
    return samples.assets("shapes").annot.load()


@pytest.mark.parametrize("value", ["noise", True, False, 1, 0.5, None, np.True_])
def test_delete_refuses_a_scalar(shapes: pd.DataFrame, value: object) -> None:
    with pytest.raises(TypeError, match=r"boolean mask .* or a list of row ids"):
        shapes.annot.delete(value)
    assert not shapes["deleted"].any()


def test_delete_takes_a_mask_or_a_list_of_ids(shapes: pd.DataFrame) -> None:
    assert shapes.annot.delete(shapes.label == "noise") == 2
    ids = shapes[shapes.label == "sqare"]["id"].tolist()
    assert shapes.annot.delete(ids) == len(ids) == 2
    assert shapes.annot.delete(shapes.label.eq("circle").to_numpy()[:0].tolist() or [False] * len(shapes)) == 0
    assert len(shapes.annot.diff().deleted) == 4
    with pytest.raises(KeyError, match="no row with id 'nope'"):
        shapes.annot.delete(["nope"])
    with pytest.raises(ValueError, match="the mask has 3 values"):
        shapes.annot.delete([True, False, True])


def test_a_typo_column_is_named_before_push(shapes: pd.DataFrame) -> None:
    shapes.loc[shapes.label == "sqare", "lable"] = "square"
    with pytest.raises(ab.ValidationError, match="did you mean 'label'"):
        shapes.annot.push()
    with pytest.raises(ab.ValidationError, match="'lable'"):
        shapes.annot.diff()
    shapes["labels"] = "x"  # a plural is a column of one's own
    del shapes["lable"]
    assert len(shapes.annot.diff()) == 0


def test_editing_an_id_says_so(shapes: pd.DataFrame) -> None:
    shapes.loc[shapes.index[0], "id"] = "999999"
    with pytest.raises(ab.TraceError, match="was `id` edited"):
        shapes.annot.diff()


def test_read_of_a_missing_file_says_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no such file or folder: .*missing\.json"):
        ab.read(tmp_path / "missing.json")


def test_gallery_of_an_empty_selection_says_it_is_empty(shapes: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no rows"):
        shapes[shapes.label == "no such label"].annot.gallery()


def test_edit_refuses_an_asset_that_does_not_exist(shapes: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"no asset 'shapes_999'.*close: shapes_0"):
        shapes.annot.edit("shapes_999")
    assert shapes.annot.edit("shapes_004").state.asset == "shapes_004"


def test_local_labels_are_not_fixed_and_read_files_are(shapes: pd.DataFrame, tmp_path: Path) -> None:
    from annotebook.widgets.editor import labels_fixed

    assert not labels_fixed(shapes)
    shapes.annot.save(tmp_path / "out.json", format="coco", skip_unsupported=True)
    assert labels_fixed(ab.read(tmp_path / "out.json"))


def test_help_texts_name_verbs_backends_and_options() -> None:
    accessor = pydoc.render_doc(pd.DataFrame.annot, renderer=pydoc.plaintext)
    assert "R-" not in accessor and "docs/" not in accessor
    assert "delete" in accessor and "a list of row ids" in accessor
    connect = pydoc.render_doc(ab.connect, renderer=pydoc.plaintext)
    for word in ("local", "nexus", "vi", "clarifai", "pictograph", "project=", "user_id=", "path="):
        assert word in connect, word


def test_dir_shows_the_public_names_only() -> None:
    names = dir(ab)
    assert "annotations" not in names and "Any" not in names and "TYPE_CHECKING" not in names
    assert {"connect", "read", "samples", "ValidationError"} <= set(names)
    assert callable(ab.samples.reset)


def test_plot_labels_uses_the_labels_colours_and_a_typo_stands_out(shapes: pd.DataFrame) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import to_hex

    from annotebook.colors import label_color

    ax = shapes.annot.plot_labels()
    labels = shapes.annot.labels
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    bars = {}
    for patch in ax.patches:
        y = round(patch.get_y() + patch.get_height() / 2)
        bars.setdefault(ticks[y], to_hex(patch.get_facecolor()))
    assert bars["circle"] == labels.set_index("name").loc["circle", "color"]
    typo = bars["sqare"]
    assert typo == label_color("sqare", labels) and typo not in set(labels["color"])
    hue = matplotlib.colors.rgb_to_hsv(matplotlib.colors.to_rgb(typo))[0]
    for c in labels["color"]:
        h, s, _ = matplotlib.colors.rgb_to_hsv(matplotlib.colors.to_rgb(c))
        if s > 0.15:
            assert min(abs(h - hue), 1 - abs(h - hue)) > 0.08, (c, typo)


def test_samples_reset_puts_shapes_back(samples: ab.Connection) -> None:
    anns = samples.assets("shapes").annot.load()
    n = len(anns)
    anns.annot.add_box("shapes_000", "circle", (0.1, 0.1, 0.2, 0.2))
    anns.annot.push()
    assert len(samples.assets("shapes").annot.load()) == n + 1
    conn = ab.samples.reset(samples.backend.path)
    assert len(conn.assets("shapes").annot.load()) == n
