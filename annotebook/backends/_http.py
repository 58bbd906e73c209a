"""The HTTP layer every platform backend shares: retries, error mapping, and keys kept out of sight.

`make_client` wraps an ``httpx.Client``. Reads and deletes (idempotent) are retried with backoff on 5xx, timeouts
and dropped connections; any request is retried on 429 after the server's ``Retry-After`` (bounded); a POST is
never retried when the server may have acted on it (a timeout, a cut connection or a 5xx after the request was
sent): the caller reconciles first. `SignedUrls` sends the requests to signed URLs (uploads, image and export
downloads), which carry no key. Every failure becomes one of `annotebook.errors` in `translated`, the single place
where httpx exceptions are translated, so no httpx exception leaves a backend.

Secret headers (``Secret-Key``, ``Authorization``, ...) are held as `Secret` values, whose ``repr`` and ``str`` are
``***``, apart from the client's headers. They are put on a request by the transport (`_KeyedTransport`), at the last
moment, and masked again on that request as soon as it is answered or fails; the chained httpx / httpcore exceptions
of a failure lose their frames below the transport (where the raw header bytes sit). So no frame that a
``%xmode Verbose`` traceback shows holds a key in plain text, a request seen later (``exc.__cause__.request``,
``response.request``) shows ``***``, and every message is scrubbed (`annotebook.errors.scrub`).

Examples
--------
>>> client = make_client("http://127.0.0.1:1", {"Secret-Key": "k"}, timeout=5)
>>> "k'" in repr(client)
False
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import IO, Any

import httpx

from ..errors import _SECRETS as _ERROR_SECRETS
from ..errors import (
    AuthError,
    BackendError,
    ConflictError,
    ConnectionFailed,
    MalformedResponse,
    NotFound,
    RateLimited,
    ServerError,
)

__all__ = [
    "ApiClient",
    "ConnectionFailed",
    "MalformedResponse",
    "ServerError",
    "SignedUrls",
    "make_client",
    "outcome_unknown",
    "translated",
]

log = logging.getLogger("annotebook.http")

SECRET_HEADERS = frozenset({"secret-key", "authorization", "proxy-authorization", "x-api-key", "api-key"})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REDACTED = "***"
_KNOWN_SECRETS: set[str] = set()


class Secret:
    """A key or token: ``repr`` and ``str`` are ``***``; `reveal` gives the value to the one place that sends it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret):
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


_EXTENSION = "annotebook_secrets"


class _KeyedTransport(httpx.BaseTransport):
    """Puts the secret headers a request carries in its extensions onto it, sends it, and masks them again.

    Requests without that extension (signed-URL transfers on the same pool) pass through untouched. A failure's
    httpx / httpcore exceptions lose the frames below this one: they hold the raw header bytes (h11's events).
    """

    def __init__(self, inner: httpx.BaseTransport):
        self._inner = inner

    def __repr__(self) -> str:
        return f"<_KeyedTransport {self._inner!r}>"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        secrets: Mapping[str, Secret] = request.extensions.get(_EXTENSION) or {}
        for name, secret in secrets.items():
            request.headers[name] = secret.reveal()
        try:
            return self._inner.handle_request(request)
        except BaseException as exc:
            _drop_frames(exc)
            raise exc.with_traceback(None) from exc.__cause__
        finally:
            for name in secrets:
                request.headers[name] = REDACTED

    def close(self) -> None:
        self._inner.close()


def _drop_frames(exc: BaseException) -> None:
    """Forget the tracebacks of the exceptions chained under ``exc`` (they hold the sent header bytes)."""
    seen: set[int] = set()
    todo = [exc.__cause__, exc.__context__]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        e.__traceback__ = None
        todo += [e.__cause__, e.__context__]


