"""Datature Vi: vision-language datasets (captions, phrase grounding, VQA) of an organization.

Wire facts (``shared/protocols/datature-nexus-vi.md`` part B): ``Authorization: Bearer dtvi_...`` plus
``Organization-Id``; datasets addressed as ``{org}_{dataset}``; cursor pages (``s`` / ``p`` -> ``items``,
``nextPage``); annotations listed, read and deleted per asset, each with an ``etag`` (a row's ``rev``). How
annotations map to the data contract is `vi_rows`; import sessions and exports are `vi_transfer`.

Writing. Vi documents no create or update call, so a push writes whole assets through JSONL import sessions: for
each asset with added or changed rows, the asset is re-read (a row whose etag moved since the load is a conflict by
row and field), one upload document is built from the re-read plus the frame's changes (rows outside the frame
survive) and sent with the overwrite policy set to replace the asset's annotations; the asset is then re-read and
every row's new id mapped back (rows the frame did not hold get new ids too: ``ApplyResult.moved``). Assets with
only deletions use DELETE. A rejected file is a failure for that asset's rows, not a crash: they stay unpushed.
The engine (`annotebook.sync.replace`) plans, checks, journals and verifies; this module gives it the wire
primitives (``replace_units``, ``delete_rows``, ``row_key``, ``check_rows``).

Examples
--------
>>> import annotebook as ab
>>> vi = ab.connect("vi", organization="...", dataset="...")  # doctest: +SKIP
>>> anns = vi.assets().annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx
import orjson
import pandas as pd

from .. import schema
from .._home import home
from ..errors import (
    AuthError,
    ImportRejected,
    MalformedResponse,
    NotFound,
    ValidationError,
)
from ._http import ApiClient, SignedUrls, make_client
from ._remote import cached_image, gc_paused, progress_bar
from .base import Capabilities
from .vi_rows import _content_key, _document, row_from_wire, rows_from_wire
from .vi_transfer import (
    _ALL_FORMATS,
    EXPORT_FORMATS,
    READERS,
    ViTransfer,
    _rejected_files,
    file_report,
    read_export,
)

__all__ = [
    "EXPORT_FORMATS",
    "READERS",
    "ImportRejected",
    "ViBackend",
    "file_report",
    "read_export",
    "row_from_wire",
    "rows_from_wire",
]

KEY_ENV = "DATATURE_VI_SECRET_KEY"
ORG_ENV = "DATATURE_VI_ORGANIZATION_ID"
ENDPOINT_ENV = "DATATURE_VI_API_ENDPOINT"
DEFAULT_ENDPOINT = "https://api.vi.datature.com"
KEY_PREFIX, KEY_LENGTH = "dtvi_", 103
_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class ViBackend(ViTransfer):
    """The datasets of one Datature Vi organization; key and organization from the arguments or the environment."""

    name = "vi"
    title = "Vi"
    capabilities = Capabilities(
        update=False,
        create=False,
        replace_per_asset=True,
        batch_size=None,
        client_ids=False,
        revisions="etag",
        statuses=False,
        creates_labels=False,
        atomic=False,
        export_formats=_ALL_FORMATS,
    )

    def __init__(
        self,
        organization: str | None = None,
        key: str | None = None,
        endpoint: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        page_size: int = 1000,
        workers: int = 16,
        progress: bool = True,
    ):
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise AuthError(f"no Vi secret key: set {KEY_ENV} or pass key=...")
        if not key.startswith(KEY_PREFIX) or len(key) != KEY_LENGTH:
            raise AuthError(
                f"that is not a Vi secret key (they start with {KEY_PREFIX!r} and are {KEY_LENGTH} characters): "
                f"set {KEY_ENV} or pass key=..."
            )
        org = organization or os.environ.get(ORG_ENV)
        if not org:
            raise AuthError(f"no Vi organization: set {ORG_ENV} or pass organization=...")
        self.organization = str(org)
        self.endpoint = (endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be within 1..1000 (Vi's limit)")
        self.page_size = page_size
        headers = {"Authorization": f"Bearer {key}", "Organization-Id": self.organization,
                   "User-Agent": "annotebook (httpx)", "Accept": "application/json"}  # fmt: skip
        self._api: ApiClient = make_client(self.endpoint, headers, timeout, transport, service="Vi", key_env=KEY_ENV)
        self._files = SignedUrls(self._api.http, "Vi")  # one client, one pool: signed URLs get no key
        weakref.finalize(self, self._api.close)
        self._urls: dict[tuple[str, str], str] = {}
        self._tags: dict[str, dict[int, str]] = {}
        self._types: dict[str, str] = {}
        self._names: dict[str, str] = {}  # dataset name -> id, from the last listing
        self._listed = False
        #: annotations of the last load whose kind has no place in the data contract: left out, listed here
        self.skipped: list[dict[str, Any]] = []
        self.poll_interval, self.poll_timeout = 1.0, 3600.0
        self.workers, self.progress = workers, progress

    def __repr__(self) -> str:
        return f"ViBackend(organization={self.organization!r}, endpoint={self.endpoint!r})"

    def spec(self) -> dict[str, Any]:
        return {"organization": self.organization, "endpoint": self.endpoint}

    # -- addressing ----------------------------------------------------------------------------------------
    def _ds(self, dataset: str) -> str:
        """The dataset's own id; a composite ``{org}_{ds}`` or the dataset's name is accepted too."""
        ds = str(dataset)
        if ds.startswith(self.organization + "_"):
            ds = ds[len(self.organization) + 1 :]
        if ds in self._types:
            return ds
        if ds not in self._names and not self._listed:
            self.datasets()  # one listing names every dataset of the organization
        ds = self._names.get(ds, ds)
        if not _ID.match(ds) or "_" in ds:
            raise ValueError(f"{dataset!r} is not a Vi dataset id (letters, digits and '-', no '_') or name")
        return ds

    def dataset_id(self, dataset: str) -> str:
        """The id of a dataset given by id, composite id or name (what rows and loads record)."""
        return self._ds(dataset)

    def _path(self, dataset: str | None = None, tail: str = "") -> str:
        root = f"/workspaces/{self.organization}"
        return root + tail if dataset is None else f"{root}/datasets/{self.organization}_{self._ds(dataset)}{tail}"

    def _get_json(self, url: str, params: list[tuple[str, str]]) -> Any:
        response = self._api.request("GET", url, params=params)
        try:
            return orjson.loads(response.content)
        except ValueError as exc:
            raise MalformedResponse(
                self._api.redact(f"Vi sent a body that is not JSON for GET {url}: {response.text[:200]!r}")
            ) from exc

    def _pages(self, url: str, params: Sequence[tuple[str, str]] = ()) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            query = [*params, ("s", str(self.page_size)), *([("p", cursor)] if cursor else [])]
            page = self._get_json(url, query)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):  # {} is no page
                raise MalformedResponse(f"Vi sent a page that is not {{items: [...], nextPage}}: {str(page)[:200]}")
            yield page.get("items") or []
            cursor = page.get("nextPage")
            if not cursor:
                return
            if cursor in seen:
                raise MalformedResponse(f"Vi sent the page cursor {cursor!r} twice while listing {url}")
            seen.add(cursor)

    # -- reading -------------------------------------------------------------------------------------------
    def organizations(self) -> pd.DataFrame:
        rows = [{"organization": o.get("workspaceId"), "name": o.get("name")} for p in self._pages("/workspaces")
                for o in p]  # fmt: skip
        return pd.DataFrame(rows, columns=["organization", "name"]).astype(schema.STR)

    def datasets(self) -> pd.DataFrame:
        """The organization's datasets: id, name, type (phrase-grounding, vqa, freeform), asset and row counts."""
        rows = []
        for page in self._pages(self._path(None, "/datasets")):
            for d in page:
                ds = str(d.get("datasetId", "")).split("_")[-1]
                stats = d.get("statistic") or {}
                self._types[ds] = str(d.get("type"))
                if isinstance(d.get("name"), str):
                    self._names.setdefault(d["name"], ds)
                rows.append({"dataset": ds, "name": d.get("name"), "type": d.get("type"),
                             "assets": stats.get("assetTotal"),
                             "annotations": stats.get("annotationTotal")})  # fmt: skip
        self._listed = True
        df = pd.DataFrame(rows, columns=["dataset", "name", "type", "assets", "annotations"])
        return df.astype({"dataset": schema.STR, "name": schema.STR, "type": schema.STR, "assets": "Int64",
                          "annotations": "Int64"})  # fmt: skip

    def dataset(self, dataset: str) -> dict[str, Any]:
        """The dataset document (type, tags, statistic ...); it also refreshes the tag names the loads use."""
        d = self._api.get(self._path(dataset))
        if not isinstance(d, dict):
            raise MalformedResponse(f"Vi sent a dataset that is not an object: {str(d)[:200]}")
        ds = self._ds(dataset)
        self._types[ds] = str(d.get("type"))
        tags = d.get("tags") or {}
        self._tags[ds] = {int(i): str(n) for n, i in tags.items()}
        return d

    def dataset_type(self, dataset: str) -> str:
        ds = self._ds(dataset)
        if ds not in self._types:
            self.dataset(ds)
        return self._types[ds]

    def _tag_names(self, dataset: str) -> dict[int, str]:
        ds = self._ds(dataset)
        if ds not in self._tags:
            self.dataset(ds)
        return self._tags[ds]

    def assets(self, dataset: str) -> pd.DataFrame:
        ds = self._ds(dataset)
        rows = []
        for page in self._pages(self._path(ds, "/assets"), [("contents", "y")]):
            for a in page:
                rows.append(self._asset_row(ds, a))
        return schema.assets_frame(rows)

    def _asset_row(self, ds: str, a: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(a, dict) or "assetId" not in a:
            raise MalformedResponse(f"Vi sent an asset without an assetId: {str(a)[:200]}")
        meta = a.get("metadata") or {}
        url = str(((a.get("contents") or {}).get("asset") or {}).get("url") or "")
        self._urls[(ds, str(a["assetId"]))] = url
        frames = meta.get("frames")
        return {"dataset": ds, "asset": str(a["assetId"]), "name": a.get("filename"), "width": meta.get("width"),
                "height": meta.get("height"), "uri": url or None, "status": meta.get("status"),
                "frames": frames if isinstance(frames, int) and frames > 1 else None}  # fmt: skip

    def labels(self, dataset: str) -> pd.DataFrame:
        ds = self._ds(dataset)
        d = self.dataset(ds)
        details = d.get("tagDetails") or {}
        rows = [{"dataset": ds, "name": n, "index": int(i), "color": (details.get(n) or {}).get("color")}
                for n, i in sorted((d.get("tags") or {}).items(), key=lambda kv: int(kv[1]))]  # fmt: skip
        return schema.labels_frame(rows)

    def _asset_ids(self, ds: str) -> list[str]:
        ids = []
        for page in self._pages(self._path(ds, "/assets")):
            for a in page:
                if not isinstance(a, dict) or "assetId" not in a:
                    raise MalformedResponse(f"Vi sent an asset without an assetId: {str(a)[:200]}")
                ids.append(str(a["assetId"]))
        return ids

    def _wire(self, ds: str, asset: str) -> list[dict[str, Any]]:
        """Every annotation of one asset, all pages."""
        return [a for page in self._pages(self._path(ds, f"/assets/{asset}/annotations")) for a in page]

    def _listing(self, ds: str, assets: Sequence[str], progress: bool) -> dict[str, list[dict[str, Any]]]:
        """The wire annotations of these assets, listed by ``self.workers`` threads at once (Vi lists per asset)."""
        found: dict[str, list[dict[str, Any]]] = {}
        bar = progress_bar(len(assets), "listing annotations", progress, "asset")
        try:
            if self.workers <= 1 or len(assets) <= 1:
                for a in assets:
                    found[a] = self._wire(ds, a)
                    bar.update(1)
            else:
                with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vi-list") as pool:
                    futures = {pool.submit(self._wire, ds, a): a for a in assets}
                    try:
                        for done in as_completed(futures):
                            found[futures[done]] = done.result()
                            bar.update(1)
                    except BaseException:
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise
        finally:
            bar.close()
        return found

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Every annotation of the dataset (or of these assets), ordered by asset, captions before their phrases.

        Vi lists annotations per asset only, so the assets are listed concurrently (``self.workers`` threads);
        ``progress`` (default ``self.progress``) shows a bar over the assets.
        """
        ds = self._ds(dataset)
        with gc_paused():
            tags = self._tag_names(ds)
            order = self._asset_ids(ds) if assets is None else [str(a) for a in dict.fromkeys(assets)]
            found = self._listing(ds, order, self.progress if progress is None else progress)
            rows: list[dict[str, Any]] = []
            self.skipped = []
            for a in order:
                got, skipped = rows_from_wire(found[a], ds, a, tags)
                rows += got
                self.skipped += skipped
            return schema.annotations_frame(rows)

    def image_path(self, dataset: str, asset: str) -> str | None:
        """The asset's pixels in the on-disk cache, downloaded once; an expired signed URL is fetched again."""
        ds = self._ds(dataset)

        def fresh() -> str:
            answer = self._api.get(self._path(ds, f"/assets/{asset}"), params={"contents": "y"})
            return str(self._asset_row(ds, answer)["uri"] or "")

        return cached_image(self._files, home() / "cache" / "vi" / ds, asset, self._urls.get((ds, asset)), fresh)

    # -- the sync engine's primitives (`annotebook.sync.replace`: one upload document per asset) ----------------
    def row_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """What identifies a row inside one asset after an upload gave every row a new id (and what Vi keeps)."""
        return (str(row.get("asset")), *_content_key(row))

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Rows a Vi upload cannot carry are named at once, before any request."""
        ds = self._ds(dataset)
        kind = self.dataset_type(ds)
        recs = _records(rows)
        allowed = {"phrase-grounding": ("caption", "grounding"), "vqa": ("qa",)}.get(kind, ())
        problems = [
            {"id": r["id"], "column": "kind", "problem": f"a {kind} dataset on Vi takes {' and '.join(allowed) or 'no'}"
             f" rows, not {r['kind']}"}
            for r in recs if r["kind"] not in allowed
        ]  # fmt: skip
        known = set(self._tag_names(ds).values())
        problems += [
            {"id": r["id"], "column": "label", "problem": f"unknown tag {r['label']!r}: Vi datasets take the tags "
             f"they have ({sorted(known)})"}
            for r in recs if r["kind"] == "grounding" and isinstance(r.get("label"), str) and r["label"] not in known
        ]  # fmt: skip
        if problems:
            raise ValidationError(
                f"{len({p['id'] for p in problems})} row(s) cannot be written to Vi; nothing was written",
                pd.DataFrame(problems),
            )

    def delete_rows(self, dataset: str, rows: pd.DataFrame) -> list[str]:
        """DELETE each row (no re-id of the others); returns those already gone at the first attempt."""
        ds, gone = self._ds(dataset), []
        for rec in _records(rows):
            try:
                self._api.request("DELETE", self._path(ds, f"/assets/{rec['asset']}/annotations/{rec['id']}"))
            except NotFound as exc:
                if not getattr(exc, "after_retry", False):
                    gone.append(str(rec["id"]))
        return gone

    def replace_units(
        self, dataset: str, units: Mapping[str, pd.DataFrame], recheck: Callable[[], None]
    ) -> dict[str, str]:
        """One import session with a document per asset, replacing its rows (``onOverwritten: Warn``).

        ``recheck`` runs after the uploads, right before the request that lets Vi import them. Returns, per asset
        whose file Vi rejected, why (from the session's log).
        """
        ds = self._ds(dataset)
        docs = {f"{asset}.jsonl": _document(asset, _records(rows)) for asset, rows in units.items()}
        policies = {"onBadAnnotation": "RejectFile", "onBadFile": "RejectFile", "onOverwritten": "Warn"}
        logs = self._import(ds, docs, policies=policies, progress=False, before_commit=recheck)
        rejected = _rejected_files(logs)
        out = {}
        for asset in units:
            if f"{asset}.jsonl" in rejected:
                why = "; ".join(logs.loc[logs["file"] == f"{asset}.jsonl", "message"].astype(str).head(3))
                out[asset] = f"Vi rejected the upload of asset {asset}: {why}"
        return out


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]
