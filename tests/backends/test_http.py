"""The shared HTTP layer: retries, error mapping, and keys that never show."""

from __future__ import annotations

import logging

import httpx
import pytest

from annotebook.backends._http import (
    ConnectionFailed,
    MalformedResponse,
    ServerError,
    SignedUrls,
    make_client,
    outcome_unknown,
)
from annotebook.errors import AuthError, BackendError, ConflictError, NotFound, RateLimited

KEY = "sk-very-secret-0123456789"


def client_for(handler, **kwargs):
    sleeps: list[float] = []
    client = make_client(
        "http://sim.test",
        {"Secret-Key": KEY, "User-Agent": "annotebook-test"},
        timeout=5,
        transport=httpx.MockTransport(handler),
        service="Nexus",
        key_env="DATATURE_SECRET_KEY",
        sleep=sleeps.append,
        **kwargs,
    )
    return client, sleeps


def sent(request: httpx.Request) -> httpx.Request:
    """The request as it went out: the transport masks its keys again once it is answered."""
    return httpx.Request(request.method, request.url, headers=dict(request.headers))


def scripted(*responses):
    """A handler answering with ``responses`` in turn (an exception instance is raised), counting calls."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(sent(request))
        answer = responses[min(len(calls) - 1, len(responses) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, calls


def test_secret_header_is_sent():
    handler, calls = scripted(httpx.Response(200, json={"ok": True}))
    client, _ = client_for(handler)
    assert client.get("/x") == {"ok": True}
    assert calls[0].headers["Secret-Key"] == KEY
    assert calls[0].headers["User-Agent"] == "annotebook-test"


def test_get_retries_5xx_then_succeeds():
    handler, calls = scripted(httpx.Response(503), httpx.Response(502), httpx.Response(200, json=[1]))
    client, sleeps = client_for(handler)
    assert client.get("/x") == [1]
    assert len(calls) == 3 and len(sleeps) == 2


def test_get_gives_up_after_retries_with_server_error():
    handler, calls = scripted(httpx.Response(500, json={"code": "InternalServerError", "message": "boom"}))
    client, _ = client_for(handler, retries=2)
    with pytest.raises(ServerError, match=r"500.*boom") as info:
        client.get("/x")
    assert len(calls) == 3
    assert outcome_unknown(info.value)


def test_delete_retries_timeouts():
    handler, calls = scripted(httpx.ReadTimeout("slow"), httpx.Response(200, json={"deleted": True}))
    client, _ = client_for(handler)
    assert client.delete("/x") == {"deleted": True}
    assert len(calls) == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("cut")],
    ids=["500", "timeout", "cut"],
)
def test_post_is_never_retried_when_it_may_have_landed(failure):
    handler, calls = scripted(failure, httpx.Response(200, json={}))
    client, _ = client_for(handler)
    with pytest.raises(BackendError) as info:
        client.post("/x", json={"a": 1})
    assert len(calls) == 1
    assert outcome_unknown(info.value)
    assert isinstance(info.value, ServerError | ConnectionFailed)


def test_post_is_retried_when_the_connection_never_opened():
    handler, calls = scripted(httpx.ConnectError("refused"), httpx.Response(200, json={"id": "a"}))
    client, _ = client_for(handler)
    assert client.post("/x", json={}) == {"id": "a"}
    assert len(calls) == 2


def test_429_honours_retry_after_for_any_method():
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"id": "a"}))
    client, sleeps = client_for(handler)
    assert client.post("/x", json={}) == {"id": "a"}
    assert sleeps == [2.0] and len(calls) == 2


def test_429_after_bounded_retries_is_rate_limited():
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "1"}, json={"message": "slow down"}))
    client, sleeps = client_for(handler, rate_limit_retries=2)
    with pytest.raises(RateLimited) as info:
        client.get("/x")
    assert info.value.retry_after == 1.0
    assert len(calls) == 3 and sleeps == [1.0, 1.0]


def test_429_with_a_wait_past_the_bound_is_not_slept():
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    client, sleeps = client_for(handler, max_wait=10)
    with pytest.raises(RateLimited):
        client.get("/x")
    assert sleeps == [] and len(calls) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (403, AuthError), (404, NotFound), (409, ConflictError), (400, BackendError)],
)
def test_status_mapping(status, error):
    body = {"code": "SomeError", "message": "told you so"}
    handler, _ = scripted(httpx.Response(status, json=body))
    client, _ = client_for(handler)
    with pytest.raises(error) as info:
        client.get("/projects/p")
    assert f"{status}" in str(info.value) and "told you so" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)
    assert not outcome_unknown(info.value)


def test_auth_error_names_the_environment_variable():
    handler, _ = scripted(httpx.Response(401, json={"code": "Unauthorized", "message": "bad key"}))
    client, _ = client_for(handler)
    with pytest.raises(AuthError, match="DATATURE_SECRET_KEY"):
        client.get("/x")


def test_malformed_body_is_a_named_error():
    handler, _ = scripted(httpx.Response(200, text="<html>oops</html>"))
    client, _ = client_for(handler)
    with pytest.raises(MalformedResponse, match="not JSON"):
        client.get("/x")


def test_key_never_appears_in_repr_logs_or_errors(caplog):
    echo = {"code": "Forbidden", "message": f"key {KEY} is not allowed"}
    handler, _ = scripted(httpx.Response(503), httpx.Response(403, json=echo))
    client, _ = client_for(handler)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        client.get(f"/x?echo={KEY}")
    assert KEY not in repr(client) and KEY not in str(client)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert "***" in str(info.value)
    assert KEY not in caplog.text
    assert KEY not in repr(client._client.headers)


# -- no httpx exception leaves the layer ------------------------------------------------------------------------
RAW = [
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.DecodingError("bad gzip"),
    httpx.TooManyRedirects("loop"),
    httpx.UnsupportedProtocol("ftp"),
]


@pytest.mark.parametrize("raw", RAW, ids=lambda e: type(e).__name__)
def test_every_httpx_failure_of_an_api_call_is_an_annotebook_error(raw):
    handler, _ = scripted(raw)
    client, _ = client_for(handler, retries=1)
    with pytest.raises(BackendError) as info:
        client.post("/x", json={})
    assert not isinstance(info.value, httpx.HTTPError) and isinstance(info.value.__cause__, httpx.HTTPError)
    assert KEY not in str(info.value)


def signed(handler, **kwargs):
    sleeps: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return SignedUrls(client, "Vi", sleep=sleeps.append, **kwargs), sleeps


@pytest.mark.parametrize("raw", RAW, ids=lambda e: type(e).__name__)
def test_signed_url_failures_are_annotebook_errors_without_the_signature(raw):
    handler, calls = scripted(raw)
    files, _ = signed(handler)
    url = "https://storage.test/bucket/a.jpg?signature=s3cr3t"
    with pytest.raises(BackendError) as info:
        files.send("GET", url, "image of a")
    assert "s3cr3t" not in str(info.value) and "storage.test" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.HTTPError)
    transient = isinstance(raw, httpx.TransportError) and not isinstance(raw, httpx.UnsupportedProtocol)
    assert len(calls) == (4 if transient else 1)  # only cuts and timeouts are tried again
    assert isinstance(info.value, ConnectionFailed) == transient


def test_signed_send_retries_cuts_and_5xx_then_returns_the_answer():
    handler, calls = scripted(httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(403))
    files, sleeps = signed(handler)
    assert files.send("PUT", "https://storage.test/u?sig=x", "upload of a.csv", content=b"abc").status_code == 403
    assert len(calls) == 3 and len(sleeps) == 2
    assert "Secret-Key" not in calls[0].headers and "Authorization" not in calls[0].headers


def test_signed_download_starts_again_after_a_cut_mid_body(tmp_path):
    attempts: list[int] = []

    class CutStream(httpx.SyncByteStream):
        def __iter__(self):
            yield b"half"
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return httpx.Response(200, stream=CutStream())
        return httpx.Response(200, content=b"whole body")

    files, _ = signed(handler)
    with open(tmp_path / "out", "w+b") as out:
        assert files.download("GET", "https://storage.test/e.zip?sig=x", out, "export download") == 10
    assert (tmp_path / "out").read_bytes() == b"whole body" and len(attempts) == 2


def test_signed_download_gives_up_with_connection_failed(tmp_path):
    handler, calls = scripted(httpx.RemoteProtocolError("cut"))
    files, _ = signed(handler, retries=1)
    with open(tmp_path / "out", "w+b") as out, pytest.raises(ConnectionFailed, match="export download"):
        files.download("GET", "https://storage.test/e.zip?sig=x", out, "export download")
    assert len(calls) == 2


def test_one_client_carries_api_and_signed_url_requests_and_the_key_goes_to_the_api_host_only() -> None:
    """Every byte of a connection goes through one httpx client (one pool); storage hosts never see the key."""
    from annotebook.backends._http import SignedUrls

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(sent(request))
        return httpx.Response(200, json={"ok": True})

    api = make_client("http://api.test/v1", {"Secret-Key": "s3cr3t", "User-Agent": "ua"}, 5,
                      httpx.MockTransport(answer))  # fmt: skip
    files = SignedUrls(api.http, "Test")
    api.get("/projects")
    files.send("GET", "http://storage.test/bucket/a.png?sig=1", "image a.png")
    assert files._client is api.http
    assert [str(r.url) for r in seen] == ["http://api.test/v1/projects", "http://storage.test/bucket/a.png?sig=1"]
    assert seen[0].headers["Secret-Key"] == "s3cr3t" and seen[0].headers["User-Agent"] == "ua"
    assert "Secret-Key" not in seen[1].headers and seen[1].headers.get("User-Agent") != "ua"
