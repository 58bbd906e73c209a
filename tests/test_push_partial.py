"""A push that fails part way: what landed is traced and written back, what did not stays an edit to push again."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import annotebook as ab
from annotebook.backends._http import ConnectionFailed
from annotebook.errors import PushError
from annotebook.sync.push import PushReport, push


class HalfWay:
    """Wraps the store as a platform that patches one row a request and loses its connection on the second."""

    def __init__(self, backend):
        self.inner = backend
        self.name = backend.name
        self.capabilities = dataclasses.replace(backend.capabilities, atomic=False, batch_size=1)
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def patch_rows(self, dataset: str, rows: pd.DataFrame) -> dict[str, str]:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionFailed("connection cut")
        return self.inner.patch_rows(dataset, rows)


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
