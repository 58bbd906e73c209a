"""What a test of key sightings looks at: every text an error can show, its chain, requests and frames."""

from __future__ import annotations

import json
import socket
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def texts_of(exc: BaseException) -> str:
    """Everything a user can see of ``exc``: str / repr of it and every chained error, the headers of every request
    they carry, and the traceback with every frame's locals (what ``%xmode Verbose`` prints)."""
    parts: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        parts += [str(e), repr(e)]
        for holder in (e, getattr(e, "response", None)):
            try:
                request = holder.request  # type: ignore[union-attr]
            except (AttributeError, RuntimeError):
                continue
            parts += [repr(request.headers), str(dict(request.headers))]
        todo += [e.__cause__, e.__context__]
    parts += traceback.TracebackException.from_exception(exc, capture_locals=True).format()
    return "\n".join(parts)


class _Echo(BaseHTTPRequestHandler):
    """Answers every request 200 with what ``server.answer`` says: ``"echo"`` (the request headers, as text),
    ``"json-echo"`` (a JSON object quoting them), ``"empty"`` (``{}``), or ``"hang"`` (no answer)."""

    def _any(self) -> None:
        mode = self.server.answer  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        if mode == "hang":
            self.server.hung.wait(10)  # type: ignore[attr-defined]
            return
        headers = {k: v for k, v in self.headers.items()}
        if mode == "echo":
            body = ("you sent: " + repr(headers)).encode()
            kind = "text/html"
        elif mode == "json-echo":
            body = json.dumps({"secretKey": headers.get("Secret-Key"), "echo": headers, "items": 3}).encode()
            kind = "application/json"
        else:
            body, kind = b"{}", "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def echo_server(answer: str) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering as `_Echo` says; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.answer = answer  # type: ignore[attr-defined]
    server.hung = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.hung.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    """The URL of a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
