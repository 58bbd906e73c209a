"""Datature Vi: vision-language datasets (captions, phrase grounding, VQA) of an organization.

Wire facts (``shared/protocols/datature-nexus-vi.md`` part B): ``Authorization: Bearer dtvi_...`` plus
``Organization-Id``; datasets addressed as ``{org}_{dataset}``; cursor pages (``s`` / ``p`` -> ``items``,
``nextPage``); annotations listed, read and deleted per asset, each with an ``etag`` (a row's ``rev``).

Mapping to the data contract. A ``Caption`` annotation is a caption row (``text``); a
``PhraseGroundingBoundingBox`` a grounding row whose box is its ``bound`` corners, whose ``parent`` is the caption
sharing its ``aggregation.whole.id``, whose span is its ``target`` (read as character offsets ``[start, end)`` of
the caption: the SDK does not say whether it counts characters or tokens) and whose ``text`` is the caption's text at
that span; its ``label`` is the dataset tag of index ``spec.tag``. A ``Vqa`` annotation (one question / answer
pair; the SDK cannot decode it) is a qa row.

Writing. Vi documents no create or update call, so a push writes whole assets through JSONL import sessions: for
each asset with added or changed rows, the asset is re-read (a row whose etag moved since the load is a conflict by
row and field), one upload document is built from the re-read plus the frame's changes (rows outside the frame
survive) and sent with the overwrite policy set to replace the asset's annotations; the asset is then re-read and
every row's new id mapped back (rows the frame did not hold get new ids too: ``ApplyResult.moved``). Assets with
only deletions use DELETE. A rejected file is a failure for that asset's rows, not a crash: they stay unpushed.

Examples
--------
>>> import annotebook as ab
>>> vi = ab.connect("vi", organization="...", dataset="...")  # doctest: +SKIP
>>> anns = vi.assets().annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd

from .. import schema
from .._home import home
from .._sqlite import open_db
from ..errors import AuthError, BackendError, ConflictError, NotFound, PushError, ValidationError
from ..formats import Tables
from ..formats.vi_jsonl import tables_to_vi_jsonl
from ._http import ApiClient, MalformedResponse, make_client
from ._remote import crc32c_b64, extract_zip, field, gc_paused, progress_bar
from .base import ApplyResult, Capabilities, Changes

__all__ = [
    "EXPORT_FORMATS",
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

#: the annotation-only export formats of each dataset type (the seed doc's "Supported export formats")
EXPORT_FORMATS: dict[str, tuple[str, ...]] = {
    "phrase-grounding": ("ViJsonl", "ViTfrecord", "CsvFourCorner", "CsvWidthHeight", "Coco", "PascalVoc",
                         "YoloDarknet", "YoloKerasPytorch"),
    "vqa": ("ViJsonl", "ViTfrecord"),
    "freeform": ("ViJsonl",),
}  # fmt: skip
_ALL_FORMATS = tuple(dict.fromkeys(f for fs in EXPORT_FORMATS.values() for f in fs))
#: annotebook format names -> Vi's
_FORMAT_ALIASES = {"coco": "Coco", "voc": "PascalVoc", "pascal_voc": "PascalVoc", "yolo": "YoloDarknet",
                   "yolo_darknet": "YoloDarknet", "yolo_keras": "YoloKerasPytorch",
                   "yolo_keras_pytorch": "YoloKerasPytorch", "csv": "CsvFourCorner", "csv_four_corner": "CsvFourCorner",
                   "csv_fourcorner": "CsvFourCorner", "csv_width_height": "CsvWidthHeight",
                   "csv_widthheight": "CsvWidthHeight", "vi_jsonl": "ViJsonl", "jsonl": "ViJsonl",
                   "vi_tfrecord": "ViTfrecord", "tfrecord": "ViTfrecord"}  # fmt: skip
#: Vi export format -> the annotebook reader of its files (ViTfrecord has none: it is downloaded, not parsed)
READERS = {"ViJsonl": "vi_jsonl", "Coco": "coco", "PascalVoc": "voc", "YoloDarknet": "yolo",
           "YoloKerasPytorch": "yolo_keras", "CsvFourCorner": "csv_four_corner",
           "CsvWidthHeight": "csv_width_height"}  # fmt: skip
POLICIES = ("Warn", "RejectFile", "RejectSession")
MAX_SESSION_FILES = 1000
LOG_COLUMNS = ["file", "line", "level", "message", "timestamp"]
_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class ImportRejected(BackendError):
    """An import session ended FailedReach; ``logs`` names the files and lines, ``report`` has a row per file."""

    def __init__(self, message: str, logs: pd.DataFrame, report: pd.DataFrame | None = None):
        super().__init__(message)
        self.logs, self.report = logs, report


# -- wire <-> canonical ----------------------------------------------------------------------------------------
def _bound_box(bound: Any) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in bound]
    ys = [float(p[1]) for p in bound]
    return min(xs), min(ys), max(xs), max(ys)


def rows_from_wire(
    items: Sequence[dict[str, Any]], dataset: str, asset: str, tags: Mapping[int, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The canonical rows of one asset's annotations, and the annotations that have no canonical kind.

    Captions first (a grounding row needs its caption's text), then the rest in the server's order.
    """
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    captions: dict[str, tuple[str, str]] = {}  # whole id -> (caption row id, text)
    for ann in items:
        spec = ann.get("spec") or {}
        contents = spec.get("contents") or {}
        if contents.get("kind") == "Caption":
            whole = str(((spec.get("aggregation") or {}).get("whole") or {}).get("id", ""))
            text = contents.get("contents")
            captions[whole] = (str(ann["annotationId"]), "" if text is None else str(text))
    for ann in items:
        row = row_from_wire(ann, dataset, asset, tags, captions)
        if row is None:
            skipped.append({"id": ann.get("annotationId"), "asset": asset, "kind": (
                ((ann.get("spec") or {}).get("contents") or {}).get("kind"))})  # fmt: skip
        else:
            rows.append(row)
    return rows, skipped


