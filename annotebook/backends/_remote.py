"""What every remote backend shares beyond its API client: the files of an import (collected, CRC32C'd, PUT to
signed URLs), cached images, progress bars, safe archive extraction.

Platform-neutral on purpose: Nexus, Vi and the platforms after them import these; `_http` holds the transport
(`SignedUrls` for every signed-URL request made here) and translates its failures, and `_lifecycle` builds the steps
of an import or an export (upload, poll, logs, download) from these pieces.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from .._gc import gc_paused
from ..errors import BackendError, MalformedResponse, UnsafeArchive
from ._archive import extract_zip
from ._http import SignedUrls

__all__ = [
    "ProgressBar",
    "UnsafeArchive",
    "cached_image",
    "collect_files",
    "crc32c_b64",
    "extract_zip",
    "field",
    "gc_paused",
    "progress_bar",
    "put_signed",
]


def crc32c_b64(data: bytes) -> str:
    """CRC32C (Castagnoli) of ``data``, big-endian, base64: the ``crc32c`` of an import session's file.

    Computed by ``google-crc32c`` (the storage client's own, in C with SSE4.2 where the processor has it).
    """
    import google_crc32c

    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def collect_files(paths: Any, keep: Callable[[Path], bool]) -> dict[str, bytes]:
    """name -> bytes of what an import session uploads; names must be unique (the SDK's rule).

    ``paths``: files, folders (every file under them that ``keep`` takes), ``(name, bytes)`` pairs or a mapping.
    """
    items: list[tuple[str, Any]] = list(paths.items()) if isinstance(paths, Mapping) else []
    if not isinstance(paths, Mapping):
        for p in [paths] if isinstance(paths, str | Path | tuple) else paths:
            if isinstance(p, tuple):
                items.append((str(p[0]), p[1]))
            elif Path(p).is_dir():
                found = sorted(f for f in Path(p).rglob("*") if f.is_file() and keep(f))
                items += [(f.name, f) for f in found]
            elif Path(p).is_file():
                items.append((Path(p).name, Path(p)))
            else:
                raise FileNotFoundError(f"no such file or folder: {p}")
    out: dict[str, bytes] = {}
    for name, content in items:
        if name in out:
            raise ValueError(f"two files named {name!r}: an import session takes each file name once")
        out[name] = content.read_bytes() if isinstance(content, Path) else bytes(content)
    return out


def put_signed(files: SignedUrls, name: str, data: bytes, target: Mapping[str, Any]) -> None:
    """Send one file to its signed URL (no key: the URL is the credential); 5xx and cuts are retried."""
    if not isinstance(target, Mapping) or not target.get("url"):
        raise MalformedResponse(f"{files.service} gave no upload URL for {name}: {str(target)[:200]}")
    method, headers = str(target.get("method") or "PUT"), dict(target.get("headers") or {})
    response = files.send(method, str(target["url"]), f"upload of {name}", headers=headers, content=data)
    if response.status_code >= 300:
        raise BackendError(f"{files.service} upload of {name}: HTTP {response.status_code} from its signed URL")


def field(answer: Any, key: str, what: str) -> Any:
    if not isinstance(answer, dict) or key not in answer:
        raise MalformedResponse(f"the server sent a {what} without {key!r}: {str(answer)[:200]}")
    return answer[key]


class ProgressBar(Protocol):
    """What the backends use of a tqdm bar; `progress_bar` gives a silent one when progress is off."""

    total: float | None
    n: float

    def update(self, n: float = 1) -> Any: ...
    def refresh(self) -> Any: ...
    def close(self) -> Any: ...
    def set_description_str(self, desc: str | None = None, refresh: bool = True) -> Any: ...


class _NoBar:
    total: float | None = None
    n: float = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def set_description_str(self, desc: str | None = None, refresh: bool = True) -> None:
        pass


def progress_bar(total: int, desc: str, progress: bool, unit: str) -> ProgressBar:
    """A tqdm bar (the notebook's widget where there is one), or a silent stand-in when ``progress`` is off."""
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


def cached_image(
    files: SignedUrls, cache: Path, asset: str, known_url: str | None, fresh_url: Callable[[], str]
) -> str | None:
    """An asset's pixels in the on-disk ``cache`` folder, downloaded once from its signed URL.

    ``known_url`` is the URL from the last listing (None: unknown); a 403 means it expired, so ``fresh_url()`` asks
    the platform again, once. An empty URL is an asset without pixels: None. The file lands whole (a ``.part`` file
    renamed into place), named by the asset id and the URL's suffix.
    """
    found = list(cache.glob(f"{asset}.*")) if cache.exists() else []
    if found:
        return str(found[0])
    url = known_url
    for attempt in range(2):
        if url is None or attempt:
            url = fresh_url()
        if not url:
            return None
        response = files.send("GET", url, f"image of {asset}")
        if response.status_code != 403:
            break
    if response.status_code != 200:
        raise BackendError(f"{files.service} image of {asset}: HTTP {response.status_code} from its signed URL")
    cache.mkdir(parents=True, exist_ok=True)
    suffix = Path(urllib.parse.urlsplit(str(url)).path).suffix or ".img"
    target, tmp = cache / f"{asset}{suffix}", cache / f".{asset}{suffix}.part"
    tmp.write_bytes(response.content)
    tmp.replace(target)
    return str(target)
