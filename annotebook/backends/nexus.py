"""Datature Nexus: one project is one dataset; annotations cannot be updated, so an edit is a create and a delete.

Wire facts (``shared/protocols/datature-nexus-vi.md`` part A): ``Secret-Key`` header, cursor-paged lists
(``page`` / ``limit`` -> ``nextPage``), tags by name, no revisions. A row's ``rev`` is its ``createDate``: Nexus
rows never change, so a row whose id is still there is the row the frame loaded. Annotations <-> rows are
`nexus_rows`; import sessions and exports are `nexus_transfer`.

A push is made safe to repeat by a journal of its own (``nexus-journal.sqlite`` under the annotebook home,
`nexus_journal`): every write is journaled before it is sent, so a create whose answer was lost (a timeout, a cut
connection, a 5xx) is reconciled by re-reading its asset rather than sent again, and a push run again after a
failure lands every edit exactly once: no duplicate, no loss. An edit's old row is deleted only once a re-read of
the created rows shows the new one carries every field of the frame's row; one that does not is reported, and both
rows stay.

Examples
--------
>>> import annotebook as ab
>>> conn = ab.connect("nexus", project="proj_...")  # doctest: +SKIP
>>> anns = conn.assets(conn.backend.project).annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

import httpx
import orjson
import pandas as pd

from .. import schema
from .._home import home
from ..errors import AuthError, BackendError, ConflictError, NotFound, PushError, ValidationError
from ._http import ApiClient, MalformedResponse, make_client, outcome_unknown
from ._remote import UnsafeArchive, cached_image, crc32c_b64, extract_zip, gc_paused, progress_bar
from .base import ApplyResult, Capabilities, Changes
from .nexus_journal import WriteJournal
from .nexus_rows import _not_carried, _objects, body_from_row, fingerprint, row_from_wire
from .nexus_transfer import EXPORT_FORMATS, MAX_SESSION_FILES, ImportFailed, NexusTransfer

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


class NotCarried(ValidationError):
    """Rows with fields a Nexus create cannot carry; they are read-only on Nexus and nothing was written."""


class NexusBackend(NexusTransfer):
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
        self._journal = WriteJournal(home() / "nexus-journal.sqlite")
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
        return cached_image(self._files, home() / "cache" / "nexus" / dataset, asset, self._urls.get(asset),
                            lambda: self._asset_url(dataset, asset), "Nexus")  # fmt: skip

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
