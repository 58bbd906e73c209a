"""A SuperAnnotate simulator: the main API and its three sibling hosts of the protocol notes (part B) on one port.

Paths: the main API at the root (``/user/ME``, ``/api/v1/team/{id}``, ``/api/v1/projects``, ``/folder/...``,
``/folders``, ``/classes``, ``/templates``, ``/image/updateAnnotationStatusBulk``, ``/annotations/remove`` and its
poll, an item's download token and signed ``/files/...``); work management under ``/wm/api/v1/`` (``users/me`` for
API keys, workflows and their statuses and roles); the item service under ``/item/api/v1/`` (``items/search``,
``limit`` / ``offset`` in the body, 2000 a page); the assets provider under ``/assets/api/{v4|v3.01}/``
(``download/method``, the **streamed** download: JSON objects joined by the literal six characters ``\\n;)\\n``,
the multipart upload answered with ``failedItems`` and ``missingResources``, the JSON schema, and the large-item
``sync`` / ``sync/status`` / download path). The SDK's host getters are pointed at these prefixes (see
`sdk_hosts`); annotebook's client takes them as its defaults under one ``url``.

Auth: ``Authorization: <token>`` (no scheme) with ``authtype: sdk`` (a legacy ``name=<team id>`` token) or
``api_key`` (32+ characters; the team comes from ``POST /wm/api/v1/users/me``); a key given as ``key=`` is the only
one accepted, else any token of either shape. ``team_id`` in the query must be the team's. Scope comes from the
query (``project_id``, ``folder_id``) or the base64 ``x-sa-entity-context`` header. Errors are ``{"error": ...}``.
Requests over the SDK's chunk sizes (2000 names a delete or search page, 1000 ids a classification or stream,
500 names a status change) are refused with 400. Faults (latency, 429 with Retry-After, 5xx, cuts, truncation)
come from the kit.

Examples
--------
>>> from annotebook.testing.superannotate_sim import SuperAnnotateState, make_app
>>> state = SuperAnnotateState(n_assets=2)
>>> app = make_app(state)
>>> state.project_name
'shapes'
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from ._server import FaultMiddleware
from .kit import ConnectInfo, Dialect, simulator_app, storage_error
from .superannotate_state import STATUSES, SuperAnnotateState

__all__ = ["DELIMITER", "DIALECT", "KEY_ENV", "SuperAnnotateState", "connect_info", "make_app", "sdk_hosts"]

KEY_ENV = "SA_TOKEN"
#: what separates two annotation JSONs in a download stream: backslash, n, semicolon, paren, backslash, n
DELIMITER = b"\\n;)\\n"
LEGACY = re.compile(r"^[-.@_A-Za-z0-9]+=(\d+)$")
API_KEY = re.compile(r"^[-_A-Za-z0-9]{32,}$")
LIMITS = {"search": 2000, "classify": 1000, "stream": 1000, "status": 500, "delete": 2000, "upload": 1000}
_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["metadata"],
    "properties": {
        "metadata": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        "instances": {"type": "array", "items": {"type": "object"}},
        "tags": {"type": "array"},
        "comments": {"type": "array"},
    },
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": message}


DIALECT = Dialect(error_body)


def sdk_hosts(url: str) -> dict[str, str]:
    """Where the sibling hosts live on this server, as the SDK's URL getters must return them."""
    return {"main": f"{url}/", "wm": f"{url}/wm/api/v1/", "item": f"{url}/item/api/v1/", "assets": f"{url}/assets/api/"}


def connect_info(state: SuperAnnotateState, url: str) -> ConnectInfo:
    """How ``ab.connect`` reaches this simulator: the URL, the project, the token's variable."""
    rule = "any legacy token (name=1) or API key" if state.key is None else "the token it was started with (--key)"
    return ConnectInfo("superannotate", "SuperAnnotate", url, {"project": state.project_name, "url": url},
                       state.project_name, KEY_ENV, rule)  # fmt: skip


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _context(request: Request) -> dict[str, Any]:
    """The scope of ``x-sa-entity-context`` (base64 JSON), or {}."""
    raw = request.headers.get("x-sa-entity-context")
    if not raw:
        return {}
    try:
        found = json.loads(base64.b64decode(raw))
    except (ValueError, binascii.Error):
        return {}
    return found if isinstance(found, dict) else {}


