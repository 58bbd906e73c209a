"""The shared lifecycle of remote imports and exports: polling, uploads, logs, downloads that resume."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from annotebook.backends import _lifecycle
from annotebook.backends._http import SignedUrls
from annotebook.backends._lifecycle import (
    Poll,
    concat_logs,
    download,
    fetch_archive,
    log_table,
    move_bar,
    quick_first,
    steady,
    upload_registered,
    utc_time,
    wait_for,
    wait_with_bar,
)
from annotebook.backends._remote import progress_bar
from annotebook.backends.vi import ViBackend
from annotebook.errors import BackendError, ConnectionFailed, MalformedResponse

from .conftest import VI_KEY

URL = "https://storage.test/export.zip?signature=s3cr3t"


class Clock:
    """A clock that only moves when slept on, so deadlines are exact."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def polls(*answers: Poll):
    """A ``read`` that gives ``answers`` in turn (the last one again once they run out), counting the calls."""
    calls: list[int] = []

    def read() -> Poll:
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    return read, calls


# -- polling -----------------------------------------------------------------------------------------------------
def test_schedules_start_quick_then_keep_the_interval():
    assert [steady(2.0)(n) for n in (1, 2, 50)] == [2.0, 2.0, 2.0]
    quick = [quick_first(1.0)(n) for n in range(1, 12)]
    assert quick[0] == pytest.approx(0.075) and quick == sorted(quick) and quick[-1] == 1.0
    assert quick_first(0.01)(1) == 0.01  # never longer than the interval


def test_wait_for_polls_on_the_schedule_until_the_job_finishes():
    clock = Clock()
    read, calls = polls(Poll(0, 3, False), Poll(1, 3, False), Poll(3, 3, True, status={"overview": "Finished"}))
    shown: list[tuple[int, int]] = []
    last = wait_for(read, timeout=60, delay=quick_first(1.0), late=str, show=lambda d, t: shown.append((d, t)),
                    sleep=clock.sleep, clock=clock)  # fmt: skip
    assert last.status == {"overview": "Finished"} and len(calls) == 3
    assert clock.sleeps == [quick_first(1.0)(1), quick_first(1.0)(2)]  # none after the last poll
    assert shown[:3] == [(0, 3), (1, 3), (3, 3)]


def test_the_deadline_raises_the_platforms_message_with_the_last_poll():
    clock = Clock()
    read, calls = polls(Poll(0, 1, False, status={"overview": "Running"}))
    with pytest.raises(BackendError, match=r"^job still Running after 5s$"):
        wait_for(read, timeout=5, delay=steady(2.0), late=lambda p: f"job still {p.status['overview']} after 5s",
                 sleep=clock.sleep, clock=clock)  # fmt: skip
    assert clock.sleeps == [2.0, 2.0, 2.0] and len(calls) == 4  # polled at 0, 2, 4 and 6 s; 6 > 5: late


def test_a_finished_poll_past_the_deadline_is_still_finished():
    clock = Clock()
    read, _ = polls(Poll(0, 1, False), Poll(1, 1, True))
    assert wait_for(read, timeout=0, delay=steady(10), late=str, sleep=clock.sleep, clock=clock).finished


def test_the_bar_ends_at_its_total_when_the_job_finished_and_stays_when_it_failed():
    bar = progress_bar(0, "importing", False, "file")
    read, _ = polls(Poll(1, 4, False), Poll(2, 4, True))  # the counts lag the job's end
    wait_for(read, timeout=9, delay=steady(0), late=str, show=lambda d, t: move_bar(bar, d, t), sleep=lambda s: None)
    assert (bar.n, bar.total) == (4, 4)
    failed = progress_bar(0, "importing", False, "file")
    read, _ = polls(Poll(1, 4, False), Poll(2, 4, True, failed=True))
    poll = wait_for(read, timeout=9, delay=steady(0), late=str, show=lambda d, t: move_bar(failed, d, t),
                    sleep=lambda s: None)  # fmt: skip
    assert poll.failed and (failed.n, failed.total) == (2, 4)


