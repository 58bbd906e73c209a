"""What every simulator's routes share, so a new platform's simulator writes only its routes and its state.

A platform differs from the next in how it words an answer (`Dialect`: its error body, its JSON), which header
carries its key (`check_key` compares it), how long its page cursors are (`Cursors`) and what its signed storage
URLs look like (`UrlSigner`); everything else is here once. `simulator_app` builds the app around the routes: the
control API (``/_sim/faults``, ``/_sim/state``), JSON 404 and 405 answers in the platform's words, and the fault
switches of `_server.FaultMiddleware`. `connection_line` is what ``python -m annotebook.testing serve`` prints.

The kit encodes and decodes with its own code only: a simulator that borrowed the client's wire code (its row
decoding, its CRC32C library) would agree with the client's bugs instead of catching them.

Examples
--------
>>> cursors = Cursors(digits=16)
>>> cursors.decode(cursors.encode(42))
42
>>> crc32c_b64(b"123456789")  # the check value of CRC-32C, 0xE3069283
'4waSgw=='
"""

from __future__ import annotations

import base64
import bisect
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._server import FaultMiddleware, Faults

__all__ = [
    "ConnectInfo",
    "Cursors",
    "Dialect",
    "Page",
    "UrlSigner",
    "bearer_key",
    "check_key",
    "crc32c_b64",
    "simulator_app",
    "storage_error",
]

T = TypeVar("T")


# -- answers in a platform's words ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dialect:
    """How one platform words its answers: the JSON of an error (``error_body(code, message)``), the response class
    that encodes its JSON, and the decoder of request bodies. The error codes are the ones both Datature platforms
    use (``BadRequestError``, ``ResourceNotFoundError``, ...)."""

    error_body: Callable[[str, str], Any]
    response: type[Response] = JSONResponse
    loads: Callable[[bytes], Any] = json.loads

    def json(self, content: Any, status: int = 200) -> Response:
        return self.response(content, status_code=status)

    def error(self, status: int, code: str, message: str) -> Response:
        return self.response(self.error_body(code, message), status_code=status)

    def bad_request(self, message: str) -> Response:
        return self.error(400, "BadRequestError", message)

    def not_found(self, what: str) -> Response:
        """404 in the platform's wording: ``Requested <what> Resource Not Found``."""
        return self.error(404, "ResourceNotFoundError", f"Requested {what} Resource Not Found")

    def conflict(self, message: str) -> Response:
        return self.error(409, "ConflictError", message)

    async def body(self, request: Request) -> Any:
        """The request's JSON body, or None when it is not JSON (the route answers 400, not a 500 traceback)."""
        try:
            return self.loads(await request.body())
        except ValueError:  # json.JSONDecodeError and orjson.JSONDecodeError both are
            return None


def storage_error(status: int, code: str) -> Response:
    """An error of the storage host behind signed URLs (XML, as object stores answer): ``AccessDenied``, ..."""
    return Response(f"<Error><Code>{code}</Code></Error>".encode(), status, media_type="application/xml")


# -- keys -------------------------------------------------------------------------------------------------------
def bearer_key(request: Request) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, or ``""``."""
    given = request.headers.get("authorization", "")
    return given[7:].strip() if given[:7].lower() == "bearer " else ""


def check_key(dialect: Dialect, given: str, expected: str | None, missing: str, wrong: str) -> Response | None:
    """None when ``given`` is accepted: any non-empty key when ``expected`` is None, else that key only.

    No key is a 401 (``missing``), another key a 403 (``wrong``); the comparison takes constant time, as a
    platform's would, so the simulator does not model a timing oracle a real server lacks.
    """
    if not given:
        return dialect.error(401, "UnauthorizedError", missing)
    if expected is not None and not hmac.compare_digest(given.encode(), expected.encode()):
        return dialect.error(403, "ForbiddenError", wrong)
    return None


# -- cursor paging ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: its items and the cursors of the next and previous pages (None at an end)."""

    items: list[T]
    next: str | None
    prev: str | None


@dataclass(frozen=True)
class Cursors:
    """Opaque page cursors that name the sequence number of a page's first item.

    Naming an item rather than an offset means a delete between two page requests skips nothing. A cursor is the
    base64url of the number in ``digits`` hex digits, without padding (both platforms' cursors look like this).
    """

    digits: int = 16

    def encode(self, seq: int) -> str:
        return base64.urlsafe_b64encode(f"{seq:0{self.digits}x}".encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> int:
        """The sequence number of ``cursor``; a cursor this server did not make is a ValueError (a 400)."""
        try:
            return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode(), 16)
        except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors too
            raise ValueError(f"invalid page cursor {cursor!r}") from exc

    def page(self, items: Sequence[T], seq: Callable[[T], int], cursor: str | None, size: int) -> Page[T]:
        """The ``size`` items from the one ``cursor`` names (``items`` are in ``seq`` order; None: the first)."""
        first = bisect.bisect_left(items, self.decode(cursor), key=seq) if cursor else 0
        after = first + size
        return Page(
            items=list(items[first:after]),
            next=self.encode(seq(items[after])) if after < len(items) else None,
            prev=self.encode(seq(items[max(first - size, 0)])) if first > 0 else None,
        )


