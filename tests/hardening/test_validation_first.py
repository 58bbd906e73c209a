"""Issue 16: what a platform would refuse half way is refused before any write, so "push again" always finishes."""

from __future__ import annotations

import pandas as pd
import pytest

import annotebook as ab
from tests.backends.conftest import NEXUS_KEY, nexus_sim  # noqa: F401 - the simulator fixture


def test_nexus_label_with_surrounding_spaces_is_refused_before_any_write(nexus_sim) -> None:  # noqa: F811
    conn = ab.connect("nexus", project=nexus_sim.state.project_id, key=NEXUS_KEY, endpoint=nexus_sim.url)
    anns = conn.assets().annot.load()
    before = len(nexus_sim.state.annotations)
    tags_before = [t["name"] for t in nexus_sim.state.tags]
    asset = anns["asset"].iloc[0]
    new = pd.concat([anns, *[anns.annot.new_box(asset, " cat ", (0.1, 0.1, 0.2 + i / 100, 0.3)) for i in range(7)]])
    with pytest.raises(ab.NotCarried, match="spaces around it") as info:
        new.annot.push()
    assert len(info.value.problems) == 7 and set(info.value.problems["column"]) == {"label"}
    assert len(nexus_sim.state.annotations) == before  # nothing written: not 4 of 7
    assert [t["name"] for t in nexus_sim.state.tags] == tags_before  # not even the tag
    new["label"] = new["label"].str.strip()
    report = new.annot.push()
    assert len(report.created) == 7 and len(nexus_sim.state.annotations) == before + 7
    assert len(new.annot.diff().added) == 0


@pytest.mark.parametrize("label", ["", "  ", "a\nb", "tab\there"])
def test_other_labels_nexus_would_refuse(label: str) -> None:
    from annotebook.validation import label_refusals

    assert label_refusals(label, "Nexus")
    assert label_refusals("fine label", "Nexus") == []
