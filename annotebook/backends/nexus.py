"""Datature Nexus: one project is one dataset; annotations cannot be updated, so an edit is a create and a delete.

Wire facts (``shared/protocols/datature-nexus-vi.md`` part A): ``Secret-Key`` header, cursor-paged lists
(``page`` / ``limit`` -> ``nextPage``), coordinates normalised to [0, 1] as ``[x, y]`` points (a ``Rectangle`` is
its 4 corners), tags by name, no revisions. A row's ``rev`` is its ``createDate``: Nexus rows never change, so a row
whose id is still there is the row the frame loaded.

A push is made safe to repeat by a journal of its own (``nexus-journal.sqlite`` under the annotebook home): every
write is journaled before it is sent, so a create whose answer was lost (a timeout, a cut connection, a 5xx) is
reconciled by re-reading its asset rather than sent again, and a push run again after a failure lands every edit
exactly once: no duplicate, no loss. An edit's old row is deleted only once a re-read of the created rows shows
the new one carries every field of the frame's row; one that does not is reported, and both rows stay.

Examples
--------
>>> import annotebook as ab
>>> conn = ab.connect("nexus", project="proj_...")  # doctest: +SKIP
>>> anns = conn.assets(conn.backend.project).annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pandas as pd

from .. import schema
from .._home import home
from .._sqlite import open_db
from ..errors import AuthError, BackendError, ConflictError, NotFound, PushError, ValidationError
from ._http import ApiClient, MalformedResponse, make_client, outcome_unknown
from ._remote import UnsafeArchive, crc32c_b64, extract_zip, field, gc_paused, progress_bar
from .base import ApplyResult, Capabilities, Changes

__all__ = ["EXPORT_FORMATS", "ImportFailed", "NexusBackend", "NotCarried", "UnsafeArchive", "crc32c_b64", "extract_zip"]

T = TypeVar("T")
KEY_ENV = "DATATURE_SECRET_KEY"
DEFAULT_ENDPOINT = "https://api.datature.io"
#: contract columns a Nexus annotation has no place for: a row that sets one is read-only on Nexus
_NO_PLACE = ("text", "answer", "parent", "span_start", "span_end", "status", "author", "score", "split")


#: the annotation export formats of the SDK (``api/types.py AnnotationExportFormat``)
EXPORT_FORMATS = (
    "coco", "csv_fourcorner", "csv_widthheight", "csv_vott", "vott", "ibm", "pascal_voc", "yolo_darknet",
    "yolo_keras_pytorch", "createml", "tfrecord", "polygon_tfrecord", "polygon_coco", "polygon_single", "rle_coco",
    "rle_semantic_coco", "box_openai_positional_encoding", "polygon_openai_positional_encoding",
    "csv_classification", "classification_tfrecord", "classification_3d_tfrecord", "keypoints_coco",
    "keypoints_tfrecord", "keypoints_datature_raw", "bitmask_tfrecord", "bitmask_rle_coco",
    "bitmask_rle_semantic_coco", "bitmask_openai_positional_encoding", "nifti_one_hot_segmentation",
    "nifti_class_index_segmentation", "segmentation_3d_tfrecord",
)  # fmt: skip
#: annotebook format names -> the Nexus export format of that name
_EXPORT_ALIASES = {"csv": "csv_fourcorner", "csv_four_corner": "csv_fourcorner", "csv_width_height": "csv_widthheight",
                   "voc": "pascal_voc", "yolo": "yolo_darknet", "yolo_keras": "yolo_keras_pytorch"}  # fmt: skip
#: the files an import session takes from a folder (the SDK's ``ANNOTATION_FORMAT_EXTENSIONS``)
IMPORT_SUFFIXES = (".json", ".csv", ".xml", ".labels", ".txt", ".nii.gz")
MAX_SESSION_FILES = 1000
#: asset ids in one sharded annotation listing request (the filter is in the query string)
SHARD = 50
LOG_COLUMNS = ["file", "line", "level", "message", "timestamp", "session"]


class ImportFailed(BackendError):
    """An import session ended ``Errored`` (or a later one failed); ``logs`` is the log so far as a frame.

    ``imported`` lists the files of the sessions that landed before it, ``not_imported`` the files of that session
    and of the sessions after it (never started).
    """

    def __init__(
        self, message: str, logs: pd.DataFrame, imported: Sequence[str] = (), not_imported: Sequence[str] = ()
    ):
        super().__init__(message)
        self.logs = logs
        self.imported, self.not_imported = list(imported), list(not_imported)


class NotCarried(ValidationError):
    """Rows with fields a Nexus create cannot carry; they are read-only on Nexus and nothing was written."""


# -- wire <-> canonical ----------------------------------------------------------------------------------------
def row_from_wire(ann: dict[str, Any], dataset: str) -> dict[str, Any] | None:
    """A Nexus annotation as a canonical record; None for bound types the contract has no kind for."""
    try:
        kind, bound = ann["boundType"], ann.get("bound") or []
        row: dict[str, Any] = {"dataset": dataset, "asset": ann["assetId"], "id": ann["id"], "label": ann["tag"]}
        attrs = {str(a["name"]): a.get("value") for a in ann.get("attributes") or [] if a.get("value") is not None}
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"Nexus sent an annotation without {exc}: {str(ann)[:200]}") from exc
    row["rev"] = str(ann.get("createDate", ""))
    row["frame"] = ann.get("frame")
    row["attributes"] = attrs or None
    if kind == "Rectangle":
        xs, ys = [float(p[0]) for p in bound], [float(p[1]) for p in bound]
        row.update(kind="box", x0=min(xs), y0=min(ys), x1=max(xs), y1=max(ys), rotation=0.0)
    elif kind == "Polygon":
        row.update(kind="polygon", points=(tuple(float(c) for p in bound for c in p[:2]),))
    elif kind == "Keypoints":
        flat = [c for p in bound for c in ((math.nan, math.nan) if int(p[2]) == 0 else (float(p[0]), float(p[1])))]
        row.update(kind="keypoints", points=(tuple(flat),), visibility=tuple(int(p[2]) for p in bound))
    elif kind == "Classification":
        row.update(kind="tag", value=True)
    else:
        return None
    return row


def _objects(answer: Any, what: str, key: str) -> list[dict[str, Any]]:
    """``answer`` as a list of JSON objects that each have ``key``; anything else is a `MalformedResponse`."""
    if not isinstance(answer, list) or not all(isinstance(a, dict) and key in a for a in answer):
        raise MalformedResponse(f"Nexus sent {what} that is not a list of objects with {key!r}: {str(answer)[:200]}")
    return answer


def _missing(v: Any) -> bool:
    return schema.normal_value("label", v) is None


def body_from_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The create body of a canonical row, or None and the problems that make it read-only on Nexus."""
    problems = [f"{c} cannot be stored on Nexus" for c in _NO_PLACE if not _missing(row[c])]
    kind, label = row["kind"], row["label"]
    if _missing(label):
        problems.append("a Nexus annotation needs a label (tag)")
    body: dict[str, Any] = {"assetId": row["asset"], "tag": label}
    if kind == "box":
        if not _missing(row["rotation"]) and float(row["rotation"]) != 0:
            problems.append("rotation: Nexus rectangles cannot be rotated")
        x0, y0, x1, y1 = (float(row[c]) for c in ("x0", "y0", "x1", "y1"))
        body.update(boundType="Rectangle", bound=[[x0, y0], [x0, y1], [x1, y1], [x1, y0]])
    elif kind in ("polygon", "keypoints"):
        parts = schema.normal_points(row["points"]) or ()
        if len(parts) != 1:
            problems.append(f"points: a Nexus {kind} has exactly one part, this row has {len(parts)}")
        flat = parts[0] if parts else ()
        pairs = [[flat[i], flat[i + 1]] for i in range(0, len(flat) - 1, 2)]
        if kind == "polygon":
            body.update(boundType="Polygon", bound=pairs)
        else:
            vis = list(schema.normal_value("visibility", row["visibility"]) or [2] * len(pairs))
            bound = [[0.0, 0.0, 0] if math.isnan(x) else [x, y, v] for (x, y), v in zip(pairs, vis, strict=False)]
            body.update(boundType="Keypoints", bound=bound)
    elif kind == "tag":
        if row["value"] is False:
            problems.append("value: Nexus has no false tag (a Classification is present or absent)")
        body.update(boundType="Classification", bound=[])
    else:
        problems.append(f"kind: Nexus has no {kind!r} annotations")
    attrs = schema.normal_attributes(row["attributes"])
    bad = [k for k, v in attrs.items() if not _attribute_value_ok(v)]
    if bad:
        problems.append(f"attributes {bad}: Nexus attribute values are text, numbers or lists of text")
    if attrs:
        body["attributes"] = [{"name": k, "value": v} for k, v in attrs.items()]
    if not _missing(row["frame"]):
        body["frame"] = int(row["frame"])
    return (None, problems) if problems else (body, [])