# -- signed URLs and checksums ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UrlSigner:
    """Signed URL queries that expire, as a storage host's are: ``<param>=<time>&signature=<hmac>``.

    ``param`` names the expiry (Nexus: ``expires``, in seconds; Vi: ``expiry``, in milliseconds when ``millis``).
    The signature covers the URL's kind (file, upload, download), what it names and its expiry, so a URL cannot be
    turned into another.
    """

    key: bytes
    param: str = "expires"
    millis: bool = False

    def _now(self) -> float:
        return time.time() * (1000 if self.millis else 1)

    def _signature(self, kind: str, ident: str, expiry: str) -> str:
        return hmac.new(self.key, f"{kind}:{ident}:{expiry}".encode(), "sha256").hexdigest()

    def sign(self, kind: str, ident: str, ttl: float) -> tuple[str, int]:
        """The query of a URL of ``kind`` naming ``ident``, valid ``ttl`` seconds, and its expiry (in its unit)."""
        expiry = int(self._now() + ttl * (1000 if self.millis else 1))
        return f"{self.param}={expiry}&signature={self._signature(kind, ident, str(expiry))}", expiry

    def valid(self, kind: str, ident: str, query: Mapping[str, str]) -> bool:
        """Whether ``query`` (a request's query parameters) signs this URL and has not expired."""
        expiry, signature = query.get(self.param, ""), query.get("signature", "")
        good = self._signature(kind, ident, expiry)
        return hmac.compare_digest(good, signature) and expiry.isdigit() and int(expiry) >= self._now()


def crc32c_b64(data: bytes) -> str:
    """CRC32C (Castagnoli) of ``data``, big-endian, base64, as the storage host checks an upload's ``x-goog-hash``.

    Computed by the ``crc32c`` package (ICRAR's), not by ``google-crc32c`` as the client is: two implementations
    that must agree, so a client bug in its checksum shows as a refused upload here.
    """
    import crc32c

    return base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode()


# -- the app --------------------------------------------------------------------------------------------------------
def simulator_app(routes: list[Any], faults: Faults, dialect: Dialect, describe: Callable[[], Any]) -> FaultMiddleware:
    """A simulator's Starlette app: its ``routes`` plus the control API (``/_sim/faults``, ``/_sim/state`` answering
    ``describe()``), unknown paths and methods answered in the platform's ``dialect``, wrapped in `FaultMiddleware`.
    """
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def sim_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                faults.update(await request.json())
            except (ValueError, TypeError) as exc:
                return dialect.bad_request(str(exc))
        return JSONResponse(faults.as_dict())

    async def sim_state(request: Request) -> Response:
        return JSONResponse(describe())

    async def not_found(request: Request, exc: Exception) -> Response:
        return dialect.error(404, "ResourceNotFoundError", "Requested Resource Not Found")

    async def bad_method(request: Request, exc: Exception) -> Response:
        return dialect.error(405, "MethodNotAllowedError", "Method Not Allowed")

    control = [Route("/_sim/faults", sim_faults, methods=["GET", "POST"]), Route("/_sim/state", sim_state)]
    app = Starlette(routes=[*routes, *control])
    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, bad_method)
    return FaultMiddleware(app, faults, dialect.error_body)


# -- how to connect -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectInfo:
    """What ``ab.connect`` needs to reach a running simulator, the key aside (it is read from ``key_env``)."""

    platform: str  # the backend name of ab.connect: "nexus", "vi"
    title: str  # how the line names the simulator: "Nexus"
    url: str
    connect: dict[str, str]  # keyword arguments of ab.connect
    dataset: str  # the sample dataset's id
    key_env: str
    key_rule: str  # which keys are accepted, in words
    datasets: dict[str, str] = field(default_factory=dict)  # name -> id, when ``connect`` does not name them

    def line(self) -> str:
        """One line for a person: the URL, the ``ab.connect`` call, where the key goes (and the datasets)."""
        kwargs = ", ".join(f"{k}={json.dumps(v)}" for k, v in self.connect.items())
        line = (f"{self.title} simulator at {self.url}: ab.connect({json.dumps(self.platform)}, {kwargs}) "
                f"with {self.key_rule} in {self.key_env}")  # fmt: skip
        if self.datasets:
            line += "; datasets " + ", ".join(f"{name}={ident}" for name, ident in self.datasets.items())
        return line

    def as_json(self) -> dict[str, Any]:
        """One JSON object for a script: url, platform, connect, dataset, key_env."""
        return {"url": self.url, "platform": self.platform, "connect": dict(self.connect), "dataset": self.dataset,
                "key_env": self.key_env}  # fmt: skip
