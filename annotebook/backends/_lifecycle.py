"""The lifecycle of a remote import or export, written once for every platform backend.

An import session and an export go through the same steps on every platform: files registered, uploaded to the signed
URLs the platform gave and committed (or the session abandoned when anything fails); a job polled to its end under a
progress bar and a deadline; its log read as a table; an archive downloaded and extracted safely. What differs is only
the wire: how a platform words one poll, how often it may be polled, what its deadline message says, where its
archive lies. So a platform writes those (a `Poll` from its status answer, a schedule, a message, its targets) and
these functions do the rest: Nexus and Vi here, and the platforms after them.

>>> steady(2.0)(1), round(quick_first(1.0)(1), 3), quick_first(1.0)(20)
(2.0, 0.075, 1.0)
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..errors import BackendError, MalformedResponse
from ._http import SignedUrls
from ._remote import ProgressBar, extract_zip, progress_bar, put_signed
from .transfer_report import logs_frame

__all__ = [
    "Poll",
    "concat_logs",
    "download",
    "fetch_archive",
    "log_table",
    "move_bar",
    "quick_first",
    "steady",
    "upload_registered",
    "utc_time",
    "wait_for",
    "wait_with_bar",
]

#: the size of one ranged GET of a download: a cut costs at most this much again
CHUNK = 8 << 20


# -- polling -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Poll:
    """What one poll of a running job said: ``done`` of ``total`` steps, whether it ``finished`` (for good or ill)
    and whether it ``failed``; ``status`` is the platform's answer, for the caller to read what else it needs."""

    done: int
    total: int
    finished: bool
    failed: bool = False
    status: Mapping[str, Any] = field(default_factory=dict)


def steady(interval: float) -> Callable[[int], float]:
    """A poll schedule that waits ``interval`` seconds before every poll after the first."""
    return lambda polls: float(interval)


def quick_first(interval: float, first: float = 0.05, growth: float = 1.5) -> Callable[[int], float]:
    """A poll schedule that starts short and grows to ``interval``, since small jobs end in a second and should not
    keep a user waiting a whole interval: delay n (1 before the second poll) is ``min(interval, first * growth**n)``.
    """
    return lambda polls: float(min(interval, first * growth**polls))


