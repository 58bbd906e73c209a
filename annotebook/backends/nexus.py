"""Datature Nexus: one project is one dataset; annotations cannot be updated, so an edit is a create and a delete.

Wire facts (``shared/protocols/datature-nexus-vi.md`` part A): ``Secret-Key`` header, cursor-paged lists
(``page`` / ``limit`` -> ``nextPage``), tags by name, no revisions. A row's ``rev`` is its ``createDate``: Nexus
rows never change, so a row whose id is still there is the row the frame loaded. Annotations <-> rows are
`nexus_rows`; import sessions and exports are `nexus_transfer`.

Pushes go through the sync engine's ``recreate`` strategy (`annotebook.sync.recreate`): this module gives it the
wire primitives only (``create_rows``, ``delete_rows``, ``create_labels``, ``row_key``, ``check_rows``). The
delete of an edit's old row is Nexus's conditional write: it succeeds once, so of two writers racing on one row
exactly one lands its edit.

Examples
--------
>>> import annotebook as ab
>>> conn = ab.connect("nexus", project="proj_...")  # doctest: +SKIP
>>> anns = conn.assets(conn.backend.project).annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

import httpx
import orjson
import pandas as pd

from .. import schema
from .._home import home
from ..errors import (
    AuthError,
    BackendError,
    ImportFailed,
    MalformedResponse,
    NotCarried,
    NotFound,
    UnsafeArchive,
)
from ..validation import label_refusals
from ._http import ApiClient, SignedUrls, make_client, outcome_unknown
from ._remote import cached_image, crc32c_b64, extract_zip, gc_paused, progress_bar
from ._rows import refuse_uncarried
from .base import Capabilities
from .nexus_rows import _objects, body_from_row, carried, row_from_wire
from .nexus_transfer import EXPORT_FORMATS, MAX_SESSION_FILES, NexusTransfer

__all__ = [
    "EXPORT_FORMATS",
    "ImportFailed",
    "NexusBackend",
    "NotCarried",
    "UnsafeArchive",
    "crc32c_b64",
    "extract_zip",
    "row_from_wire",
]

T = TypeVar("T")
KEY_ENV = "DATATURE_SECRET_KEY"
DEFAULT_ENDPOINT = "https://api.datature.io"
#: asset ids in one sharded annotation listing request (the filter is in the query string)
SHARD = 50


class NexusBackend(NexusTransfer):
    """A Datature Nexus project (``proj_...``); the key comes from ``key=`` or ``DATATURE_SECRET_KEY``."""

    name = "nexus"
    title = "Nexus"
    capabilities = Capabilities(
        update=False,
        create=True,
        replace_per_asset=False,
        batch_size=1,
        client_ids=False,
        revisions="none",
        statuses=False,
        creates_labels=True,
        atomic=False,
        conditional_write=True,
        export_formats=EXPORT_FORMATS,
    )

    def __init__(
        self,
        project: str,
        key: str | None = None,
        endpoint: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        page_size: int = 1000,
        workers: int = 8,
        progress: bool = True,
    ):
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise AuthError(f"no Nexus key: set {KEY_ENV} or pass key=...")
        self.project = project if project.startswith("proj_") else f"proj_{project}"
        #: a connection's default dataset: the project this backend was made for
        self.bound_dataset = self.project
        self.endpoint = (endpoint or os.environ.get("DATATURE_API_BASE_URL") or DEFAULT_ENDPOINT).rstrip("/")
        self.page_size = page_size
        headers = {"Secret-Key": key, "User-Agent": "annotebook (httpx)"}
        self._api: ApiClient = make_client(self.endpoint, headers, timeout, transport, service="Nexus", key_env=KEY_ENV)
        self._files = SignedUrls(self._api.http, "Nexus")  # one client, one pool: signed URLs get no key
        # pooled connections are closed when the backend goes away, not left to the garbage collector's warnings
        weakref.finalize(self, self._api.close)
        self._urls: dict[str, str] = {}
        #: annotations of the last load whose bound type has no canonical kind (e.g. Bitmask3d): left out, listed here
        self.skipped: list[dict[str, Any]] = []
        #: seconds between polls of an import session or an export operation, and how long to wait at most
        self.poll_interval, self.poll_timeout = 2.0, 3600.0
        #: files an import session takes at most; `import_files` splits more over several sessions
        self.session_files = MAX_SESSION_FILES
        #: threads that list annotation shards at once, and whether a load shows a progress bar
        self.workers, self.progress = workers, progress

    def __repr__(self) -> str:
        return f"NexusBackend(project={self.project!r}, endpoint={self.endpoint!r})"

    def spec(self) -> dict[str, Any]:
        return {"project": self.project, "endpoint": self.endpoint}

    def _path(self, dataset: str, tail: str = "") -> str:
        return f"/projects/{dataset}{tail}"

    def _get_json(self, url: str, params: list[tuple[str, str]]) -> Any:
        """GET a page and decode it with orjson (several times faster than json on pages of 1,000 rows)."""
        response = self._api.request("GET", url, params=params)
        try:
            return orjson.loads(response.content)
        except ValueError as exc:
            raise MalformedResponse(
                self._api.redact(f"Nexus sent a body that is not JSON for GET {url}: {response.text[:200]!r}")
            ) from exc

    def _pages(self, url: str, params: list[tuple[str, str]]) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        while True:
            query = [*([("page", cursor)] if cursor else []), ("limit", str(self.page_size)), *params]
            page = self._get_json(url, query)
            data = page.get("data") if isinstance(page, dict) else None  # {} is no page: never an empty project
            if not isinstance(data, list) or not all(isinstance(a, dict) for a in data):
                raise MalformedResponse(
                    f"Nexus sent a page that is not {{nextPage, data: [{{...}}]}}: {str(page)[:200]}"
                )
            yield data
            cursor = page.get("nextPage")
            if not cursor:
                return

    # -- reading -------------------------------------------------------------------------------------------
    def datasets(self) -> pd.DataFrame:
        projects = _objects(self._api.get("/workspace/projects"), "a project list", "id")
        rows = [
            {"dataset": p["id"], "description": p.get("name"), "assets": (p.get("statistic") or {}).get("totalAssets"),
             "annotations": (p.get("statistic") or {}).get("totalAnnotations")}
            for p in projects
        ]  # fmt: skip
        df = pd.DataFrame(rows, columns=["dataset", "description", "assets", "annotations"])
        return df.astype({"dataset": schema.STR, "description": schema.STR, "assets": "Int64", "annotations": "Int64"})

    def assets(self, dataset: str) -> pd.DataFrame:
        rows = []
        for page in self._pages(self._path(dataset, "/assets"), []):
            for a in _objects(page, "an asset page", "id"):
                meta = a.get("metadata") or {}
                self._urls[a["id"]] = a.get("url") or ""
                rows.append(
                    {"dataset": dataset, "asset": a["id"], "name": a.get("filename"), "width": meta.get("width"),
                     "height": meta.get("height"), "uri": a.get("url") or None, "status": a.get("status")}
                )  # fmt: skip
        return schema.assets_frame(rows)

    def labels(self, dataset: str) -> pd.DataFrame:
        tags = _objects(self._api.get(self._path(dataset, "/tags")), "a tag list", "name")
        rows = [{"dataset": dataset, "name": t["name"], "index": t.get("index"), "color": t.get("color")} for t in tags]
        return schema.labels_frame(rows)

    def _wire_annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool = False
    ) -> list[dict[str, Any]]:
        return _objects(self._listing(dataset, assets, progress, lambda a: a), "an annotation page", "id")

    def _listing(
        self, dataset: str, assets: Sequence[str] | None, progress: bool, convert: Callable[[dict[str, Any]], T]
    ) -> list[T]:
        """The wire annotations of the project (or of these assets) in a deterministic order.

        The project is listed by shards of asset ids (``assetId[]`` filters, at most ``SHARD`` ids a request)
        fetched by ``self.workers`` threads over the one client, each shard following its own cursor; rows come in
        the order of the assets (the project's asset order when ``assets`` is None), then the server's order.
        Shards are sized so that their rows fit one page, by the project's statistic (annotations per asset).
        A project of at most ``SHARD`` assets is one plain listing (fewer requests), ordered the same way.
        Each shard's rows pass through ``convert`` in its thread, while the other shards wait on the network.
        """
        url, flags = self._path(dataset, "/annotations"), [("includeAttributes", "true")]
        per_asset = 0.0
        if assets is None:  # the project's statistic, fetched while its assets are listed, sizes the shards
            with ThreadPoolExecutor(max_workers=1) as side:
                statistic = side.submit(self._density, dataset)
                order = self._asset_ids(dataset)
                per_asset = statistic.result()
        else:
            order = [str(a) for a in dict.fromkeys(assets)]
        size = max(1, min(SHARD, math.ceil(len(order) / max(1, self.workers))))
        if per_asset > 0:  # a shard's rows fit one page, mostly
            size = max(1, min(size, int(0.8 * self.page_size / per_asset)))
        shards = [order[i : i + size] for i in range(0, len(order), size)]
        plain = assets is None and len(order) <= SHARD  # a small project: one plain listing of it

        rank = {a: n for n, a in enumerate(order)}

        def fetch(i: int) -> list[T]:
            chunk = [] if plain else [("assetId[]", a) for a in shards[i]]
            rows = [a for page in self._pages(url, [*chunk, *flags]) for a in page]
            # a shard holds several assets: put each asset's rows together, keeping the server's order within it
            rows.sort(key=lambda a: rank.get(str(a.get("assetId")), len(rank)))
            return [convert(a) for a in rows]

        found: dict[int, list[T]] = {}
        bar = progress_bar(len(order), "listing annotations", progress, "asset")
        try:
            if plain:
                found[0] = fetch(0)
                bar.update(len(order))
            elif self.workers <= 1 or len(shards) <= 1:
                for i in range(len(shards)):
                    found[i] = fetch(i)
                    bar.update(len(shards[i]))
            else:
                with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="nexus-list") as pool:
                    futures = {pool.submit(fetch, i): i for i in range(len(shards))}
                    try:
                        for done in as_completed(futures):
                            found[futures[done]] = done.result()
                            bar.update(len(shards[futures[done]]))
                    except BaseException:  # the first failure ends the listing: the shards not started never start
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise
        finally:
            bar.close()
        return [a for i in sorted(found) for a in found[i]]  # shards are runs of assets in order

    def _density(self, dataset: str) -> float:
        """Annotations per asset by the project's statistic; 0 when Nexus does not say."""
        try:
            counts = (self._api.get(self._path(dataset)) or {}).get("statistic") or {}
            return float(counts["totalAnnotations"]) / max(1.0, float(counts["totalAssets"]))
        except (BackendError, KeyError, TypeError, ValueError, AttributeError):
            return 0.0

    def _asset_ids(self, dataset: str) -> list[str]:
        ids = []
        for page in self._pages(self._path(dataset, "/assets"), []):
            for a in page:
                if not isinstance(a, dict) or "id" not in a:
                    raise MalformedResponse(f"Nexus sent an asset without an id: {str(a)[:200]}")
                ids.append(str(a["id"]))
        return ids

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Every annotation of the project (all pages), or of these assets; ordered by asset, then as Nexus lists.

        The listing is sharded by asset ids and fetched concurrently (``self.workers`` threads); ``progress``
        (default ``self.progress``) shows a bar over the assets listed.
        """
        with gc_paused():
            show = self.progress if progress is None else progress
            converted = self._listing(dataset, assets, show, lambda a: (a, row_from_wire(a, dataset)))
            rows, self.skipped = [], []
            for a, row in converted:
                if row is None:
                    skipped = {"id": a.get("id"), "asset": a.get("assetId"), "boundType": a.get("boundType")}
                    self.skipped.append(skipped)
                else:
                    rows.append(row)
            return schema.annotations_frame(rows)

    def get(self, dataset: str, annotation: str) -> pd.DataFrame:
        """One annotation by id, as a one-row annotations frame (`NotFound` when Nexus has no such row)."""
        ann = self._api.get(self._path(dataset, f"/annotations/{annotation}"), params={"includeAttributes": "true"})
        if not isinstance(ann, dict):
            raise MalformedResponse(f"Nexus sent an annotation that is not an object: {str(ann)[:200]}")
        row = row_from_wire(ann, dataset)
        if row is None:
            raise ValueError(f"annotation {annotation} is a {ann.get('boundType')}, which has no kind in annotebook")
        return schema.annotations_frame([row])

    def image_path(self, dataset: str, asset: str) -> str | None:
        """The asset's pixels in the on-disk cache, downloaded once; an expired signed URL is fetched again."""
        return cached_image(self._files, home() / "cache" / "nexus" / dataset, asset, self._urls.get(asset),
                            lambda: self._asset_url(dataset, asset))  # fmt: skip

    def _asset_url(self, dataset: str, asset: str) -> str:
        url = str(self._api.get(self._path(dataset, f"/assets/{asset}")).get("url") or "")
        self._urls[asset] = url
        return url

    # -- the sync engine's primitives (`annotebook.sync.recreate`: an edit is a create, then a delete) ----------
    def row_key(self, row: Mapping[str, Any]) -> str:
        """What a Nexus annotation keeps of a row (asset, tag, kind, bound, attributes, frame), in normal form."""
        return json.dumps(carried(row), sort_keys=True, default=str)

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Every row with fields a Nexus create cannot carry is named at once; nothing is written."""
        refuse_uncarried(rows, lambda rec: [*body_from_row(rec)[1], *label_refusals(rec.get("label"), "Nexus")],
                         "a Nexus create cannot carry (these rows are read-only on Nexus)")  # fmt: skip

    def create_labels(self, dataset: str, names: list[str]) -> None:
        """Tags the project lacks are created (an unanswered create is looked for before it is sent again)."""
        if not names:
            return
        known = self._tag_names(dataset)
        for name in sorted(set(names) - known):
            try:
                self._api.post(self._path(dataset, "/tags"), json={"name": name})
            except BackendError as exc:
                if not outcome_unknown(exc):
                    raise
                if name not in self._tag_names(dataset):
                    self._api.post(self._path(dataset, "/tags"), json={"name": name})

    def _tag_names(self, dataset: str) -> set[str]:
        return {str(t["name"]) for t in _objects(self._api.get(self._path(dataset, "/tags")), "a tag list", "name")}

    def create_rows(self, dataset: str, rows: pd.DataFrame) -> list[tuple[str, str]]:
        """One POST per row (Nexus creates one annotation a request); never retried when it may have landed."""
        out = []
        for rec in rows.to_dict("records"):
            body, _ = body_from_row({str(k): v for k, v in rec.items()})
            made = self._api.post(self._path(dataset, "/annotations"), json=body)
            if not isinstance(made, dict) or "id" not in made:
                raise MalformedResponse(f"Nexus answered a create without an id: {str(made)[:200]}")
            out.append((str(made["id"]), str(made.get("createDate", ""))))
        return out

    def delete_rows(self, dataset: str, rows: pd.DataFrame) -> list[str]:
        """DELETE each row; returns those already gone at the first attempt (another writer deleted them)."""
        gone = []
        for row_id in rows["id"]:
            try:
                self._api.delete(self._path(dataset, f"/annotations/{row_id}"))
            except NotFound as exc:
                if not getattr(exc, "after_retry", False):  # a retried delete whose first answer was lost: ours
                    gone.append(str(row_id))
        return gone