class _RedactSecrets(logging.Filter):
    """Scrubs every secret an `ApiClient` holds from the records of httpx's own loggers (which log URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = message
        for value in _KNOWN_SECRETS:
            scrubbed = scrubbed.replace(value, REDACTED)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


_FILTER = _RedactSecrets()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_FILTER)


@contextmanager
def translated(what: str, redact: Callable[[str], str] = lambda text: text) -> Iterator[None]:
    """The one place where httpx exceptions become `annotebook.errors`, chained, with secrets scrubbed by ``redact``.

    A timeout or a transport failure is `ConnectionFailed` (a write's outcome unknown); a URL httpx cannot send to
    (an unknown scheme, a malformed address the platform gave) or a body it cannot decode is `MalformedResponse`;
    any other httpx failure (too many redirects, a stream read twice) is `BackendError`.
    """
    try:
        yield
    except (httpx.HTTPError, httpx.StreamError) as exc:
        scrub(exc)
        raise _translate(exc, what, redact) from exc


def scrub(exc: BaseException) -> None:
    """Blank the secret headers of the request an httpx exception carries (``exc.request``, and a status error's
    response's request): the exception is chained under ours, and ``%xmode Verbose`` or a debugger shows it."""
    requests = []
    for holder in (exc, getattr(exc, "response", None)):
        try:
            requests.append(holder.request)  # type: ignore[union-attr]
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
            continue
    for request in requests:
        for name in list(request.headers):
            if name.lower() in SECRET_HEADERS:
                request.headers[name] = REDACTED


def _translate(exc: Exception, what: str, redact: Callable[[str], str]) -> BackendError:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ConnectionFailed(redact(f"{what}: timed out ({name})"))
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.DecodingError):
        return MalformedResponse(redact(f"{what}: {name}: {exc}"))
    if isinstance(exc, httpx.TransportError):
        return ConnectionFailed(redact(f"{what}: connection failed ({name}: {exc})"))
    return BackendError(redact(f"{what}: {name}: {exc}"))


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed write may still have landed (timeout, cut connection, 5xx): reconcile before retrying."""
    return isinstance(exc, ServerError | ConnectionFailed)


def _token(value: str) -> str:
    """The credential inside an ``Authorization`` value (``Bearer <token>``), or "" when it has no scheme."""
    scheme, _, token = value.partition(" ")
    return token.strip() if token.strip() and scheme.isalpha() else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _excerpt(response: httpx.Response, limit: int = 200) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        text = response.text.strip()
        return text[:limit] + ("..." if len(text) > limit else "")
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])[:limit]
    text = str(body)
    return text[:limit] + ("..." if len(text) > limit else "")


class ApiClient:
    """An ``httpx.Client`` with retries, error mapping and secret headers kept out of every repr and message."""

    def __init__(
        self,
        client: httpx.Client,
        secrets: Mapping[str, str | Secret],
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        service: str,
        key_env: str | None,
        retries: int,
        rate_limit_retries: int,
        backoff: float,
        max_wait: float,
        sleep: Callable[[float], None],
    ):
        self._client = client
        # the platform's address and headers go on each request, not on the client: the same client (one pool)
        # also carries the signed-URL transfers (`SignedUrls`), which must see neither
        base = httpx.URL(base_url) if base_url else client.base_url
        self._base = base.copy_with(raw_path=base.raw_path.rstrip(b"/") + b"/")
        self._public = dict(headers or {})
        self._secrets = {k: Secret(v) for k, v in secrets.items()}
        #: every value to scrub: a header's value and, for ``Bearer <token>``, the token alone
        values = [v.reveal() for v in self._secrets.values()]
        self._hidden = [Secret(v) for v in sorted({v for v in values if v} | {_token(v) for v in values if _token(v)},
                                                  key=len, reverse=True)]  # fmt: skip
        _KNOWN_SECRETS.update(v.reveal() for v in self._hidden)
        _ERROR_SECRETS.update(v.reveal() for v in self._hidden)
        self.service = service
        self.key_env = key_env
        self.retries = retries
        self.rate_limit_retries = rate_limit_retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}: {REDACTED}" for k in self._secrets)
        return f"<ApiClient {self.service} {self.base_url} secrets=[{shown}]>"

    def close(self) -> None:
        self._client.close()

    @property
    def base_url(self) -> str:
        return str(self._base)

    @property
    def http(self) -> httpx.Client:
        """The one httpx client of this connection (its pool), for `SignedUrls` to share."""
        return self._client

    def _url(self, url: str) -> httpx.URL:
        """``url`` under the platform's base address (as httpx's ``base_url`` merges it); absolute URLs as given."""
        target = httpx.URL(url)
        if target.is_absolute_url:
            return target
        return self._base.copy_with(raw_path=self._base.raw_path + target.raw_path.lstrip(b"/"))

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***``."""
        for value in self._hidden:
            text = text.replace(value.reveal(), REDACTED)
        return text

    # -- requests ------------------------------------------------------------------------------------------
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request (with retries as the method allows); a non-2xx answer raises an `annotebook.errors`."""
        method = method.upper()
        with self._errors(method, url):
            response = self._unkeyed(self._send_with_retries(method, url, kwargs))
            response.raise_for_status()
            return response

    def _unkeyed(self, response: httpx.Response) -> httpx.Response:
        """``response`` with any key it echoes replaced by ``***`` in its body, before anything decodes or quotes it
        (an excerpt cut in the middle of a key would show its first half)."""
        content = response.content
        keys = [v.reveal().encode() for v in self._hidden if len(v.reveal()) >= 6]  # a test's "k" is in every body
        if not any(k in content for k in keys):
            return response
        for k in keys:
            content = content.replace(k, REDACTED.encode())
        response._content = content  # the body is read already (not streamed): swap it before any decode
        if hasattr(response, "_text"):
            del response._text
        return response

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """`request` and decode the JSON body; a body that is not JSON is a `MalformedResponse`."""
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: a body nested past what json decodes
            raise MalformedResponse(
                self.redact(f"{self.service} sent a body that is not JSON for {method} {url}: {_excerpt(response)!r}")
            ) from exc

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.json("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.json("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.json("DELETE", url, **kwargs)

    def _send_with_retries(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        headers = {**self._public, **kwargs.pop("headers", {})}
        for name in self._secrets:  # the transport puts the key on the request (`_KeyedTransport`)
            headers.pop(name, None)
        extensions = {**kwargs.pop("extensions", {}), _EXTENSION: self._secrets}
        target = self._url(url)
        failures = limited = 0
        unsure = False  # an earlier attempt may have acted: a 404 now may be our own delete's doing
        while True:
            try:
                response = self._client.request(
                    method, target, headers=headers, follow_redirects=False, extensions=extensions, **kwargs
                )
                response.extensions["annotebook_unsure"] = unsure
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # nothing reached the server: safe to retry for every method
                failures += 1
                if failures > self.retries:
                    raise
                self._wait(method, url, self._delay(failures), type(exc).__name__)
                continue
            except httpx.TransportError as exc:
                failures += 1
                if method not in IDEMPOTENT or failures > self.retries:
                    raise
                unsure = True
                self._wait(method, url, self._delay(failures), type(exc).__name__)
                continue
            if response.status_code == 429:
                wait = _retry_after(response)
                limited += 1
                if limited > self.rate_limit_retries or (wait is not None and wait > self.max_wait):
                    return response
                self._wait(method, url, self._delay(limited) if wait is None else wait, "429")
                continue
            if response.status_code >= 500 and method in IDEMPOTENT and failures < self.retries:
                failures += 1
                unsure = True
                self._wait(method, url, self._delay(failures), str(response.status_code))
                continue
            return response

    def _delay(self, attempt: int) -> float:
        return min(self.max_wait, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _wait(self, method: str, url: str, seconds: float, why: str) -> None:
        log.info("%s %s: %s, retrying in %.2fs", method, self.redact(url), why, seconds)
        self._sleep(seconds)

    @contextmanager
    def _errors(self, method: str, url: str) -> Iterator[None]:
        """An error answer becomes its `annotebook.errors` class; any other httpx failure goes through `translated`."""
        what = f"{self.service} {method} {self.redact(url)}"
        with translated(what, self.redact):
            try:
                yield
            except httpx.HTTPStatusError as exc:
                scrub(exc)
                raise self._status_error(what, exc.response) from exc

    def _status_error(self, what: str, response: httpx.Response) -> BackendError:
        status = response.status_code
        detail = self.redact(_excerpt(response))
        if status in (401, 403):
            hint = f"; set {self.key_env} to a valid key" if self.key_env else ""
            error: BackendError = AuthError(f"{what}: the key was refused (HTTP {status}: {detail}){hint}")
        elif status == 404:
            error = NotFound(f"{what}: not found (HTTP 404: {detail})")
            #: True when an earlier attempt of this request may have acted (a retried delete that found its row gone)
            error.after_retry = bool(response.extensions.get("annotebook_unsure"))  # type: ignore[attr-defined]
        elif status == 409:
            error = ConflictError(f"{what}: conflict (HTTP 409: {detail})")
        elif status == 429:
            wait = _retry_after(response)
            error = RateLimited(f"{what}: rate limited (HTTP 429: {detail}); retry after {wait}s", retry_after=wait)
        elif status >= 500:
            error = ServerError(f"{what}: server error HTTP {status}: {detail}")
        else:
            error = BackendError(f"{what}: HTTP {status}: {detail}")
        error.status = status  # type: ignore[attr-defined]
        return error


def make_client(
    base_url: str,
    headers: Mapping[str, str | Secret],
    timeout: float | httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
    *,
    service: str = "the platform",
    key_env: str | None = None,
    retries: int = 3,
    rate_limit_retries: int = 5,
    backoff: float = 0.5,
    max_wait: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ApiClient:
    """An `ApiClient` for ``base_url``; secret headers in ``headers`` are kept apart and never shown.

    ``key_env`` names the environment variable an `AuthError` tells the user to set; ``transport`` lets a test hand
    in ``httpx.MockTransport``.
    """
    secrets = {k: Secret(v) for k, v in headers.items() if k.lower() in SECRET_HEADERS}
    public = {k: str(v) for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
    client = httpx.Client(timeout=timeout, transport=_KeyedTransport(transport or httpx.HTTPTransport()),
                          mounts=_proxy_mounts() if transport is None else None)  # fmt: skip
    return ApiClient(
        client,
        secrets,
        base_url=base_url,
        headers=public,
        service=service,
        key_env=key_env,
        retries=retries,
        rate_limit_retries=rate_limit_retries,
        backoff=backoff,
        max_wait=max_wait,
        sleep=sleep,
    )


def _proxy_mounts() -> dict[str, httpx.BaseTransport | None]:
    """The environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``), each keyed as well: httpx honours them only for
    a client it builds its transport for itself."""
    try:
        from httpx._utils import get_environment_proxies
    except ImportError:  # pragma: no cover - a future httpx: no proxies from the environment
        return {}
    return {
        pattern: None if url is None else _KeyedTransport(httpx.HTTPTransport(proxy=url))
        for pattern, url in get_environment_proxies().items()
    }


def _host(url: str) -> str:
    """Where a signed URL points, without its path and query (the signature): safe to show."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    return f"{parsed.scheme}://{parsed.host}" if parsed.host else "a URL without a host"