def wait_for(
    read: Callable[[], Poll],
    *,
    timeout: float,
    delay: Callable[[int], float],
    late: Callable[[Poll], str],
    show: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> Poll:
    """Call ``read`` until a poll says the job finished; that poll (the caller judges ``failed``).

    ``show(done, total)`` is told every poll, and ``(total, total)`` once the job finished without failing, so a
    bar ends full even when the last counts lagged. Between polls it sleeps ``delay(n)`` (n = 1, 2, ...); a poll
    that finds the job unfinished past ``timeout`` seconds raises `BackendError` with ``late(poll)``, since a job
    left running on the platform is the caller's to wait for again, not ours to forget. ``sleep`` and ``clock``
    default to `time.sleep` and `time.monotonic` (looked up per call, so tests can replace them).
    """
    sleep, clock = sleep or time.sleep, clock or time.monotonic
    deadline = clock() + timeout
    polls = 0
    while True:
        poll = read()
        if show is not None:
            show(poll.done, poll.total)
        if poll.finished:
            if show is not None and not poll.failed:
                show(poll.total, poll.total)
            return poll
        if clock() > deadline:
            raise BackendError(late(poll))
        polls += 1
        sleep(delay(polls))


def wait_with_bar(
    read: Callable[[], Poll],
    bar: tuple[str, str],
    progress: bool,
    *,
    timeout: float,
    delay: Callable[[int], float],
    late: Callable[[Poll], str],
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> Poll:
    """`wait_for` under a progress bar of its own: ``bar`` is its description and unit (steps of the job)."""
    shown = progress_bar(1, bar[0], progress, bar[1])
    try:
        show = partial(move_bar, shown)
        return wait_for(read, timeout=timeout, delay=delay, late=late, show=show, sleep=sleep, clock=clock)
    finally:
        shown.close()


def move_bar(bar: ProgressBar, done: float, total: float | None = None) -> None:
    """Set a bar to ``done`` (of ``total`` when given), redrawn only when that changes what it shows."""
    if total is not None and bar.total != total:
        bar.total = total
    elif bar.n == done:
        return
    bar.n = done
    bar.refresh()


# -- uploads -------------------------------------------------------------------------------------------------------
def upload_registered(
    files: SignedUrls,
    data: Mapping[str, bytes],
    targets: Mapping[str, Any],
    *,
    abandon: Callable[[], None],
    commit: Callable[[], None],
    bar: ProgressBar | None = None,
    before_commit: Callable[[], None] | None = None,
) -> None:
    """Upload each file of ``data`` to the signed target the platform registered for it, then ``commit()``.

    ``targets`` maps a file name to its target (``url``, ``method``, ``headers``); a file without one is a
    `MalformedResponse` before anything is sent. ``bar`` counts the files sent. ``before_commit`` runs after the
    last upload, right before the commit (the sync engine's last re-check). When an upload or ``before_commit``
    fails, or the user interrupts, ``abandon()`` tells the platform (its own failure ignored: the first error is
    the one to see) and the error goes on, so no session is left waiting for files that will never come.
    """
    missing = sorted(set(data) - set(targets or {}))
    if missing:
        raise MalformedResponse(f"{files.service} gave no upload URL for {missing[:5]}")
    try:
        for name, content in data.items():
            put_signed(files, name, content, targets[name])
            if bar is not None:
                bar.update(1)
        if before_commit is not None:
            before_commit()
    except BaseException:
        with contextlib.suppress(BackendError):
            abandon()
        raise
    commit()


# -- logs ----------------------------------------------------------------------------------------------------------
def log_table(
    entries: Iterable[Any], row: Callable[[Mapping[str, Any]], Mapping[str, Any]], extra: Sequence[str] = ()
) -> pd.DataFrame:
    """A job's log as `logs_frame` (file, line, level, message, then ``extra``): ``row`` words one entry.

    Entries that are not objects are left out: a log is read to explain an outcome, and one odd line must not hide
    the others.
    """
    return logs_frame((row(e) for e in entries if isinstance(e, Mapping)), extra)


def concat_logs(frames: Sequence[pd.DataFrame], extra: Sequence[str] = ()) -> pd.DataFrame:
    """The logs of several sessions as one frame (an empty log, with the ``extra`` columns, when none has a line)."""
    kept = [f for f in frames if len(f)]
    return pd.concat(kept, ignore_index=True) if kept else logs_frame((), extra)


def utc_time(value: Any, unit: str) -> Any:
    """A log's epoch time (``unit``: "s", "ms") as a UTC timestamp; NaT when it has none."""
    if not value:
        return pd.NaT
    number = float(value)
    return pd.Timestamp(int(number) if number.is_integer() else number, unit=unit, tz="UTC")


# -- downloads -----------------------------------------------------------------------------------------------------
def fetch_archive(
    files: SignedUrls,
    url: str,
    dest: Path,
    what: str,
    *,
    method: str = "GET",
    ranges: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Download the zip at ``url`` (see `download`) and extract it under ``dest``; the files written.

    The zip goes to a temporary file, never into ``dest``, and is extracted only when every member stays inside
    ``dest`` and none is a link (`UnsafeArchive` otherwise, before anything is written).
    """
    with tempfile.TemporaryFile() as tmp:  # extract_zip makes ``dest`` (and removes it again on a failure)
        download(files, url, tmp, what, method=method, ranges=ranges, progress=progress)
        tmp.seek(0)
        return extract_zip(tmp, dest)


def download(
    files: SignedUrls,
    url: str,
    out: IO[bytes],
    what: str,
    *,
    method: str = "GET",
    ranges: bool = False,
    progress: bool = False,
    chunk: int | None = None,
) -> None:
    """Write the body at ``url`` into ``out``, resuming a cut transfer where the host serves byte ranges.

    With ``ranges`` a HEAD asks first (as the Vi SDK does); a host that answers with a size and
    ``Accept-Ranges: bytes`` is read in ranged GETs of ``chunk`` bytes (`CHUNK`), each retried on a cut or a 5xx,
    so a cut costs one chunk, not the whole file. A host that answers a ranged GET with the whole body (200) has it
    used as it is. Otherwise (no ``ranges``, or a host without ranges) one streamed request, started again from
    the first byte on a cut (`SignedUrls.download`). The bar, in bytes, follows what ``out`` holds, so a restart
    moves it back.
    """
    size, ranged = 0, False
    if ranges:
        head = files.send("HEAD", url, what)
        size = int(head.headers.get("content-length", "0")) if head.status_code == 200 else 0
        ranged = bool(size) and head.headers.get("accept-ranges", "") == "bytes"
    bar = progress_bar(size, "downloading", progress, "B")
    try:
        if ranged:
            _ranged_download(files, url, out, what, size, chunk or CHUNK, bar)
        else:
            files.download(method, url, out, what, _Position(bar, out))
    finally:
        bar.close()


def _ranged_download(
    files: SignedUrls, url: str, out: IO[bytes], what: str, size: int, chunk: int, bar: ProgressBar
) -> None:
    origin = out.tell()
    for start in range(0, size, chunk):
        end = min(size, start + chunk) - 1
        response = files.send("GET", url, what, headers={"Range": f"bytes={start}-{end}"})
        if response.status_code == 200 and len(response.content) == size:  # the host ignored the range
            out.seek(origin)
            out.truncate()
            out.write(response.content)
            move_bar(bar, size)
            return
        if response.status_code != 206 or len(response.content) != end - start + 1:
            raise BackendError(f"{files.service} {what}: HTTP {response.status_code} for bytes {start}-{end}")
        out.write(response.content)
        bar.update(len(response.content))


class _Position:
    """The progress `SignedUrls.download` reports, shown as how much ``out`` holds: a transfer started again
    truncates ``out``, and the bar should go back with it rather than count the same bytes twice."""

    def __init__(self, bar: ProgressBar, out: IO[bytes]):
        self.bar, self.out, self.start = bar, out, out.tell()

    def update(self, n: float = 1) -> None:
        move_bar(self.bar, self.out.tell() - self.start)