def _test(op: str, have: Any, want: Any) -> bool:
    """One jsx operator (``lib/core/jsx_conditions.py`` of the SDK) applied to a field's value."""
    if op in ("$eq", "$is"):
        return bool(have == want)
    if op == "$ne":
        return bool(have != want)
    if op in ("$in", "$notin"):
        return (have in (want or [])) == (op == "$in")
    if op in ("$isnull", "$notnull"):
        return (have is None) == (op == "$isnull")
    if isinstance(have, str) and op in ("$cont", "$starts", "$ends"):
        return {"$cont": str(want).lower() in have.lower(), "$starts": have.startswith(str(want)),
                "$ends": have.endswith(str(want))}[op]  # fmt: skip
    if have is None or want is None or op not in ("$gt", "$gte", "$lt", "$lte"):
        return False
    return {"$gt": have > want, "$gte": have >= want, "$lt": have < want, "$lte": have <= want}[op]


def _matches(item: dict[str, Any], cond: Any) -> bool:
    """Whether ``item`` meets a jsx search condition (``{"$and": [...]}``, ``{"$or": [...]}``, ``{field: {op: v}}``)."""
    if not isinstance(cond, dict):
        return True
    for field, test in cond.items():
        if field in ("$and", "$or"):
            hits = [_matches(item, c) for c in test or []]
            if not (all(hits) if field == "$and" else any(hits)):
                return False
            continue
        ops = test if isinstance(test, dict) else {"$eq": test}
        if not all(_test(op, item.get(field), want) for op, want in ops.items()):
            return False
    return True