class SignedUrls:
    """Requests to a platform's signed URLs: uploads, image and export downloads, on storage hosts.

    No key is ever sent (the URL is the credential, and storage hosts must not see the platform's key). Each such
    request is idempotent (the same bytes to, or from, the same URL), so a cut, a timeout or a 5xx is retried
    ``retries`` times with backoff; any other answer is returned for the caller to judge (a 403 may mean the URL
    expired). Failures become `annotebook.errors` through `translated`, and messages name the host only, never the
    signature in the query.
    """

    def __init__(
        self,
        client: httpx.Client,
        service: str,
        *,
        retries: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client, self.service = client, service
        self.retries, self.backoff, self._sleep = retries, backoff, sleep

    def __repr__(self) -> str:
        return f"<SignedUrls {self.service}>"

    def close(self) -> None:
        self._client.close()

    def send(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request (``what`` names it in messages: "upload of a.csv"), retried on a cut, a timeout or a 5xx."""
        where = f"{self.service} {what} ({_host(url)})"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                with translated(where):
                    response = self._client.request(method, url, follow_redirects=True, **kwargs)
            except ConnectionFailed:
                if last:
                    raise
            else:
                if response.status_code < 500 or last:
                    return response
            self._sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def download(self, method: str, url: str, out: IO[bytes], what: str, progress: Any = None) -> int:
        """Stream the body of a 200 answer into ``out`` (at its current position); its size in bytes.

        A transfer cut part way starts again from the beginning (``out`` is truncated back), up to ``retries`` times;
        ``progress.update(n)`` is called per chunk when given. Any answer but 200 is a `BackendError` naming it.
        """
        where = f"{self.service} {what} ({_host(url)})"
        start = out.tell()
        for attempt in range(self.retries + 1):
            out.seek(start)
            out.truncate()
            try:
                with translated(where), self._client.stream(method, url, follow_redirects=True) as response:
                    if response.status_code >= 500 and attempt < self.retries:
                        raise _Retry
                    if response.status_code != 200:
                        raise BackendError(f"{where}: HTTP {response.status_code} from its signed URL")
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        if progress is not None:
                            progress.update(len(chunk))
                return out.tell() - start
            except (ConnectionFailed, _Retry):
                if attempt == self.retries:
                    raise
            self._sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")


class _Retry(Exception):
    """A 5xx while a retry is left: try again."""
