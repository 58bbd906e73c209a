"""What every simulator shares at the HTTP level: injected faults and a uvicorn server in a thread.

`Faults` is plain mutable state: a test (or ``POST /_sim/faults``) flips a switch and the next requests see it.
`FaultMiddleware` wraps any ASGI app and plays the failures a client must survive: slowness, 429 with Retry-After,
outages, a write that lands but whose answer is lost (cut connection, or a 500), a write refused before it lands
(503), and a 200 whose JSON is cut short. `serve_in_thread` runs an app on 127.0.0.1, real sockets, real HTTP.
The request-level pieces (error bodies, keys, paging, signed URLs, the app factory) are `kit`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["FaultMiddleware", "Faults", "RunningServer", "serve_in_thread"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: the write faults, in the order they win when two fall on the same write (each one reaching it is spent)
WRITE_FAULTS = ("reject_after", "cut_after", "fail_after")
_OPTIONAL_COUNTS = frozenset(WRITE_FAULTS)
_SECONDS = frozenset({"latency_ms", "retry_after"})


@dataclass
class Faults:
    """Switches of a running simulator; counts are of API requests from the moment they are set and count down.

    A write is a POST, PUT, PATCH or DELETE that got past ``rate_limit`` and ``down`` (signed-URL uploads too).
    The ``*_after`` switches count writes down to the one they hit (1: the next write) and are None once spent:

    - ``cut_after``: that write is applied, then its connection is dropped with the answer unsent;
    - ``fail_after``: that write is applied, then answered 500 in the platform's error body (the client cannot
      tell it landed);
    - ``reject_after``: that write is answered 503 and not applied.

    ``truncate``: the next N answers that are 2xx JSON keep their status and send the first half of their bytes
    (with a Content-Length of what is sent): well-formed HTTP, malformed JSON.
    """

    latency_ms: float = 0.0  # added to every request: stands for the network
    rate_limit: int = 0  # answer 429 (with Retry-After) to the next N requests
    retry_after: float = 1.0
    cut_after: int | None = None
    fail_after: int | None = None
    reject_after: int | None = None
    truncate: int = 0
    down_after_cut: int = 0  # after a cut, answer 503 to this many further requests
    down_after: int = 0  # after any write fault (cut, fail, reject), answer 503 to this many further requests
    down: int = 0  # answer 503 to the next N requests
    writes: int = 0  # writes seen (every write the simulator was asked for past rate_limit and down)

    def update(self, changes: dict[str, Any]) -> None:
        """Set switches by name (``POST /_sim/faults`` sends the same mapping); a bad name or value is a
        ValueError and changes nothing."""
        if not isinstance(changes, dict):
            raise ValueError("fault switches are a JSON object of name -> value")
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault switches {sorted(unknown)}; known: {sorted(known)}")
        checked = {name: _checked(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def take_write(self) -> str | None:
        """Count one write; the write fault it meets (a name of `WRITE_FAULTS`), or None to serve it as usual."""
        self.writes += 1
        hit = []
        for name in WRITE_FAULTS:
            left = getattr(self, name)
            if left is None:
                continue
            if left <= 1:
                setattr(self, name, None)
                hit.append(name)
            else:
                setattr(self, name, left - 1)
        if not hit:
            return None
        if hit[0] == "cut_after":
            self.down = self.down_after_cut  # one cut, then maybe an outage
        self.down = max(self.down, self.down_after)  # a fault, then an outage that outlasts the client's retries
        return hit[0]

    def take_truncation(self) -> bool:
        """Whether the answer now starting is one of the ``truncate`` ones (and count it)."""
        if self.truncate <= 0:
            return False
        self.truncate -= 1
        return True


def _checked(name: str, value: Any) -> Any:
    """``value`` as switch ``name`` takes it: a count (int >= 0; None too for the ``*_after`` ones) or seconds."""
    if name in _OPTIONAL_COUNTS and value is None:
        return None
    if name in _SECONDS:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        raise ValueError(f"fault switch {name} takes a number >= 0, not {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    none = " or null" if name in _OPTIONAL_COUNTS else ""
    raise ValueError(f"fault switch {name} takes an integer >= 0{none}, not {value!r}")


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> list[Message]:
    data = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [
        {"type": "http.response.start", "status": status, "headers": hdrs},
        {"type": "http.response.body", "body": data},
    ]


def _with_length(start: Message, length: int | None) -> Message:
    """``start`` with its Content-Length replaced (None: dropped)."""
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {**start, "headers": headers}


def _is_json_success(start: Message) -> bool:
    types = [v for k, v in start.get("headers", []) if k.lower() == b"content-type"]
    return 200 <= int(start["status"]) < 300 and bool(types) and types[0].startswith(b"application/json")


class FaultMiddleware:
    """Applies `Faults` around an ASGI app; paths under ``/_sim/`` (the control API) are never faulted.

    ``error_body(code, message)`` words the answers it makes up (429, 500, 503) as the platform would.
    """

    def __init__(self, app: ASGIApp, faults: Faults, error_body: Callable[[str, str], Any]):
        self.app, self.faults, self.error_body = app, faults, error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        f = self.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if f.rate_limit > 0:
            f.rate_limit -= 1
            body = self.error_body("TooManyRequestsError", "Too many requests, slow down")
            await self._answer(send, 429, body, {"Retry-After": f"{f.retry_after:g}"})
            return
        if f.down > 0:
            f.down -= 1
            await self._answer(send, 503, self.error_body("ServiceUnavailableError", "Service Unavailable"))
            return
        fault = f.take_write() if scope["method"] in WRITE_METHODS else None
        if fault == "reject_after":
            await self._answer(send, 503, self.error_body("ServiceUnavailableError", "Service Unavailable"))
        elif fault == "cut_after":
            await self._cut(scope, receive, send)
        elif fault == "fail_after":
            await self.app(scope, receive, _swallow([]))  # it lands ...
            await self._answer(send, 500, self.error_body("InternalServerError", "Internal Server Error"))
        elif f.truncate > 0:
            await self.app(scope, receive, self._truncating(send))
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        for message in _json_response(status, body, headers):
            await send(message)

    async def _cut(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request to the end (so it lands), then answer headers only and drop the connection."""
        sent: list[Message] = []
        await self.app(scope, receive, _swallow(sent))
        start = next(m for m in sent if m["type"] == "http.response.start")
        await send(_with_length(start, 1000))
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        # returning without finishing the body makes the server close the connection: the client sees a cut

    def _truncating(self, send: Send) -> Send:
        """``send`` that cuts a 2xx JSON answer to half its bytes when `Faults.take_truncation` says so."""
        held: Message | None = None
        chunks: list[bytes] = []

        async def truncating(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if _is_json_success(message) and self.faults.take_truncation():
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    data = b"".join(chunks)
                    half = data[: len(data) // 2]
                    await send(_with_length(held, len(half)))
                    await send({"type": "http.response.body", "body": half})
                return
            await send(message)

        return truncating


def _swallow(sent: list[Message]) -> Send:
    """A ``send`` that keeps the messages in ``sent`` instead of answering."""

    async def swallow(message: Message) -> None:
        sent.append(message)

    return swallow


@dataclass
class RunningServer:
    """A simulator served by uvicorn in a daemon thread; `stop` shuts it down."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def describe(self) -> dict[str, Any]:
        return {"url": self.url}


def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, timeout: float = 20, log_level: str = "critical"
) -> RunningServer:
    """Start ``app`` with uvicorn on ``host`` (port 0: an ephemeral one) in a thread; real HTTP, real sockets.

    It returns once the socket is bound, so the URL holds the real port (what ``serve --port 0`` prints).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sim-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the simulator did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    return RunningServer(url=f"http://{host}:{bound[1]}", server=server, thread=thread)
