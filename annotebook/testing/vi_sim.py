"""A Datature Vi simulator: the wire shapes of the protocol notes (part B), in memory, seeded from the sample dataset.

The organization and its seeded datasets are `vi_state`; import sessions and exports are `vi_imports` and
`vi_exports`, served by the routes of `vi_ops`.

Wire contract (the annotebook Vi backend relies on it; items marked *guess* are not settled by the SDK or the docs):

* Auth: ``Authorization: Bearer <key>`` and ``Organization-Id: <org>`` on every API request. No key: 401; a wrong
  key (when ``key=`` is set; otherwise any non-empty key is accepted): 403; an ``Organization-Id`` that is missing or
  not the organization: 403; an unknown organization or dataset in the path: 404. Errors are
  ``{"message": ..., "error": <code>}``. Faults (latency, 429 + Retry-After, cut connections, outages) come from
  `Faults`, in process or by ``POST /_sim/faults``.
* Ids: datasets are addressed and answered as ``{org}_{ds}``; dataset, asset, annotation, whole, session and export
  ids never contain ``_`` (the SDK splits composite ids on it).
* Paging: ``s`` (default 10, 1..1000, else 400) and ``p`` (an opaque cursor); answers
  ``{"items", "nextPage", "prevPage"}``. A cursor names the first item of a page, so deletes between pages do not
  skip items.
* ``GET /workspaces`` (paged), ``GET /workspaces/{org}``, ``GET …/datasets`` (paged), ``GET …/datasets/{fds}``
  with every field the SDK structs require; ``tags`` is ``{name: index}``, ``tagDetails`` has the colours.
* Assets: ``GET …/assets?s=&p=[&contents=y]``, ``GET|DELETE …/assets/{assetId}``, ``GET …/assets:count``.
  ``metadata.width/height`` are pixels. ``contents=y`` adds ``contents.asset = {url, expiry}`` (epoch ms), a URL
  on this server, served without auth until it expires (then 403; ``url_ttl=`` seconds). An asset without pixels
  (synthetic seed) has ``url: ""``. Deleting an asset deletes its annotations.
* Annotations, per asset: ``GET …/assets/{assetId}/annotations`` (paged, in creation order),
  ``GET|PATCH|PUT|DELETE …/annotations/{annotationId}``. DELETE answers 204 with an empty body. PATCH deep-merges
  ``{"spec": {...}}`` (dicts merge, other values replace) and ``{"metadata": {"attributes": {...}}}``; PUT replaces
  the spec; both are checked like an import, answer the Annotation, honour an optional ``If-Match`` (412), and
  refuse a change of identity fields (*guess*: the SDK does not model these bodies). Every write bumps
  ``metadata.generation`` and gives a new quoted ``etag``.
  - Caption: ``spec = {"boundType": "Caption", "tag": -1, "aggregation": {"whole": {"id": W}, "thisPart":
    {"role": "Caption"}}, "contents": {"kind": "Caption", "contents": text}}``. The SDK struct *requires* an int
    ``tag``, so captions carry -1 (*guess*).
  - Grounding box: ``spec = {"boundType": "Rectangle", "tag": <tag index>, "aggregation": {"whole": {"id": W},
    "thisPart": {"role": "PhraseGroundingBoundingBox"}}, "contents": {"kind": "PhraseGroundingBoundingBox",
    "bound": [[x0,y0],[x0,y1],[x1,y1],[x1,y0]], "target": [start, end]}}``, normalised, ``target`` the phrase's
    *character* span ``[start, end)`` in the caption of the same whole W (*guess*: characters, not tokens).
  - VQA (*guess*; the SDK cannot decode these): one annotation per pair, ``spec = {"boundType": "Vqa",
    "aggregation": {"whole": {"id": W}, "thisPart": {"role": "Vqa"}}, "contents": {"kind": "Vqa", "order": i,
    "question": q, "answer": a}}`` without ``tag``; the pairs of one asset share W.
* Import sessions: see `vi_imports`; exports: see `vi_exports`.

Examples
--------
>>> from annotebook.testing.vi_sim import ViState, make_app
>>> state = ViState(n_assets=2)
>>> app = make_app(state)
>>> sorted(state.dataset_ids)
['shapes', 'shapesqa']
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ._server import FaultMiddleware
from .kit import ConnectInfo, Cursors, Dialect, bearer_key, check_key, simulator_app, storage_error
from .vi_state import CAPTION_TAG, ViDataset, ViState

__all__ = ["DIALECT", "KEY_ENV", "ViState", "connect_info", "make_app"]

ROLES = {"phrase-grounding": ("Caption", "PhraseGroundingBoundingBox"), "vqa": ("Vqa",)}
#: where the SDK and annotebook read a Vi key from (the platform's documented variable)
KEY_ENV = "DATATURE_VI_SECRET_KEY"


def error_body(code: str, message: str) -> dict[str, str]:
    return {"message": message, "error": code}


class JSON(Response):
    """A JSON answer encoded with orjson (the listings of the synthetic dataset are large)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


