"""Pictograph: image datasets whose annotations are saved one image's whole list at a time.

Wire facts (``shared/protocols/clarifai-superannotate-pictograph.md`` part C): ``X-API-Key``; everything under
``/api/v1/developer``; datasets by name; images listed with ``limit`` / ``offset`` (``pagination.has_more``) and
addressed by path (``{dataset}/{directory/filename}``); an image's annotations read with ``GET
annotations/{dataset}/{path}`` and replaced whole with ``POST`` (``{"annotations": [...]}``, answered with
``previous_count``) or, for up to 200 images at once, ``POST annotations/bulk``. Every POST carries an
``Idempotency-Key``. How annotations map to the data contract is `pictograph_rows`.

Writing. Pictograph has no single-region write and no conditional write, so the engine's ``replace`` strategy
(`annotebook.sync.replace`) plans each touched image's whole new list; `replace_units` re-checks
(``recheck()``) right before the save and sends it. A save keeps the ids it is sent, so a row the frame added gets
a fresh id here and the engine learns it by `row_key` from the read-back. The ``previous_count`` of each save is
compared with what the re-check saw: a count that moved means another writer saved in between, and that image is
reported refused (the push raises `PushError`; the next push reconciles from the journal). There is no
``delete_rows``: a deletion is a replace of its image. A 422 is a `ValidationError` naming every field.

Examples
--------
>>> import annotebook as ab
>>> pg = ab.connect("pictograph", dataset="street-scenes")  # doctest: +SKIP
>>> anns = pg.annotations()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd

from .. import schema
from .._home import home
from ..errors import AuthError, BackendError, MalformedResponse, NotSupported, ValidationError
from ._http import ApiClient, SignedUrls, make_client
from ._remote import cached_image, gc_paused, progress_bar
from .base import Capabilities
from .pictograph_poses import Templates, is_pose, pose_wires, templates_of
from .pictograph_rows import _px, content_key, fingerprint, problems_of, read_rows, wire_from_row
from .pictograph_transfer import EXPORT_FORMATS, PictographTransfer, read_export

__all__ = ["BULK_LIMIT", "EXPORT_FORMATS", "PictographBackend", "read_export"]

KEY_ENV = "PICTOGRAPH_API_KEY"
URL_ENV = "PICTOGRAPH_BASE_URL"
DEFAULT_URL = "https://api.pictograph.io"
API = "/api/v1/developer"
#: images per bulk save (the platform's limit)
BULK_LIMIT = 200
#: image statuses and the review action that sets each (the only status write the API has)
REVIEW_ACTIONS = {"complete": "approve", "annotate": "request_changes"}


class PictographBackend(PictographTransfer):
    """The datasets of one Pictograph organization; the key from ``key=`` or ``PICTOGRAPH_API_KEY``."""

    name = "pictograph"
    title = "Pictograph"
    capabilities = Capabilities(
        update=False,
        create=True,
        replace_per_asset=True,
        unit="asset",
        batch_size=BULK_LIMIT,
        client_ids=False,
        revisions="none",
        conditional_write=False,
        creates_labels=False,
        statuses=True,
        atomic=False,
        export_formats=EXPORT_FORMATS,
    )

    def __init__(
        self,
        key: str | None = None,
        base_url: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        page_size: int = 1000,
        workers: int = 16,
        progress: bool = True,
        bulk_from: int = 3,
        export_from: int | None = None,
    ):
        """``bulk_from``: a push touching this many images or more saves them in bulk requests (200 a request);
        fewer are saved one request each, so a failure part way lands what it can and names the rest.
        ``export_from``: a read of this many images or more takes them from one server-side export in
        Pictograph's JSON (a few requests instead of one per image; the export is deleted after); None: never."""
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise AuthError(f"no Pictograph API key: set {KEY_ENV} or pass key=...")
        self.base_url = (base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be within 1..1000 (Pictograph's limit)")
        self.page_size, self.workers, self.progress, self.bulk_from = page_size, workers, progress, bulk_from
        self.export_from = export_from
        headers = {"X-API-Key": key, "User-Agent": "annotebook (httpx)", "Accept": "application/json"}
        self._api: ApiClient = make_client(self.base_url, headers, timeout, transport, service="Pictograph",
                                           key_env=KEY_ENV)  # fmt: skip
        self._files = SignedUrls(self._api.http, "Pictograph")
        weakref.finalize(self, self._api.close)
        #: per dataset, image id -> (path, (width, height), image URL) from the last listing
        self._images: dict[str, dict[str, tuple[str, tuple[float, float], str]]] = {}
        #: (dataset, image, id) -> (rev, the annotations it was read from): a row saved unchanged is sent back as
        #: read, since pixels -> normalised -> pixels can move a float by one ulp; a pose keeps its joints' ids
        self._read: dict[tuple[str, str, str], tuple[str, list[Mapping[str, Any]]]] = {}
        #: per dataset, its pose classes and their joints (`pictograph_poses.templates_of`), as last read
        self._templates: dict[str, Templates] = {}

    def __repr__(self) -> str:
        return f"PictographBackend(base_url={self.base_url!r})"

    def spec(self) -> dict[str, Any]:
        return {"base_url": self.base_url}

    # -- reading -------------------------------------------------------------------------------------------
    def _pages(self, url: str, params: Sequence[tuple[str, str]] = ()) -> Iterator[list[dict[str, Any]]]:
        """Every page of a ``{data, pagination: {has_more}}`` listing (stops on an empty or short page too)."""
        offset = 0
        while True:
            page = self._api.get(url, params=[*params, ("limit", str(self.page_size)), ("offset", str(offset))])
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise MalformedResponse(f"Pictograph sent a page that is not {{data: [...]}}: {str(page)[:200]}")
            yield data
            more = (page.get("pagination") or {}).get("has_more")
            if not data or more is False or (more is None and len(data) < self.page_size):
                return
            offset += len(data)

    def datasets(self) -> pd.DataFrame:
        rows = [{"dataset": d.get("name"), "id": d.get("id"), "images": d.get("image_count")}
                for page in self._pages(f"{API}/datasets/") for d in page]  # fmt: skip
        return pd.DataFrame(rows, columns=["dataset", "id", "images"]).astype(
            {"dataset": schema.STR, "id": schema.STR, "images": "Int64"}
        )

    def dataset(self, dataset: str) -> dict[str, Any]:
        """The dataset document (classes, counts)."""
        answer = self._api.get(f"{API}/datasets/{quote(dataset, safe='')}")
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise MalformedResponse(f"Pictograph sent a dataset that is not {{data: {{...}}}}: {str(answer)[:200]}")
        return data

    def templates(self, dataset: str, fresh: bool = True) -> Templates:
        """The dataset's pose classes and their joint classes (read again unless ``fresh`` is False and known)."""
        if fresh or dataset not in self._templates:
            self._templates[dataset] = templates_of(self.dataset(dataset).get("classes") or [])
        return self._templates[dataset]

    def labels(self, dataset: str) -> pd.DataFrame:
        classes = self.dataset(dataset).get("classes") or []
        rows = [{"dataset": dataset, "name": c.get("name"), "index": i, "color": c.get("color"), **_skeleton(c)}
                for i, c in enumerate(classes)]  # fmt: skip
        return schema.labels_frame(rows)

    def _list_images(self, dataset: str, status: str | None = None) -> list[dict[str, Any]]:
        """Every image of the dataset (of one ``status`` when given), its addresses and sizes remembered."""
        found, known = [], {}
        params = [("dataset", dataset), *([("status", status)] if status else [])]
        for page in self._pages(f"{API}/images/", params):
            for img in page:
                if not isinstance(img, dict) or "id" not in img or "filename" not in img:
                    raise MalformedResponse(f"Pictograph sent an image without id or filename: {str(img)[:200]}")
                folder = str(img.get("directory_path") or "").strip("/")
                path = f"{folder}/{img['filename']}" if folder else str(img["filename"])
                size = (float(img.get("width") or 1), float(img.get("height") or 1))
                known[str(img["id"])] = (path, size, str(img.get("image_url") or ""))
                found.append(img)
        if status:
            self._images.setdefault(dataset, {}).update(known)
        else:
            self._images[dataset] = known
        return found

    def assets(self, dataset: str, status: str | None = None) -> pd.DataFrame:
        """The images of the dataset (of one ``status``: new, annotate, review, complete) as the assets table."""
        rows = [{"dataset": dataset, "asset": str(i["id"]), "name": i["filename"], "width": i.get("width"),
                 "height": i.get("height"), "uri": i.get("image_url") or None, "status": i.get("status")}
                for i in self._list_images(dataset, status)]  # fmt: skip
        return schema.assets_frame(rows)

    def _image(self, dataset: str, asset: str) -> tuple[str, tuple[float, float], str]:
        if asset not in self._images.get(dataset, {}):
            self._list_images(dataset)
        try:
            return self._images[dataset][asset]
        except KeyError:
            raise ValidationError(f"image {asset!r} is not in the Pictograph dataset {dataset!r}") from None

    def _address(self, dataset: str, asset: str) -> str:
        return f"{quote(dataset, safe='')}/{quote(self._image(dataset, asset)[0], safe='/')}"

    def _wire(self, dataset: str, asset: str) -> list[dict[str, Any]]:
        answer = self._api.get(f"{API}/annotations/{self._address(dataset, asset)}")
        items = answer.get("annotations") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise MalformedResponse(f"Pictograph sent annotations that are not a list: {str(answer)[:200]}")
        return items

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Every annotation of the dataset (or of these images): one GET per image, ``self.workers`` at once (or
        one export, ``export_from``)."""
        with gc_paused():
            if assets is None:
                self._list_images(dataset)
                order = list(self._images[dataset])
            else:
                order = [str(a) for a in dict.fromkeys(assets)]
                for a in order:
                    self._image(dataset, a)
            templates = self.templates(dataset)

            def decode(asset: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
                # decoded in the worker, while the other requests wait on the network
                read = read_rows(items, dataset, asset, self._images[dataset][asset][1], templates)
                self._read.update({(dataset, asset, row["id"]): (row["rev"], wires) for row, wires in read})
                return [row for row, _ in read]

            shown = self.progress if progress is None else progress
            if self.export_from is not None and len(order) >= self.export_from:
                held = self._export_lists(dataset, shown)
                rest = [a for a in order if a not in held]  # images the export did not hold: one GET each
                found = {a: decode(a, held[a]) for a in order if a in held}
                found.update(self._fetch(dataset, rest, shown, decode) if rest else {})
            else:
                found = self._fetch(dataset, order, shown, decode)
            rows = [row for a in order for row in found[a]]
            return schema.annotations_frame(rows)

    def _fetch(
        self,
        dataset: str,
        order: list[str],
        progress: bool,
        decode: Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Each image's annotation list as sent, or ``decode(image, list)`` of it (one GET per image,
        ``self.workers`` at once, under a bar)."""
        bar = progress_bar(len(order), "listing annotations", progress, "image")
        found: dict[str, list[dict[str, Any]]] = {}

        def one(asset: str) -> None:
            items = self._wire(dataset, asset)
            found[asset] = decode(asset, items) if decode is not None else items
            bar.update(1)

        try:
            if self.workers <= 1 or len(order) <= 1:
                for a in order:
                    one(a)
            else:
                with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="pictograph") as pool:
                    list(pool.map(one, order))
        finally:
            bar.close()
        return found

    def image_path(self, dataset: str, asset: str) -> str | None:
        """The image's pixels in the on-disk cache, downloaded once from its ``image_url`` (relisted if expired)."""
        folder = home() / "cache" / "pictograph" / quote(dataset, safe="")

        def fresh() -> str:
            self._list_images(dataset)
            return self._image(dataset, asset)[2]

        return cached_image(self._files, folder, asset, self._image(dataset, asset)[2] or None, fresh)

    # -- the sync engine's primitives (`annotebook.sync.replace`: one save per image) -----------------------------
    def row_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """What Pictograph keeps of a row, without its id: how the engine finds a saved row's id again."""
        return (str(row.get("asset")), *content_key(row))

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Rows a Pictograph save cannot carry (kind, geometry, unknown classes) are named before any request."""
        found = self.dataset(dataset).get("classes") or []
        classes = {str(c.get("name")) for c in found}
        templates = self._templates[dataset] = templates_of(found)
        problems = []
        for r in _records(rows):
            problems += [{"id": r["id"], "column": c, "problem": p} for c, p in problems_of(r, templates)]
            if isinstance(r.get("label"), str) and r["label"] not in classes:
                problems.append({"id": r["id"], "column": "label", "problem": f"unknown class {r['label']!r}: "
                                 f"Pictograph datasets take the classes they have ({sorted(classes)})"})  # fmt: skip
        if problems:
            raise ValidationError(
                f"{len({p['id'] for p in problems})} row(s) cannot be written to Pictograph; nothing was written",
                pd.DataFrame(problems),
            )

    def replace_units(
        self, dataset: str, units: Mapping[str, pd.DataFrame], recheck: Callable[[], None]
    ) -> dict[str, str]:
        """Save each image's whole list: one bulk save per 200 images when ``bulk_from`` or more, else one each.

        ``recheck`` runs right before the first save request. Returns, per image refused (a failed bulk entry,
        or a ``previous_count`` other than the re-check saw), why.
        """
        bodies = {a: self._wire_unit(dataset, a, _records(rows)) for a, rows in units.items()}
        before = self._counts(dataset, list(units))
        recheck()
        refused: dict[str, str] = {}
        saved: dict[str, int] = {}
        if len(bodies) < self.bulk_from:
            failure: Exception | None = None
            for asset, anns in bodies.items():
                if failure is not None:  # what is left stays unsent: the next push sends it
                    refused[asset] = f"not sent after an earlier save failed ({failure})"
                    continue
                try:
                    url = f"{API}/annotations/{self._address(dataset, asset)}"
                    answer = self._write("POST", url, {"annotations": anns})
                except (BackendError, ValidationError) as exc:  # what landed before stays landed and is reported
                    if not saved:
                        raise
                    failure = exc
                    refused[asset] = f"the save failed ({exc}); a lost answer is reconciled on the next push"
                    continue
                saved[asset] = int(answer.get("previous_count", -1)) if isinstance(answer, dict) else -1
        else:
            items = list(bodies.items())
            for start in range(0, len(items), BULK_LIMIT):
                chunk = items[start : start + BULK_LIMIT]
                saves = [{"image_id": a, "annotations": anns} for a, anns in chunk]
                answer = self._write("POST", f"{API}/annotations/bulk", {"saves": saves})
                for s in answer.get("saved") or [] if isinstance(answer, dict) else []:
                    saved[str(s.get("image_id"))] = int(s.get("previous_count", -1))
                for f in answer.get("failed") or [] if isinstance(answer, dict) else []:
                    refused[str(f.get("image_id"))] = f"Pictograph refused the save: {f.get('error')}"
        for asset, previous in saved.items():
            if previous >= 0 and previous != before.get(asset, previous):
                refused[asset] = (f"another writer saved image {asset} between the re-check and this save "
                                  f"(it held {previous} regions, not {before[asset]}); reload")  # fmt: skip
        return refused

    def _counts(self, dataset: str, assets: list[str]) -> dict[str, int]:
        """How many annotations each image holds now (a pose counts its joints, as ``previous_count`` does)."""
        return {a: len(items) for a, items in self._fetch(dataset, assets, False).items()}

    def _wire_unit(self, dataset: str, asset: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """An image's whole save body from its rows; a pose without an ``instance_id`` gets the next free one."""
        templates = self.templates(dataset, fresh=False)
        used = [int(a["instance_id"]) for r in rows if r.get("kind") == "keypoints"
                for a in [r.get("attributes") or {}] if isinstance(a.get("instance_id"), int | float)]  # fmt: skip
        free = iter(range(max(used, default=0) + 1, 1 << 30))
        body: list[dict[str, Any]] = []
        for row in rows:
            rev, wires = self._read.get((dataset, asset, str(row["id"])), ("", []))
            if wires and fingerprint(row) == rev and _same_instance(row, wires):
                body += [dict(w) for w in wires]
                continue
            size = self._image(dataset, asset)[1]
            points = schema.normal_points(row.get("points")) or ()
            if row.get("kind") == "keypoints" and points and is_pose(row.get("label"), len(points[0]) // 2,
                                                                      templates):  # fmt: skip
                attrs = row.get("attributes") or {}
                instance = int(attrs["instance_id"]) if "instance_id" in attrs else next(free)
                ids = {str(w.get("name")): str(w["id"]) for w in wires}
                body += pose_wires({**row, "points": points}, templates[str(row["label"])], size, _px, ids, instance)
                continue
            new = str(row["id"]).startswith("new-")
            body.append(wire_from_row(row, size, new_id=str(uuid.uuid4()) if new else None))
        return body

    def _write(self, method: str, url: str, body: Any, key: str | None = None) -> Any:
        """One write with its own ``Idempotency-Key`` (or ``key``, to send one write again); a 422 names every
        field refused."""
        headers = {"Idempotency-Key": key or uuid.uuid4().hex, "Content-Type": "application/json"}
        try:
            return self._api.json(method, url, json=body, headers=headers)
        except BackendError as exc:
            if getattr(exc, "status", None) in (400, 422):
                raise _validation_error(exc) from exc
            raise

    def delete_image(self, dataset: str, asset: str) -> int:
        """Clear every annotation of one image (``DELETE``); returns how many there were."""
        answer = self._api.json("DELETE", f"{API}/annotations/{self._address(dataset, asset)}")
        return int(answer.get("deleted_count", 0)) if isinstance(answer, dict) else 0

    def write_statuses(self, dataset: str, statuses: dict[str, str | None]) -> None:
        """Set image statuses through the review action (``complete``: approve, ``annotate``: request changes).

        Pictograph has no other status write; any other status is refused, naming the images, before a request.
        """
        bad = {a: s for a, s in statuses.items() if s not in REVIEW_ACTIONS}
        if bad:
            raise NotSupported(f"Pictograph sets only the statuses {sorted(REVIEW_ACTIONS)} (by review); "
                               f"refused: {dict(list(bad.items())[:5])}; nothing was written")  # fmt: skip
        for asset, status in statuses.items():
            url = f"{API}/images/{self._address(dataset, asset)}/review"
            self._write("POST", url, {"action": REVIEW_ACTIONS[str(status)]})


def _validation_error(exc: BackendError) -> ValidationError:
    """The fields a 400 / 422 body names (``error.details.errors`` or a legacy ``detail`` list), one row each."""
    body: Any = None
    response = getattr(exc.__cause__, "response", None)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
    error = body.get("error") if isinstance(body, dict) else None
    errors = ((error or {}).get("details") or {}).get("errors") if isinstance(error, dict) else None
    if errors is None and isinstance(body, dict) and isinstance(body.get("detail"), list):
        errors = body["detail"]
    rows = [{"id": None, "column": ".".join(str(p) for p in e.get("loc") or []) if isinstance(e, dict) else None,
             "problem": str(e.get("msg") if isinstance(e, dict) else e)} for e in errors or []]  # fmt: skip
    message = (error or {}).get("message") if isinstance(error, dict) else None
    return ValidationError(f"Pictograph refused the save ({message or exc}); nothing of it was written",
                           pd.DataFrame(rows, columns=["id", "column", "problem"]) if rows else None)  # fmt: skip


def _same_instance(row: Mapping[str, Any], wires: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the row still names the instance its joints were read with (its rev leaves ``instance_id`` out)."""
    if row.get("kind") != "keypoints":
        return True
    attrs = row.get("attributes") or {}
    return all(w.get("instance_id") == attrs.get("instance_id") for w in wires)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _skeleton(cls: dict[str, Any]) -> dict[str, Any]:
    """A class's point names and skeleton, from the SDK's ``{nodes: [{name, x, y}], edges: [[a, b]]}`` or from a
    bare list of index pairs (with the names in ``keypoints``): both shapes are in use."""
    raw = cls.get("skeleton")
    names = cls.get("keypoints")
    if isinstance(raw, dict):
        names = [n.get("name") for n in raw.get("nodes") or [] if isinstance(n, dict)] or names
        raw = raw.get("edges")
    return {"keypoints": tuple(names) if names else None,
            "skeleton": tuple(tuple(int(i) for i in p) for p in raw) if raw else None}  # fmt: skip
