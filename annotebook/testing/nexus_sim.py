"""A Datature Nexus simulator: the wire shapes of the protocol notes, in memory, seeded from the sample dataset.

It serves at the root (the SDK drops any path prefix of its base URL) the workspace, projects, tags, assets (with
signed image URLs that expire), and annotations: cursor-paged list (``page`` / ``limit`` -> ``nextPage``), get,
create and delete; annotation import sessions (signed-URL ``PUT`` uploads that are really parsed, polled status,
logs) and exports (a polled operation, then a signed download of the zip), see `nexus_ops` and `nexus_jobs`; errors
are Nexus's ``{"code", "message"}`` bodies. Every 2xx has a JSON body. Where the SDK and
the seed docs disagree (``assetId[]`` or ``assetId``, camelCase or snake_case create bodies), both are accepted.
The project and its seeding are `nexus_state`.

The ``Secret-Key`` header must be the key given (``key=``), or any non-empty key when none is; a missing key is a
401, a wrong one a 403. Faults (latency, 429, cut connections, outages) are switched with `Faults`, in process or
by ``POST /_sim/faults``; ``NexusState.lossy_create`` makes the store keep less than a create sends.

Examples
--------
>>> from annotebook.testing.nexus_sim import NexusState, make_app
>>> state = NexusState(n_assets=2)
>>> app = make_app(state)
>>> state.project_id.startswith("proj_")
True
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ._server import FaultMiddleware
from .kit import ConnectInfo, Cursors, Dialect, check_key, simulator_app, storage_error
from .nexus_state import NexusState, _wire

__all__ = ["BOUND_TYPES", "DIALECT", "KEY_ENV", "NexusState", "connect_info", "make_app"]

BOUND_TYPES = ("Rectangle", "Polygon", "Classification", "Keypoints", "Bitmask3d")
#: where the SDK and annotebook read a Nexus key from (the platform's documented variable)
KEY_ENV = "DATATURE_SECRET_KEY"


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


DIALECT = Dialect(error_body)
_CURSORS = Cursors(digits=24)


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _page(request: Request, items: list[dict[str, Any]], max_page: int) -> dict[str, Any]:
    """Cursor paging: ``page`` names the first item (its ``_seq``), ``limit`` is clamped to 1..``max_page``."""
    limit = min(max(int(request.query_params.get("limit") or 100), 1), max_page)
    page = _CURSORS.page(items, _seq, request.query_params.get("page"), limit)
    return {"nextPage": page.next, "prevPage": page.prev, "data": page.items}


def _seq(item: dict[str, Any]) -> int:
    return int(item["_seq"])


def connect_info(state: NexusState, url: str) -> ConnectInfo:
    """How ``ab.connect`` reaches this simulator at ``url``: the project, the endpoint, the key's variable."""
    rule = "any key" if state.key is None else "the key it was started with (--key)"
    return ConnectInfo("nexus", "Nexus", url, {"project": state.project_id, "endpoint": url}, state.project_id,
                       KEY_ENV, rule)  # fmt: skip