def _attribute_value_ok(v: Any) -> bool:
    if isinstance(v, list):
        return all(isinstance(x, str) for x in v)
    return isinstance(v, str | int | float) and not isinstance(v, bool)


def fingerprint(ann: dict[str, Any]) -> str:
    """What a create body and the row it made have in common (ids and dates left out)."""
    attrs = sorted((str(a["name"]), json.dumps(a.get("value"))) for a in ann.get("attributes") or [])
    core = [ann.get("assetId"), ann.get("tag"), ann.get("boundType"), ann.get("bound") or [], ann.get("frame"), attrs]
    return hashlib.sha256(json.dumps(core).encode()).hexdigest()[:24]


#: the fields of a canonical row a Nexus annotation carries, besides asset, label, kind, attributes and frame
_CARRIED = {"box": ("x0", "y0", "x1", "y1", "rotation"), "polygon": ("points",),
            "keypoints": ("points", "visibility"), "tag": ("value",)}  # fmt: skip


def carried(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The fields of a canonical row that a Nexus annotation carries, in normal form, as a create stores them.

    Nexus's conventions are applied, so that a row and its re-read copy compare equal: a rectangle's rotation is
    0, a tag is true, a keypoint without visibility is visible, and an unlabelled one (NaN or visibility 0) is
    NaN at visibility 0. Extents of point kinds are derived from the points and left out.
    """
    kind = row.get("kind")
    columns = ("asset", "label", "kind", "attributes", "frame", *_CARRIED.get(str(kind), ()))
    out = {c: schema.normal_value(c, row.get(c)) for c in columns}
    if kind == "box" and out["rotation"] is None:
        out["rotation"] = 0.0
    if kind == "tag" and out["value"] is None:
        out["value"] = True
    if kind == "keypoints" and out["points"]:
        flat = out["points"][0]
        pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
        seen = out["visibility"] or (2,) * len(pairs)
        kept = [(p, v) if p[0] is not None and v else ((None, None), 0) for p, v in zip(pairs, seen, strict=False)]
        out["points"] = (tuple(c for p, _ in kept for c in p),)
        out["visibility"] = tuple(v for _, v in kept)
    return out


def _not_carried(
    key: str, row: Mapping[Any, Any], new_id: str, stored: dict[str, Any] | None, edit: bool
) -> dict[str, Any] | None:
    """None when the row Nexus stored as ``new_id`` carries every field of the frame's ``row``; else the failure."""
    want = carried(row)
    back = row_from_wire(stored, str(row.get("dataset"))) if stored is not None else None
    got = carried(back) if back is not None else {}
    fields = [c for c in want if c not in got or want[c] != got[c]]
    if not fields:
        return None
    if stored is None:
        what = f"Nexus does not list the row it created as {new_id}"
    else:
        shown = "; ".join(f"{c}: sent {_short(want[c])}, stored {_short(got.get(c))}" for c in fields)
        what = f"the copy Nexus stored as {new_id} differs in {', '.join(fields)} ({shown})"
    if edit:
        kept = f"the old row {key} was not deleted, so both are on Nexus (reload to see them)"
    else:
        kept = f"{new_id} stays on Nexus (reload to see it)"
    error = f"row {key}: {what}; {kept}; push again to replace the copy"
    return {"id": key, "op": "update" if edit else "create", "new_id": new_id, "fields": fields, "error": error}


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


# -- the journal that makes a push repeatable ------------------------------------------------------------------
class _Journal:
    """Per (project, key) the write in flight: key is a client id (create), an old id (edit) or an id (delete)."""

    def __init__(self, path: Path):
        self.path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS writes (project TEXT, key TEXT, op TEXT, fp TEXT, asset TEXT, "
                "before TEXT, new_id TEXT, state TEXT, at REAL, PRIMARY KEY (project, key))"
            )
            db.execute("DELETE FROM writes WHERE at < ?", (time.time() - 30 * 86400,))

    @contextmanager
    def _db(self) -> Iterator[Any]:
        db = open_db(self.path)
        try:
            yield db
        finally:
            db.close()

    def deleting(self, project: str) -> list[str]:
        """Old rows whose deletion was started (their new copy confirmed) and not seen to finish."""
        with self._db() as db:
            rows = db.execute("SELECT key FROM writes WHERE project = ? AND state = 'deleting'", (project,)).fetchall()
        return [str(r[0]) for r in rows]

    def get(self, project: str, key: str) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute(
                "SELECT op, fp, asset, before, new_id, state FROM writes WHERE project = ? AND key = ?", (project, key)
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("op", "fp", "asset", "before", "new_id", "state"), row, strict=True)) | {
            "before": json.loads(row[3] or "[]")
        }

    def put(self, project: str, key: str, **fields: Any) -> None:
        entry: dict[str, Any] = {
            "op": None,
            "fp": None,
            "asset": None,
            "before": [],
            "new_id": None,
            "state": "pending",
        }
        entry |= self.get(project, key) or {}
        entry |= fields
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (project, key, entry["op"], entry["fp"], entry["asset"], json.dumps(entry["before"]),
                 entry["new_id"], entry["state"], time.time()),
            )  # fmt: skip


