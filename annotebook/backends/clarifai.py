"""Clarifai: one app is one dataset; inputs are assets, annotations rows, concepts labels; rows patch in place.

Wire facts (``shared/protocols/clarifai-superannotate-pictograph.md`` part A): REST under
``/v2/users/{user_id}/apps/{app_id}``, ``Authorization: Key <PAT>``, 1-based ``page`` / ``per_page`` listings that end
with an empty page, at most 128 annotations a write, and a ``status`` envelope in every body, errors included:
Clarifai's own JSON client never looks at the HTTP code, so every answer's ``status.code`` is checked here too.
Annotations <-> rows are `clarifai_rows`.

Pushes go through the sync engine's ``patch`` strategy (`annotebook.sync.patch`): POST new rows with annotation ids
chosen here from their client ids (a retried POST cannot duplicate), PATCH changed ones, DELETE deleted ones, 128 a
call. Nothing on the wire makes a write conditional, so the engine re-checks before and re-reads after.

Examples
--------
>>> import annotebook as ab
>>> conn = ab.connect("clarifai", user_id="me", app_id="street")  # doctest: +SKIP
>>> anns = conn.annotations()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd

from .. import schema
from .._home import home
from ..errors import (
    AuthError,
    BackendError,
    MalformedResponse,
    NotFound,
    RateLimited,
    ServerError,
    ValidationError,
)
from ._http import ApiClient, SignedUrls, make_client
from ._remote import cached_image, gc_paused
from ._rows import refuse_uncarried
from .base import Capabilities
from .clarifai_rows import (
    STATUS_CODES,
    annotation_id,
    body_from_row,
    carried,
    concept_body,
    problems_of,
    rows_from_wire,
    split_id,
)

__all__ = ["ClarifaiBackend", "check_status"]

KEY_ENV = "CLARIFAI_PAT"
DEFAULT_BASE = "https://api.clarifai.com"
#: annotations one POST / PATCH / DELETE carries at most, and the page size of listings
BATCH = 128
#: input ids in one filtered listing (they go in the query string)
SHARD = 64
_SUCCESS = 10000
_AUTH = {11007, 11008, 11009, 11010, 11006}
_LIMITED = {11003, 11005}
_NOT_FOUND = {11101, 30102, 24153, 21200}
_INVALID = {11100, 11102, 24155, 10020}
_SERVER = {98004, 98005, 99004, 99009, 99002}


#: input statuses (``status_code_pb2``) by name, with their ``INPUT_*`` aliases
INPUT_STATUSES = {"INPUT_DOWNLOAD_SUCCESS": 30000, "INPUT_DOWNLOAD_PENDING": 30001, "INPUT_DOWNLOAD_FAILED": 30002,
                  "INPUT_DOWNLOAD_IN_PROGRESS": 30003, "INPUT_SUCCESS": 30000, "INPUT_PENDING": 30001,
                  "INPUT_FAILED": 30002, "INPUT_IN_PROGRESS": 30003}  # fmt: skip


def _code(value: Any, names: Mapping[str, int]) -> int | None:
    """A status code as a number: the wire sends numbers, or enum names."""
    if isinstance(value, str) and not value.isdigit():
        return names.get(value)
    return int(value) if value is not None else None


def check_status(body: Any, what: str) -> dict[str, Any]:
    """``body`` when its ``status`` envelope says SUCCESS; else the matching `annotebook.errors` class with
    Clarifai's description (and the per-annotation descriptions of a mixed answer)."""
    if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
        raise MalformedResponse(f"Clarifai sent a body without a status envelope for {what}: {str(body)[:200]}")
    status = body["status"]
    try:
        code = int(status.get("code", 0))
    except (TypeError, ValueError):
        code = {"SUCCESS": _SUCCESS}.get(str(status.get("code")), -1)
    if code == _SUCCESS:
        return body
    text = str(status.get("description") or "") + (f" ({status['details']})" if status.get("details") else "")
    each = [
        f"{a.get('id')}: {(a.get('status') or {}).get('description')}"
        for a in body.get("annotations") or []
        if isinstance(a, dict) and int((a.get("status") or {}).get("code") or 24150) not in (24150, 24151, 24157)
    ]
    message = f"{what}: Clarifai answered {code} {text}" + (f"; per annotation: {'; '.join(each[:10])}" if each else "")
    if code in _AUTH:
        raise AuthError(f"{message}; set {KEY_ENV} to a valid personal access token")
    if code in _LIMITED:
        raise RateLimited(message)
    if code in _NOT_FOUND:
        raise NotFound(message)
    if code in _SERVER:
        raise ServerError(message)
    if code in _INVALID:
        raise ValidationError(message)
    raise BackendError(message)


