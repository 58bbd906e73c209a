"""A push that fails part way: what landed is traced and written back, what did not stays an edit to push again."""

from __future__ import annotations

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends.base import ApplyResult, Changes
from annotebook.errors import PushError
from annotebook.sync.push import PushReport, push


class HalfWay:
    """Wraps a backend: applies the first edit only, then fails as a remote backend does on a cut connection."""

    def __init__(self, backend):
        self.inner = backend
        self.name, self.capabilities = backend.name, backend.capabilities

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def apply(self, changes: Changes) -> ApplyResult:
        first = Changes(changes.dataset, changes.creates.iloc[:0], changes.updates.iloc[:1], changes.deletes.iloc[:0])
        result = self.inner.apply(first)
        result.failed.append({"id": None, "op": "write", "error": "connection cut"})
        raise PushError("push failed part way", result)


def test_what_landed_is_written_back_and_the_rest_pushes_again(conn: ab.Connection, anns: pd.DataFrame) -> None:
    ids = anns["id"].tolist()[:2]
    anns.loc[anns.id.isin(ids), "label"] = "edited"
    with pytest.raises(PushError) as info:
        push(anns, backend=HalfWay(conn.backend))
    report = info.value.report
    assert isinstance(report, PushReport) and not report.ok
    assert report.updated == [ids[0]] and report.failed[0]["error"] == "connection cut"
    again = anns.annot.diff()  # the landed edit is traced: only the other one is left to push
    assert again.modified["id"].tolist() == [ids[1]] and not len(again.conflicts)
    assert anns.annot.push().updated == [ids[1]]
    assert not len(anns.annot.diff())
    assert (conn.annotations("t").set_index("id").loc[ids, "label"] == "edited").all()