DIALECT = Dialect(error_body, response=JSON, loads=orjson.loads)
_CURSORS = Cursors(digits=16)


# -- paging ------------------------------------------------------------------------------------------------------
def page_size(request: Request, max_page: int) -> int:
    """The ``s`` of a request: 10 by default, 1..``max_page``; anything else raises ValueError."""
    text = request.query_params.get("s") or "10"
    if not text.isdigit() or not 1 <= int(text) <= max_page:
        raise ValueError(f"page size s={text!r} must be an integer between 1 and {max_page}")
    return int(text)


def paged(request: Request, ids: list[str], seq: dict[str, int], max_page: int) -> tuple[list[str], dict[str, Any]]:
    """The ids of the page ``p`` names (``ids`` are in ``seq`` order) and the page's cursors."""
    page = _CURSORS.page(ids, seq.__getitem__, request.query_params.get("p"), page_size(request, max_page))
    return page.items, {"nextPage": page.next, "prevPage": page.prev}


def connect_info(state: ViState, url: str) -> ConnectInfo:
    """How ``ab.connect`` reaches this simulator at ``url``: the organization, the endpoint, the key's variable;
    the sample dataset is "shapes" (or the synthetic one)."""
    ids = state.dataset_ids
    dataset = ids.get("shapes") or next(iter(ids.values()))
    rule = 'any key of "dtvi_" and 98 characters' if state.key is None else "the key it was started with (--key)"
    return ConnectInfo("vi", "Vi", url, {"organization": state.org_id, "endpoint": url}, dataset, KEY_ENV, rule,
                       datasets=dict(ids))  # fmt: skip


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("y", "yes", "true", "1")


# -- checks of a written spec --------------------------------------------------------------------------------------
def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def spec_problem(ds: ViDataset, asset_id: str, spec: Any) -> str | None:
    """Why an annotation ``spec`` written to ``asset_id`` is refused, or None."""
    try:
        role = spec["aggregation"]["thisPart"]["role"]
        whole = spec["aggregation"]["whole"]["id"]
        contents = spec["contents"]
        kind = contents["kind"]
    except (KeyError, TypeError):
        return "spec needs aggregation.whole.id, aggregation.thisPart.role and contents.kind"
    if role not in ROLES[ds.type] or kind != role:
        return f"role {role!r} with contents {kind!r} does not fit a {ds.type} dataset"
    if not isinstance(whole, str) or not whole or "_" in whole:
        return "aggregation.whole.id must be a non-empty string without '_'"
    if not isinstance(spec.get("boundType"), str):
        return "spec.boundType must be a string"
    if kind == "Caption":
        ok = isinstance(contents.get("contents"), str) and spec.get("tag") == CAPTION_TAG
        return None if ok else f"a Caption needs contents.contents (text) and tag {CAPTION_TAG}"
    if kind == "Vqa":
        fields = (contents.get("question"), contents.get("answer"))
        ok = all(isinstance(v, str) for v in fields) and isinstance(contents.get("order"), int)
        return None if ok else "a Vqa needs contents.order (int), contents.question and contents.answer"
    return _box_problem(ds, asset_id, whole, spec.get("tag"), contents)


