"""What every simulator shares: injected faults (latency, 429, cut connections) and a uvicorn server in a thread.

`Faults` is plain mutable state: a test (or ``POST /_sim/faults``) flips a switch and the next requests see it.
`FaultMiddleware` wraps any ASGI app; `serve_in_thread` runs one on 127.0.0.1 on an ephemeral port.
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


@dataclass
class Faults:
    """Switches of a running simulator; every count is of API requests from the moment it is set."""

    latency_ms: float = 0.0  # added to every request: stands for the network
    rate_limit: int = 0  # answer 429 (with Retry-After) to the next N requests
    retry_after: float = 1.0
    cut_after: int | None = None  # the N-th write from now is applied, then its connection is dropped unanswered
    down_after_cut: int = 0  # after a cut, answer 503 to this many further requests
    down: int = 0  # answer 503 to the next N requests
    writes: int = 0  # writes seen since ``cut_after`` was set

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault switches {sorted(unknown)}; known: {sorted(known)}")
        for name, value in changes.items():
            setattr(self, name, value)
        if "cut_after" in changes:
            self.writes = 0


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> list[Message]:
    data = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [
        {"type": "http.response.start", "status": status, "headers": hdrs},
        {"type": "http.response.body", "body": data},
    ]


class FaultMiddleware:
    """Applies `Faults` around an ASGI app; paths under ``/_sim/`` (the control API) are never faulted."""

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
            for message in _json_response(429, body, {"Retry-After": f"{f.retry_after:g}"}):
                await send(message)
            return
        if f.down > 0:
            f.down -= 1
            for message in _json_response(503, self.error_body("ServiceUnavailableError", "Service Unavailable")):
                await send(message)
            return
        if scope["method"] in WRITE_METHODS and f.cut_after is not None:
            f.writes += 1
            if f.writes >= f.cut_after:
                f.cut_after, f.writes, f.down = None, 0, f.down_after_cut  # one cut, then maybe an outage
                await self._cut(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _cut(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request to the end (so it lands), then answer headers only and drop the connection."""
        sent: list[Message] = []

        async def swallow(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, swallow)
        start = next(m for m in sent if m["type"] == "http.response.start")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        # returning without finishing the body makes the server close the connection: the client sees a cut


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


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, timeout: float = 20) -> RunningServer:
    """Start ``app`` with uvicorn on ``host`` (port 0: an ephemeral one) in a thread; real HTTP, real sockets."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="critical", lifespan="off", access_log=False)
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


def faults_dict(faults: Faults) -> dict[str, Any]:
    return asdict(faults)


def simulator_app(
    routes: list[Any], faults: Faults, error_body: Callable[[str, str], Any], describe: Callable[[], Any]
) -> FaultMiddleware:
    """A simulator's Starlette app: its ``routes`` plus the control API (``/_sim/faults``, ``/_sim/state`` answering
    ``describe()``), unknown paths and methods answered in the platform's ``error_body``, wrapped in `FaultMiddleware`.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, code: str, message: str) -> Response:
        return JSONResponse(error_body(code, message), status_code=status)

    async def sim_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                faults.update(await request.json())
            except (ValueError, TypeError) as exc:
                return error(400, "BadRequestError", str(exc))
        return JSONResponse(faults_dict(faults))

    async def sim_state(request: Request) -> Response:
        return JSONResponse(describe())

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, "ResourceNotFoundError", "Requested Resource Not Found")

    async def bad_method(request: Request, exc: Exception) -> Response:
        return error(405, "MethodNotAllowedError", "Method Not Allowed")

    control = [Route("/_sim/faults", sim_faults, methods=["GET", "POST"]), Route("/_sim/state", sim_state)]
    app = Starlette(routes=[*routes, *control])
    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, bad_method)
    return FaultMiddleware(app, faults, error_body)