def row_from_wire(
    ann: dict[str, Any],
    dataset: str,
    asset: str,
    tags: Mapping[int, str],
    captions: Mapping[str, tuple[str, str]],
) -> dict[str, Any] | None:
    """One Vi annotation as a canonical row (None for a kind the data contract has no place for)."""
    try:
        spec = ann["spec"]
        contents = spec["contents"]
        kind = contents["kind"]
        base = {"dataset": dataset, "asset": asset, "id": str(ann["annotationId"]), "rev": str(ann.get("etag", ""))}
        if kind == "Caption":
            text = contents.get("contents")
            return {**base, "kind": "caption", "text": "" if text is None else str(text)}
        if kind == "PhraseGroundingBoundingBox":
            x0, y0, x1, y1 = _bound_box(contents["bound"])
            start, end = (int(v) for v in contents["target"])
            whole = str(((spec.get("aggregation") or {}).get("whole") or {}).get("id", ""))
            parent, caption = captions.get(whole, (None, None))
            tag = spec.get("tag")
            return {
                **base, "kind": "grounding", "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                "label": tags.get(int(tag)) if isinstance(tag, int) and not isinstance(tag, bool) else None,
                "parent": parent, "span_start": start, "span_end": end,
                "text": caption[start:end] if caption is not None else None,
            }  # fmt: skip
        if kind == "Vqa":
            return {**base, "kind": "qa", "text": str(contents["question"]), "answer": str(contents["answer"])}
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise MalformedResponse(f"Vi sent an annotation without a usable {exc}: {str(ann)[:200]}") from exc
    return None


