"""What the network does to a push: a write cut or failed after it landed, 429s, outages, a rejected write, a body cut
short (R-11, R-14). Each fault comes from the simulator's `Faults` switches."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest

from annotebook.errors import BackendError, ConflictError, PushError

from .conftest import Platform, contents, ids_and_revs
from .edits import Content, content_of, count, ids_of, live

#: a push of one edit, one add and one delete takes fewer writes than this on every platform
MAX_WRITES = 40


def crud(platform: Platform, frame: pd.DataFrame, variant: int) -> dict[str, Content]:
    """Edit one row, add one, delete one (on another asset), in place; the contents to look for afterwards."""
    x = platform.pick(frame)
    y = platform.pick(frame, not_on=(frame.loc[frame.id == x, "asset"].iloc[0],))
    edited = platform.edit(frame, x, variant)
    gone = content_of(frame, y)
    frame.annot.delete(frame.id == y)
    return {"edited": edited, "added": content_of(frame, platform.add(frame)), "gone": gone}


def push_under_fault(frame: pd.DataFrame, what: str) -> str:
    """Push with a fault armed: "ok" (reconciled within the push) or "PushError"; anything else fails the test."""
    try:
        report = frame.annot.push()
    except PushError as exc:
        assert exc.report is not None, f"{what}: a PushError without the report of what landed"
        return "PushError"
    except ConflictError as exc:
        pytest.fail(f"{what}: the push called its own landed write a conflict: {exc}")
    assert report.ok, f"{what}: the push returned failures instead of raising PushError: {report!r}"
    return "ok"


@pytest.mark.parametrize("switch", ["cut_after", "fail_after"])
def test_a_push_cut_at_each_write_then_run_again_lands_exactly_once(platform: Platform, switch: str) -> None:
    """``switch=N``: the N-th write lands but its answer is lost (cut connection, or a 500). For N = 1, 2, ... until
    the push needs fewer writes: the push fails or reconciles, the same frame pushed again lands the rest once."""
    platform.skip_unless("remote", "no HTTP to cut")
    faults = platform.switch(switch)
    seen = []
    for n in range(1, MAX_WRITES):
        frame = platform.fresh()
        before = len(live(frame))
        wanted = crud(platform, frame, n)
        faults.update({switch: n})
        first = push_under_fault(frame, f"{switch}={n}")
        spent = getattr(faults, switch) is None
        faults.update({switch: None})
        report = frame.annot.push()
        assert report.ok and len(frame.annot.diff()) == 0, f"{switch}={n}: pushing again said {report!r}"
        fresh = platform.fresh()
        got = {k: count(fresh, c) for k, c in wanted.items()}
        assert got == {"edited": 1, "added": 1, "gone": 0}, f"{switch}={n} ({first}): {got}"
        assert len(live(fresh)) == before and contents(fresh, platform.digits) == contents(frame, platform.digits), (
            f"{switch}={n}: a duplicate"
        )
        assert ids_and_revs(fresh) == ids_and_revs(frame)
        seen.append(f"{n}:{first if spent else 'not reached'}")
        if not spent:
            break
    else:
        pytest.fail(f"the push still had writes left after {MAX_WRITES} of them")
    print(f"{platform.name} {switch}: " + ", ".join(seen))


def test_429_with_retry_after_is_waited_out_on_a_load_and_a_push(platform: Platform) -> None:
    platform.skip_unless("remote", "no HTTP to rate-limit")
    faults = platform.faults
    conn = platform.connect()
    faults.update({"rate_limit": 2, "retry_after": 0.1})
    frame = platform.load(conn)
    assert faults.rate_limit == 0 and len(frame) == len(platform.fresh())
    edited = platform.edit(frame, platform.pick(frame), 1)
    faults.update({"rate_limit": 2, "retry_after": 0.1})
    report = frame.annot.push()
    assert report.ok and faults.rate_limit == 0
    assert count(platform.fresh(), edited) == 1


def test_5xx_on_reads_are_retried(platform: Platform) -> None:
    platform.skip_unless("remote", "no HTTP to fail")
    whole = platform.fresh()
    platform.faults.update({"down": 2})
    frame = platform.fresh()
    assert platform.faults.down == 0
    assert contents(frame, platform.digits) == contents(whole, platform.digits) and sorted(frame.id) == sorted(whole.id)


def test_a_rejected_write_is_a_push_error_with_what_landed_and_the_rest_pushes_again(platform: Platform) -> None:
    platform.skip_unless("atomic", "a push lands whole or not at all", wanted=False)
    faults = platform.switch("reject_after")
    frame = platform.fresh()
    x = platform.pick(frame)
    y = platform.pick(frame, not_on=(frame.loc[frame.id == x, "asset"].iloc[0],))
    wanted = {x: platform.edit(frame, x, 1), y: platform.edit(frame, y, 2)}
    # the second write is refused, then the platform is down past the client's retries: a refusal that lasts
    # (a lone 503 on a create is reconciled by a re-read and sent again, which is right and lands everything)
    # the second write request, where edits travel one a request; the first where one request carries a batch
    # (Clarifai's 128): then nothing lands, which is still a report of what did
    batched = (platform.capabilities.batch_size or 0) > 1
    faults.update({"reject_after": 1 if batched else 2, "down_after": 50})
    with pytest.raises(PushError) as info:
        frame.annot.push()
    faults.update({"down": 0, "down_after": 0})
    report = info.value.report
    for name in ("created", "updated", "deleted", "failed"):
        assert hasattr(report, name), f"the PushError's report has no {name!r}: {report!r}"
    landed = set(map(str, report.updated))
    assert report.failed and landed < {x, y}, report
    fresh = platform.fresh()
    # an edit made as a new copy (recreate) whose old row is not deleted yet is not landed: the report names the
    # copy, and the platform holds it beside the old row until the next push finishes the edit
    copies = {str(f["id"]) for f in report.failed if f.get("new_id")}
    assert {r: count(fresh, c) for r, c in wanted.items()} == {r: int(r in landed | copies) for r in wanted}
    for r in landed:  # the frame holds what landed: the platform's id and revision
        (now,) = ids_of(frame, wanted[r])
        assert ids_and_revs(fresh).get(now) == ids_and_revs(frame)[now]
    left = frame.annot.diff()
    assert set(left.modified["id"]) == {x, y} - landed and not len(left.conflicts)
    again = frame.annot.push()
    assert again.ok and set(map(str, again.updated)) == {x, y} - landed, again  # only the rest is sent
    fresh = platform.fresh()
    assert all(count(fresh, c) == 1 for c in wanted.values()) and len(live(fresh)) == len(live(frame))


def _named(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def test_a_truncated_body_on_a_load_is_a_named_backend_error(platform: Platform) -> None:
    platform.skip_unless("remote", "no HTTP body to truncate")
    faults = platform.switch("truncate")
    conn = platform.connect()
    faults.update({"truncate": 1000})  # every answer: a retry cannot hide it
    caught: Any = None
    try:
        platform.load(conn)
    except Exception as exc:
        caught = exc
    finally:
        faults.update({"truncate": 0})
    assert caught is not None, "a load of truncated bodies succeeded"
    assert isinstance(caught, BackendError) and _named(caught, "MalformedResponse"), repr(caught)
    message = str(caught)
    assert re.search(rf"\b{platform.name}\b", message, re.I) and re.search(r"json|malformed|truncat", message, re.I), (
        message
    )
    assert len(platform.load(conn)) > 0  # the connection is still good