class ClarifaiBackend:
    """A Clarifai app; the PAT comes from ``pat=`` or ``CLARIFAI_PAT``, the address from ``base_url=``."""

    name = "clarifai"
    title = "Clarifai"
    capabilities = Capabilities(
        update=True,
        create=True,
        batch_size=BATCH,
        client_ids=True,
        revisions="none",
        statuses=True,
        creates_labels=True,
        atomic=False,
        conditional_write=False,
    )

    def __init__(
        self,
        user_id: str = "me",
        app_id: str | None = None,
        pat: str | None = None,
        base_url: str | None = None,
        key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        workers: int = 4,
        progress: bool = True,
        statuses: Sequence[str] | None = None,
        embed_model_version_id: str | None = None,
    ):
        pat = pat or key or os.environ.get(KEY_ENV)
        if not pat:
            raise AuthError(f"no Clarifai personal access token: set {KEY_ENV} or pass pat=...")
        if not app_id:
            raise ValueError("name the Clarifai app: ab.connect('clarifai', user_id=..., app_id=...)")
        self.user_id, self.app_id = user_id, app_id
        self.bound_dataset = app_id
        self.base_url = (base_url or os.environ.get("CLARIFAI_API_BASE") or DEFAULT_BASE).rstrip("/")
        headers = {"Authorization": f"Key {pat}", "User-Agent": "annotebook (httpx)"}
        self._api: ApiClient = make_client(self.base_url, headers, timeout, transport, service="Clarifai",
                                           key_env=KEY_ENV)  # fmt: skip
        self._files = SignedUrls(self._api.http, "Clarifai")
        weakref.finalize(self, self._api.close)
        self.workers, self.progress = workers, progress
        #: annotation statuses a load keeps (None: every status); the assets table's filter too
        self.statuses = [str(s) for s in statuses] if statuses else None
        #: passed on every POST, so the app's embedding model indexes new annotations
        self.embed_model_version_id = embed_model_version_id
        self._urls: dict[str, str] = {}
        #: concepts known to exist per app, so a push lists them only when it names a new one
        self._concepts: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"ClarifaiBackend(user_id={self.user_id!r}, app_id={self.app_id!r}, base_url={self.base_url!r})"

    def spec(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "app_id": self.app_id, "base_url": self.base_url}

    # -- the wire --------------------------------------------------------------------------------------------
    def _path(self, dataset: str, tail: str) -> str:
        return f"/v2/users/{self.user_id}/apps/{dataset}{tail}"

    def _app(self, dataset: str) -> dict[str, str]:
        return {"user_id": self.user_id, "app_id": dataset}

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One request whose ``status`` envelope is checked (a non-2xx answer is mapped by `_http` first)."""
        return check_status(self._api.json(method, url, **kwargs), f"Clarifai {method} {url}")

    def _query(self, dataset: str, **extra: Any) -> list[tuple[str, str]]:
        """A GET query as Clarifai's JSON client encodes it: dotted ``user_app_id.*``, repeated lists, Python bools."""
        out = [("user_app_id.user_id", self.user_id), ("user_app_id.app_id", dataset)]
        for k, v in extra.items():
            for item in v if isinstance(v, list | tuple) else [v]:
                out.append((k, str(item)))
        return out

    def _pages(self, url: str, key: str, query: list[tuple[str, str]]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a listing, ``self.workers`` pages at a time, until a page comes back empty."""
        page, width = 1, 1
        while True:
            numbers = list(range(page, page + width))

            def fetch(n: int) -> list[dict[str, Any]]:
                body = self._call("GET", url, params=[*query, ("page", str(n)), ("per_page", str(BATCH))])
                items = body.get(key) or []
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    raise MalformedResponse(f"Clarifai sent a {key} page that is not a list of objects")
                return items

            if width == 1:
                pages = [fetch(page)]
            else:
                with ThreadPoolExecutor(max_workers=width, thread_name_prefix="clarifai-list") as pool:
                    pages = list(pool.map(fetch, numbers))
            for items in pages:
                if not items:
                    return
                yield items
            page += width
            width = min(max(1, self.workers), width * 2)  # a second full page: the listing is long, go wider

    # -- reading -------------------------------------------------------------------------------------------
    def datasets(self) -> pd.DataFrame:
        df = pd.DataFrame({"dataset": [self.app_id], "description": [f"app {self.app_id} of {self.user_id}"]})
        return df.astype({"dataset": schema.STR, "description": schema.STR})

    def assets(self, dataset: str, status: str | int | Sequence[str | int] | None = None) -> pd.DataFrame:
        """Every input of the app; ``status=`` (a name, a code, or several) keeps the inputs of that input status
        (``INPUT_DOWNLOAD_SUCCESS``, asked of ListInputs as ``status.code``) or holding an annotation of that
        annotation status (``ANNOTATION_AWAITING_REVIEW``, asked of ListAnnotations as ``statuses.code``). Both
        answers are checked here too, so a server that ignores a filter still gives the right inputs."""
        wanted = [] if status is None else [status] if isinstance(status, str | int) else list(status)
        codes = {INPUT_STATUSES.get(str(s)) or STATUS_CODES.get(str(s)) or (int(s) if str(s).isdigit() else 0)
                 for s in wanted}  # fmt: skip
        if 0 in codes:
            known = sorted([*INPUT_STATUSES, *STATUS_CODES])
            raise ValueError(f"unknown Clarifai status in {wanted!r}; give codes or names: {', '.join(known)}")
        of_inputs = {c for c in codes if c in INPUT_STATUSES.values()}
        annotated: set[str] = set()
        if codes - of_inputs:  # inputs holding an annotation of one of these statuses
            query = self._query(dataset, list_all_annotations=True, **{"statuses.code": sorted(codes - of_inputs)})
            for page in self._pages(self._path(dataset, "/annotations"), "annotations", query):
                annotated |= {str(a.get("input_id")) for a in page
                              if _code((a.get("status") or {}).get("code"), STATUS_CODES) in codes}  # fmt: skip
        one = {"status.code": next(iter(of_inputs))} if len(of_inputs) == 1 and codes == of_inputs else {}
        rows = []
        for page in self._pages(self._path(dataset, "/inputs"), "inputs", self._query(dataset, **one)):
            for i in page:
                state = i.get("status") or {}
                if codes and str(i["id"]) not in annotated and _code(state.get("code"), INPUT_STATUSES) not in codes:
                    continue
                image = (i.get("data") or {}).get("image") or {}
                info = image.get("image_info") or {}
                meta = (i.get("data") or {}).get("metadata") or {}
                url = image.get("url") or ""
                self._urls[str(i["id"])] = url
                rows.append({"dataset": dataset, "asset": str(i["id"]), "name": meta.get("filename") or str(i["id"]),
                             "width": info.get("width") or meta.get("width"),
                             "height": info.get("height") or meta.get("height"), "uri": url or None,
                             "status": state.get("description")})  # fmt: skip
        return schema.assets_frame(rows)

    def labels(self, dataset: str) -> pd.DataFrame:
        names = []
        for page in self._pages(self._path(dataset, "/concepts"), "concepts", self._query(dataset)):
            names += [str(c.get("id")) for c in page]
        return schema.labels_frame([{"dataset": dataset, "name": n, "index": None, "color": None} for n in names])

    def _wire_annotations(self, dataset: str, assets: Sequence[str] | None) -> list[dict[str, Any]]:
        url = self._path(dataset, "/annotations")
        flags = {"list_all_annotations": True}
        if assets is None:
            return [a for page in self._pages(url, "annotations", self._query(dataset, **flags)) for a in page]
        order = [str(a) for a in dict.fromkeys(assets)]
        shards = [order[i : i + SHARD] for i in range(0, len(order), SHARD)]

        def fetch(shard: list[str]) -> list[dict[str, Any]]:
            query = self._query(dataset, input_ids=shard, **flags)
            return [a for page in self._pages(url, "annotations", query) for a in page]

        if len(shards) <= 1:
            return [a for s in shards for a in fetch(s)]
        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="clarifai-list") as pool:
            return [a for found in pool.map(fetch, shards) for a in found]

    def client_row_id(self, client_id: str) -> str:
        """The id the row a push creates for ``client_id`` gets: its annotation id, chosen on the client."""
        return annotation_id(client_id)

    def read_rows(self, dataset: str, ids: Sequence[str]) -> pd.DataFrame:
        """The rows ``ids`` as Clarifai holds them now (those gone are left out): ListAnnotations by annotation ids,
        so a push re-reads what it writes, not whole inputs."""
        wanted = {str(i) for i in ids}
        anns = sorted({split_id(i)[0] for i in wanted})
        url = self._path(dataset, "/annotations")
        shards = [anns[i : i + SHARD] for i in range(0, len(anns), SHARD)]

        def fetch(shard: list[str]) -> list[dict[str, Any]]:
            query = self._query(dataset, ids=shard, list_all_annotations=True)
            return [a for page in self._pages(url, "annotations", query) for a in page]

        with ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="clarifai-ids") as pool:
            found = [a for got in pool.map(fetch, shards) for a in got]
        rows = [r for a in found for r in rows_from_wire(a, dataset) if str(r["id"]) in wanted]
        return schema.annotations_frame(rows)

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Every annotation of the app (every page, user- and model-made), or of these inputs."""
        with gc_paused():
            rows = [r for a in self._wire_annotations(dataset, assets) for r in rows_from_wire(a, dataset)]
            if self.statuses is not None:
                rows = [r for r in rows if r.get("status") in self.statuses]
            return schema.annotations_frame(rows)

    def image_path(self, dataset: str, asset: str) -> str | None:
        """The input's pixels in the on-disk cache, downloaded once."""
        return cached_image(self._files, home() / "cache" / "clarifai" / dataset, asset, self._urls.get(asset),
                            lambda: self._input_url(dataset, asset))  # fmt: skip

    def _input_url(self, dataset: str, asset: str) -> str:
        body = self._call("GET", self._path(dataset, f"/inputs/{asset}"), params=self._query(dataset))
        url = str((((body.get("input") or {}).get("data") or {}).get("image") or {}).get("url") or "")
        self._urls[asset] = url
        return url

    # -- the sync engine's primitives (`annotebook.sync.patch`) ------------------------------------------------
    def row_key(self, row: Mapping[str, Any]) -> str:
        """What a Clarifai annotation keeps of a row, in normal form."""
        return json.dumps(carried(row), sort_keys=True, default=str)

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Every row a Clarifai annotation cannot carry is named at once; nothing is written."""
        refuse_uncarried(rows, problems_of, "a Clarifai annotation cannot carry")

    def create_labels(self, dataset: str, names: list[str]) -> None:
        """Concepts the app lacks are created (one POST; creating a concept twice is harmless)."""
        known = self._concepts.setdefault(dataset, set())
        if not set(names) <= known:  # listed only when a push names a concept not seen yet
            known |= set(self.labels(dataset)["name"].astype(str))
        missing = sorted(set(names) - known)
        known |= set(missing)
        for i in range(0, len(missing), BATCH):
            concepts = [{"id": n, "name": n} for n in missing[i : i + BATCH]]
            self._call("POST", self._path(dataset, "/concepts"), json={"user_app_id": self._app(dataset),
                                                                       "concepts": concepts})  # fmt: skip

    def create_rows(self, dataset: str, rows: pd.DataFrame) -> list[tuple[str, str]]:
        """One POST of up to 128 annotations, with ids chosen from the rows' client ids."""
        recs = [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]
        bodies = [body_from_row(r, annotation_id(str(r["id"]))) for r in recs]
        if self.embed_model_version_id:
            for b in bodies:
                b["embed_model_version_id"] = self.embed_model_version_id
        answer = self._call("POST", self._path(dataset, "/annotations"),
                            json={"user_app_id": self._app(dataset), "annotations": bodies})  # fmt: skip
        made = {str(a.get("id")): a for a in answer.get("annotations") or [] if isinstance(a, dict)}
        out = []
        for b in bodies:
            if b["id"] not in made:
                raise MalformedResponse(f"Clarifai did not answer the create of annotation {b['id']}")
            a = made[b["id"]]
            out.append((b["id"], str(a.get("modified_at") or a.get("created_at") or "")))
        return out

    def patch_rows(self, dataset: str, rows: pd.DataFrame) -> dict[str, str]:
        """PATCH ``overwrite`` for whole annotations (geometry, label, status in one), ``merge`` of one concept for a
        row of a several-concept annotation; one call per action."""
        overwrite: list[tuple[str, dict[str, Any]]] = []
        merge: list[tuple[str, dict[str, Any]]] = []
        for r in rows.to_dict("records"):
            rec = {str(k): v for k, v in r.items()}
            ann, concept = split_id(str(rec["id"]))
            (merge if concept else overwrite).append((str(rec["id"]), concept_body(rec, ann) if concept else
                                                      body_from_row(rec, ann)))  # fmt: skip
        out: dict[str, str] = {}
        for action, items in (("overwrite", overwrite), ("merge", merge)):
            if not items:
                continue
            answer = self._call("PATCH", self._path(dataset, "/annotations"), json={
                "user_app_id": self._app(dataset), "action": action, "annotations": [b for _, b in items]})  # fmt: skip
            revs = {str(a.get("id")): str(a.get("modified_at") or "") for a in answer.get("annotations") or []}
            out.update({row_id: revs.get(split_id(row_id)[0], "") for row_id, _ in items})
        return out

    def delete_rows(self, dataset: str, rows: pd.DataFrame) -> list[str]:
        """Bulk DELETE by ids (a dropped concept of a several-concept annotation: PATCH ``remove``); returns the ids
        already gone at the first attempt (another writer deleted them)."""
        whole = [(str(i), str(a)) for i, a in zip(rows["id"], rows["asset"], strict=True) if "#" not in str(i)]
        parts = [r for r in rows.to_dict("records") if "#" in str(r["id"])]
        gone: list[str] = []
        if whole:
            gone += self._delete(dataset, whole)
        if parts:
            bodies = [concept_body({str(k): v for k, v in r.items()}, split_id(str(r["id"]))[0]) for r in parts]
            self._call("PATCH", self._path(dataset, "/annotations"), json={
                "user_app_id": self._app(dataset), "action": "remove", "annotations": bodies})  # fmt: skip
        return gone

    def _delete(self, dataset: str, pairs: list[tuple[str, str]]) -> list[str]:
        body = {"user_app_id": self._app(dataset), "ids": [i for i, _ in pairs], "input_ids": [a for _, a in pairs]}
        try:
            self._call("DELETE", self._path(dataset, "/annotations"), json=body)
            return []
        except NotFound as exc:
            if getattr(exc, "after_retry", False) and len(pairs) == 1:
                return []  # our own first attempt deleted it
            there = set(self._existing(dataset, pairs))
        left = [(i, a) for i, a in pairs if i in there]
        if left:
            self._call("DELETE", self._path(dataset, "/annotations"), json={
                **body, "ids": [i for i, _ in left], "input_ids": [a for _, a in left]})  # fmt: skip
        return [i for i, _ in pairs if i not in there]

    def _existing(self, dataset: str, pairs: list[tuple[str, str]]) -> list[str]:
        query = self._query(dataset, ids=[i for i, _ in pairs], input_ids=[a for _, a in pairs],
                            list_all_annotations=True)  # fmt: skip
        return [str(a.get("id")) for page in self._pages(self._path(dataset, "/annotations"), "annotations", query)
                for a in page]  # fmt: skip