def _multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """The (name, content) of each part of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = []
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        out.append((str(name), payload if isinstance(payload, bytes) else b""))
    return out


def make_app(state: SuperAnnotateState) -> Any:
    """The ASGI app of ``state``, wrapped in its fault switches."""

    def auth(request: Request) -> Response | None:
        token = request.headers.get("authorization", "")
        if not token:
            return DIALECT.error(401, "Unauthorized", "Not authorized")
        if state.key is not None and not hmac.compare_digest(token.encode(), state.key.encode()):
            return DIALECT.error(401, "Unauthorized", "Invalid token")
        legacy = LEGACY.match(token)
        if legacy is None and not API_KEY.match(token):
            return DIALECT.error(401, "Unauthorized", "Invalid token")
        if legacy is not None and int(legacy.group(1)) != state.team_id:
            return DIALECT.error(403, "Forbidden", "Forbidden")
        team = request.query_params.get("team_id")
        if team is not None and _int(team) != state.team_id:
            return DIALECT.error(403, "Forbidden", "Forbidden")
        return None

    def scope(request: Request) -> tuple[int | None, int | None]:
        ctx, q = _context(request), request.query_params
        return _int(q.get("project_id", ctx.get("project_id"))), _int(q.get("folder_id", ctx.get("folder_id")))

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def listing(data: list[Any]) -> Response:
        return DIALECT.json({"data": data, "count": len(data)})

    def bad(message: str) -> Response:
        return DIALECT.error(400, "BadRequest", message)

    # -- main API ------------------------------------------------------------------------------------------------
    async def user_me(request: Request) -> Response:
        return auth(request) or DIALECT.json({"id": "u-1", "email": state.user_email, "first_name": "Sim",
                                              "last_name": "Annotator", "user_role": 2})  # fmt: skip

    async def team(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        if _int(request.path_params["tid"]) != state.team_id:
            return DIALECT.error(404, "NotFound", "Team not found")
        team = {"id": state.team_id, "name": "Simulated team", "owner_id": "u-1", "type": 1, "description": ""}
        return DIALECT.json({**team, "users": [], "pending_invitations": [], "creator_id": "u-1"})

    async def projects(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        name = request.query_params.get("name")
        found = [p for p in state.projects.values() if name is None or p["name"] == name]
        return listing(found)

    async def project(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        found = state.projects.get(_int(request.path_params["pid"]) or -1)
        return DIALECT.json(found) if found else DIALECT.error(404, "NotFound", "Project not found")

    async def folder_by_name(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        q = request.query_params
        found = state.folder_by_name(_int(q.get("project_id")) or -1, q.get("name", "root"))
        return DIALECT.json(found) if found else DIALECT.error(404, "NotFound", "Folder not found")

    async def folders(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, _ = scope(request)
        return listing([f for f in state.folders.values() if f["project_id"] == pid and not f["is_root"]])

    async def classes(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, _ = scope(request)
        if request.method == "POST":
            return await create_classes(request, pid)
        name = request.query_params.get("name")
        return listing([c for c in state.classes.get(pid or -1, []) if name is None or c["name"] == name])

    async def create_classes(request: Request, pid: int | None) -> Response:
        """``{"classes": [{name, color, type, attribute_groups}]}``: the classes made (a list); a taken name: 400."""
        body = await DIALECT.body(request)
        wanted = body.get("classes") if isinstance(body, dict) else None
        if pid not in state.projects or not isinstance(wanted, list) or not wanted:
            return bad("project_id and a list of classes are required")
        taken = {c["name"] for c in state.classes[pid]}
        names = [c.get("name") if isinstance(c, dict) else None for c in wanted]
        if not all(isinstance(n, str) and n for n in names) or taken & set(names) or len(set(names)) < len(names):
            return bad(f"class names must be new and unique: {names}")
        made = []
        for c in wanted:
            groups = {
                g["name"]: [a["name"] for a in g.get("attributes") or []] for g in c.get("attribute_groups") or []
            }
            made.append(state.add_class(pid, c["name"], groups))
        return DIALECT.json(made)

    async def templates(request: Request) -> Response:
        return auth(request) or listing([])

    async def statuses_bulk(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, _ = scope(request)
        body = await DIALECT.body(request)
        if not isinstance(body, dict) or not isinstance(body.get("image_names"), list):
            return bad("image_names is required")
        names, value, fid = body["image_names"], _int(body.get("annotation_status")), _int(body.get("folder_id"))
        if len(names) > LIMITS["status"]:
            return bad(f"at most {LIMITS['status']} image_names")
        if value not in STATUSES or fid not in state.folders or state.folders[fid]["project_id"] != pid:
            return bad("unknown annotation_status or folder")
        for name in names:
            iid = state.item_by_name(fid, str(name))
            if iid is not None:
                state.set_status(iid, value)
        return DIALECT.json({"success": True})

    async def remove(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, fid = scope(request)
        body = await DIALECT.body(request)
        names = body.get("image_names") if isinstance(body, dict) else None
        if names is not None and (not isinstance(names, list) or len(names) > LIMITS["delete"]):
            return bad(f"image_names is a list of at most {LIMITS['delete']}")
        folder = fid if fid is not None else state.root_of(pid or -1)
        for iid, item in list(state.items.items()):
            if item["folder_id"] == folder and (names is None or item["name"] in names):
                stamp = {"email": state.user_email, "timestamp": int(time.time() * 1000)}
                state.set_annotation(iid, {"instances": [], "tags": [], "comments": []}, stamp)
        return DIALECT.json({"poll_id": state.next_poll()})

    async def remove_status(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        poll = _int(request.query_params.get("poll_id"))
        return DIALECT.json({"process": state.polls.get(poll or -1, -1)})

    async def download_token(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        iid = _int(request.path_params["iid"])
        if iid not in state.items or iid not in state.files:
            return DIALECT.error(404, "NotFound", "Image not found")
        url = state.signed_url(base(request), iid)
        return DIALECT.json({"original": {"url": url, "headers": {}}, "lores": {"url": url, "headers": {}}})

    async def file(request: Request) -> Response:
        iid = _int(request.path_params["iid"])
        if iid not in state.files or not state.signed_ok(iid, request.query_params):
            return storage_error(403, "AccessDenied")
        return FileResponse(state.files[iid])

    # -- work management -----------------------------------------------------------------------------------------
    async def wm_me(request: Request) -> Response:
        token = request.headers.get("authorization", "")
        if not token or not API_KEY.match(token):
            return DIALECT.error(401, "Unauthorized", "Not authorized")
        if state.key is not None and not hmac.compare_digest(token.encode(), state.key.encode()):
            return DIALECT.error(401, "Unauthorized", "Invalid token")
        return DIALECT.json({"token": {"scope_type": "team", "scope": {"team_id": state.team_id},
                                       "created_by": state.user_email},
                             "user": {"id": "u-1", "email": state.user_email, "first_name": "Sim",
                                      "last_name": "Annotator", "user_role": 2}})  # fmt: skip

    async def workflows(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        return listing([{"id": 5, "name": "System", "type": "system", "organization_id": "o-1", "raw_config": {}}])

    async def workflow_statuses(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        return listing([{"id": v, "value": v, "workflow_id": 5, "status_id": v,
                         "status": {"id": v, "name": name}} for v, name in STATUSES.items()])  # fmt: skip

    async def workflow_roles(request: Request) -> Response:
        return auth(request) or listing([])

    # -- item service ----------------------------------------------------------------------------------------------
    async def search(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, fid = scope(request)
        body = await DIALECT.body(request)
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, dict):
            return bad("query is required")
        limit, offset = _int(query.get("limit", LIMITS["search"])), _int(query.get("offset", 0))
        if limit is None or offset is None or not 0 < limit <= LIMITS["search"] or offset < 0:
            return bad(f"limit is within 1..{LIMITS['search']}")
        joins = {j.get("field"): j.get("select") or [] for j in query.get("join") or [] if isinstance(j, dict)}
        found = [it for it in state.items.values() if it["project_id"] == pid
                 and (fid is None or it["folder_id"] == fid) and _matches(it, query.get("search"))]  # fmt: skip
        page = []
        for it in found[offset : offset + limit]:
            out = {k: it[k] for k in ("id", "name", "folder_id", "annotation_status", "approval_status", "is_pinned",
                                      "createdAt", "updatedAt")}  # fmt: skip
            if "metadata" in joins:
                meta = {"path": None, "width": it["width"], "height": it["height"]}
                out["metadata"] = {k: v for k, v in meta.items() if k in joins["metadata"]}
            if "assignments" in joins:
                out["assignments"] = []
            page.append(out)
        return DIALECT.json({"data": page, "count": len(found)})

    # -- assets provider -------------------------------------------------------------------------------------------
    def project_items(pid: int | None, ids: Any) -> list[int] | Response:
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            return bad("a list of integer item ids is required")
        unknown = [i for i in ids if i not in state.items or state.items[i]["project_id"] != pid]
        return bad(f"items not in the project: {unknown[:5]}") if unknown else list(ids)

    async def classify(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        body = await DIALECT.body(request)
        if not isinstance(body, dict):
            return bad("project_id and item_ids are required")
        ids = project_items(_int(body.get("project_id")), body.get("item_ids"))
        if isinstance(ids, Response):
            return ids
        if len(ids) > LIMITS["classify"]:
            return bad(f"at most {LIMITS['classify']} item_ids")
        groups = [ids[i : i + state.group_size] for i in range(0, len(ids), state.group_size)]
        return DIALECT.json({"small": {str(n): {"data": [{"id": i} for i in g]} for n, g in enumerate(groups)},
                             "large": []})  # fmt: skip

    async def stream(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, fid = scope(request)
        body = await DIALECT.body(request)
        ids = project_items(pid, body.get("image_ids") if isinstance(body, dict) else None)
        if isinstance(ids, Response):
            return ids
        if len(ids) > LIMITS["stream"]:
            return bad(f"at most {LIMITS['stream']} image_ids")
        if fid is not None:
            ids = [i for i in ids if state.items[i]["folder_id"] == fid]
        chunks = [state.encoded(i) for i in ids]  # taken now: the answer is what the items held at the request

        async def body_parts() -> AsyncIterator[bytes]:
            for n, chunk in enumerate(chunks):
                yield (DELIMITER if n else b"") + chunk

        return StreamingResponse(body_parts(), media_type="application/json")

    async def one_annotation(request: Request) -> Response:  # the large-item download (v3.01)
        refused = auth(request)
        if refused is not None:
            return refused
        iid = _int(request.path_params["iid"])
        if iid not in state.items:
            return DIALECT.error(404, "NotFound", "Item not found")
        return Response(state.encoded(iid), media_type="application/json")

    async def sync(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        if _int(request.path_params["iid"]) not in state.items:
            return DIALECT.error(404, "NotFound", "Item not found")
        return DIALECT.json({"status": "SUCCESS"})

    async def schema(request: Request) -> Response:
        return auth(request) or DIALECT.json(_SCHEMA)

    async def upload(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        pid, fid = scope(request)
        if fid not in state.folders or state.folders[fid]["project_id"] != pid:
            return bad("project_id and folder_id are required")
        named = request.query_params.getlist("image_names[]")
        parts = _multipart(await request.body(), request.headers.get("content-type", ""))
        if not parts or len(parts) > LIMITS["upload"]:
            return bad(f"1..{LIMITS['upload']} annotation parts are required")
        known = {c["name"] for c in state.classes[pid or -1]}
        failed: list[str] = []
        missing: set[str] = set()
        for name, content in parts:
            iid = state.item_by_name(fid, name)
            try:
                doc = json.loads(content)["data"]
            except (ValueError, KeyError, TypeError):
                doc = None
            if iid is None or (named and name not in named) or not isinstance(doc, dict):
                failed.append(name)
                continue
            instances = doc.get("instances") or []
            names = {(i["meta"] if isinstance(i.get("meta"), dict) else i).get("className")
                     for i in instances if isinstance(i, dict)}  # fmt: skip
            lacking = {str(n) for n in names if n is not None and n not in known}
            if lacking or not all(isinstance(i, dict) and (i.get("type") or i.get("meta")) for i in instances):
                missing |= lacking
                failed.append(name)
                continue
            state.set_annotation(iid, doc, (doc.get("metadata") or {}).get("lastAction"))
        resources = {"class": sorted(missing), "template": [], "attribute": [], "attributeGroup": []}
        return DIALECT.json({"failedItems": failed, "missingResources": resources})

    def describe() -> dict[str, Any]:
        return {"project": state.project_name, "items": len(state.items),
                "instances": sum(len(d["instances"]) for d in state.annotations.values())}  # fmt: skip

    wm, item, ap = "/wm/api/v1", "/item/api/v1", "/assets/api/{version}"
    routes = [
        Route("/user/ME", user_me),
        Route("/api/v1/team/{tid}", team),
        Route("/api/v1/projects", projects),
        Route("/api/v1/project/{pid}", project),
        Route("/folder/getFolderByName", folder_by_name),
        Route("/folders", folders),
        Route("/classes", classes, methods=["GET", "POST"]),
        Route("/templates", templates),
        Route("/image/updateAnnotationStatusBulk", statuses_bulk, methods=["PUT"]),
        Route("/annotations/remove", remove, methods=["POST"]),
        Route("/annotations/getRemoveStatus", remove_status),
        Route("/image/{iid}/annotation/getAnnotationDownloadToken", download_token),
        Route("/files/{iid}/{name}", file),
        Route(f"{wm}/users/me", wm_me, methods=["POST"]),
        Route(f"{wm}/workflows", workflows),
        Route(f"{wm}/workflows/{{wid}}/workflowstatuses", workflow_statuses),
        Route(f"{wm}/workflows/{{wid}}/workflowroles", workflow_roles),
        Route(f"{item}/items/search", search, methods=["POST"]),
        Route(f"{ap}/items/annotations/download/method", classify, methods=["POST"]),
        Route(f"{ap}/items/annotations/download", stream, methods=["POST"]),
        Route(f"{ap}/items/annotations/upload", upload, methods=["POST"]),
        Route(f"{ap}/items/annotations/schema", schema),
        Route(f"{ap}/items/{{iid}}/annotations/download", one_annotation, methods=["POST"]),
        Route(f"{ap}/items/{{iid}}/annotations/sync", sync, methods=["POST"]),
        Route(f"{ap}/items/{{iid}}/annotations/sync/status", sync),
    ]
    return _ReadPosts(simulator_app(routes, state.faults, DIALECT, describe))


#: POSTs that only read (the item search, the size classification, the stream): the kit's write faults skip them
_READ_POSTS = re.compile(r"^/(item/api/v1/items/search|assets/api/[^/]+/items/annotations/download(/method)?)$")


class _ReadPosts:
    """Shows the fault switches a read sent as POST as the GET it is, so ``cut_after=N`` counts real writes only."""

    def __init__(self, app: FaultMiddleware):
        self.app, self.faults = app, app.faults
        inner = app.app

        async def restore(scope: Any, receive: Any, send: Any) -> None:
            if scope.get("sa_read_post"):
                scope = {**scope, "method": "POST"}
            await inner(scope, receive, send)

        app.app = restore

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and _READ_POSTS.match(scope["path"]):
            scope = {**scope, "method": "GET", "sa_read_post": True}
        await self.app(scope, receive, send)
