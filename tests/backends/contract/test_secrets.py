"""No key in any output: reprs, diffs, reports, exceptions (their causes and the requests they carry) and DEBUG logs."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import pytest

from annotebook.errors import AnnotebookError

from .conftest import Platform


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was raised from or during."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is not None and all(e is not s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__]
    return seen


def exception_texts(exc: BaseException) -> dict[str, str]:
    """Everything a user can print of an exception: messages, reprs, tables, reports, the requests behind it."""
    out = {"traceback": "".join(traceback.format_exception(exc))}
    for i, e in enumerate(_chain(exc)):
        out[f"{i}: repr"], out[f"{i}: str"] = repr(e), str(e)
        for name in ("conflicts", "report", "problems"):
            value = getattr(e, name, None)
            if value is not None:
                out[f"{i}: .{name}"] = repr(value) + str(getattr(value, "_repr_html_", lambda: "")())
        for name in ("request", "response"):
            try:
                message: Any = getattr(e, name, None)
            except RuntimeError:  # httpx: "The .request property has not been set"
                continue
            if message is not None:
                out[f"{i}: .{name}"] = f"{message!r} {getattr(message, 'url', '')} {list(message.headers.items())}"
                out[f"{i}: .{name}.headers"] = repr(message.headers)
    return out


@pytest.mark.parametrize("failure", ["conflict", "outage", "rejected write"])
def test_no_key_in_any_output(platform: Platform, caplog: pytest.LogCaptureFixture, failure: str) -> None:
    """A load, a push and a failed push: a conflict; where the platform is remote, an outage or a refused write."""
    if failure != "conflict":
        platform.skip_unless("remote", "no HTTP to fail")
    caplog.set_level(logging.DEBUG)
    shown: dict[str, str] = {}
    conn, other = platform.connect(), platform.connect()
    frame, stale = platform.load(conn), platform.load(other)
    shown |= {"connection": f"{conn!r} {conn}", "backend": f"{conn.backend!r} {conn.backend}", "frame": repr(frame)}
    shown["frame.to_string"] = frame.to_string()
    x = platform.pick(frame)
    platform.edit(frame, x, 1)
    changes = frame.annot.diff()
    shown["diff"] = f"{changes!r} {changes} {changes._repr_html_()} {changes.to_frame().to_string()}"
    report = frame.annot.push()
    shown["report"] = f"{report!r} {report} {report._repr_html_()} {report.to_dict()}"
    if failure == "conflict":  # (that this is a ConflictError is test_two_writers' business)
        platform.edit(stale, x, 2)
        try:
            shown["second report"] = repr(stale.annot.push())
        except AnnotebookError as exc:
            shown |= exception_texts(exc)
    else:
        platform.edit(frame, platform.pick(frame), 3)
        if failure == "outage":  # every request answered 503, retries included
            fault, cleared = {"down": 10**6}, {"down": 0}
        else:  # the first write refused (503, not applied), then an outage past the client's retries
            fault, cleared = {"reject_after": 1, "down_after": 50}, {"reject_after": None, "down_after": 0, "down": 0}
        for name in fault:
            platform.switch(name)
        platform.faults.update(fault)
        with pytest.raises(AnnotebookError) as info:
            frame.annot.push()
        platform.faults.update(cleared)
        shown |= exception_texts(info.value)
    shown |= {f"log {i}: {r.name}": r.getMessage() for i, r in enumerate(caplog.records)}
    shown["log text"] = caplog.text
    if platform.key is None:
        return  # the local store has no key: nothing to leak, and nothing above failed
    leaks = {where: text.replace(platform.key, "<KEY>")[:400] for where, text in shown.items() if platform.key in text}
    assert not leaks, f"the key shows in {len(leaks)} output(s): {leaks}"