def _box_problem(ds: ViDataset, asset_id: str, whole: str, tag: Any, contents: dict[str, Any]) -> str | None:
    if not isinstance(tag, int) or isinstance(tag, bool) or tag not in ds.tags.values():
        return f"tag {tag!r} is not a tag index of this dataset"
    bound, target = contents.get("bound"), contents.get("target")
    if (
        not isinstance(bound, list)
        or len(bound) != 4
        or not all(isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p) for p in bound)
    ):
        return "bound must be 4 [x, y] corners"
    if any(not (0 <= v <= 1) for p in bound for v in p):
        return f"bound {bound} is out of [0, 1]"
    if not (isinstance(target, list) and len(target) == 2 and all(isinstance(v, int) for v in target)):
        return "target must be [start, end] character offsets"
    caption = ds.caption_of(asset_id, whole)
    if not 0 <= target[0] < target[1] or (caption is not None and target[1] > len(caption)):
        return f"target {target} is not a span of the caption"
    return None


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _merge(base.get(k), v)
        return out
    return copy.deepcopy(patch)


_IDENTITY = ("annotationId", "assetId", "workspaceId", "datasetId", "selfLink")


def make_app(state: ViState) -> FaultMiddleware:
    """The ASGI app of ``state``, wrapped in its fault switches."""
    from . import vi_ops

    def auth(request: Request) -> Response | None:
        missing = "Missing Authorization: Bearer <secret key> header"
        refused = check_key(DIALECT, bearer_key(request), state.key, missing, "Invalid secret key")
        if refused is not None:
            return refused
        org = request.headers.get("organization-id")
        if org != state.org_id:
            return DIALECT.error(403, "ForbiddenError", f"The key has no access to organization {org!r}")
        if request.path_params.get("org", state.org_id) != state.org_id:
            return DIALECT.not_found("Organization")
        return None

    def dataset_or_error(request: Request) -> ViDataset | Response:
        refused = auth(request)
        if refused is not None:
            return refused
        org, _, ds_id = request.path_params["fds"].partition("_")
        ds = state.datasets.get(ds_id) if org == state.org_id else None
        return ds or DIALECT.not_found("Dataset")

    def asset_or_error(request: Request) -> tuple[ViDataset, str] | Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        aid = request.path_params["aid"]
        if aid not in ds.assets:
            return DIALECT.not_found("Asset")
        return ds, aid

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def organizations(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        try:
            page_size(request, state.max_page)
        except ValueError as exc:
            return DIALECT.bad_request(str(exc))
        return JSON({"items": [state.organization()], "nextPage": None, "prevPage": None})

    async def organization(request: Request) -> Response:
        return auth(request) or JSON(state.organization())

    async def datasets(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        ids = list(state.datasets)
        seq = {k: i for i, k in enumerate(ids)}
        try:
            chunk, cursors = paged(request, ids, seq, state.max_page)
        except ValueError as exc:
            return DIALECT.bad_request(str(exc))
        return JSON({"items": [state.datasets[k].wire() for k in chunk], **cursors})

    async def dataset(request: Request) -> Response:
        ds = dataset_or_error(request)
        return ds if isinstance(ds, Response) else JSON(ds.wire())

    async def assets(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        try:
            chunk, cursors = paged(request, list(ds.assets), ds.seq, state.max_page)
        except ValueError as exc:
            return DIALECT.bad_request(str(exc))
        show = _flag(request.query_params.get("contents"))
        items = [ds.asset_wire(a, state.contents(base(request), ds, a) if show else None) for a in chunk]
        return JSON({"items": items, **cursors})

    async def asset_count(request: Request) -> Response:
        ds = dataset_or_error(request)
        return ds if isinstance(ds, Response) else JSON({"count": len(ds.assets)})

    async def asset(request: Request) -> Response:
        found = asset_or_error(request)
        if isinstance(found, Response):
            return found
        ds, aid = found
        if request.method == "DELETE":
            ds.delete_asset(aid)
            return Response(status_code=204)
        show = _flag(request.query_params.get("contents"))
        return JSON(ds.asset_wire(aid, state.contents(base(request), ds, aid) if show else None))

    async def annotations(request: Request) -> Response:
        found = asset_or_error(request)
        if isinstance(found, Response):
            return found
        ds, aid = found
        try:
            chunk, cursors = paged(request, list(ds.by_asset[aid]), ds.seq, state.max_page)
        except ValueError as exc:
            return DIALECT.bad_request(str(exc))
        return JSON({"items": [ds.annotations[k] for k in chunk], **cursors})

    async def annotation(request: Request) -> Response:
        found = asset_or_error(request)
        if isinstance(found, Response):
            return found
        ds, aid = found
        ann = ds.by_asset[aid].get(request.path_params["annid"])
        if ann is None:
            return DIALECT.not_found("Annotation")
        if request.method == "GET":
            return JSON(ann)
        match = request.headers.get("if-match")
        if match is not None and match not in (ann["etag"], "*"):
            return DIALECT.error(412, "PreconditionFailedError", f"etag {match} is not the current {ann['etag']}")
        if request.method == "DELETE":
            ds.delete_annotation(ann["annotationId"])
            return Response(status_code=204)
        return await write_annotation(request, ds, aid, ann)

    async def write_annotation(request: Request, ds: ViDataset, aid: str, ann: dict[str, Any]) -> Response:
        body = await DIALECT.body(request)
        if not isinstance(body, dict):
            return DIALECT.bad_request("Request body must be a JSON object")
        unknown = set(body) - {"kind", "spec", "metadata", "etag", *_IDENTITY}
        changed = [k for k in _IDENTITY if k in body and body[k] != ann[k]]
        if unknown or changed or body.get("kind", "Annotation") != "Annotation":
            return DIALECT.bad_request(f"cannot write fields {sorted(unknown | set(changed))}")
        patch = request.method == "PATCH"
        spec = _merge(ann["spec"], body.get("spec") or {}) if patch else body.get("spec")
        attributes = (body.get("metadata") or {}).get("attributes", ann["metadata"]["attributes"])
        if patch and isinstance(attributes, dict):
            attributes = {**ann["metadata"]["attributes"], **attributes}
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            return DIALECT.bad_request("metadata.attributes must map names to strings")
        problem = spec_problem(ds, aid, spec)
        if problem or not isinstance(spec, dict):
            return DIALECT.bad_request(problem or "spec must be an object")
        ds.rewrite(ann, spec, attributes)
        return JSON(ann)

    async def file(request: Request) -> Response:
        ds = state.datasets.get(request.path_params["dsid"])
        aid = request.path_params["aid"]
        if ds is None or aid not in ds.files or not state.signed_ok("file", f"{ds.id}/{aid}", request.query_params):
            return storage_error(403, "AccessDenied")
        return FileResponse(ds.files[aid])

    def describe() -> dict[str, Any]:
        return ({"organizationId": state.org_id, "datasets": {
            d.name: {"id": d.id, "assets": len(d.assets), "annotations": len(d.annotations)}
            for d in state.datasets.values()}})  # fmt: skip

    ds_path = "/workspaces/{org}/datasets/{fds}"
    routes = [
        Route("/workspaces", organizations),
        Route("/workspaces/{org}", organization),
        Route("/workspaces/{org}/datasets", datasets),
        Route(ds_path, dataset),
        Route(ds_path + "/assets", assets),
        Route(ds_path + "/assets:count", asset_count),
        Route(ds_path + "/assets/{aid}", asset, methods=["GET", "DELETE"]),
        Route(ds_path + "/assets/{aid}/annotations", annotations),
        Route(ds_path + "/assets/{aid}/annotations/{annid}", annotation, methods=["GET", "PATCH", "PUT", "DELETE"]),
        *vi_ops.routes(state, dataset_or_error, ds_path),
        Route("/files/{dsid}/{aid}/{name}", file),
    ]
    return simulator_app(routes, state.faults, DIALECT, describe)