class Bar:
    """A silent bar that remembers being closed."""

    def __init__(self, total: float, *args: object) -> None:
        self.total, self.n, self.closed = total, 0.0, False

    def update(self, n: float = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bars(monkeypatch) -> list[Bar]:
    """Every bar the lifecycle makes, kept for the test to read."""
    made: list[Bar] = []
    monkeypatch.setattr(_lifecycle, "progress_bar", lambda *args: made.append(Bar(*args)) or made[-1])
    return made


def test_wait_with_bar_closes_its_bar_even_when_late(bars):
    read, _ = polls(Poll(1, 2, False), Poll(2, 2, True))
    assert wait_with_bar(read, ("exporting", "op"), True, timeout=9, delay=steady(0), late=str, sleep=lambda s: None)
    assert (bars[0].n, bars[0].total, bars[0].closed) == (2, 2, True)
    clock = Clock()
    read, _ = polls(Poll(0, 2, False))
    with pytest.raises(BackendError):
        wait_with_bar(read, ("exporting", "op"), True, timeout=1, delay=steady(1), late=str, sleep=clock.sleep,
                      clock=clock)  # fmt: skip
    assert bars[1].closed


# -- uploads -----------------------------------------------------------------------------------------------------
def signed(handler) -> SignedUrls:
    return SignedUrls(httpx.Client(transport=httpx.MockTransport(handler)), "Vi", sleep=lambda s: None)


def test_uploads_then_the_last_check_then_the_commit():
    steps: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        steps.append(f"{request.method} {request.url.path} {request.content.decode()}")
        return httpx.Response(200)

    bar = progress_bar(2, "uploading", False, "file")
    targets = {n: {"url": f"https://storage.test/{n}?sig=x"} for n in ("a.jsonl", "b.jsonl")}
    upload_registered(signed(handler), {"a.jsonl": b"A", "b.jsonl": b"B"}, targets, bar=bar,
                      before_commit=lambda: steps.append("check"), abandon=lambda: steps.append("abandon"),
                      commit=lambda: steps.append("commit"))  # fmt: skip
    assert steps == ["PUT /a.jsonl A", "PUT /b.jsonl B", "check", "commit"] and bar.n == 2


@pytest.mark.parametrize("where", ["upload", "check"])
def test_a_failed_upload_or_last_check_abandons_and_never_commits(where):
    steps: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403 if where == "upload" else 200)

    def check() -> None:
        raise BackendError("someone else wrote")

    def abandon() -> None:
        steps.append("abandon")
        raise BackendError("the abandon failed too")  # not the error to show

    targets = {"a.jsonl": {"url": "https://storage.test/a?sig=x", "method": "PUT"}}
    with pytest.raises(BackendError, match="HTTP 403" if where == "upload" else "someone else wrote"):
        upload_registered(signed(handler), {"a.jsonl": b"A"}, targets, before_commit=check, abandon=abandon,
                          commit=lambda: steps.append("commit"))  # fmt: skip
    assert steps == ["abandon"]


def test_a_file_without_an_upload_url_is_refused_before_any_request():
    sent: list[httpx.Request] = []
    with pytest.raises(MalformedResponse, match=r"Vi gave no upload URL for \['b.jsonl'\]"):
        upload_registered(signed(sent.append), {"a": b"", "b.jsonl": b""}, {"a": {"url": "https://s.test/a"}},
                          abandon=lambda: None, commit=lambda: None)  # fmt: skip
    assert sent == []


# -- logs --------------------------------------------------------------------------------------------------------
def test_log_tables_keep_their_columns_types_and_skip_entries_that_are_not_objects():
    entries = [{"file": "a.jsonl", "line": 3, "level": "Error", "message": "bad", "at": 1700000000123}, "odd", None]
    log = log_table(entries, lambda e: {**e, "at": utc_time(e.get("at"), "ms")}, ("at",))
    assert list(log.columns) == ["file", "line", "level", "message", "at"] and len(log) == 1
    assert log["at"].iloc[0] == pd.Timestamp("2023-11-14 22:13:20.123", tz="UTC")
    assert str(log["line"].dtype) == "Int64"
    assert utc_time(None, "s") is pd.NaT and utc_time(1.5, "s") == pd.Timestamp(1.5, unit="s", tz="UTC")
    empty = concat_logs([log.iloc[:0]], ("at",))
    assert list(empty.columns) == list(log.columns) and len(empty) == 0
    assert len(concat_logs([log, log.iloc[:0], log], ("at",))) == 2


