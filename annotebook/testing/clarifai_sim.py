"""A Clarifai simulator: the REST/JSON v2 wire of the protocol notes, in memory, seeded from the sample dataset.

Routes live under ``/v2/users/{user_id}/apps/{app_id}`` (``user_id`` may be ``me``) and their app-less twins
``/v2/...``: annotations (list, post, patch, bulk delete at ``/annotations`` and ``/inputs/annotations``, get and
delete one at ``/inputs/{input_id}/annotations/{annotation_id}``), inputs (list, get, post) and concepts (list,
post). GET queries are read as Clarifai's JSON client writes them: dotted ``user_app_id.user_id=``, repeated
``ids=``, Python-spelled bools (``True``); a missing coordinate is 0. Every answer, errors included, carries the
``{"status": {"code": 10000, "description": "Ok"}}`` envelope, with the HTTP status mirrored (the vendor client
reads only the body). Pages are 1-based ``page`` / ``per_page`` and end with an empty page; writes take at most 128
items. ``Authorization: Key <PAT>`` must carry the key given (any key when none is). The state is `clarifai_state`.

Examples
--------
>>> from annotebook.testing.clarifai_sim import ClarifaiState, make_app
>>> state = ClarifaiState(n_assets=2)
>>> app = make_app(state)
>>> state.app_id
'shapes'
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ._server import FaultMiddleware
from .clarifai_state import ClarifaiState, WireError, encode_annotation, status_code
from .kit import ConnectInfo, Dialect, check_key, simulator_app

__all__ = ["DIALECT", "KEY_ENV", "ClarifaiState", "connect_info", "make_app"]

KEY_ENV = "CLARIFAI_PAT"
#: the kit's error names as Clarifai status codes
_CODES = {"UnauthorizedError": 11009, "ForbiddenError": 11008, "ResourceNotFoundError": 11101,
          "MethodNotAllowedError": 11100, "BadRequestError": 11102, "TooManyRequestsError": 11005,
          "ServiceUnavailableError": 98004, "InternalServerError": 98004, "ConflictError": 10020}  # fmt: skip


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"status": {"code": _CODES.get(code, 10020), "description": message, "req_id": uuid.uuid4().hex}}


DIALECT = Dialect(error_body)


def _ok(body: dict[str, Any] | None = None, http: int = 200) -> Response:
    return JSONResponse({"status": {"code": 10000, "description": "Ok", "req_id": uuid.uuid4().hex}, **(body or {})},
                        status_code=http)  # fmt: skip


def _refused(exc: WireError) -> Response:
    return JSONResponse({"status": {"code": exc.code, "description": exc.description, "req_id": uuid.uuid4().hex}},
                        status_code=exc.http)  # fmt: skip


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _paged(request: Request, items: list[Any], max_page: int) -> list[Any]:
    q = request.query_params
    try:
        page, per_page = int(q.get("page") or 1), int(q.get("per_page") or 128)
    except ValueError as exc:
        raise WireError(400, 11102, "page and per_page must be integers") from exc
    if page < 1 or per_page < 1:
        raise WireError(400, 11102, "page and per_page start at 1")
    per_page = min(per_page, max_page)
    return items[(page - 1) * per_page : page * per_page]


def connect_info(state: ClarifaiState, url: str) -> ConnectInfo:
    """How ``ab.connect`` reaches this simulator: user, app and base URL; the PAT goes in ``CLARIFAI_PAT``."""
    rule = "any PAT" if state.key is None else "the PAT it was started with (--key)"
    connect = {"user_id": state.user_id, "app_id": state.app_id, "base_url": url}
    return ConnectInfo("clarifai", "Clarifai", url, connect, state.app_id, KEY_ENV, rule)


def make_app(state: ClarifaiState) -> FaultMiddleware:
    """The ASGI app of ``state``, wrapped in its fault switches."""

    def guarded(handler: Callable[[Request], Awaitable[Response]], write: bool = False) -> Any:
        async def route(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            token = given[4:].strip() if given[:4].lower() == "key " else ""
            refused = check_key(DIALECT, token, state.key, "API key not found (Authorization: Key <PAT>)",
                                "Invalid API key or Invalid API key/application pair")  # fmt: skip
            if refused is not None:
                return refused
            user = request.path_params.get("user_id", "me")
            app = request.path_params.get("app_id", state.app_id)
            if user not in ("me", state.user_id) or app != state.app_id:
                return _refused(WireError(404, 11101, f"app {user}/{app} does not exist"))
            state.requests["write" if request.method != "GET" else "read"] += 1
            try:
                return await handler(request)
            except WireError as exc:
                return _refused(exc)

        return route

    async def body_of(request: Request) -> dict[str, Any]:
        body = await DIALECT.body(request)
        if not isinstance(body, dict):
            raise WireError(400, 11102, "the request body must be a JSON object")
        return body

    async def annotations(request: Request) -> Response:
        if request.method == "GET":
            q = request.query_params
            raw = q.getlist("statuses.code") + [s for s in q.getlist("statuses") if s != "code"]
            listed = state.listed(q.getlist("ids"), q.getlist("input_ids"), q.getlist("user_ids"),
                                  q.getlist("model_version_ids"), _flag(q.get("list_all_annotations")),
                                  [status_code(s) for s in raw])  # fmt: skip
            return _ok({"annotations": [encode_annotation(a) for a in _paged(request, listed, state.max_page)]})
        body = await body_of(request)
        items = body.get("annotations") or []
        if request.method == "POST":
            made = state.post(items)
        elif request.method == "PATCH":
            made = state.patch(items, str(body.get("action") or "merge"), bool(body.get("delete_if_empty_data")))
        else:
            state.delete([str(i) for i in body.get("ids") or []], [str(i) for i in body.get("input_ids") or []])
            return _ok()
        return _ok({"annotations": [encode_annotation(a) for a in made]})

    async def one_annotation(request: Request) -> Response:
        aid, iid = request.path_params["annotation_id"], request.path_params["input_id"]
        ann = state.annotations.get(aid)
        if ann is None or ann["input_id"] != iid:
            raise WireError(404, 11101, f"annotation {aid!r} of input {iid!r} does not exist")
        if request.method == "DELETE":
            state.delete([aid], [iid])
            return _ok()
        return _ok({"annotation": encode_annotation(ann)})

    def input_wire(request: Request, item: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in item.items() if not k.startswith("_")}
        if item.get("_pixels") and item["id"] in state.files:
            image = dict(out["data"]["image"], url=f"{str(request.base_url).rstrip('/')}/files/{item['id']}")
            out["data"] = {**out["data"], "image": image}
        return out

    async def inputs(request: Request) -> Response:
        if request.method == "GET":
            wanted = request.query_params.getlist("ids")
            items = [i for i in state.inputs.values() if not wanted or i["id"] in wanted]
            return _ok({"inputs": [input_wire(request, i) for i in _paged(request, items, state.max_page)]})
        body = await body_of(request)
        items = body.get("inputs") or []
        state._limit(items)
        made = []
        for i in items:
            image = (i.get("data") or {}).get("image") or {}
            info = image.get("image_info") or {}
            input_id = str(i.get("id") or uuid.uuid4().hex)
            if input_id in state.inputs:
                raise WireError(400, 10020, f"input {input_id!r} already exists")
            made.append(state.add_input(input_id, input_id, int(info.get("width") or 0), int(info.get("height") or 0),
                                        pixels=False, url=image.get("url")))  # fmt: skip
        return _ok({"inputs": [input_wire(request, i) for i in made]})

    async def one_input(request: Request) -> Response:
        item = state.inputs.get(request.path_params["input_id"])
        if item is None:
            raise WireError(404, 30102, "input does not exist")
        return _ok({"input": input_wire(request, item)})

    async def concepts(request: Request) -> Response:
        if request.method == "POST":
            body = await body_of(request)
            items = body.get("concepts") or []
            state._limit(items)
            for c in items:
                state.ensure_concept(str(c.get("id") or c.get("name") or ""))
            return _ok({"concepts": [state.concepts[str(c.get("id") or c.get("name"))] for c in items]})
        return _ok({"concepts": _paged(request, list(state.concepts.values()), state.max_page)})

    async def file(request: Request) -> Response:
        path = state.files.get(request.path_params["input_id"])
        if path is None:
            return Response(b"not found", 404)
        return FileResponse(path)

    def describe() -> dict[str, Any]:
        return {"user_id": state.user_id, "app_id": state.app_id, "inputs": len(state.inputs),
                "annotations": len(state.annotations), "requests": dict(state.requests)}  # fmt: skip

    routes = [Route("/files/{input_id}", file)]
    for prefix in ("/v2/users/{user_id}/apps/{app_id}", "/v2"):
        routes += [
            Route(f"{prefix}/annotations", guarded(annotations), methods=["GET", "POST", "PATCH", "DELETE"]),
            Route(f"{prefix}/inputs/annotations", guarded(annotations), methods=["DELETE"]),
            Route(
                f"{prefix}/inputs/{{input_id}}/annotations/{{annotation_id}}",
                guarded(one_annotation),
                methods=["GET", "DELETE"],
            ),
            Route(f"{prefix}/inputs", guarded(inputs), methods=["GET", "POST"]),
            Route(f"{prefix}/inputs/{{input_id}}", guarded(one_input)),
            Route(f"{prefix}/concepts", guarded(concepts), methods=["GET", "POST"]),
        ]
    return simulator_app(routes, state.faults, DIALECT, describe)
