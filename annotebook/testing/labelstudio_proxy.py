"""A fault-injecting reverse proxy in front of a real Label Studio server.

Label Studio itself runs here (`labelstudio_server`), so it needs no simulator; but the failures a client must
survive (a write that lands and whose answer is lost, 429s, outages, a body cut short) cannot be asked of a real
server. This proxy forwards every request unchanged to the server and answers through the kit's
`FaultMiddleware`, so the contract suite's fault switches (`Faults`) act on the real server's traffic.
Error answers it makes up are worded as Label Studio words its own (``{"status_code", "detail"}``).

Examples
--------
>>> proxy = start_proxy("http://127.0.0.1:8080")  # doctest: +SKIP
>>> proxy.faults.update({"fail_after": 1})        # doctest: +SKIP
>>> proxy.url                                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ._server import FaultMiddleware, Faults, Message, Receive, RunningServer, Scope, Send, serve_in_thread

__all__ = ["Proxy", "start_proxy"]

_HOP = frozenset({b"host", b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"upgrade"})


def error_body(code: str, message: str) -> dict[str, Any]:
    """An error as Label Studio sends one."""
    status = {"TooManyRequestsError": 429, "ServiceUnavailableError": 503}.get(code, 500)
    return {"id": "proxy", "status_code": status, "version": "proxy", "detail": message, "exc_info": None}


class _Forward:
    """The ASGI app that sends each request on to ``upstream`` and streams nothing: bodies here are small."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.client = httpx.AsyncClient(timeout=300)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k.lower() not in _HOP]
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.upstream + scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        url += f"?{query}" if query else ""
        try:
            response = await self.client.request(scope["method"], url, headers=headers, content=body)
        except httpx.TransportError as exc:
            data = str(error_body("BadGateway", f"proxy: {type(exc).__name__}")).encode()
            await send({"type": "http.response.start", "status": 502, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": data})
            return
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            if k.lower().encode() not in _HOP and k.lower() != "content-encoding"
        ]
        content = response.content
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})


@dataclass
class Proxy:
    """A running proxy: its URL (what a client connects to), its `Faults`, and the server to stop."""

    url: str
    upstream: str
    faults: Faults
    server: RunningServer

    def stop(self) -> None:
        self.server.stop()


def start_proxy(upstream: str, host: str = "127.0.0.1", port: int = 0) -> Proxy:
    """Serve the proxy to ``upstream`` on ``host`` (port 0: a free one) in a background thread."""
    faults = Faults()
    app = FaultMiddleware(_Forward(upstream), faults, error_body)
    server = serve_in_thread(app, host=host, port=port)
    return Proxy(url=server.url, upstream=upstream, faults=faults, server=server)
