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
An upload whose answer was lost is recognised on the next push by `vi_journal`.

Examples
--------
>>> import annotebook as ab
>>> vi = ab.connect("vi", organization="...", dataset="...")  # doctest: +SKIP
>>> anns = vi.assets().annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import httpx
import orjson
import pandas as pd

from .. import schema
from .._home import home
from ..errors import AuthError, BackendError, ConflictError, NotFound, PushError, ValidationError
from ._http import ApiClient, MalformedResponse, make_client
from ._remote import cached_image, gc_paused, progress_bar
from .base import ApplyResult, Capabilities, Changes
from .vi_journal import UploadJournal
from .vi_rows import _content_key, _document, row_from_wire, rows_from_wire
from .vi_transfer import (
    _ALL_FORMATS,
    EXPORT_FORMATS,
    READERS,
    ImportRejected,
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
        self._files = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)
        weakref.finalize(self, self._files.close)
        weakref.finalize(self, self._api.close)
        self._urls: dict[tuple[str, str], str] = {}
        self._tags: dict[str, dict[int, str]] = {}
        self._types: dict[str, str] = {}
        self._names: dict[str, str] = {}  # dataset name -> id, from the last listing
        self._listed = False
        #: annotations of the last load whose kind has no place in the data contract: left out, listed here
        self.skipped: list[dict[str, Any]] = []
        self.poll_interval, self.poll_timeout = 1.0, 3600.0
        self._journal = UploadJournal(home() / "vi-journal.sqlite")
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
            if not isinstance(page, dict) or not isinstance(page.get("items", []), list):
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

        return cached_image(self._files, home() / "cache" / "vi" / ds, asset, self._urls.get((ds, asset)), fresh, "Vi")

    # -- writing -------------------------------------------------------------------------------------------
    def apply(self, changes: Changes) -> ApplyResult:
        """Per touched asset: re-read, check etags, then one upload document (or DELETEs for pure deletions)."""
        ds = self._ds(changes.dataset)
        creates, updates, deletes = _records(changes.creates), _records(changes.updates), _records(changes.deletes)
        written: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for op, recs in (("create", creates), ("update", updates), ("delete", deletes)):
            for rec in recs:
                written.setdefault(str(rec["asset"]), {"create": [], "update": [], "delete": []})[op].append(rec)
        self._check_rows(ds, creates + updates)
        tags = self._tag_names(ds)
        touched = sorted(written)
        remote = self._listing(ds, touched, False)
        current = {a: rows_from_wire(remote[a], ds, a, tags)[0] for a in touched}
        result = ApplyResult()
        self._reconcile(ds, written, current, result)
        self._check_revs(ds, written, current)
        uploads = {a: w for a, w in written.items() if w["create"] or w["update"]}
        try:
            for asset, w in written.items():
                if asset not in uploads:
                    for rec in w["delete"]:
                        with contextlib.suppress(NotFound):  # already gone: a retried delete whose answer was lost
                            self._api.request("DELETE", self._path(ds, f"/assets/{asset}/annotations/{rec['id']}"))
                        result.deleted.append(str(rec["id"]))
            if uploads:
                self._upload_assets(ds, uploads, current, result)
        except BackendError as exc:
            result.failed.append({"id": None, "op": "write", "error": str(exc)})
            landed = f"{len(result.ids)} row(s) written and {len(result.deleted)} deleted before it"
            raise PushError(f"push to Vi failed part way ({landed}): {exc}; push again to finish", result) from exc
        return result

    def _check_rows(self, ds: str, recs: list[dict[str, Any]]) -> None:
        """Rows a Vi upload cannot carry are named at once, before any request."""
        kind = self.dataset_type(ds)
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

    def _check_revs(
        self, ds: str, written: dict[str, dict[str, list[dict[str, Any]]]], current: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Every row to edit or delete must still be on Vi at the etag the frame's load saw."""
        problems = []
        for asset, w in written.items():
            now = {r["id"]: r for r in current[asset]}
            deleting = {str(r["id"]) for r in w["delete"]}
            for rec in [*w["update"], *w["delete"]]:
                there = now.get(str(rec["id"]))
                if there is None:
                    if str(rec["id"]) in deleting:
                        continue  # deleted there too: the deletion has nothing left to do
                    problems.append({"id": rec["id"], "field": "deleted", "base": False, "remote": True,
                                     "local": "edited"})  # fmt: skip
                elif str(there["rev"]) != str(rec["rev"]):
                    fields: list[str] = [
                        c
                        for c in _COMPARED
                        if c in rec and schema.normal_value(c, there.get(c)) != schema.normal_value(c, rec.get(c))
                    ]
                    fields = fields or ["rev"]  # fmt: skip
                    problems += [{"id": rec["id"], "field": f, "base": rec["rev"] if f == "rev" else None,
                                  "remote": there.get(f), "local": rec.get(f)} for f in fields]  # fmt: skip
        if problems:
            raise ConflictError(
                f"{len({p['id'] for p in problems})} row(s) changed on Vi since this frame's load; nothing was "
                "written. Reload.",
                pd.DataFrame(problems),
            )

    def _reconcile(
        self,
        ds: str,
        written: dict[str, dict[str, list[dict[str, Any]]]],
        current: dict[str, list[dict[str, Any]]],
        result: ApplyResult,
    ) -> None:
        """An earlier upload of an asset whose answer was lost: if it landed, give its rows their old ids back.

        The asset's rows are matched to the journaled plan by content; each row then carries the id and revision
        this push expects, so the edits already there are found equal and not uploaded again, and the new ids
        go into ``result`` as the upload's own would have.
        """
        place = f"{self.organization}_{ds}"
        expected = {str(r["id"]): r.get("rev") for w in written.values() for r in [*w["update"], *w["delete"]]}
        for asset in written:
            planned = self._journal.get(place, asset)
            if planned is None:
                continue
            keys = sorted(json.dumps(_content_key(r)) for r in current[asset])
            if keys != sorted(json.dumps(k) for _, k, _ in planned):
                self._journal.done(place, asset)  # it did not land (or the asset changed since): plan afresh
                continue
            pool: dict[str, list[dict[str, Any]]] = {}
            for r in current[asset]:
                pool.setdefault(json.dumps(_content_key(r)), []).append(r)
            renamed = []
            for old, key, sent in planned:
                new = pool[json.dumps(key)].pop(0)
                result.revs[new["id"]] = str(new["rev"])
                (result.ids if sent else result.moved)[old] = new["id"]
                renamed.append({**new, "id": old, "rev": expected.get(old, new["rev"]), "_new": new["id"]})
            current[asset] = renamed
            self._journal.done(place, asset)

    def _upload_assets(
        self,
        ds: str,
        uploads: dict[str, dict[str, list[dict[str, Any]]]],
        current: dict[str, list[dict[str, Any]]],
        result: ApplyResult,
    ) -> None:
        """One document per asset (re-read + changes), one import session replacing those assets' rows."""
        docs: dict[str, str] = {}
        planned: dict[str, list[tuple[str, dict[str, Any], bool]]] = {}  # asset -> (old id, row, sent by the frame)
        for asset, w in uploads.items():
            here = {r["id"]: r for r in current[asset]}
            gone = {str(r["id"]) for r in w["delete"]}
            # a create already here was landed by an earlier upload whose answer was lost (see `_reconcile`)
            edited = {str(r["id"]): r for r in [*w["update"], *w["create"]] if str(r["id"]) in here}
            fresh = [r for r in w["create"] if str(r["id"]) not in here]
            rows: list[tuple[str, dict[str, Any], bool]] = []
            for r in current[asset]:
                if r["id"] in gone:
                    continue
                rows.append((r["id"], edited.get(r["id"], r), r["id"] in edited))
            rows += [(str(r["id"]), r, True) for r in fresh]
            landed = (
                here and all("_new" in r for r in here.values()) and not fresh and not (gone & set(here))
                and all(_content_key(r) == _content_key(here[i]) for i, r in edited.items())
            )  # fmt: skip
            if landed:  # `_reconcile` already put the new ids in the result
                result.deleted += sorted(gone)
                continue
            planned[asset] = rows
            docs[f"{asset}.jsonl"] = _document(asset, [r for _, r, _ in rows])
        if not docs:
            return
        place = f"{self.organization}_{ds}"
        for asset, rows in planned.items():
            self._journal.put(place, asset, [(old, _content_key(r), sent) for old, r, sent in rows])
        logs = self._import(ds, docs, policies={"onBadAnnotation": "RejectFile", "onBadFile": "RejectFile",
                                                "onOverwritten": "Warn"}, progress=False)  # fmt: skip
        rejected = _rejected_files(logs)
        tags = self._tag_names(ds)
        after = self._listing(ds, sorted(a for a in uploads if f"{a}.jsonl" not in rejected), False)
        for asset, rows in planned.items():
            if f"{asset}.jsonl" in rejected:
                why = "; ".join(logs.loc[logs["file"] == f"{asset}.jsonl", "message"].astype(str).head(3))
                result.failed += [{"id": old, "op": "write", "error": f"Vi rejected the upload of asset {asset}: {why}"}
                                  for old, _, sent in rows if sent]  # fmt: skip
                continue
            new_rows = rows_from_wire(after[asset], ds, asset, tags)[0]
            pool: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for r in new_rows:
                pool.setdefault(_content_key(r), []).append(r)
            for old, row, sent in rows:
                match = pool.get(_content_key(row), [])
                if not match:
                    result.failed.append({"id": old, "op": "write", "error": f"asset {asset}: the upload landed "
                                          "but this row is not among the asset's rows read back"})  # fmt: skip
                    continue
                new = match.pop(0)
                result.revs[new["id"]] = str(new["rev"])
                if sent:
                    result.ids[old] = new["id"]
                elif old != new["id"]:
                    result.moved[old] = new["id"]
            for w in uploads[asset]["delete"]:
                result.deleted.append(str(w["id"]))
            self._journal.done(place, asset)


_COMPARED = ("text", "label", "x0", "y0", "x1", "y1", "span_start", "span_end", "answer")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]
