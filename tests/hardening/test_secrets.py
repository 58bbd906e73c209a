"""Issue 16: no key in a repr, a message, a chained request's headers, or a frame a verbose traceback shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import annotebook as ab
from annotebook.backends._http import Secret, make_client
from tests.backends.conftest import NEXUS_KEY  # noqa: F401 - the fixtures' keys
from tests.hardening._leaks import closed_port, echo_server, texts_of

KEY = "sk-hardening-0123456789abcdef"
VI_KEY = "dtvi_" + ("hardening0123456789" * 6)[:98]


def _connect(platform: str, url: str, key: str) -> Any:
    if platform == "nexus":
        return ab.connect("nexus", project="proj_x", endpoint=url, key=key, timeout=2)
    if platform == "vi":
        return ab.connect("vi", organization="org", dataset="d", endpoint=url, key=key, timeout=2)
    if platform == "clarifai":
        return ab.connect("clarifai", user_id="me", app_id="a", base_url=url, key=key, timeout=2)
    return ab.connect("pictograph", dataset="d", base_url=url, key=key, timeout=2)


PLATFORMS = ["nexus", "vi", "clarifai", "pictograph"]


def _key(platform: str) -> str:
    return VI_KEY if platform == "vi" else KEY


def _provoke(action: Callable[[], Any]) -> BaseException:
    try:
        action()
    except ab.AnnotebookError as exc:
        return exc
    raise AssertionError("expected an annotebook error")


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("answer", ["echo", "json-echo"])
def test_a_malformed_2xx_body_quoting_the_key_is_redacted(platform: str, answer: str) -> None:
    key = _key(platform)
    with echo_server(answer) as url:
        conn = _connect(platform, url, key)
        exc = _provoke(lambda: conn.assets(conn.dataset or "d").annot.load())
    assert isinstance(exc, ab.BackendError), exc
    seen = texts_of(exc)
    assert key not in seen


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_refused_connection_shows_no_key_in_any_frame(platform: str) -> None:
    key = _key(platform)
    conn = _connect(platform, closed_port(), key)
    conn.backend._api.retries = 0  # type: ignore[attr-defined]
    exc = _provoke(lambda: conn.assets(conn.dataset or "d").annot.load())
    assert isinstance(exc, ab.ConnectionFailed)
    assert key not in texts_of(exc)


def test_chained_request_headers_are_masked_after_a_status_error() -> None:
    """``exc.__cause__.request.headers`` of a refused key shows *** (httpx itself masks only Authorization)."""
    with echo_server("echo") as url:
        client = make_client(url, {"Secret-Key": KEY, "X-Api-Key": KEY + "2"}, timeout=2)
        response = client.request("GET", "/x")
    assert response.request.headers["Secret-Key"] == "***"
    assert KEY not in repr(response.request.headers) and KEY not in repr(client)


def test_a_secret_never_shows_itself() -> None:
    s = Secret(KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in f"{s}" and s.reveal() == KEY
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_a_timeout_shows_no_key() -> None:
    with echo_server("hang") as url:
        client = make_client(url, {"Authorization": f"Bearer {KEY}"}, timeout=0.3, retries=0)
        exc = _provoke(lambda: client.get("/x"))
    assert isinstance(exc, ab.ConnectionFailed)
    assert KEY not in texts_of(exc)