# -- downloads ---------------------------------------------------------------------------------------------------
class Cut(httpx.SyncByteStream):
    """A body that sends ``head`` and then loses its connection."""

    def __init__(self, head: bytes):
        self.head = head

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def host(body: bytes, *, ranges: bool = True, cut: set[int] | None = None, ignore_ranges: bool = False):
    """A storage host of ``body``: HEAD answers its size (and Accept-Ranges with ``ranges``); the requests whose
    number (0-based) is in ``cut`` lose their connection half way through the body."""
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        number, asked = len(seen), request.headers.get("Range")
        seen.append((request.method, asked))
        accepts = {"Accept-Ranges": "bytes"} if ranges else {}
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Length": str(len(body)), **accepts})
        part, status = body, 200
        if asked and ranges and not ignore_ranges:
            start, end = (int(v) for v in asked.removeprefix("bytes=").split("-"))
            part, status = body[start : end + 1], 206
        if number in (cut or set()):
            return httpx.Response(status, headers=accepts, stream=Cut(part[: len(part) // 2]))
        return httpx.Response(status, headers=accepts, content=part)

    return handler, seen


BODY = bytes(range(256)) * 4  # 1 KiB


def test_a_cut_ranged_download_resumes_with_the_chunk_it_lost():
    handler, seen = host(BODY, cut={2})  # HEAD, chunk 0, chunk 1 (cut), chunk 1 again, ...
    out = io.BytesIO()
    download(signed(handler), URL, out, "export download", ranges=True, chunk=300)
    assert out.getvalue() == BODY
    assert seen == [("HEAD", None), ("GET", "bytes=0-299"), ("GET", "bytes=300-599"), ("GET", "bytes=300-599"),
                    ("GET", "bytes=600-899"), ("GET", "bytes=900-1023")]  # fmt: skip


def test_a_host_without_ranges_is_read_whole_and_started_again_after_a_cut(bars):
    handler, seen = host(BODY, ranges=False, cut={1})
    out = io.BytesIO()
    download(signed(handler), URL, out, "export download", ranges=True, progress=True)
    assert out.getvalue() == BODY and seen == [("HEAD", None), ("GET", None), ("GET", None)]
    assert (bars[0].n, bars[0].total, bars[0].closed) == (len(BODY), len(BODY), True)  # not past its end


def test_without_ranges_no_head_is_sent():
    handler, seen = host(BODY, cut={0})
    out = io.BytesIO(b"kept")
    out.seek(0, io.SEEK_END)
    download(signed(handler), URL, out, "export 7 download")
    assert out.getvalue() == b"kept" + BODY and seen == [("GET", None), ("GET", None)]


def test_a_host_that_answers_a_range_with_the_whole_body_has_it_used():
    handler, seen = host(BODY, ignore_ranges=True)
    out = io.BytesIO()
    download(signed(handler), URL, out, "export download", ranges=True, chunk=300)
    assert out.getvalue() == BODY and seen == [("HEAD", None), ("GET", "bytes=0-299")]


def test_a_short_range_is_refused_by_name():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Length": "10", "Accept-Ranges": "bytes"})
        return httpx.Response(206, content=b"abc")

    with pytest.raises(BackendError, match=r"^Vi export download: HTTP 206 for bytes 0-9$"):
        download(signed(handler), URL, io.BytesIO(), "export download", ranges=True)


def test_a_download_cut_every_time_gives_up_with_connection_failed_naming_the_host_only():
    handler, seen = host(BODY, cut=set(range(10)))
    with pytest.raises(ConnectionFailed, match=r"Vi export download \(https://storage\.test\)") as info:
        download(signed(handler), URL, io.BytesIO(), "export download", ranges=True, chunk=300)
    assert "s3cr3t" not in str(info.value) and len(seen) == 1 + 4  # the HEAD, then the first chunk 4 times


def test_fetch_archive_extracts_what_it_downloaded(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("training/annotations/a.jsonl", "{}\n")
    handler, _ = host(buf.getvalue(), cut={1})
    written = fetch_archive(signed(handler), URL, tmp_path / "out", "export download", ranges=True)
    assert written == [tmp_path / "out" / "training" / "annotations" / "a.jsonl"]


# -- against the Vi simulator, over real HTTP --------------------------------------------------------------------
class CutOnce(httpx.HTTPTransport):
    """The real transport, except that the first ranged GET of an export loses its connection half way."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        asked = request.headers.get("Range")
        if asked is None:
            return response
        self.ranges.append(asked)
        if len(self.ranges) == 2:
            head = response.read()[: int(response.headers["content-length"]) // 2]
            return httpx.Response(response.status_code, headers=response.headers, stream=Cut(head))
        return response


def test_a_vi_export_cut_part_way_resumes_with_a_range(vi_sim, tmp_path, monkeypatch):
    monkeypatch.setattr(_lifecycle, "CHUNK", 256)
    transport = CutOnce()
    vi = ViBackend(vi_sim.state.org_id, key=VI_KEY, endpoint=vi_sim.url, transport=transport, progress=False)
    vi.poll_interval = 0.01
    result = vi.export("ViJsonl", tmp_path / "out", "shapes", progress=False)
    assert len(result.files) and all(p.is_file() for p in result.paths)
    assert transport.ranges[:3] == ["bytes=0-255", "bytes=256-511", "bytes=256-511"]  # the cut chunk asked again
    assert len(transport.ranges) > 3
