"""A Pictograph simulator: the developer API of the protocol notes (part C), in memory, seeded from the samples.

Under ``/api/v1/developer``: datasets (list, get, the ``download`` listing with unauthenticated signed
``image_url``\\ s), images (``limit`` / ``offset`` paging with ``pagination.has_more``, limit capped at 1000; the
raw bytes; ``review``; ``metadata`` by path or by image id, which the SDK asks when it is handed an id),
annotations by path (``{dataset}/{directory/filename}``, the SDK's form) or by image id
(the seed docs' form): get, save (a whole list, answered with ``previous_count``), delete, and ``bulk`` (at most
200 images). Exports and the dataset download listing are `pictograph_exports`. Save bodies are checked as
the server's models are (``extra="forbid"``): unknown keys, a missing id, an unknown class or a bad geometry
are a 422 naming each field. Errors are
``{"error": {"code", "message", "details"}, "detail"}``. A write that repeats an ``Idempotency-Key`` gets the first
answer again and is not applied twice. Where the SDK and the seed docs differ (``paths`` or ``path``, addressing by
path or by id, ``in_progress`` or ``annotate``), both are accepted.

``X-API-Key`` must be the key given (``key=``), or any non-empty key when none is. Faults come from the kit.

Examples
--------
>>> from annotebook.testing.pictograph_sim import PictographState, make_app
>>> state = PictographState(n_assets=2)
>>> app = make_app(state)
>>> state.dataset_name
'shapes'
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ._server import FaultMiddleware
from .kit import ConnectInfo, Dialect, simulator_app, storage_error
from .pictograph_exports import export_routes, storage_body
from .pictograph_state import PictographState

__all__ = ["DIALECT", "KEY_ENV", "PictographState", "connect_info", "make_app"]

KEY_ENV = "PICTOGRAPH_API_KEY"
A = "/api/v1/developer"
BULK_LIMIT = 200
_SLUGS = {"BadRequestError": "bad_request", "ResourceNotFoundError": "not_found", "UnauthorizedError": "unauthorized",
          "ForbiddenError": "forbidden", "ConflictError": "conflict", "MethodNotAllowedError": "method_not_allowed",
          "TooManyRequests": "rate_limited", "RateLimitError": "rate_limited", "TooManyRequestsError": "rate_limited",
          "ServiceUnavailableError": "service_unavailable", "InternalServerError": "internal_error"}  # fmt: skip
_FIELDS = {"id", "name", "type", "confidence", "created_by", "attributes", "bounding_box", "oriented_box", "polygon",
           "polyline", "keypoint", "instance_id"}  # fmt: skip
_STATUSES = {"new", "annotate", "in_progress", "review", "complete"}


def error_body(code: str, message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Pictograph's error envelope: ``{"error": {code, message, details: {errors}}, "detail": message}``."""
    slug = _SLUGS.get(code, code if code.islower() else "error")
    return {"error": {"code": slug, "message": message, "details": {"errors": errors} if errors else {}},
            "detail": message}  # fmt: skip


DIALECT = Dialect(error_body)


def connect_info(state: PictographState, url: str) -> ConnectInfo:
    """How ``ab.connect`` reaches this simulator: the base URL, the dataset, the key's variable."""
    rule = "any key" if state.key is None else "the key it was started with (--key)"
    return ConnectInfo("pictograph", "Pictograph", url, {"dataset": state.dataset_name, "base_url": url},
                       state.dataset_name, KEY_ENV, rule)  # fmt: skip