def _content_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What identifies a row inside one asset after an upload gave every row a new id."""

    def r(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else round(float(v), 6)

    def s(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v)

    kind = row["kind"]
    if kind == "grounding":
        return (kind, s(row.get("label")), r(row.get("span_start")), r(row.get("span_end")),
                r(row.get("x0")), r(row.get("y0")), r(row.get("x1")), r(row.get("y1")))  # fmt: skip
    if kind == "qa":
        return (kind, s(row.get("text")), s(row.get("answer")))
    return (kind, s(row.get("text")))


class _Journal:
    """Uploads sent but not yet mapped back (``vi-journal.sqlite`` under the annotebook home).

    An upload whose answer was lost (a cut connection, a timeout) may still land and give every row of its asset a
    new id; the next push finds the entry, sees that the asset now holds exactly the planned rows, and maps the old
    ids to the new ones instead of calling them conflicts or uploading them twice.
    """

    def __init__(self, path: Path):
        self.path = path

    def _db(self) -> Any:
        db = open_db(self.path)
        db.execute("CREATE TABLE IF NOT EXISTS uploads (place TEXT, asset TEXT, planned TEXT, at REAL, "
                   "PRIMARY KEY (place, asset))")  # fmt: skip
        return contextlib.closing(db)

    def get(self, place: str, asset: str) -> list[tuple[str, list[Any], bool]] | None:
        with self._db() as db:
            row = db.execute("SELECT planned FROM uploads WHERE place = ? AND asset = ?", (place, asset)).fetchone()
        return None if row is None else [(str(o), list(k), bool(s)) for o, k, s in json.loads(row[0])]

    def put(self, place: str, asset: str, planned: list[tuple[str, tuple[Any, ...], bool]]) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?)",
                       (place, asset, json.dumps([[o, list(k), s] for o, k, s in planned]), time.time()))  # fmt: skip

    def done(self, place: str, asset: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM uploads WHERE place = ? AND asset = ?", (place, asset))


class ViBackend:
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
        self._journal = _Journal(home() / "vi-journal.sqlite")
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
        cache = home() / "cache" / "vi" / ds
        found = list(cache.glob(f"{asset}.*")) if cache.exists() else []
        if found:
            return str(found[0])
        url: str | None = self._urls.get((ds, asset))
        for attempt in range(2):
            if url is None or attempt:
                url = str(self._asset_row(ds, self._api.get(self._path(ds, f"/assets/{asset}"),
                                                            params={"contents": "y"}))["uri"] or "")  # fmt: skip
            if not url:
                return None
            response = self._files.get(url)
            if response.status_code != 403:
                break
        if response.status_code != 200:
            raise BackendError(f"Vi image of {asset}: HTTP {response.status_code} from its signed URL")
        cache.mkdir(parents=True, exist_ok=True)
        suffix = Path(httpx.URL(str(url)).path).suffix or ".img"
        target, tmp = cache / f"{asset}{suffix}", cache / f".{asset}{suffix}.part"
        tmp.write_bytes(response.content)
        tmp.replace(target)
        return str(target)

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

    def _poll_delay(self, polls: int) -> float:
        """Seconds before the next poll: short at first (small imports end in a second), then ``poll_interval``."""
        return float(min(self.poll_interval, 0.05 * 1.5**polls))

    # -- import sessions -----------------------------------------------------------------------------------
    def import_files(
        self,
        paths: Any,
        dataset: str,
        format: str | None = None,
        progress: bool = True,
        wait: bool = True,
        on_bad_annotation: str = "RejectFile",
        on_bad_file: str = "RejectFile",
        on_overwritten: str = "Warn",
    ) -> pd.DataFrame:
        """Upload Vi JSONL files (``.jsonl``/``.json`` files, folders of them, ``(name, bytes)`` pairs or a mapping).

        The failure policies (``Warn``, ``RejectFile``, ``RejectSession``) are sent explicitly: ``on_overwritten``
        decides what happens to an asset that already has annotations (``Warn``: the file's rows replace them).
        With ``wait`` the session is polled to its end and a report returned, one row per file (``status``
        imported / rejected, counts of error and warning lines, the first error), with the session's whole log in
        ``.attrs["logs"]`` (file, line, level, message); a session that ended FailedReach raises `ImportRejected`
        with that log and the report. Without ``wait`` the empty log is returned with the session id in
        ``.attrs["session"]`` (see `wait_import`).
        """
        if format is not None and _FORMAT_ALIASES.get(format.lower(), format) != "ViJsonl":
            raise ValueError(f"Vi imports Vi JSONL only, not {format!r}")
        files = _collect(paths)
        if not files:
            raise ValueError("nothing to import: no .jsonl / .json files among the paths given")
        policies = {"onBadAnnotation": on_bad_annotation, "onBadFile": on_bad_file, "onOverwritten": on_overwritten}
        for name, value in policies.items():
            if value not in POLICIES:
                raise ValueError(f"{name} must be one of {POLICIES}, not {value!r}")
        ds = self._ds(dataset)
        try:
            logs = self._import(ds, files, policies, progress, wait=wait)
        except ImportRejected as exc:
            exc.report = file_report(files, exc.logs, rejected_all=True)
            raise
        if not wait:
            return logs
        report = file_report(files, logs)
        report.attrs = {"logs": logs, **logs.attrs}
        return report

    def _import(
        self,
        ds: str,
        files: Mapping[str, bytes | str],
        policies: Mapping[str, str],
        progress: bool,
        wait: bool = True,
    ) -> pd.DataFrame:
        data = {n: (v.encode() if isinstance(v, str) else bytes(v)) for n, v in files.items()}
        if len(data) > MAX_SESSION_FILES:
            raise ValueError(f"{len(data)} files: a Vi import session takes at most {MAX_SESSION_FILES}")
        body = {"spec": {"uploadBefore": int((time.time() + 55 * 60) * 1000), "failurePolicies": dict(policies),
                         "source": "UploadedIndividualFiles"}, "metadata": {"attributes": {}}}  # fmt: skip
        session = self._api.post(self._path(ds, "/annotationImportSessions"), json=body)
        sid = str(field(session, "annotationImportSessionId", "import session"))
        listed = {n: {"sizeBytes": len(d), "crc32c": crc32c_b64(d), "kind": "Unknown"} for n, d in data.items()}
        answer = self._api.post(self._path(ds, f"/annotationImportSessions/{sid}/files"), json={"files": listed})
        targets = field(answer, "files", "file registration")
        missing = sorted(set(data) - set(targets or {}))
        if missing:
            raise MalformedResponse(f"Vi gave no upload URL for {missing[:5]}")
        status_url = self._path(ds, f"/annotationImportSessions/{sid}/status")
        bar = progress_bar(len(data), "uploading", progress, "file")
        try:
            for name, content in data.items():
                self._put(name, content, targets[name])
                bar.update(1)
        except BaseException:
            failed = {"condition": "FilesInserted", "status": "FailedReach", "reason": "UserUploadErrored",
                      "lastTransitionTime": int(time.time() * 1000)}  # fmt: skip
            with contextlib.suppress(BackendError):
                self._api.json("PATCH", status_url, json={"status": {"conditions": [failed]}})
            raise
        finally:
            bar.close()
        done = {"condition": "FilesInserted", "status": "Reached", "lastTransitionTime": int(time.time() * 1000)}
        self._api.json("PATCH", status_url, json={"status": {"conditions": [done]}})
        if not wait:
            logs = _logs_frame([])
            logs.attrs["session"] = sid
            return logs
        return self.wait_import(sid, ds, progress)

    def _put(self, name: str, data: bytes, target: Mapping[str, Any]) -> None:
        """Send one file to its signed URL (no key: the URL is the credential); 5xx and cuts are retried."""
        for attempt in range(4):
            try:
                response = self._files.request(
                    str(target.get("method") or "PUT"), str(target["url"]), headers=target.get("headers") or {},
                    content=data,
                )  # fmt: skip
            except httpx.TransportError as exc:
                if attempt == 3:
                    raise BackendError(f"Vi upload of {name}: {type(exc).__name__}") from exc
            else:
                if response.status_code < 500 or attempt == 3:
                    break
            time.sleep(0.2 * 2**attempt)
        if response.status_code >= 300:
            raise BackendError(f"Vi upload of {name}: HTTP {response.status_code} from its signed URL")

    def wait_import(self, session: str, dataset: str, progress: bool = True) -> pd.DataFrame:
        """Poll an import session until every condition is Reached; its log as a frame (`ImportRejected` if not)."""
        ds = self._ds(dataset)
        url = self._path(ds, f"/annotationImportSessions/{session}")
        deadline = time.monotonic() + self.poll_timeout
        polls = 0
        bar = progress_bar(1, "importing", progress, "session")
        try:
            while True:
                status = field(self._api.get(url), "status", "import session")
                conditions = status.get("conditions") or []
                states = [c.get("status") for c in conditions if isinstance(c, dict)]
                bar.total, bar.n = max(1, len(states)), states.count("Reached")
                bar.refresh()
                if "FailedReach" in states or (states and all(s == "Reached" for s in states)):
                    break
                if time.monotonic() > deadline:
                    raise BackendError(f"Vi import session {session} not done after {self.poll_timeout:g}s; "
                                       f"wait_import({session!r}, ...) to wait longer")  # fmt: skip
                time.sleep(self._poll_delay(polls := polls + 1))
        finally:
            bar.close()
        logs = self.import_logs(session, ds)
        logs.attrs["session"] = session
        logs.attrs["status"] = status
        if "FailedReach" in states:
            shown = "\n".join(f"  [{r['level']}] {r['file']}:{r['line']}: {r['message']}"
                              for r in logs.head(10).to_dict("records"))  # fmt: skip
            raise ImportRejected(f"Vi import session {session} was rejected ({len(logs)} log line(s), in .logs):\n"
                                 f"{shown}", logs)  # fmt: skip
        return logs

    def import_logs(self, session: str, dataset: str) -> pd.DataFrame:
        answer = self._api.get(self._path(self._ds(dataset), f"/annotationImportSessions/{session}/logs"))
        return _logs_frame(field(answer, "items", "import session log"))

    # -- exports -------------------------------------------------------------------------------------------
    def export(
        self,
        format: str,
        dest: Any,
        dataset: str,
        images: bool = False,
        split_ratio: float | None = None,
        normalized: bool = True,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Export the dataset's annotations in a Vi ``format`` and extract them under ``dest``; one row per file.

        The format is checked against the dataset's type before any export is made (a VQA dataset exports
        ``ViJsonl`` or ``ViTfrecord`` only). The archive is fetched with a HEAD and Range requests, then extracted
        only when every member stays inside ``dest`` and none is a link. `read_export` reads the returned frame
        back (`READERS` names the reader of each format; ``ViTfrecord`` is downloaded, not parsed).
        """
        ds = self._ds(dataset)
        fmt = _FORMAT_ALIASES.get(format.lower().replace("-", "_"), format)
        kind = self.dataset_type(ds)
        allowed = EXPORT_FORMATS.get(kind, ())
        if fmt not in allowed:
            raise ValueError(f"a {kind} dataset on Vi exports {list(allowed)}, not {format!r}")
        if images:
            raise ValueError("Vi annotation exports carry no images; use conn.backend.image_path per asset")
        body = {"spec": {"format": fmt, "options": {"normalized": bool(normalized), "splitRatio": split_ratio}}}
        made = self._api.post(self._path(ds, "/datasetExports"), json=body)
        export_id = str(field(made, "datasetExportId", "dataset export"))
        status = self._wait_export(ds, export_id, progress)
        link = (status.get("downloadUrl") or {}).get("url")
        if not link:
            raise MalformedResponse(f"Vi export {export_id} is done but has no downloadUrl: {str(status)[:200]}")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as tmp:
            self._download(str(link), tmp, progress)
            tmp.seek(0)
            written = extract_zip(tmp, dest)
        out = pd.DataFrame({"file": [str(p) for p in written], "bytes": [p.stat().st_size for p in written]})
        out.attrs["format"] = fmt
        out.attrs["reader"] = READERS.get(fmt)
        out.attrs["dest"] = str(dest)
        return out

    def _wait_export(self, ds: str, export_id: str, progress: bool) -> dict[str, Any]:
        url = self._path(ds, f"/datasetExports/{export_id}")
        deadline = time.monotonic() + self.poll_timeout
        polls = 0
        bar = progress_bar(1, "exporting", progress, "step")
        try:
            while True:
                status = field(self._api.get(url), "status", "dataset export")
                states = [c.get("status") for c in status.get("conditions") or [] if isinstance(c, dict)]
                bar.total, bar.n = max(1, len(states)), states.count("Reached")
                bar.refresh()
                if "FailedReach" in states:
                    raise BackendError(f"Vi export {export_id} failed: {str(status.get('conditions'))[:300]}")
                if states and all(s == "Reached" for s in states):
                    return dict(status)
                if time.monotonic() > deadline:
                    raise BackendError(f"Vi export {export_id} not done after {self.poll_timeout:g}s")
                time.sleep(self._poll_delay(polls := polls + 1))
        finally:
            bar.close()

    def _download(self, url: str, out: Any, progress: bool, chunk: int = 8 << 20) -> None:
        """HEAD for the size, then Range GETs (as the SDK downloads), each chunk retried on a cut or a 5xx."""
        head = self._files.head(url)
        size = int(head.headers.get("content-length", "0")) if head.status_code == 200 else 0
        bar = progress_bar(size, "downloading", progress, "B")
        try:
            if not size or head.headers.get("accept-ranges", "") != "bytes":
                response = self._files.get(url)
                if response.status_code != 200:
                    raise BackendError(f"Vi export download: HTTP {response.status_code}")
                out.write(response.content)
                return
            for start in range(0, size, chunk):
                end = min(size, start + chunk) - 1
                for attempt in range(4):
                    try:
                        response = self._files.get(url, headers={"Range": f"bytes={start}-{end}"})
                    except httpx.TransportError as exc:
                        if attempt == 3:
                            raise BackendError(f"Vi export download: {type(exc).__name__}") from exc
                        continue
                    if response.status_code < 500:
                        break
                if response.status_code != 206 or len(response.content) != end - start + 1:
                    raise BackendError(f"Vi export download: HTTP {response.status_code} for bytes {start}-{end}")
                out.write(response.content)
                bar.update(len(response.content))
        finally:
            bar.close()


# -- helpers -----------------------------------------------------------------------------------------------------
#: the split folders of a Vi export, and the split each stands for
SPLITS = {"training": "train", "validation": "validate", "dump": None}


#: the one file a reader of these formats takes from an export's annotations folder
_SINGLE_FILE = {"coco": ".json", "csv_four_corner": ".csv", "csv_width_height": ".csv", "yolo_keras": ".txt"}


def read_export(files: pd.DataFrame, assets: pd.DataFrame | None = None) -> pd.DataFrame:
    """The annotations of an export made by `ViBackend.export`, read with the formats' readers, splits marked.

    A Vi export holds ``training/``, ``validation/`` (or ``dump/``) folders, each with its ``annotations/`` in the
    format asked for; each is read on its own and ``split`` set to train / validate. ``assets`` (the dataset's
    assets table) gives the image sizes that pixel formats without them (YOLO Keras) need. ``ViTfrecord`` has no
    reader.
    """
    from ..connection import read

    reader = files.attrs.get("reader")
    if reader is None:
        raise ValueError(f"no reader for {files.attrs.get('format', 'this')} exports; the files are in .file")
    dest = Path(str(files.attrs["dest"]))
    parts = []
    for folder, split in SPLITS.items():
        root = dest / folder / "annotations"
        if root.is_dir():
            target = root
            if reader in _SINGLE_FILE:
                found = sorted(p for p in root.iterdir() if p.suffix == _SINGLE_FILE[str(reader)]
                               and not p.name.startswith("_classes"))  # fmt: skip
                target = found[0] if found else root
            options: dict[str, Any] = {"assets": assets} if assets is not None and reader == "yolo_keras" else {}
            part = read(target, format=str(reader), dataset=dest.name, **options)
            if split is not None:
                part["split"] = pd.array([split] * len(part), dtype=schema.STR)
            parts.append(part)
    if not parts:
        raise ValueError(f"{dest} holds none of the folders of a Vi export ({', '.join(SPLITS)})")
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


_COMPARED = ("text", "label", "x0", "y0", "x1", "y1", "span_start", "span_end", "answer")


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _document(asset: str, rows: list[dict[str, Any]]) -> str:
    """The upload document of one asset: its rows in Vi JSONL's upload form, addressed by asset id."""
    frame = schema.annotations_frame(rows) if rows else schema.annotations_frame()
    tables = Tables(
        annotations=frame,
        assets=schema.assets_frame([{"dataset": "vi", "asset": asset, "name": asset}]),
        labels=schema.labels_frame(),
    )
    return tables_to_vi_jsonl(tables)


def file_report(files: Mapping[str, bytes], logs: pd.DataFrame, rejected_all: bool = False) -> pd.DataFrame:
    """One row per uploaded file: its size, whether it was imported, and what the log says about it."""
    level = logs["level"].astype(str).str.lower()
    rows = []
    for name, data in files.items():
        mine = logs["file"] == name
        errors = logs[mine & level.str.startswith("err")]
        warnings = int((mine & level.str.startswith("warn")).sum())
        rows.append({"file": name, "bytes": len(data), "status": "rejected" if rejected_all or len(errors) else
                     "imported", "errors": len(errors), "warnings": warnings,
                     "first_error": errors["message"].iloc[0] if len(errors) else None})  # fmt: skip
    frame = pd.DataFrame(rows, columns=["file", "bytes", "status", "errors", "warnings", "first_error"])
    return frame.astype({"file": schema.STR, "status": schema.STR, "first_error": schema.STR})


def _rejected_files(logs: pd.DataFrame) -> set[str]:
    errors = logs[logs["level"].astype(str).str.lower().str.startswith("err")]
    return {str(f) for f in errors["file"].dropna()}


def _collect(paths: Any) -> dict[str, bytes]:
    """name -> bytes of what an import session uploads; names must be unique (the SDK's rule)."""
    items: list[tuple[str, Any]] = list(paths.items()) if isinstance(paths, Mapping) else []
    if not isinstance(paths, Mapping):
        for p in [paths] if isinstance(paths, str | Path | tuple) else paths:
            if isinstance(p, tuple):
                items.append((str(p[0]), p[1]))
            elif Path(p).is_dir():
                found = sorted(f for f in Path(p).rglob("*") if f.is_file() and f.suffix.lower() in (".jsonl", ".json"))
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


def _logs_frame(items: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for e in items:
        if not isinstance(e, dict):
            continue
        stamp = e.get("timestamp")
        rows.append({"file": e.get("file"), "line": e.get("line"), "level": e.get("level"),
                     "message": e.get("message"),
                     "timestamp": pd.Timestamp(int(stamp), unit="ms", tz="UTC") if stamp else pd.NaT})  # fmt: skip
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    return frame.astype({"file": schema.STR, "line": "Int64", "level": schema.STR, "message": schema.STR})