class NexusBackend:
    """A Datature Nexus project (``proj_...``); the key comes from ``key=`` or ``DATATURE_SECRET_KEY``."""

    name = "nexus"
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
        self.endpoint = (endpoint or os.environ.get("DATATURE_API_BASE_URL") or DEFAULT_ENDPOINT).rstrip("/")
        self.page_size = page_size
        headers = {"Secret-Key": key, "User-Agent": "annotebook (httpx)"}
        self._api: ApiClient = make_client(self.endpoint, headers, timeout, transport, service="Nexus", key_env=KEY_ENV)
        self._files = httpx.Client(timeout=timeout, transport=transport, follow_redirects=True)
        # pooled connections are closed when the backend goes away, not left to the garbage collector's warnings
        weakref.finalize(self, self._files.close)
        weakref.finalize(self, self._api.close)
        self._urls: dict[str, str] = {}
        #: annotations of the last load whose bound type has no canonical kind (e.g. Bitmask3d): left out, listed here
        self.skipped: list[dict[str, Any]] = []
        self._journal = _Journal(home() / "nexus-journal.sqlite")
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
            data = (page.get("data") or []) if isinstance(page, dict) else None
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
        cache = home() / "cache" / "nexus" / dataset
        found = list(cache.glob(f"{asset}.*")) if cache.exists() else []
        if found:
            return str(found[0])
        url: str | None = self._urls.get(asset)
        for attempt in range(2):
            if url is None or attempt:
                url = self._asset_url(dataset, asset)
            if not url:
                return None
            response = self._files.get(url)
            if response.status_code != 403:
                break
        if response.status_code != 200:
            raise BackendError(f"Nexus image of {asset}: HTTP {response.status_code} from its signed URL")
        cache.mkdir(parents=True, exist_ok=True)
        suffix = Path(httpx.URL(str(url)).path).suffix or ".img"
        target, tmp = cache / f"{asset}{suffix}", cache / f".{asset}{suffix}.part"
        tmp.write_bytes(response.content)
        tmp.replace(target)
        return str(target)

    def _asset_url(self, dataset: str, asset: str) -> str:
        url = str(self._api.get(self._path(dataset, f"/assets/{asset}")).get("url") or "")
        self._urls[asset] = url
        return url

    # -- writing -------------------------------------------------------------------------------------------
    def apply(self, changes: Changes) -> ApplyResult:
        """Creates, edits (create the new row, then delete the old: the id changes) and deletes.

        Every created row is re-read (one listing of the touched assets) and compared field by field with the
        frame's row; an old row is deleted only once its new copy carries every field. A copy that does not is
        left on Nexus beside the old row and named in ``failed``, and the push raises `PushError`.
        """
        dataset = changes.dataset
        creates, updates = self._bodies(changes.creates, changes.updates)
        bodies = {**creates, **updates}  # keyed by client id (a create) or old id (an edit)
        rows = {str(r["id"]): r for f in (changes.creates, changes.updates) for r in f.to_dict("records")}
        touched = {b["assetId"] for b in bodies.values()}
        remote = {a["id"]: a for a in self._wire_annotations(dataset, sorted(touched))} if touched else {}
        expected = dict(zip(changes.updates["id"], changes.updates["rev"], strict=True))
        expected |= dict(zip(changes.deletes["id"], changes.deletes["rev"], strict=True))
        self._check(dataset, expected, remote, set(changes.updates["id"]))
        result = ApplyResult()
        made: dict[str, str] = {}  # key -> the id of the row created for it
        self._finish_deletes(dataset, set(expected))
        try:
            self._ensure_tags(dataset, [b["tag"] for b in bodies.values()])
            for key, body in bodies.items():
                made[key] = self._create_once(dataset, key, body, remote)[0]
            stored = self._reread(dataset, {new_id: bodies[key]["assetId"] for key, new_id in made.items()})
            for key, new_id in made.items():
                problem = _not_carried(key, rows[key], new_id, stored.get(new_id), edit=key in expected)
                if problem is not None:  # the old row stays: nothing of the frame's row is lost
                    result.failed.append(problem)
                    self._journal.put(self.project, key, state="mismatch")
                    continue
                if key in expected:  # an edit: the old row goes once the new one carries every field
                    self._delete_once(dataset, key)
                # only now is the edit whole: a failure before leaves the frame's row at its old id, and the
                # journal finishes it on the next push
                result.ids[key], result.revs[new_id] = new_id, str(stored[new_id].get("createDate", ""))
                self._journal.put(self.project, key, state="done")
            for old in changes.deletes["id"]:
                self._delete_once(dataset, str(old))
                self._journal.put(self.project, str(old), state="done")
                result.deleted.append(str(old))
        except BackendError as exc:
            result.failed.append({"id": None, "op": "write", "error": str(exc)})
            landed = f"{len(made)} created, {len(result.ids)} confirmed and {len(result.deleted)} deleted before it"
            raise PushError(f"push to Nexus failed part way ({landed}): {exc}; push again to finish", result) from exc
        if result.failed:
            shown = "\n".join(f"  {f['error']}" for f in result.failed[:10])
            raise PushError(
                f"{len(result.failed)} row(s) were not stored by Nexus as sent; the rest landed "
                f"(details in .report.failed):\n{shown}",
                result,
            )
        return result

    def _finish_deletes(self, dataset: str, mine: set[str]) -> None:
        """Delete the old rows of edits whose delete an earlier push (from any frame) started and lost.

        Their new copies were confirmed before the delete began, so removing the old row loses nothing; rows this
        push edits or deletes itself are left to it.
        """
        for old in self._journal.deleting(self.project):
            if old in mine:
                continue
            self._delete(dataset, old)
            self._journal.put(self.project, old, state="done")

    def _reread(self, dataset: str, made: dict[str, str]) -> dict[str, dict[str, Any]]:
        """The created rows (new id -> asset) as Nexus now holds them: one listing of their assets.

        A row the listing does not show (yet) is asked for by id; one Nexus does not have is left out.
        """
        if not made:
            return {}
        listed = self._wire_annotations(dataset, sorted(set(made.values())))
        stored = {str(a["id"]): a for a in listed if str(a["id"]) in made}
        for new_id in sorted(set(made) - set(stored)):
            with contextlib.suppress(NotFound):
                got = self._api.get(self._path(dataset, f"/annotations/{new_id}"), params={"includeAttributes": "true"})
                stored[new_id] = got
        return stored

    def _bodies(self, *frames: pd.DataFrame) -> list[dict[str, dict[str, Any]]]:
        """The create body of every row, keyed by id; every row Nexus cannot carry is named at once."""
        out: list[dict[str, dict[str, Any]]] = []
        problems = []
        for rows in frames:
            out.append({})
            for rec in rows.to_dict("records"):
                body, why = body_from_row({str(k): v for k, v in rec.items()})
                problems += [{"id": rec["id"], "column": w.split(":")[0].split(" ")[0], "problem": w} for w in why]
                if body is not None:
                    out[-1][str(rec["id"])] = body
        if problems:
            raise NotCarried(
                f"{len({p['id'] for p in problems})} row(s) have fields a Nexus create cannot carry; nothing was "
                "written (these rows are read-only on Nexus)",
                pd.DataFrame(problems),
            )
        return out

    def _ensure_tags(self, dataset: str, names: list[str]) -> None:
        if not names:
            return
        known = self._tag_names(dataset)
        for name in sorted(set(names) - known):
            try:
                self._api.post(self._path(dataset, "/tags"), json={"name": name})
            except BackendError as exc:  # an unanswered create of a tag: look before trying again
                if not outcome_unknown(exc):
                    raise
                if name not in self._tag_names(dataset):
                    self._api.post(self._path(dataset, "/tags"), json={"name": name})

    def _tag_names(self, dataset: str) -> set[str]:
        return {str(t["name"]) for t in _objects(self._api.get(self._path(dataset, "/tags")), "a tag list", "name")}

    def _check(
        self, dataset: str, expected: dict[str, Any], remote: dict[str, dict[str, Any]], edits: set[str]
    ) -> None:
        """Every row to edit or delete must still be there at its revision, unless this journal removed it."""
        problems = []
        for row_id, rev in expected.items():
            now = remote.get(row_id)
            if now is None:
                try:
                    now = self._api.get(self._path(dataset, f"/annotations/{row_id}"))
                except NotFound:
                    entry = self._journal.get(self.project, row_id)
                    if entry is None or entry["state"] not in ("deleting", "done"):
                        local = "edited" if row_id in edits else True
                        problems.append({"id": row_id, "field": "deleted", "base": False, "remote": True,
                                         "local": local})  # fmt: skip
                    continue
            if str(now.get("createDate", "")) != str(rev):
                problems.append({"id": row_id, "field": "rev", "base": rev, "remote": now.get("createDate"),
                                 "local": rev})  # fmt: skip
        if problems:
            raise ConflictError(
                f"{len(problems)} row(s) changed on Nexus since this frame's load; nothing was written. Reload.",
                pd.DataFrame(problems),
            )

    def _create_once(
        self, dataset: str, key: str, body: dict[str, Any], remote: dict[str, dict[str, Any]]
    ) -> tuple[str, str]:
        """Create ``body`` exactly once across pushes: journal first, reconcile a lost answer by re-reading."""
        fp = fingerprint(body)
        entry = self._journal.get(self.project, key)
        if entry is not None and entry["new_id"]:
            landed = self._find(dataset, body["assetId"], lambda a: a["id"] == entry["new_id"])
            if landed is not None and entry["fp"] == fp and entry["state"] != "mismatch":
                return landed["id"], str(landed.get("createDate", ""))
            if landed is not None:  # an earlier push landed other content, or a copy short of fields: remove it
                self._delete(dataset, landed["id"])
        elif entry is not None and entry["state"] == "pending" and entry["fp"] == fp:
            found = self._reconcile(dataset, body, fp, entry["before"])
            if found is not None:
                self._journal.put(self.project, key, new_id=found["id"], state="created")
                return found["id"], str(found.get("createDate", ""))
        before = [a["id"] for a in remote.values() if a.get("assetId") == body["assetId"] and fingerprint(a) == fp]
        self._journal.put(self.project, key, op="create", fp=fp, asset=body["assetId"], before=before,
                          new_id=None, state="pending")  # fmt: skip
        try:
            made = self._api.post(self._path(dataset, "/annotations"), json=body)
        except BackendError as exc:
            if not outcome_unknown(exc):
                raise
            found = self._reconcile(dataset, body, fp, before)  # re-read before any retry
            made = found if found is not None else self._api.post(self._path(dataset, "/annotations"), json=body)
        if not isinstance(made, dict) or "id" not in made:
            raise MalformedResponse(f"Nexus answered a create without an id: {str(made)[:200]}")
        self._journal.put(self.project, key, new_id=made["id"], state="created")
        return str(made["id"]), str(made.get("createDate", ""))

    def _reconcile(self, dataset: str, body: dict[str, Any], fp: str, before: list[str]) -> dict[str, Any] | None:
        """The row an unanswered create made, if it landed: same content, on the same asset, not there before."""
        return self._find(dataset, body["assetId"], lambda a: fingerprint(a) == fp and a["id"] not in before)

    def _find(self, dataset: str, asset: str, match: Any) -> dict[str, Any] | None:
        return next((a for a in self._wire_annotations(dataset, [asset]) if match(a)), None)

    def _delete_once(self, dataset: str, row_id: str) -> None:
        self._journal.put(self.project, row_id, state="deleting")
        self._delete(dataset, row_id)

    def _delete(self, dataset: str, row_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: a retried delete whose first answer was lost
            self._api.delete(self._path(dataset, f"/annotations/{row_id}"))

    # -- import sessions -----------------------------------------------------------------------------------
    def import_files(
        self, paths: Any, dataset: str, format: str | None = None, progress: bool = True, wait: bool = True
    ) -> pd.DataFrame:
        """Upload annotation files to import sessions; Nexus reads them (it detects the format itself).

        ``paths``: files, folders (every ``.json .csv .xml .txt .labels .nii.gz`` under them, as the SDK takes
        them), ``(name, bytes)`` pairs, or a ``{name: bytes}`` mapping. A session takes at most
        ``self.session_files`` (1,000) files, so more are split over several sessions, run one after the other
        under one progress bar. With ``wait`` each session is polled to its end before the next one starts, and
        the logs of all of them are returned, one row per line (file, line, level, message, timestamp, session);
        a session that ended ``Errored`` raises `ImportFailed` with the logs so far, naming the sessions that
        landed before it and the files not imported. Without ``wait`` every session is started and the empty log
        returned at once, the session ids in ``.attrs["sessions"]`` (``.attrs["session"]`` is the first; see
        `wait_import`).
        """
        files = _import_files(paths, format)
        if not files:
            raise ValueError("nothing to import: no annotation files among the paths given")
        names, size = list(files), max(1, int(self.session_files))
        parts = [names[i : i + size] for i in range(0, len(names), size)]
        sessions: list[str] = []
        logs: list[pd.DataFrame] = []
        bar = progress_bar(len(names), "importing", progress, "file")
        try:
            for n, part in enumerate(parts):
                step = f"session {n + 1}/{len(parts)}" if len(parts) > 1 else "session"
                try:
                    _stage(bar, f"{step}: uploading")
                    sessions.append(self._start_session(dataset, {k: files[k] for k in part}, bar, count=not wait))
                    if not wait:
                        continue
                    _stage(bar, f"{step}: importing")
                    done = int(bar.n)
                    overview, log = self._wait_session(sessions[-1], dataset, partial(_move_from, bar, done))
                    logs.append(log)
                    _move(bar, done + len(part))
                except BackendError as exc:
                    if len(parts) == 1:  # nothing landed: the error as it is
                        raise
                    raise _import_failed(f"failed ({exc})", parts, sessions, n, _concat_logs(logs), wait) from exc
                if overview != "Errored":
                    continue
                if len(parts) == 1:
                    raise self._errored(sessions[0], log, part)
                why = f"ended Errored ({len(log)} log line(s), in .logs)"
                raise _import_failed(why, parts, sessions, n, _concat_logs(logs), wait)
        finally:
            bar.close()
        out = _concat_logs(logs)
        out.attrs["session"], out.attrs["sessions"] = sessions[0], sessions
        return out

    def _start_session(self, dataset: str, files: dict[str, bytes], bar: Any, count: bool) -> str:
        """Create a session, register and upload ``files``, commit it; its id (the bar counts uploads if ``count``)."""
        session = self._api.post(self._path(dataset, "/annotationimportsessions"))
        sid = field(session, "id", "import session")
        listed = [{"filename": n, "size": len(d), "crc32c": crc32c_b64(d)} for n, d in files.items()]
        answer = self._api.post(self._path(dataset, f"/annotationimportsessions/{sid}/files"), json={"files": listed})
        registered = _objects(field(answer, "files", "file registration"), "a file registration", "filename")
        uploads = {str(f["filename"]): f.get("upload") or {} for f in registered}
        missing = sorted(set(files) - set(uploads))
        if missing:
            raise MalformedResponse(f"Nexus gave no upload URL for {missing[:5]}")
        try:
            for name, data in files.items():
                self._upload(name, data, uploads[name])
                if count:
                    bar.update(1)
        except BaseException:
            conditions = [{"condition": "FilesProcessed", "status": "FailedReach"}]
            with contextlib.suppress(BackendError):
                self._api.json("PATCH", self._path(dataset, f"/annotationimportsessions/{sid}"),
                               json={"status": {"conditions": conditions}})  # fmt: skip
            raise
        conditions = [{"condition": "FilesInserted", "status": "Reached"}]
        self._api.json("PATCH", self._path(dataset, f"/annotationimportsessions/{sid}"),
                       json={"status": {"conditions": conditions}})  # fmt: skip
        return str(sid)

    def _upload(self, name: str, data: bytes, upload: dict[str, Any]) -> None:
        """PUT one file to its signed URL (no key: the URL is the credential); 5xx and cuts are retried."""
        for attempt in range(4):
            try:
                response = self._files.request(
                    str(upload.get("method") or "PUT"), str(upload["url"]), headers=upload.get("headers") or {},
                    content=data,
                )  # fmt: skip
            except httpx.TransportError as exc:
                if attempt == 3:
                    raise BackendError(f"Nexus upload of {name}: {type(exc).__name__}") from exc
            else:
                if response.status_code < 500 or attempt == 3:
                    break
            time.sleep(0.2 * 2**attempt)
        if response.status_code >= 300:
            raise BackendError(f"Nexus upload of {name}: HTTP {response.status_code} from its signed URL")

    def wait_import(self, session: str, dataset: str | None = None, progress: bool = True) -> pd.DataFrame:
        """Poll an import session to its end; its log as a frame, or `ImportFailed` when it ended Errored."""
        dataset = dataset or self.project
        bar = progress_bar(0, "importing", progress, "file")

        def show(done: int, total: int) -> None:
            bar.total = total
            _move(bar, done)

        try:
            overview, logs = self._wait_session(session, dataset, show)
        finally:
            bar.close()
        logs.attrs["session"], logs.attrs["sessions"] = session, [session]
        if overview == "Errored":
            raise self._errored(session, logs)
        return logs

    @staticmethod
    def _errored(session: str, logs: pd.DataFrame, files: Sequence[str] = ()) -> ImportFailed:
        shown = "\n".join(_log_line(r) for r in logs.head(10).to_dict("records"))
        return ImportFailed(f"Nexus import session {session} ended Errored ({len(logs)} log line(s), in .logs):\n"
                            f"{shown}", logs, not_imported=files)  # fmt: skip

    def _wait_session(self, session: str, dataset: str, show: Callable[[int, int], None]) -> tuple[str, pd.DataFrame]:
        """Poll a session until it ends; its overview (Finished / Errored) and log. ``show(done, total)`` per poll."""
        url = self._path(dataset, f"/annotationimportsessions/{session}")
        deadline = time.monotonic() + self.poll_timeout
        while True:
            status = field(self._api.get(url), "status", "import session")
            counts = ((status.get("files") or {}).get("withStatus")) or {}
            total = sum(int(v) for v in counts.values())
            show(int(counts.get("Processed", 0)) + int(counts.get("FailedProcess", 0)), total)
            if status.get("overview") in ("Finished", "Errored"):
                break
            if time.monotonic() > deadline:
                raise BackendError(f"Nexus import session {session} still {status.get('overview')} after "
                                   f"{self.poll_timeout:g}s; wait_import({session!r}) to wait longer")  # fmt: skip
            time.sleep(self.poll_interval)
        return str(status.get("overview")), self.import_logs(session, dataset)

    def import_logs(self, session: str, dataset: str | None = None) -> pd.DataFrame:
        """The log of an import session: one row per line, with the file and line it names when it names one."""
        answer = self._api.get(self._path(dataset or self.project, f"/annotationimportsessions/{session}/logs"))
        return _logs_frame(field(answer, "logs", "import session log"), session)

    # -- exports -------------------------------------------------------------------------------------------
    def export(
        self,
        format: str,
        dest: Any,
        dataset: str,
        images: bool = False,
        split_ratio: float | None = None,
        seed: int | None = None,
        normalized: bool | None = None,
        shuffle: bool | None = None,
        progress: bool = True,
    ) -> pd.DataFrame:
        """Export the project in a Nexus ``format`` and extract the archive under ``dest``; one row per file.

        ``split_ratio`` (the share of assets in the validation split), ``seed``, ``normalized`` and ``shuffle`` are
        Nexus's export options. The operation is polled with a progress bar, the zip downloaded and extracted
        only when every member stays inside ``dest`` and none is a link (`UnsafeArchive` otherwise, before
        anything is written). ``images=True`` also places each asset's image under ``dest/images/``.
        """
        fmt = _EXPORT_ALIASES.get(format.lower().replace("-", "_"), format.lower().replace("-", "_"))
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Nexus has no export format {format!r}; it has {list(EXPORT_FORMATS)}")
        options = {"splitRatio": split_ratio, "seed": seed, "normalized": normalized, "shuffle": shuffle}
        body = {"format": fmt, "options": {k: v for k, v in options.items() if v is not None}}
        op = field(self._api.post(self._path(dataset, "/annotationexports"), json=body), "id", "export operation")
        self._wait_operation(dataset, str(op), progress)
        answer = self._api.get(self._path(dataset, f"/annotationexports/{op}"))
        download = answer.get("download") if isinstance(answer, dict) else None
        if not isinstance(download, dict) or not download.get("url"):
            raise MalformedResponse(f"Nexus export {op} finished without a download: {str(answer)[:200]}")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as tmp:
            with self._files.stream(str(download.get("method") or "GET"), str(download["url"])) as response:
                if response.status_code != 200:
                    raise BackendError(f"Nexus export {op}: HTTP {response.status_code} from its download URL")
                for chunk in response.iter_bytes():
                    tmp.write(chunk)
            tmp.seek(0)
            written = extract_zip(tmp, dest)
        if images:
            written += self._export_images(dataset, dest)
        return pd.DataFrame({"file": [str(p) for p in written], "bytes": [p.stat().st_size for p in written]})

    def _wait_operation(self, dataset: str, op: str, progress: bool) -> None:
        deadline = time.monotonic() + self.poll_timeout
        bar = progress_bar(1, "exporting", progress, "op")
        try:
            while True:
                status = field(self._api.get(self._path(dataset, f"/operations/{op}")), "status", "operation")
                counts = ((status.get("progress") or {}).get("withStatus")) or {}
                total = sum(int(v) for v in counts.values()) or 1
                bar.total = total
                bar.n = sum(int(counts.get(k, 0)) for k in ("Finished", "Errored", "Cancelled"))
                bar.refresh()
                overview = status.get("overview")
                if overview == "Finished":
                    return
                if overview in ("Errored", "Cancelled"):
                    raise BackendError(f"Nexus export {op} {overview.lower()}: {status.get('message')}")
                if time.monotonic() > deadline:
                    raise BackendError(f"Nexus export {op} still {overview} after {self.poll_timeout:g}s")
                time.sleep(self.poll_interval)
        finally:
            bar.close()

    def _export_images(self, dataset: str, dest: Path) -> list[Path]:
        out = []
        for r in self.assets(dataset).to_dict("records"):
            source = self.image_path(dataset, str(r["asset"]))
            if source is None:
                continue
            target = dest / "images" / Path(str(r["name"] or Path(source).name)).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            out.append(target)
        return out


def _stage(bar: Any, text: str) -> None:
    """Name the stage a bar is at (a silent bar has no description)."""
    describe = getattr(bar, "set_description_str", None)
    if describe is not None:
        describe(text)


def _move(bar: Any, n: int) -> None:
    if n != bar.n:
        bar.n = n
        bar.refresh()


def _move_from(bar: Any, start: int, done: int, total: int) -> None:
    """A session's progress on a bar over several sessions: ``start`` files were done before it."""
    _move(bar, start + done)


def _import_failed(
    why: str, parts: list[list[str]], sessions: list[str], failed: int, logs: pd.DataFrame, waited: bool
) -> ImportFailed:
    """`ImportFailed` for session ``failed`` (0-based) of ``parts``: which sessions landed before it, which did not."""
    n, sid = len(parts), sessions[failed] if failed < len(sessions) else None
    imported = [f for part in parts[:failed] for f in part]
    not_imported = [f for part in parts[failed:] for f in part]
    message = f"Nexus import session {failed + 1} of {n}{f' ({sid})' if sid else ''} {why}; "
    if failed:
        landed = "landed" if waited else "were started"
        message += f"sessions 1-{failed} ({', '.join(sessions[:failed])}: {len(imported)} files) {landed}"
    else:
        message += "no session landed before it"
    if failed + 1 < n:
        message += f", sessions {failed + 2}-{n} were not started"
    message += f"; {len(not_imported)} file(s) not imported (in .not_imported)"
    lines = logs[logs["session"] == sid].head(10).to_dict("records") if sid else []
    shown = "".join("\n" + _log_line(r) for r in lines)
    return ImportFailed(message + shown, logs, imported, not_imported)


def _log_line(r: dict[Any, Any]) -> str:
    where = "" if pd.isna(r["file"]) else str(r["file"]) + ("" if pd.isna(r["line"]) else f":{r['line']}") + ": "
    return f"  [{r['level']}] {where}{r['message']}"


def _import_files(paths: Any, format: str | None) -> dict[str, bytes]:
    """name -> bytes of what an import session uploads; names must be unique (the SDK's rule)."""
    suffixes = _format_suffixes(format)
    items: list[tuple[str, Any]] = list(paths.items()) if isinstance(paths, Mapping) else []
    if not isinstance(paths, Mapping):
        for p in [paths] if isinstance(paths, str | Path | tuple) else paths:
            if isinstance(p, tuple):
                items.append((str(p[0]), p[1]))
            elif Path(p).is_dir():
                found = sorted(f for f in Path(p).rglob("*") if f.is_file() and f.name.lower().endswith(suffixes))
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


def _format_suffixes(format: str | None) -> tuple[str, ...]:
    if format is None:
        return IMPORT_SUFFIXES
    key = format.lower().replace("-", "_")
    for prefix, suffixes in (("csv", (".csv",)), ("coco", (".json",)), ("yolo", (".txt", ".labels")),
                             ("voc", (".xml",)), ("pascal", (".xml",))):  # fmt: skip
        if key.startswith(prefix):
            return suffixes
    return IMPORT_SUFFIXES


_LOG_WHERE = re.compile(r"^At (?P<file>.+?)(?::(?P<line>\d+))?: ")


def _concat_logs(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The logs of several sessions as one frame (an empty log when none has a line)."""
    kept = [f for f in frames if len(f)]
    return pd.concat(kept, ignore_index=True) if kept else _logs_frame([], None)


def _logs_frame(logs: list[dict[str, Any]], session: str | None) -> pd.DataFrame:
    """An import session's log lines as a frame: ``At a.csv:19: Point ...`` gives file ``a.csv``, line 19."""
    rows = []
    for entry in logs:
        message = str(entry.get("message") or "")
        stamp = entry.get("timestamp")
        where = _LOG_WHERE.match(message)
        rows.append({
            "file": where["file"] if where else None,
            "line": int(where["line"]) if where and where["line"] else None,
            "level": entry.get("level"),
            "message": message[where.end():] if where else message,
            "timestamp": pd.Timestamp(float(stamp), unit="s", tz="UTC") if stamp else pd.NaT,
            "session": session,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    strings = {"file": schema.STR, "level": schema.STR, "message": schema.STR, "session": schema.STR}
    return frame.astype({**strings, "line": "Int64"})
