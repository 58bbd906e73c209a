"""SuperAnnotate: projects of items whose annotations are one JSON per item, uploaded whole.

Wire facts (``shared/protocols/clarifai-superannotate-pictograph.md`` part B, ``superannotate`` 4.6.2): four hosts
(the main API at ``url``; work management, the item service and the assets provider, which default to the
platform's own hosts, or to ``{url}/wm/api/v1/``, ``{url}/item/api/v1/``, ``{url}/assets/api/`` when ``url`` is
another server, as the simulator serves them; ``hosts=`` overrides each); ``Authorization: <token>`` with
``authtype: sdk`` for a legacy ``name=<team id>`` token or ``api_key`` for an API key (its team comes from
``POST {wm}/users/me``); ``team_id`` on every query and the scope in ``x-sa-entity-context``. A dataset is
``"project"`` (its root folder) or ``"project/folder"``. Items are listed by ``POST {item}/items/search`` (2000 a
page); annotations are classified (``download/method``, 1000 ids a call) and streamed (JSON objects joined by the
literal ``\\n;)\\n``), ``workers`` streams at once, ``stream_size`` items each; items over 15 MB take the large path
(``sync``, its status, the v3.01 download). How an item's JSON maps to rows is `superannotate_rows`.

Writing. SuperAnnotate has no single-instance write and no conditional write: the engine's ``replace`` strategy
plans each touched item's whole JSON, `replace_units` re-checks right before the upload and sends it as
multipart (one part per item, at most 10 MB and a 4 KB name query a request, as the SDK chunks). The reply's
``failedItems`` and ``missingResources`` are reported per item. Unless ``keep_status`` (`push_options`), the
uploaded items' status is set to InProgress afterwards (the SDK's default, and only on a system workflow). A class
the project lacks is refused before any request, or created when ``create_classes=True``. Statuses: the assets
table's ``status`` pushed in bulk (``PUT image/updateAnnotationStatusBulk``, 500 names a call).

Examples
--------
>>> import annotebook as ab
>>> sa = ab.connect("superannotate", project="Cats")  # doctest: +SKIP
>>> anns = sa.assets("Cats/folder1").annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from .. import schema
from .._home import home
from ..errors import AuthError, BackendError, ConnectionFailed, NotSupported, ServerError, ValidationError
from ._http import ApiClient, MalformedResponse, SignedUrls, make_client
from ._remote import cached_image, gc_paused, progress_bar
from .base import Capabilities
from .superannotate_rows import content_key, item_json, kept_parts, problems_of, rows_from_item
from .transfer_report import ExportResult, ImportReport, take_options

__all__ = ["SuperAnnotateBackend"]

KEY_ENV = "SA_TOKEN"
URL_ENV = "SA_URL"
DEFAULT_URL = "https://api.superannotate.com"
PLATFORM_HOSTS = {"wm": "https://work-management-api.superannotate.com/api/v1/",
                  "item": "https://item.superannotate.com/api/v1/",
                  "assets": "https://assets-provider.superannotate.com/api/"}  # fmt: skip
LEGACY = re.compile(r"^[-.@_A-Za-z0-9]+=(\d+)$")
DELIMITER = "\\n;)\\n"
#: the SDK's chunk sizes (part B.5)
SEARCH_PAGE, CLASSIFY, STATUS_CHUNK, UPLOAD_BYTES, URI_LIMIT = 2000, 1000, 500, 10_000_000, 4 * 1024 - 120
#: items an upload request carries at most (the name query usually ends a request sooner)
UPLOAD_ITEMS = 100
_READ_RETRIES = 3


class SuperAnnotateBackend:
    """The projects of one SuperAnnotate team; the token from ``token=`` or ``SA_TOKEN``."""

    name = "superannotate"
    title = "SuperAnnotate"
    capabilities = Capabilities(
        update=False,
        create=True,
        replace_per_asset=True,
        unit="asset",
        batch_size=UPLOAD_ITEMS,
        client_ids=False,
        revisions="none",
        conditional_write=False,
        creates_labels=False,
        statuses=True,
        atomic=False,
        export_formats=("superannotate",),
    )

    def __init__(
        self,
        project: str | None = None,
        token: str | None = None,
        url: str | None = None,
        hosts: Mapping[str, str] | None = None,
        team_id: int | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        workers: int = 16,
        stream_size: int = 50,
        progress: bool = True,
        keep_status: bool = False,
        create_classes: bool = False,
        fps: float = 1.0,
        key: str | None = None,
    ):
        """``key=`` is ``token=`` under the name the other backends use."""
        token = token or key or os.environ.get(KEY_ENV)
        if not token:
            raise AuthError(f"no SuperAnnotate token: set {KEY_ENV} or pass token=...")
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        own = self.url == DEFAULT_URL
        self.hosts = {k: v if own else f"{self.url}/{k}/api/v1/" for k, v in PLATFORM_HOSTS.items()}
        self.hosts["assets"] = PLATFORM_HOSTS["assets"] if own else f"{self.url}/assets/api/"
        self.hosts.update(hosts or {})
        self.bound_dataset = project
        self.workers, self.stream_size, self.progress, self.fps = workers, stream_size, progress, fps
        self.keep_status, self.create_classes = keep_status, create_classes
        if create_classes:
            self.capabilities = Capabilities(**{**self.capabilities.__dict__, "creates_labels": True})
        legacy = LEGACY.match(token)
        headers = {"Authorization": token, "authtype": "sdk" if legacy else "api_key",
                   "User-Agent": "annotebook (httpx)", "Accept": "application/json"}  # fmt: skip
        self._api: ApiClient = make_client(self.url, headers, timeout, transport, service="SuperAnnotate",
                                           key_env=KEY_ENV)  # fmt: skip
        self._files = SignedUrls(self._api.http, "SuperAnnotate")
        weakref.finalize(self, self._api.close)
        self._team: int | None = int(legacy.group(1)) if legacy else team_id
        self._places: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}  # dataset -> (project, folder)
        self._items: dict[str, dict[str, dict[str, Any]]] = {}  # dataset -> item id -> the item as listed
        self._sizes: dict[str, tuple[float, float]] = {}  # item id -> (width, height) from its JSON
        #: item id -> its annotation JSON as last re-read for a push: the write sends back what the rows do not hold
        #: (cuboids, templates, comments) and each unchanged instance as it was read
        self._docs: dict[str, tuple[dict[str, Any], str]] = {}  # item id -> (JSON, digest of its bytes)
        self._workflow: dict[int, tuple[bool, dict[str, int]]] = {}  # workflow id -> (system?, name -> value)
        self._user: str | None = None
        self._last = 0

    def __repr__(self) -> str:
        return f"SuperAnnotateBackend(url={self.url!r})"

    def spec(self) -> dict[str, Any]:
        return {"url": self.url, "hosts": dict(self.hosts)}

    # -- the wire ----------------------------------------------------------------------------------------------
    @property
    def team(self) -> int:
        """The team of the token: in a legacy token, else from ``POST {wm}/users/me`` (an API key)."""
        if self._team is None:
            answer = self._api.post(self.hosts["wm"] + "users/me", json={})
            scope = ((answer or {}).get("token") or {}).get("scope") or {} if isinstance(answer, dict) else {}
            if scope.get("team_id") is None:
                raise AuthError("SuperAnnotate did not name the team of this API key: pass team_id=...")
            self._team = int(scope["team_id"])
        return self._team

    def _headers(self, project: int | None = None, folder: int | None = None) -> dict[str, str]:
        ctx = {"team_id": self.team, **({"project_id": project} if project else {}),
               **({"folder_id": folder} if folder else {})}  # fmt: skip
        return {"x-sa-entity-context": base64.b64encode(json.dumps(ctx, separators=(",", ":")).encode()).decode()}

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
        project: int | None = None,
        folder: int | None = None,
        read: bool = False,
        **kwargs: Any,
    ) -> Any:
        """One JSON call with ``team_id``; ``read``: a POST that only reads, retried like a GET."""
        query = [*(params.items() if isinstance(params, Mapping) else params), ("team_id", self.team)]
        for attempt in range(_READ_RETRIES + 1):
            try:
                return self._api.json(method, url, params=query, headers=self._headers(project, folder), **kwargs)
            except (ServerError, ConnectionFailed, MalformedResponse):
                if not read or attempt == _READ_RETRIES:
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def _paged(self, url: str, params: Mapping[str, Any], project: int | None = None) -> Iterator[dict[str, Any]]:
        """Every entry of an ``offset``-paged ``{data, count}`` listing of the main API."""
        offset = 0
        while True:
            page = self._call("GET", url, params={**params, "offset": offset}, project=project)
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise MalformedResponse(f"SuperAnnotate sent a listing that is not {{data: [...]}}: {str(page)[:200]}")
            yield from data
            offset += len(data)
            if not data or offset >= int(page.get("count") or 0):
                return

    # -- datasets: "project" or "project/folder" -----------------------------------------------------------------
    def _place(self, dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(project, folder) of ``dataset``, looked up once."""
        if dataset not in self._places:
            name, _, folder_name = dataset.partition("/")
            found = [p for p in self._paged(self.url + "/api/v1/projects", {"name": name}) if p.get("name") == name]
            if not found:
                raise ValidationError(f"no SuperAnnotate project named {name!r}")
            project = found[0]
            try:
                folder = self._call("GET", self.url + "/folder/getFolderByName",
                                    params={"project_id": project["id"], "name": folder_name or "root"})  # fmt: skip
            except BackendError as exc:
                if getattr(exc, "status", None) == 404:
                    raise ValidationError(f"no folder {folder_name!r} in the SuperAnnotate project {name!r}") from exc
                raise
            if not isinstance(folder, dict) or "id" not in folder:
                raise MalformedResponse(f"SuperAnnotate sent a folder without an id: {str(folder)[:200]}")
            self._places[dataset] = (project, folder)
        return self._places[dataset]

    def datasets(self) -> pd.DataFrame:
        rows = []
        for p in self._paged(self.url + "/api/v1/projects", {}):
            rows.append({"dataset": p["name"], "id": str(p["id"]), "type": p.get("type"), "items": p.get("imageCount")})
            for f in self._paged(self.url + "/folders", {"project_id": p["id"]}, project=p["id"]):
                rows.append({"dataset": f"{p['name']}/{f['name']}", "id": str(f["id"]), "type": p.get("type"),
                             "items": None})  # fmt: skip
        return pd.DataFrame(rows, columns=["dataset", "id", "type", "items"]).astype(
            {"dataset": schema.STR, "id": schema.STR, "type": "Int64", "items": "Int64"}
        )

    def labels(self, dataset: str) -> pd.DataFrame:
        project, _ = self._place(dataset)
        rows = [{"dataset": dataset, "name": c["name"], "index": c.get("id"), "color": c.get("color")}
                for c in self._classes(project)]  # fmt: skip
        return schema.labels_frame(rows)

    def _classes(self, project: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(self._paged(self.url + "/classes", {"project_id": project["id"]}, project=project["id"]))

    # -- statuses ---------------------------------------------------------------------------------------------------
    def _statuses(self, project: Mapping[str, Any]) -> tuple[bool, dict[str, int]]:
        """(a system workflow?, status name -> value) of the project's workflow, read once."""
        wid = int(project.get("workflow_id") or 0)
        if wid not in self._workflow:
            flows = self._call("GET", self.hosts["wm"] + "workflows", params={"filter": f"id||$eq||{wid}"})
            system = any(f.get("type") == "system" for f in (flows or {}).get("data") or [])
            answer = self._call("GET", self.hosts["wm"] + f"workflows/{wid}/workflowstatuses",
                                params={"join": "status"}, project=project["id"])  # fmt: skip
            names = {
                str((s.get("status") or {}).get("name")): int(s["value"]) for s in (answer or {}).get("data") or []
            }
            self._workflow[wid] = (system, names)
        return self._workflow[wid]

    # -- items ------------------------------------------------------------------------------------------------------
    def _search(self, dataset: str, search: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        project, folder = self._place(dataset)
        out, offset = [], 0
        while True:
            query = {"limit": SEARCH_PAGE, "offset": offset, "search": dict(search or {}),
                     "join": [{"field": "metadata", "select": ["path", "width", "height"]}]}  # fmt: skip
            page = self._call("POST", self.hosts["item"] + "items/search", json={"query": query},
                              project=project["id"], folder=folder["id"], read=True)  # fmt: skip
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise MalformedResponse(
                    f"SuperAnnotate sent an item page that is not {{data: [...]}}: {str(page)[:200]}"
                )
            out += data
            offset += len(data)
            if len(data) < SEARCH_PAGE or offset >= int(page.get("count") or 0):
                return out

    def _list_items(self, dataset: str) -> list[dict[str, Any]]:
        found = self._search(dataset)
        self._items[dataset] = {str(i["id"]): i for i in found}
        return found

    def assets(self, dataset: str, status: str | Sequence[str] | None = None) -> pd.DataFrame:
        """The items of ``dataset`` (``status=``: those of these annotation statuses, filtered by the server)."""
        project, _ = self._place(dataset)
        _, names = self._statuses(project)
        by_value = {v: k for k, v in names.items()}
        if status is None:
            found = self._list_items(dataset)
        else:
            wanted = [status] if isinstance(status, str) else list(status)
            unknown = [s for s in wanted if s not in names]
            if unknown:
                raise ValidationError(f"unknown SuperAnnotate status(es) {unknown}; the project has {sorted(names)}")
            found = self._search(dataset, {"annotation_status": {"$in": [names[s] for s in wanted]}})
        missing = [str(i["id"]) for i in found if _size(i) is None and str(i["id"]) not in self._sizes]
        if missing:
            self._stream(dataset, missing, lambda doc, digest: None)  # the sizes are in the items' JSON
        rows = []
        for i in found:
            width, height = _size(i) or self._sizes.get(str(i["id"])) or (None, None)
            value = i.get("annotation_status")
            rows.append({"dataset": dataset, "asset": str(i["id"]), "name": i["name"], "width": width,
                         "height": height, "uri": None,
                         "status": by_value.get(value, value) if value is not None else None})  # fmt: skip
        return schema.assets_frame(rows)

    def _item(self, dataset: str, asset: str) -> dict[str, Any]:
        if asset not in self._items.get(dataset, {}):
            self._list_items(dataset)
        try:
            return self._items[dataset][asset]
        except KeyError:
            raise ValidationError(f"item {asset!r} is not in the SuperAnnotate folder {dataset!r}") from None

    # -- annotations ----------------------------------------------------------------------------------------------
    def _stream(self, dataset: str, ids: Sequence[str], take: Callable[[dict[str, Any], str], None],
                progress: bool = False) -> None:  # fmt: skip
        """Every annotation JSON of ``ids`` handed to ``take`` with a digest of its bytes (in the worker threads, so
        ``take`` must only store): classified, then ``workers`` streams at once (large ones one by one)."""
        project, folder = self._place(dataset)
        small, large = [], []
        for start in range(0, len(ids), CLASSIFY):
            chunk = [int(i) for i in ids[start : start + CLASSIFY]]
            answer = self._call("POST", self.hosts["assets"] + "v4/items/annotations/download/method",
                                params={"limit": len(chunk)}, json={"project_id": project["id"], "item_ids": chunk},
                                read=True)  # fmt: skip
            if not isinstance(answer, dict):
                raise MalformedResponse(f"SuperAnnotate sent a classification that is not an object: {answer!r:.200}")
            for group in (answer.get("small") or {}).values():
                small += [int(x["id"]) for x in group.get("data") or []]
            large += [int(x["id"]) for x in answer.get("large") or []]
        chunks = [small[i : i + self.stream_size] for i in range(0, len(small), self.stream_size)]
        bar = progress_bar(len(ids), "listing annotations", progress, "item")

        def one(chunk: list[int]) -> None:
            for doc, digest in self._download(project, folder, chunk):
                self._take(doc, digest, take)  # in this worker: the next streams arrive while this one is read
            bar.update(len(chunk))

        try:
            if self.workers <= 1 or len(chunks) <= 1:
                for c in chunks:
                    one(c)
            else:
                with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="superannotate") as pool:
                    list(pool.map(one, chunks))
            for i in large:
                doc = self._large(project, i)
                self._take(doc, _digest(json.dumps(doc, separators=(",", ":"))), take)
        finally:
            bar.close()

    def _take(self, doc: dict[str, Any], digest: str, take: Callable[[dict[str, Any], str], None]) -> None:
        meta = doc["metadata"]
        iid = str(meta.get("id") or "")
        if meta.get("width") and meta.get("height") and iid:
            self._sizes[iid] = (float(meta["width"]), float(meta["height"]))
        take(doc, digest)

    def _download(
        self, project: Mapping[str, Any], folder: Mapping[str, Any], ids: list[int]
    ) -> list[tuple[dict[str, Any], str]]:
        """One stream: the annotation JSONs joined by ``\\n;)\\n``, decoded in one pass."""
        url = self.hosts["assets"] + "v4/items/annotations/download"
        params = [("project_id", project["id"]), ("folder_id", folder["id"]), ("limit", len(ids)),
                  ("team_id", self.team)]  # fmt: skip
        for attempt in range(_READ_RETRIES + 1):
            try:
                response = self._api.request("POST", url, params=params, json={"image_ids": ids},
                                             headers=self._headers(project["id"], folder["id"]))  # fmt: skip
                return _decode_stream(response.text)
            except (ServerError, ConnectionFailed, MalformedResponse):
                if attempt == _READ_RETRIES:
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    def _large(self, project: Mapping[str, Any], iid: int) -> dict[str, Any]:
        """An item over 15 MB: ``sync`` to the secondary store, wait for it, then download it whole."""
        base = self.hosts["assets"]
        params = {"project_id": project["id"], "desired_transform_version": "export", "desired_version": "V1.00",
                  "current_transform_version": "V1.00"}  # fmt: skip
        self._call("POST", base + f"v4/items/{iid}/annotations/sync",
                   params={**params, "current_source": "main", "desired_source": "secondary"}, read=True)  # fmt: skip
        for _ in range(120):
            status = self._call("GET", base + f"v4/items/{iid}/annotations/sync/status", params=params)
            if (status or {}).get("status") == "SUCCESS":
                break
            time.sleep(1)
        query = {"project_id": project["id"], "annotation_type": "MAIN", "version": "V1.00"}
        doc = self._call("POST", base + f"v3.01/items/{iid}/annotations/download", read=True, params=query)
        if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
            raise MalformedResponse(f"SuperAnnotate sent a large annotation without metadata: {str(doc)[:200]}")
        return doc

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Every annotation of the folder (or of these items), streamed ``workers`` requests at once."""
        with gc_paused():
            return self._annotations(dataset, assets, progress)

    def _annotations(self, dataset: str, assets: Sequence[str] | None, progress: bool | None) -> pd.DataFrame:
        if assets is None:
            ids = [str(i["id"]) for i in self._list_items(dataset)]
        else:
            ids = [str(a) for a in dict.fromkeys(assets)]
        read: dict[str, list[dict[str, Any]]] = {}
        keep = assets is not None  # the engine's re-read of the items a push writes (a whole load keeps no JSON)

        def take(doc: dict[str, Any], digest: str) -> None:  # rows are built as each stream arrives, in its worker
            meta = doc["metadata"]
            iid = str(meta.get("id", meta.get("name")))
            read[iid] = rows_from_item(doc, dataset, iid, self.fps, digest=digest)[1]
            if keep:
                self._docs[iid] = (doc, digest)

        self._stream(dataset, ids, take, self.progress if progress is None else progress)
        rows = [r for iid in ids for r in read.get(iid, ())]
        return schema.annotations_frame(_columns(rows))

    def image_path(self, dataset: str, asset: str) -> str | None:
        """The item's pixels in the on-disk cache, downloaded once through its download token."""
        project, folder = self._place(dataset)
        where = home() / "cache" / "superannotate" / str(project["id"])

        def fresh() -> str:
            answer = self._call("GET", self.url + f"/image/{asset}/annotation/getAnnotationDownloadToken",
                                params={"project_id": project["id"], "folder_id": folder["id"],
                                        "include_original": 1})  # fmt: skip
            return str(((answer or {}).get("original") or {}).get("url") or "")

        return cached_image(self._files, where, asset, None, fresh)

    # -- the sync engine's primitives (`annotebook.sync.replace`: one upload per item) ---------------------------------
    def row_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """What SuperAnnotate keeps of a row, without its id: how the engine finds a written row's id again."""
        return (str(row.get("asset")), *content_key(row))

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Rows an upload cannot carry (kind, geometry, video, classes the project lacks) are named first."""
        project, _ = self._place(dataset)
        classes = {str(c["name"]) for c in self._classes(project)}
        problems = []
        for r in _records(rows):
            problems += [{"id": r["id"], "column": c, "problem": p} for c, p in problems_of(r)]
            label = r.get("label")
            if r["kind"] != "tag" and isinstance(label, str) and label not in classes and not self.create_classes:
                why = f"class {label!r} is not in the project ({sorted(classes)}); create_classes=True creates it"
                problems.append({"id": r["id"], "column": "label", "problem": why})
        if problems:
            raise ValidationError(
                f"{len({p['id'] for p in problems})} row(s) cannot be written to SuperAnnotate; nothing was written",
                pd.DataFrame(problems),
            )

    def create_labels(self, dataset: str, names: Sequence[str]) -> None:
        """Create the object classes the project lacks (``POST classes``), when ``create_classes=True``."""
        project, _ = self._place(dataset)
        have = {str(c["name"]) for c in self._classes(project)}
        wanted = [n for n in dict.fromkeys(map(str, names)) if n not in have]
        if wanted:
            body = {"classes": [{"name": n, "color": "#888888", "type": 1, "attribute_groups": []} for n in wanted]}
            self._call("POST", self.url + "/classes", params={"project_id": project["id"]}, json=body)

    @contextlib.contextmanager
    def push_options(self, keep_status: bool | None = None) -> Iterator[None]:
        """For one push: ``keep_status=True`` keeps the items' statuses (else they become InProgress)."""
        before = self.keep_status
        if keep_status is not None:
            self.keep_status = bool(keep_status)
        try:
            yield
        finally:
            self.keep_status = before

    def replace_units(
        self, dataset: str, units: Mapping[str, pd.DataFrame], recheck: Callable[[], None]
    ) -> dict[str, str]:
        """Upload each item's whole JSON (multipart, chunked as the SDK does); ``recheck`` runs right before.

        Returns, per item refused (``failedItems``, with the ``missingResources`` named), why.
        """
        project, folder = self._place(dataset)
        bodies: dict[str, tuple[str, dict[str, Any]]] = {}
        for asset, rows in units.items():
            item = self._item(dataset, asset)
            size = _size(item) or self._sizes.get(asset)
            if size is None:
                self._stream(dataset, [asset], lambda doc, digest: None)
                size = self._sizes.get(asset, (1.0, 1.0))
            if asset not in self._docs:
                self._stream(dataset, [asset], functools.partial(_keep, self._docs, asset))
            doc, digest = self._docs.get(asset) or ({"metadata": {"name": item["name"]}}, "")
            _, found, raw = rows_from_item(doc, dataset, asset, self.fps, sources=True, digest=digest)  # as just read
            sources = {str(r["rev"]): (r, inst) for r, inst in zip(found, raw, strict=True) if inst is not None}
            body = item_json(str(item["name"]), _records(rows), size, sources)
            kept = kept_parts(doc)
            body["instances"] += kept["instances"]
            body["comments"] = kept["comments"]
            bodies[asset] = (str(item["name"]), body)
        for _, body in bodies.values():
            body["metadata"]["lastAction"] = {"email": self._email(), "timestamp": self._stamp()}
        if self.create_classes:  # the replace strategy leaves classes to the backend: made before the re-check
            used = {str(r["label"]) for rows in units.values() for r in _records(rows) if r["kind"] != "tag"}
            self.create_labels(dataset, sorted(used))
        recheck()
        refused: dict[str, str] = {}
        sent: list[str] = []
        for chunk in _upload_chunks(list(bodies.items())):
            names = {name: asset for asset, (name, _) in chunk}
            answer = self._upload(project, folder, [(name, body) for _, (name, body) in chunk])
            failed = set(map(str, answer.get("failedItems") or []))
            missing = answer.get("missingResources") or {}
            why = "; ".join(f"missing {k}: {v}" for k, v in missing.items() if v) or "SuperAnnotate refused the item"
            for name, asset in names.items():
                if name in failed:
                    refused[asset] = why
                else:
                    sent.append(name)
        if sent and not self.keep_status:
            self._in_progress(project, folder, sent)
        return refused

    def _email(self) -> str | None:
        """The token's user (``GET user/ME``, once), as the SDK signs ``lastAction``."""
        if self._user is None:
            me = self._call("GET", self.url + "/user/ME")
            self._user = str((me or {}).get("email") or "") if isinstance(me, dict) else ""
        return self._user or None

    def _stamp(self) -> int:
        """A ``lastAction`` timestamp in ms, strictly increasing on this connection (it names the rows' ids)."""
        self._last = max(self._last + 1, int(time.time() * 1000))
        return self._last

    def _upload(self, project: Mapping[str, Any], folder: Mapping[str, Any],
                items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:  # fmt: skip
        params = [("project_id", project["id"]), ("folder_id", folder["id"]), *(("image_names[]", n) for n, _ in items)]
        files = [(n, (n, json.dumps({"data": body}, allow_nan=False), "application/json")) for n, body in items]
        answer = self._call("POST", self.hosts["assets"] + "v4/items/annotations/upload", params=params, files=files,
                            project=project["id"], folder=folder["id"])  # fmt: skip
        if not isinstance(answer, dict) or "failedItems" not in answer:
            raise MalformedResponse(f"SuperAnnotate sent an upload answer without failedItems: {str(answer)[:200]}")
        return answer

    def _in_progress(self, project: Mapping[str, Any], folder: Mapping[str, Any], names: list[str]) -> None:
        """After an upload, as the SDK: the items become InProgress (on a system workflow). The annotations have
        landed already, so a failure here is a warning naming the items, not a failed push."""
        try:
            system, values = self._statuses(project)
            if system and "InProgress" in values:
                self._set_status(project, folder, names, values["InProgress"])
        except BackendError as exc:
            shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            warnings.warn(f"SuperAnnotate: the annotations landed, but the status of {len(names)} item(s) ({shown}) "
                          f"could not be set to InProgress: {exc}", stacklevel=3)  # fmt: skip

    def _set_status(self, project: Mapping[str, Any], folder: Mapping[str, Any], names: list[str], value: int) -> None:
        for start in range(0, len(names), STATUS_CHUNK):
            body = {"folder_id": folder["id"], "annotation_status": value,
                    "image_names": names[start : start + STATUS_CHUNK]}  # fmt: skip
            self._call("PUT", self.url + "/image/updateAnnotationStatusBulk", params={"project_id": project["id"]},
                       json=body)  # fmt: skip

    def write_statuses(self, dataset: str, statuses: dict[str, str | None]) -> None:
        """Set items' annotation statuses in bulk (500 names a call); an unknown status is refused first."""
        project, folder = self._place(dataset)
        _, values = self._statuses(project)
        bad = {a: s for a, s in statuses.items() if s not in values}
        if bad:
            shown = dict(list(bad.items())[:5])
            raise ValidationError(f"SuperAnnotate statuses are {sorted(values)}; refused: {shown}; nothing was written")
        by_value: dict[int, list[str]] = {}
        for asset, status in statuses.items():
            by_value.setdefault(values[str(status)], []).append(str(self._item(dataset, asset)["name"]))
        for value, names in by_value.items():
            self._set_status(project, folder, names, value)

    # -- files -----------------------------------------------------------------------------------------------------
    def import_files(
        self, paths: Any, dataset: str, *, format: str | None = None, progress: bool = True, **options: Any
    ) -> ImportReport:
        """Upload ``<item>___objects.json`` / ``<item>.json`` files (or folders of them) to the items they name.

        One report row per file: imported, rejected (not JSON, no such item, refused by the platform, with why).
        ``keep_status=True`` keeps the items' statuses (else InProgress, as the SDK's folder upload).
        """
        opts = take_options(options, {"keep_status": self.keep_status}, "SuperAnnotate's import_files")
        if format not in (None, "superannotate", "sa_json"):
            raise NotSupported(f"SuperAnnotate imports its own JSON files, not {format!r}")
        project, folder = self._place(dataset)
        files = _json_files(paths)
        items = {str(i["name"]): i for i in self._list_items(dataset)}
        rows: dict[str, dict[str, Any]] = {}
        ready: list[tuple[str, tuple[str, dict[str, Any]]]] = []
        for path, name in files.items():
            try:
                body = json.loads(Path(path).read_text(encoding="utf-8-sig"))
                if not isinstance(body, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, OSError) as exc:
                rows[path] = {"file": path, "status": "rejected", "errors": 1, "first_error": f"not JSON: {exc}"}
                continue
            if name not in items:
                rows[path] = {"file": path, "status": "rejected", "errors": 1,
                              "first_error": f"no item named {name!r} in {dataset}"}  # fmt: skip
                continue
            body = {**body, "metadata": {**(body.get("metadata") or {}), "name": name}}
            ready.append((path, (name, body)))
            rows[path] = {"file": path, "status": "imported", "item": name}
        sent = []
        for chunk in _upload_chunks(ready):
            answer = self._upload(project, folder, [nb for _, nb in chunk])
            failed = set(map(str, answer.get("failedItems") or []))
            missing = {k: v for k, v in (answer.get("missingResources") or {}).items() if v}
            for path, (name, _) in chunk:
                if name in failed:
                    why = "; ".join(f"missing {k}: {v}" for k, v in missing.items()) or "refused by SuperAnnotate"
                    rows[path] = {"file": path, "status": "rejected", "errors": 1, "first_error": why, "item": name}
                else:
                    sent.append(name)
        if sent and not opts["keep_status"]:
            self._in_progress(project, folder, sent)
        return ImportReport.of(self.name, dataset, list(rows.values()))

    def export(
        self, format: str, dest: Any, dataset: str, *, images: bool = False, progress: bool = True, **options: Any
    ) -> ExportResult:
        """``"superannotate"``: one ``<item name>.json`` per item as downloaded, plus ``classes/classes.json`` (the
        SDK's ``download_annotations``); any other format is written from the loaded tables."""
        if format.lower().replace("-", "_") not in ("superannotate", "sa_json"):
            from ._transfer import export_tables

            return export_tables(self, dataset, format, dest, images=images, **options)
        take_options(options, {}, "SuperAnnotate's export")
        dest = Path(dest)
        project, _ = self._place(dataset)
        written: list[Path] = []

        def take(doc: dict[str, Any], digest: str) -> None:
            written.append(_write_json(dest / f"{Path(str(doc['metadata']['name'])).name}.json", doc))

        self._stream(dataset, [str(i["id"]) for i in self._list_items(dataset)], take, progress and self.progress)
        written.append(_write_json(dest / "classes" / "classes.json", self._classes(project)))
        return ExportResult.of(self.name, dataset, "superannotate", dest, written, reader="superannotate")


def _columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``rows`` as columns, every contract column present (missing ones as typed empty arrays): pandas builds a
    frame from columns in half the time it takes from 50,000 dicts. Rows that all have the same keys (an image
    project of one shape kind, the common case) are transposed in C (``itemgetter`` and ``zip``)."""
    n = len(rows)
    first = tuple(rows[0]) if rows else ()
    if rows and all(len(r) == len(first) for r in rows) and all(tuple(r) == first for r in rows):
        cols: dict[str, Any] = dict(zip(first, map(list, zip(*map(itemgetter(*first), rows), strict=True)),
                                        strict=True))  # fmt: skip
    else:
        keys = dict.fromkeys(k for r in rows for k in r)
        cols = {k: [r.get(k) for r in rows] for k in keys}
    for c, dtype in schema.ANNOTATION_COLUMNS.items():
        if c not in cols:
            if dtype == "float64":
                cols[c] = np.full(n, np.nan)
            elif dtype is bool:
                cols[c] = np.zeros(n, dtype=bool)
            else:
                cols[c] = np.full(n, None, dtype=object)
    return cols


def _decode_stream(text: str) -> list[tuple[dict[str, Any], str]]:
    """The annotation JSONs of one stream body with a digest of each one's bytes, in one linear pass
    (``raw_decode`` at a moving index)."""
    decoder, out, at, n = json.JSONDecoder(), [], 0, len(text)
    while at < n:
        if text.startswith(DELIMITER, at):
            at += len(DELIMITER)
            continue
        try:
            doc, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise MalformedResponse(f"SuperAnnotate sent a malformed annotation stream (JSON cut at {exc.pos} of {n} "
                                    f"characters): {text[max(0, exc.pos - 40): exc.pos + 40]!r}") from exc  # fmt: skip
        if not isinstance(doc, dict) or "metadata" not in doc or "error" in doc or "errors" in doc:
            raise MalformedResponse(f"SuperAnnotate sent a stream entry that is not an annotation: {str(doc)[:200]}")
        out.append((doc, _digest(text[at:end])))
        at = end
    return out


def _digest(text: str) -> str:
    """12 hex digits of an item's JSON as the server sent it: its rows' revs (`superannotate_rows`)."""
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _keep(docs: dict[str, tuple[dict[str, Any], str]], asset: str, doc: dict[str, Any], digest: str) -> None:
    docs[asset] = (doc, digest)


def _upload_chunks(items: list[tuple[str, Any]]) -> Iterator[list[tuple[str, Any]]]:
    """Items grouped as the SDK's upload sends them (at most 10 MB of JSON and a 4 KB ``image_names[]`` query), and
    at most `UPLOAD_ITEMS` a request."""
    chunk: list[tuple[str, Any]] = []
    size = query = 0
    for key, (name, body) in items:
        weight, length = len(json.dumps(body)), len(name) + 16
        if chunk and (size + weight > UPLOAD_BYTES or query + length > URI_LIMIT or len(chunk) >= UPLOAD_ITEMS):
            yield chunk
            chunk, size, query = [], 0, 0
        chunk.append((key, (name, body)))
        size, query = size + weight, query + length
    if chunk:
        yield chunk


def _json_files(paths: Any) -> dict[str, str]:
    """file -> the item it names, for files and folders (``___objects.json`` / ``.json``; classes.json is not one)."""
    out: dict[str, str] = {}
    for p in [Path(x) for x in ([paths] if isinstance(paths, str | Path) else paths)]:
        found = sorted(p.rglob("*.json")) if p.is_dir() else [p]
        for f in found:
            if f.name == "classes.json" or f.name.startswith("."):
                continue
            name = f.name[: -len("___objects.json")] if f.name.endswith("___objects.json") else f.name[:-5]
            out[str(f)] = name
    return out


def _write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(obj, ensure_ascii=False))
    tmp.replace(path)
    return path


def _size(item: Mapping[str, Any]) -> tuple[float, float] | None:
    meta = item.get("metadata") or {}
    w, h = meta.get("width"), meta.get("height")
    return (float(w), float(h)) if w and h else None


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]