def make_app(state: NexusState) -> FaultMiddleware:
    """The ASGI app of ``state``, wrapped in its fault switches."""
    from . import nexus_jobs

    def auth(request: Request) -> Response | None:
        given = request.headers.get("secret-key", "")
        return check_key(DIALECT, given, state.key, "Missing Secret-Key header", "Invalid Secret-Key")

    def project_or_error(request: Request) -> Response | None:
        refused = auth(request)
        if refused is not None:
            return refused
        if request.path_params.get("pid") not in (state.project_id, state.project_id.removeprefix("proj_")):
            return DIALECT.not_found("Project")
        return None

    def asset_wire(request: Request, asset: dict[str, Any]) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {**asset, "url": state.signed_url(base, asset["id"]) if asset["id"] in state.files else ""}

    async def workspace(request: Request) -> Response:
        return auth(request) or DIALECT.json(state.workspace)

    async def projects(request: Request) -> Response:
        return auth(request) or DIALECT.json([state.project()])

    async def project(request: Request) -> Response:
        return project_or_error(request) or DIALECT.json(state.project())

    async def tags(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            body = await DIALECT.body(request)
            if not isinstance(body, dict):
                return DIALECT.bad_request("Request body must be a JSON object")
            name = str(body.get("name") or "").strip()
            if not name or any(t["name"] == name for t in state.tags):
                return DIALECT.bad_request(f"Tag name {name!r} is empty or already exists")
            index = max((t["index"] for t in state.tags), default=-1) + 1
            state.tags.append({"index": index, "name": name, "color": body.get("color") or "#888888",
                               "description": body.get("description") or ""})  # fmt: skip
        return DIALECT.json(state.tags)

    async def assets(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        items = [{**a, "_seq": i} for i, a in enumerate(state.assets.values())]
        try:
            page = _page(request, items, state.max_page)
        except ValueError as exc:
            return DIALECT.bad_request(str(exc))
        page["data"] = [asset_wire(request, {k: v for k, v in a.items() if k != "_seq"}) for a in page["data"]]
        return DIALECT.json(page)

    async def asset(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        key = request.path_params["aid"]
        found = state.assets.get(key) or next((a for a in state.assets.values() if a["filename"] == key), None)
        if found is None:
            return DIALECT.not_found("Asset")
        return DIALECT.json(asset_wire(request, found))

    async def annotations(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            return create(await DIALECT.body(request))
        wanted = set(request.query_params.getlist("assetId[]")) | set(request.query_params.getlist("assetId"))
        items = state.annotations_of(wanted)
        try:
            page = _page(request, items, state.max_page)
        except ValueError as exc:
            return DIALECT.bad_request(str(exc))
        attributes = _flag(request.query_params.get("includeAttributes"))
        rows = b",".join(state.wire_json(a, attributes) for a in page.pop("data"))
        head = json.dumps(page, separators=(",", ":"))[:-1].encode()  # the page's fields, then its rows
        return Response(head + b',"data":[' + rows + b"]}", media_type="application/json")

    def create(body: Any) -> Response:
        if not isinstance(body, dict):
            return DIALECT.bad_request("Request body must be a JSON object")
        body = {_CAMEL.get(k, k): v for k, v in body.items()}
        if body.get("assetId") not in state.assets:
            return DIALECT.not_found("Asset")
        if body.get("tag") not in {t["name"] for t in state.tags}:
            return DIALECT.bad_request(f"Tag {body.get('tag')!r} does not exist in this project")
        problem = _bound_problem(body.get("boundType"), body.get("bound"))
        if problem:
            return DIALECT.bad_request(problem)
        attrs = body.get("attributes") or []
        if isinstance(attrs, dict):
            attrs = [{"name": k, "value": v} for k, v in attrs.items()]
        if not isinstance(attrs, list) or not all(isinstance(a, dict) and "name" in a for a in attrs):
            return DIALECT.bad_request("attributes must be a list of {name, value}")
        body, attrs = _lossy(state.lossy_create, body, attrs)
        ann = state._store({**body, "attributes": attrs})
        return DIALECT.json(_wire(ann, attributes=bool(attrs)))

    async def annotation(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        ann = state.annotations.get(request.path_params["annid"])
        if ann is None:
            return DIALECT.not_found("Annotation")
        if request.method == "DELETE":
            del state.annotations[ann["id"]]
            return DIALECT.json({"deleted": True, "id": ann["id"]})
        return DIALECT.json(_wire(ann, _flag(request.query_params.get("includeAttributes"))))

    async def file(request: Request) -> Response:
        aid = request.path_params["aid"]
        if aid not in state.files or not state.signed_ok("file", aid, request.query_params):
            return storage_error(403, "AccessDenied")
        return FileResponse(state.files[aid])

    def describe() -> dict[str, Any]:
        return ({"projectId": state.project_id, "annotations": len(state.annotations),
                             "assets": len(state.assets)})  # fmt: skip

    routes = [
        Route("/workspace", workspace),
        Route("/workspace/projects", projects),
        Route("/projects/{pid}", project),
        Route("/projects/{pid}/tags", tags, methods=["GET", "POST"]),
        Route("/projects/{pid}/assets", assets),
        Route("/projects/{pid}/assets/{aid}", asset),
        Route("/projects/{pid}/annotations", annotations, methods=["GET", "POST"]),
        Route("/projects/{pid}/annotations/{annid}", annotation, methods=["GET", "DELETE"]),
        *nexus_jobs.routes(state, project_or_error),
        Route("/files/{aid}/{name}", file),
    ]
    return simulator_app(routes, state.faults, DIALECT, describe)


_CAMEL = {"asset_id": "assetId", "bound_type": "boundType"}


def _bound_problem(bound_type: Any, bound: Any) -> str | None:
    """Why a create's bound is refused (Nexus's wording for points out of bounds), or None."""
    if bound_type not in BOUND_TYPES or bound_type == "Bitmask3d":
        return f"boundType {bound_type!r} is not one of Rectangle, Polygon, Classification, Keypoints"
    if bound_type == "Classification":
        return None if not bound else "a Classification has an empty bound"
    width = 3 if bound_type == "Keypoints" else 2
    if not isinstance(bound, list) or not all(isinstance(p, list) and len(p) == width for p in bound):
        return f"bound of a {bound_type} must be a list of {width}-element points"
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for p in bound for x in p):
        return "bound coordinates must be numbers"
    for p in bound:
        if not (0 <= p[0] <= 1 and 0 <= p[1] <= 1):
            return f"Point {p[0]}, {p[1]} is out of bounds."
    if bound_type == "Rectangle" and len(bound) != 4:
        return "a Rectangle has exactly 4 corners"
    if bound_type == "Polygon" and len(bound) < 3:
        return "a Polygon has at least 3 vertices"
    return None


def _lossy(fault: str | None, body: dict[str, Any], attrs: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    """What a faulty store keeps of a create (`NexusState.lossy_create`): the body as sent when no fault is set."""
    if fault is None:
        return body, attrs
    if fault == "drop_attributes":
        return body, []
    if fault == "round_coordinates":
        bound = [[round(c, 2) if i < 2 else c for i, c in enumerate(p)] for p in body.get("bound") or []]
        return {**body, "bound": bound}, attrs
    raise ValueError(f"unknown lossy_create {fault!r}: drop_attributes or round_coordinates")