def _problems(anns: Any, classes: set[str]) -> list[dict[str, Any]]:
    """Every field of a save's annotation list the server's models refuse, as ``{loc, msg, type}``."""
    if not isinstance(anns, list):
        return [{"loc": ["body", "annotations"], "msg": "Input should be a valid list", "type": "list_type"}]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, a in enumerate(anns):
        at = ["body", "annotations", i]
        if not isinstance(a, dict):
            out.append({"loc": at, "msg": "Input should be an object", "type": "dict_type"})
            continue
        out += [{"loc": [*at, k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                for k in sorted(set(a) - _FIELDS)]  # fmt: skip
        ident = a.get("id")
        if not isinstance(ident, str) or not ident:
            out.append({"loc": [*at, "id"], "msg": "Field required", "type": "missing"})
        elif ident in seen:
            out.append({"loc": [*at, "id"], "msg": f"id {ident!r} is not unique within the image", "type": "value"})
        seen.add(str(ident))
        if a.get("name") not in classes:
            out.append({"loc": [*at, "name"], "msg": f"class {a.get('name')!r} is not in the dataset", "type": "value"})
        conf = a.get("confidence", 1.0)
        if not isinstance(conf, int | float) or not 0 <= conf <= 1:
            out.append({"loc": [*at, "confidence"], "msg": "confidence is within [0, 1]", "type": "value"})
        out += [{"loc": [*at, *loc], "msg": msg, "type": "value"} for loc, msg in _geometry(a)]
    return out


def _points(value: Any, least: int) -> bool:
    return (isinstance(value, list) and len(value) >= least
            and all(isinstance(p, dict) and set(p) == {"x", "y"} and all(isinstance(p[k], int | float)
                                                                         for k in "xy") for p in value))  # fmt: skip


def _geometry(a: dict[str, Any]) -> list[tuple[list[Any], str]]:
    kind = a.get("type")
    if kind == "bbox":
        bb = a.get("bounding_box")
        if not isinstance(bb, dict) or set(bb) != {"x", "y", "w", "h"}:
            return [(["bounding_box"], "a bbox needs bounding_box {x, y, w, h}")]
        if not all(isinstance(bb[k], int | float) for k in "xywh") or bb["w"] <= 0 or bb["h"] <= 0:
            return [(["bounding_box"], "w and h must be greater than 0")]
        return []
    if kind == "polygon":
        geom = a.get("polygon") or {}
        rings = geom.get("paths", [geom.get("path")] if "path" in geom else None) if isinstance(geom, dict) else None
        ok = isinstance(rings, list) and bool(rings) and all(_points(r, 3) for r in rings)
        return [] if ok else [(["polygon", "paths"], "a polygon has paths of at least 3 points {x, y}")]
    if kind == "polyline":
        geom = a.get("polyline")
        ok = isinstance(geom, dict) and _points(geom.get("path"), 2)
        return [] if ok else [(["polyline", "path"], "a polyline has a path of at least 2 points {x, y}")]
    if kind == "keypoint":
        out = [] if _points([a.get("keypoint")], 1) else [(["keypoint"], "a keypoint needs {x, y}")]
        if "bounding_box" in a:
            out.append((["bounding_box"], "a keypoint must not carry bounding_box"))
        iid = a.get("instance_id")
        if iid is not None and not (isinstance(iid, int) and not isinstance(iid, bool) and iid >= 1):
            out.append((["instance_id"], "instance_id is an integer >= 1"))
        return out
    return [(["type"], f"type must be one of bbox, polygon, polyline, keypoint, not {kind!r}")]


def _stored(a: dict[str, Any]) -> dict[str, Any]:
    """An annotation as the server keeps it: defaults filled, a polygon's or polyline's extent computed."""
    out = {"confidence": 1.0, "attributes": [], **a}
    if a["type"] in ("polygon", "polyline"):
        geom = a[a["type"]]
        rings = geom["paths"] if "paths" in geom else [geom["path"]]
        xs = [p["x"] for r in rings for p in r]
        ys = [p["y"] for r in rings for p in r]
        out["bounding_box"] = {"x": min(xs), "y": min(ys), "w": max(xs) - min(xs), "h": max(ys) - min(ys)}
    return out


def make_app(state: PictographState) -> FaultMiddleware:
    """The ASGI app of ``state``, wrapped in its fault switches."""

    def auth(request: Request) -> Response | None:
        import hmac

        given = request.headers.get("x-api-key", "")
        if not given:
            return DIALECT.error(401, "unauthorized", "Missing X-API-Key header")
        if state.key is not None and not hmac.compare_digest(given.encode(), state.key.encode()):
            return DIALECT.error(401, "unauthorized", "Invalid API key")
        return None

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def once(request: Request, write: Callable[[], Awaitable[tuple[int, Any]]]) -> Response:
        """A write answered once per ``Idempotency-Key``: a repeat gets the first answer, applied once."""
        key = request.headers.get("idempotency-key")
        if key and key in state.idempotent:
            status, answer = state.idempotent[key]
        else:
            status, answer = await write()
            if key and status < 500:
                state.idempotent[key] = (status, answer)
        return DIALECT.json(answer, status)

    def save(image_id: str, anns: Any) -> tuple[int, Any]:
        problems = _problems(anns, {c["name"] for c in state.classes})
        if problems:
            return 422, error_body("validation_error", f"{len(problems)} field(s) refused", problems)
        previous = len(state.annotations[image_id])
        state.annotations[image_id] = [_stored(a) for a in anns]
        return 200, {"image_id": image_id, "previous_count": previous, "new_count": len(anns),
                     "status": state.images[image_id]["status"]}  # fmt: skip

    async def datasets(request: Request) -> Response:
        return auth(request) or DIALECT.json({"data": [state.dataset()], "pagination": {
            "total": 1, "limit": 100, "offset": 0, "has_more": False}})  # fmt: skip

    async def dataset(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        name = request.path_params["name"]
        if name not in (state.dataset_name, state.dataset_id):
            return DIALECT.error(404, "not_found", f"Dataset {name!r} not found")
        return DIALECT.json({"data": state.dataset()})

    async def download(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        if request.path_params["name"] not in (state.dataset_name, state.dataset_id):
            return DIALECT.error(404, "not_found", f"Dataset {request.path_params['name']!r} not found")
        limit = min(int(request.query_params.get("limit") or state.download_cap), state.download_cap)
        wanted = request.query_params.get("status_filter")
        items = [{"filename": img["filename"], "image_url": state.signed_url(base(request), i) if i in state.files
                  else None, "annotation_url": state.image(i, base(request))["annotation_url"]}
                 for i, img in state.images.items() if state.status_is(i, wanted)][:limit]  # fmt: skip
        return DIALECT.json({"data": {"id": state.dataset_id, "items": items}})

    async def images(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        q = request.query_params
        if q.get("dataset") not in (state.dataset_name, state.dataset_id):
            return DIALECT.error(404, "not_found", f"Dataset {q.get('dataset')!r} not found")
        try:
            limit, offset = min(max(int(q.get("limit") or 100), 1), 1000), max(int(q.get("offset") or 0), 0)
        except ValueError:
            return DIALECT.error(422, "validation_error", "limit and offset are integers")
        found = [i for i, img in state.images.items()
                 if (not q.get("filename") or img["filename"] == q["filename"])
                 and state.status_is(i, q.get("status"))]  # fmt: skip
        page = [state.image(i, base(request)) for i in found[offset : offset + limit]]
        more = offset + limit < len(found)
        return DIALECT.json({"data": page, "pagination": {"total": len(found), "limit": limit, "offset": offset,
                                                          "has_more": more}})  # fmt: skip

    async def image(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        rest = request.path_params["rest"]
        review, metadata = rest.endswith("/review"), rest.endswith("/metadata")
        head = rest.removesuffix("/review").removesuffix("/metadata") if review or metadata else rest
        ds, _, path = head.partition("/")
        image_id = head if metadata and head in state.images else state.image_by_path(ds, path)
        if image_id is None:
            return DIALECT.error(404, "not_found", f"Image {rest!r} not found")
        if metadata:  # by id (the SDK's lookup of a UUID it is handed) or by path: the Image as JSON
            return DIALECT.json({"data": state.image(image_id, base(request))})
        if request.method == "POST" and review:

            async def act() -> tuple[int, Any]:
                body = await DIALECT.body(request)
                action = body.get("action") if isinstance(body, dict) else None
                if action not in ("approve", "request_changes"):
                    return 422, error_body("validation_error", "action is approve or request_changes",
                                           [{"loc": ["body", "action"], "msg": "approve or request_changes",
                                             "type": "enum"}])  # fmt: skip
                state.images[image_id]["status"] = "complete" if action == "approve" else "annotate"
                return 200, {"data": {"status": state.images[image_id]["status"]}}

            return await once(request, act)
        if image_id not in state.files:
            return DIALECT.error(404, "not_found", "Image has no pixels")
        return FileResponse(state.files[image_id])

    async def annotations(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        rest = request.path_params["rest"]
        ds, _, path = rest.partition("/")
        image_id = state.image_by_path(ds, path) if path and ds != rest.removesuffix("/file") else None
        if image_id is None:  # the seed docs' form: annotations/{image_id}[/file]
            image_id = rest.removesuffix("/file") if rest.removesuffix("/file") in state.images else None
        if image_id is None:
            return DIALECT.error(404, "not_found", f"Image {rest!r} not found")
        if request.method == "GET":
            return DIALECT.json({"image_id": image_id, "annotations": state.annotations[image_id]})
        if request.method == "DELETE":
            count = len(state.annotations[image_id])
            state.annotations[image_id] = []
            return DIALECT.json({"image_id": image_id, "deleted_count": count})

        async def write() -> tuple[int, Any]:
            body = await DIALECT.body(request)
            if not isinstance(body, dict) or set(body) != {"annotations"}:
                extra = sorted(set(body) - {"annotations"}) if isinstance(body, dict) else []
                errors = [{"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                          for k in extra] or [{"loc": ["body", "annotations"], "msg": "Field required",
                                               "type": "missing"}]  # fmt: skip
                return 422, error_body("validation_error", "the body is {annotations: [...]} only", errors)
            return save(image_id, body["annotations"])

        return await once(request, write)

    async def bulk(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused

        async def write() -> tuple[int, Any]:
            body = await DIALECT.body(request)
            saves = body.get("saves") if isinstance(body, dict) else None
            if not isinstance(saves, list) or len(saves) > BULK_LIMIT:
                errors = [{"loc": ["body", "saves"], "msg": f"at most {BULK_LIMIT}", "type": "too_long"}]
                return 422, error_body("validation_error", f"saves is a list of at most {BULK_LIMIT} entries", errors)
            saved, failed = [], []
            for s in saves:
                image_id = str(s.get("image_id")) if isinstance(s, dict) else ""
                if image_id not in state.images:
                    failed.append({"image_id": image_id, "error": "image not found"})
                    continue
                status, answer = save(image_id, s.get("annotations"))
                if status == 200:
                    saved.append(answer)
                else:
                    shown = "; ".join(f"{'.'.join(map(str, e['loc'][2:]))}: {e['msg']}"
                                      for e in answer["error"]["details"]["errors"])  # fmt: skip
                    failed.append({"image_id": image_id, "error": shown})
            return 200, {"saved": saved, "failed": failed}

        return await once(request, write)

    async def file(request: Request) -> Response:
        image_id = request.path_params["iid"]
        if image_id not in state.files or not state.signed_ok(image_id, request.query_params):
            return storage_error(403, "AccessDenied")
        path = state.files[image_id]
        return storage_body(state, path.read_bytes(), "image/jpeg" if path.suffix == ".jpg" else "image/png")

    def describe() -> dict[str, Any]:
        return {"dataset": state.dataset_name, "images": len(state.images),
                "annotations": sum(len(v) for v in state.annotations.values())}  # fmt: skip

    routes = [
        Route(f"{A}/datasets/", datasets),
        Route(f"{A}/datasets", datasets),
        Route(f"{A}/datasets/{{name}}/download", download),
        Route(f"{A}/datasets/{{name}}", dataset),
        Route(f"{A}/images/", images),
        Route(f"{A}/images", images),
        Route(f"{A}/images/{{rest:path}}", image, methods=["GET", "POST"]),
        Route(f"{A}/annotations/bulk", bulk, methods=["POST"]),
        Route(f"{A}/annotations/{{rest:path}}", annotations, methods=["GET", "POST", "DELETE"]),
        Route("/files/{iid}/{name}", file),
        *export_routes(state, auth, DIALECT, error_body),
    ]
    return simulator_app(routes, state.faults, DIALECT, describe)
