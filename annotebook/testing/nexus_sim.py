"""A Datature Nexus simulator: the wire shapes of the protocol notes, in memory, seeded from the sample dataset.

It serves at the root (the SDK drops any path prefix of its base URL) the workspace, projects, tags, assets (with
signed image URLs that expire), and annotations: cursor-paged list (``page`` / ``limit`` -> ``nextPage``), get,
create and delete; annotation import sessions (signed-URL ``PUT`` uploads that are really parsed, polled status,
logs) and exports (a polled operation, then a signed download of the zip), see `nexus_ops`; errors are Nexus's
``{"code", "message"}`` bodies. Every 2xx has a JSON body. Where the SDK and
the seed docs disagree (``assetId[]`` or ``assetId``, camelCase or snake_case create bodies), both are accepted.

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

import base64
import bisect
import hashlib
import hmac
import itertools
import json
import math
import operator
import random
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ._server import FaultMiddleware, Faults, faults_dict

__all__ = ["BOUND_TYPES", "NexusState", "make_app"]

BOUND_TYPES = ("Rectangle", "Polygon", "Classification", "Keypoints", "Bitmask3d")
_SIGNING_KEY = b"annotebook-nexus-sim"


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status)


class NexusState:
    """One workspace with one project, seeded from `annotebook.samples.make_shapes`."""

    def __init__(
        self,
        key: str | None = None,
        n_assets: int = 36,
        seed: int = 0,
        image_dir: str | Path | None = None,
        url_ttl: float = 3600.0,
        max_page: int = 1000,
        n_annotations: int | None = None,
    ):
        """``n_annotations`` seeds a synthetic project instead of the sample one: ``n_assets`` assets without
        pixels (an empty URL) and that many boxes spread over them at random, fast enough for benchmarks."""
        from ..samples import make_shapes

        self.key, self.url_ttl, self.max_page = key, url_ttl, max_page
        #: polls an import session or an export operation runs for before it ends
        self.op_steps = 3
        self.sessions: dict[str, Any] = {}
        self.exports: dict[str, Any] = {}
        #: called with the export's open ZipFile before it is closed (a test adds hostile entries)
        self.tamper_export: Any = None
        #: a store that keeps less than a create sends: "drop_attributes", or "round_coordinates" (to 2 decimals)
        self.lossy_create: str | None = None
        self.faults = Faults()
        self.image_dir = Path(image_dir or tempfile.mkdtemp(prefix="nexus-sim-"))
        self._clock = 0
        self._seq = itertools.count(1)
        self._last_seq = 0
        #: per asset its annotations in ``_seq`` order, and each annotation's JSON, rebuilt when the store changed
        self._index_key: tuple[int, int] | None = None
        self._by_asset: dict[str, list[dict[str, Any]]] = {}
        self._json: dict[tuple[str, bool], tuple[dict[str, Any], bytes]] = {}
        digest = hashlib.md5(f"shapes-{seed}".encode()).hexdigest()
        self.workspace = {"id": f"ws_{digest[:24]}", "name": "Simulated workspace", "owner": "user_sim",
                          "tier": "Free", "createDate": self.now(), "object": "workspace"}  # fmt: skip
        self.project_id = f"proj_{digest}"
        self.project_name = "shapes"
        self.assets: dict[str, dict[str, Any]] = {}
        self.files: dict[str, Path] = {}
        self.annotations: dict[str, dict[str, Any]] = {}
        if n_annotations is not None:
            self._seed_synthetic(digest, n_assets, n_annotations, seed)
            return
        assets, anns, labels = make_shapes(self.image_dir, n_assets=n_assets, seed=seed)
        self.tags: list[dict[str, Any]] = [
            {"index": int(r["index"]), "name": str(r["name"]), "color": str(r["color"]), "description": ""}
            for r in labels.to_dict("records")
        ]
        for name in sorted(set(anns["label"].dropna()) - {t["name"] for t in self.tags}):  # e.g. the typo "sqare"
            self.tags.append({"index": len(self.tags), "name": str(name), "color": "#888888", "description": ""})
        ids: dict[str, str] = {}
        for r in assets.to_dict("records"):
            asset_id = "asset_" + str(uuid.uuid5(uuid.NAMESPACE_URL, digest + "/" + str(r["asset"])))
            ids[str(r["asset"])] = asset_id
            path = Path(str(r["uri"]))
            self.files[asset_id] = path
            self.assets[asset_id] = {
                "id": asset_id, "projectId": self.project_id, "filename": str(r["name"]), "status": "Annotated",
                "createDate": self.now(), "object": "asset",
                "metadata": {"fileSize": path.stat().st_size, "mimeType": _mime(path), "height": int(r["height"]),
                             "width": int(r["width"]), "groups": ["main"]},
            }  # fmt: skip
        for r in anns.to_dict("records"):
            wire = _seed_annotation(r)
            if wire is not None:
                self._store({"assetId": ids[str(r["asset"])], **wire})

    def _seed_synthetic(self, digest: str, n_assets: int, n_annotations: int, seed: int) -> None:
        rng = random.Random(seed)
        names = ("circle", "square", "triangle")
        self.tags = [{"index": i, "name": n, "color": "#888888", "description": ""} for i, n in enumerate(names)]
        ids = []
        for i in range(n_assets):
            asset_id = "asset_" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{digest}/synthetic-{i}"))
            ids.append(asset_id)
            self.assets[asset_id] = {
                "id": asset_id, "projectId": self.project_id, "filename": f"synthetic-{i:06d}.png",
                "status": "Annotated", "createDate": self.now(), "object": "asset",
                "metadata": {"fileSize": 0, "mimeType": "image/png", "height": 480, "width": 640, "groups": ["main"]},
            }  # fmt: skip
        for _ in range(n_annotations if ids else 0):
            x0, y0 = rng.random() * 0.8, rng.random() * 0.8
            x1, y1 = x0 + 0.05 + rng.random() * 0.15, y0 + 0.05 + rng.random() * 0.15
            bound = [[x0, y0], [x0, y1], [x1, y1], [x1, y0]]
            self._store({"assetId": rng.choice(ids), "tag": rng.choice(names), "boundType": "Rectangle",
                         "bound": bound})  # fmt: skip

    def _next_seq(self) -> int:
        self._last_seq = next(self._seq)
        return self._last_seq

    def annotations_of(self, assets: set[str]) -> list[dict[str, Any]]:
        """The annotations of these assets (all of them when empty), in ``_seq`` order.

        An index by asset serves the filtered lists; it is rebuilt when a row was added or removed (a delete lowers
        the count, a create raises the last sequence number), so tests may still ``del state.annotations[id]``.
        """
        if not assets:
            return list(self.annotations.values())
        key = (len(self.annotations), self._last_seq)
        if key != self._index_key:
            self._by_asset = {}
            for a in self.annotations.values():
                self._by_asset.setdefault(a["assetId"], []).append(a)
            self._index_key = key
            self._json = {k: v for k, v in self._json.items() if k[0] in self.annotations}  # drop deleted rows
        found = [a for asset in assets for a in self._by_asset.get(asset, ())]
        return sorted(found, key=operator.itemgetter("_seq"))

    def wire_json(self, ann: dict[str, Any], attributes: bool) -> bytes:
        """The JSON of an annotation as listed, encoded once (Nexus rows never change: edits replace rows)."""
        cached = self._json.get((ann["id"], attributes))
        if cached is not None and cached[0] is ann:
            return cached[1]
        data = json.dumps(_wire(ann, attributes), ensure_ascii=False, separators=(",", ":")).encode()
        self._json[(ann["id"], attributes)] = (ann, data)
        return data

    def now(self) -> int:
        """Epoch milliseconds, strictly increasing (a create date is unique)."""
        self._clock = max(int(time.time() * 1000), self._clock + 1)
        return self._clock

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        ann = {
            "id": f"annot_{uuid.uuid4()}",
            "projectId": self.project_id,
            "assetId": body["assetId"],
            "tag": body["tag"],
            "boundType": body["boundType"],
            "bound": body["bound"],
            "createDate": self.now(),
            "object": "annotation",
            "_seq": self._next_seq(),
            "_attributes": [
                {"id": f"attri_{uuid.uuid4()}", "name": str(a["name"]), "value": a.get("value")}
                for a in body.get("attributes") or []
            ],
        }
        if body.get("frame") is not None:
            ann["frame"] = int(body["frame"])
        self.annotations[ann["id"]] = ann
        return ann

    def project(self) -> dict[str, Any]:
        annotated = {a["assetId"] for a in self.annotations.values()}
        counts: dict[str, int] = {}
        for a in self.annotations.values():
            counts[a["tag"]] = counts.get(a["tag"], 0) + 1
        return {
            "id": self.project_id, "name": self.project_name, "workspaceId": self.workspace["id"],
            "type": "ObjectDetection", "createDate": self.workspace["createDate"], "localization": "MULTI",
            "tags": [t["name"] for t in self.tags], "groups": ["main"], "object": "project",
            "statistic": {"tagsCount": [{"name": k, "count": v} for k, v in counts.items()],
                          "totalAssets": len(self.assets), "annotatedAssets": len(annotated),
                          "totalAnnotations": len(self.annotations)},
        }  # fmt: skip

    def signed_url(self, base: str, asset_id: str) -> str:
        expires = int(time.time() + self.url_ttl)
        sig = hmac.new(_SIGNING_KEY, f"{asset_id}:{expires}".encode(), "sha256").hexdigest()
        name = self.assets[asset_id]["filename"]
        return f"{base}/files/{asset_id}/{name}?X-Goog-Expires={int(self.url_ttl)}&expires={expires}&signature={sig}"

    def url_valid(self, asset_id: str, expires: str, signature: str) -> bool:
        good = hmac.new(_SIGNING_KEY, f"{asset_id}:{expires}".encode(), "sha256").hexdigest()
        return hmac.compare_digest(good, signature) and expires.isdigit() and int(expires) >= time.time()


def _mime(path: Path) -> str:
    return "image/jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "image/png"


def _seed_annotation(r: Mapping[Any, Any]) -> dict[str, Any] | None:
    """A canonical sample row as Nexus holds it: a Rectangle has no rotation, attributes are strings or numbers."""
    attributes = [
        {"name": k, "value": str(v).lower() if isinstance(v, bool) else v} for k, v in (r["attributes"] or {}).items()
    ]
    base = {"tag": r["label"], "attributes": attributes}
    if r["kind"] == "box":
        x0, y0, x1, y1 = (float(r[c]) for c in ("x0", "y0", "x1", "y1"))
        return {**base, "boundType": "Rectangle", "bound": [[x0, y0], [x0, y1], [x1, y1], [x1, y0]]}
    part = r["points"][0] if r["points"] else ()
    pairs = [[float(part[i]), float(part[i + 1])] for i in range(0, len(part) - 1, 2)]
    if r["kind"] == "polygon":
        return {**base, "boundType": "Polygon", "bound": pairs}
    if r["kind"] == "keypoints":
        bound = [
            [0.0, 0.0, 0] if math.isnan(x) else [x, y, int(v)] for (x, y), v in zip(pairs, r["visibility"], strict=True)
        ]
        return {**base, "boundType": "Keypoints", "bound": bound}
    return None


def _wire(ann: dict[str, Any], attributes: bool) -> dict[str, Any]:
    out = {k: v for k, v in ann.items() if not k.startswith("_")}
    if attributes:
        out["attributes"] = ann["_attributes"]
    return out


def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{seq:024x}".encode()).decode()


def _from_cursor(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode(), 16)
    except ValueError as exc:
        raise ValueError(f"invalid page cursor {cursor!r}") from exc


def _page(request: Request, items: list[dict[str, Any]], max_page: int) -> dict[str, Any]:
    """Cursor paging: ``page`` is the opaque sequence number of the first item, ``limit`` is clamped."""
    limit = min(max(int(request.query_params.get("limit") or 100), 1), max_page)
    cursor = request.query_params.get("page")
    start = _from_cursor(cursor) if cursor else 0
    first = bisect.bisect_left(items, start, key=lambda a: a["_seq"])  # items are in ``_seq`` order
    page = items[first : first + limit]
    prev = _cursor(items[max(first - limit, 0)]["_seq"]) if first > 0 else None
    after = first + limit
    return {"nextPage": _cursor(items[after]["_seq"]) if after < len(items) else None, "prevPage": prev, "data": page}


def _session_files(state: NexusState, session: Any) -> None:
    """Read a committed session's files; add their rows unless any problem was logged (then it is Errored)."""
    from .nexus_ops import match_asset, out_of_bounds, read_session_files

    sizes = pd.DataFrame(
        [{"asset": a["filename"], "name": a["filename"], "width": a["metadata"]["width"],
          "height": a["metadata"]["height"]} for a in state.assets.values()]
    )  # fmt: skip
    data = {n: f["data"] for n, f in session.files.items() if f.get("data") is not None}
    for n in sorted(set(session.files) - set(data)):
        session.log("Error", f"At {n}: the file was registered but never uploaded.")
    rows, problems = read_session_files(data, sizes)
    failed = {n for n in session.files if n not in data}
    for file, line, message in problems:
        session.log("Error", f"At {file}{'' if line is None else f':{line}'}: {message}")
        failed.add(file)
    bodies = []
    for file, line, row in rows:
        where = f"At {file}{'' if line is None else f':{line}'}"
        asset = match_asset(str(row["_name"]), state.assets)
        if asset is None:
            session.log("Error", f"{where}: Asset {row['_name']} does not exist in this project.")
            failed.add(file)
            continue
        wire = _seed_annotation(row)
        if wire is None:
            session.log("Error", f"{where}: {row['kind']} annotations cannot be imported.")
            failed.add(file)
            continue
        point = out_of_bounds(wire["bound"])
        if point is not None:
            w, h = asset["metadata"]["width"], asset["metadata"]["height"]
            session.log(
                "Error",
                f"{where}: Point {round(point[0] * w, 1)}, {round(point[1] * h, 1)} is out of bounds.\n\n"
                f"Hint: The asset for this annotation has dimensions {w} x {h} pixels.",
            )
            failed.add(file)
            continue
        bodies.append({"assetId": asset["id"], **wire})
    session.failed = len(failed)
    if session.logs:
        session.overview, session.message = "Errored", f"{len(session.logs)} error(s); nothing was imported"
        return
    for body in bodies:
        if body["tag"] not in {t["name"] for t in state.tags}:
            state.tags.append({"index": max((t["index"] for t in state.tags), default=-1) + 1, "name": body["tag"],
                               "color": "#888888", "description": ""})  # fmt: skip
        state._store(body)
    session.annotations = len(bodies)
    session.overview, session.message = "Finished", f"{len(bodies)} annotation(s) imported"


def make_app(state: NexusState) -> FaultMiddleware:
    """The ASGI app of ``state``, wrapped in its fault switches."""

    def auth(request: Request) -> JSONResponse | None:
        given = request.headers.get("secret-key", "")
        if not given:
            return _error(401, "UnauthorizedError", "Missing Secret-Key header")
        if state.key is not None and not hmac.compare_digest(given, state.key):
            return _error(403, "ForbiddenError", "Invalid Secret-Key")
        return None

    def project_or_error(request: Request) -> JSONResponse | None:
        refused = auth(request)
        if refused is not None:
            return refused
        if request.path_params.get("pid") not in (state.project_id, state.project_id.removeprefix("proj_")):
            return _error(404, "ResourceNotFoundError", "Requested Project Resource Not Found")
        return None

    def asset_wire(request: Request, asset: dict[str, Any]) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {**asset, "url": state.signed_url(base, asset["id"]) if asset["id"] in state.files else ""}

    async def workspace(request: Request) -> Response:
        return auth(request) or JSONResponse(state.workspace)

    async def projects(request: Request) -> Response:
        return auth(request) or JSONResponse([state.project()])

    async def project(request: Request) -> Response:
        return project_or_error(request) or JSONResponse(state.project())

    async def tags(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            body = await request.json()
            name = str(body.get("name") or "").strip()
            if not name or any(t["name"] == name for t in state.tags):
                return _error(400, "BadRequestError", f"Tag name {name!r} is empty or already exists")
            index = max((t["index"] for t in state.tags), default=-1) + 1
            state.tags.append({"index": index, "name": name, "color": body.get("color") or "#888888",
                               "description": body.get("description") or ""})  # fmt: skip
        return JSONResponse(state.tags)

    async def assets(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        items = [{**a, "_seq": i} for i, a in enumerate(state.assets.values())]
        page = _page(request, items, state.max_page)
        page["data"] = [asset_wire(request, {k: v for k, v in a.items() if k != "_seq"}) for a in page["data"]]
        return JSONResponse(page)

    async def asset(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        key = request.path_params["aid"]
        found = state.assets.get(key) or next((a for a in state.assets.values() if a["filename"] == key), None)
        if found is None:
            return _error(404, "ResourceNotFoundError", "Requested Asset Resource Not Found")
        return JSONResponse(asset_wire(request, found))

    async def annotations(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            return create(await request.json())
        wanted = set(request.query_params.getlist("assetId[]")) | set(request.query_params.getlist("assetId"))
        items = state.annotations_of(wanted)
        try:
            page = _page(request, items, state.max_page)
        except ValueError as exc:
            return _error(400, "BadRequestError", str(exc))
        attributes = _flag(request.query_params.get("includeAttributes"))
        rows = b",".join(state.wire_json(a, attributes) for a in page.pop("data"))
        head = json.dumps(page, separators=(",", ":"))[:-1].encode()  # the page's fields, then its rows
        return Response(head + b',"data":[' + rows + b"]}", media_type="application/json")

    def create(body: Any) -> Response:
        if not isinstance(body, dict):
            return _error(400, "BadRequestError", "Request body must be a JSON object")
        body = {_CAMEL.get(k, k): v for k, v in body.items()}
        if body.get("assetId") not in state.assets:
            return _error(404, "ResourceNotFoundError", "Requested Asset Resource Not Found")
        if body.get("tag") not in {t["name"] for t in state.tags}:
            return _error(400, "BadRequestError", f"Tag {body.get('tag')!r} does not exist in this project")
        problem = _bound_problem(body.get("boundType"), body.get("bound"))
        if problem:
            return _error(400, "BadRequestError", problem)
        attrs = body.get("attributes") or []
        if isinstance(attrs, dict):
            attrs = [{"name": k, "value": v} for k, v in attrs.items()]
        if not isinstance(attrs, list) or not all(isinstance(a, dict) and "name" in a for a in attrs):
            return _error(400, "BadRequestError", "attributes must be a list of {name, value}")
        body, attrs = _lossy(state.lossy_create, body, attrs)
        ann = state._store({**body, "attributes": attrs})
        return JSONResponse(_wire(ann, attributes=bool(attrs)))

    async def annotation(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        ann = state.annotations.get(request.path_params["annid"])
        if ann is None:
            return _error(404, "ResourceNotFoundError", "Requested Annotation Resource Not Found")
        if request.method == "DELETE":
            del state.annotations[ann["id"]]
            return JSONResponse({"deleted": True, "id": ann["id"]})
        return JSONResponse(_wire(ann, _flag(request.query_params.get("includeAttributes"))))

    async def file(request: Request) -> Response:
        aid = request.path_params["aid"]
        q = request.query_params
        if aid not in state.files or not state.url_valid(aid, q.get("expires", ""), q.get("signature", "")):
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        return FileResponse(state.files[aid])

    # -- import sessions ------------------------------------------------------------------------------------
    async def import_sessions(request: Request) -> Response:
        from .nexus_ops import ImportSession

        refused = project_or_error(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            session = ImportSession(state.project_id, state.now, state.op_steps)
            state.sessions[session.id] = session
            return JSONResponse(session.wire())
        return JSONResponse([s.wire() for s in state.sessions.values()])

    def session_or_error(request: Request) -> Any:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        session = state.sessions.get(request.path_params["sid"])
        return session or _error(404, "ResourceNotFoundError", "Requested Import Session Resource Not Found")

    async def import_session(request: Request) -> Response:
        session = session_or_error(request)
        if isinstance(session, Response):
            return session
        if request.method == "PATCH":
            body = await request.json()
            conditions = ((body or {}).get("status") or {}).get("conditions") or []
            if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
                return _error(400, "BadRequestError", "status.conditions must be a list of {condition, status}")
            for c in conditions:
                if c.get("status") == "FailedReach":
                    session.overview, session.message = "Errored", "The client abandoned the session"
                    session.log("Error", "The import session was abandoned by the client; nothing was imported.")
                elif c.get("condition") == "FilesInserted" and c.get("status") == "Reached":
                    session.committed, session.message = True, "Processing files"
            session.updated = state.now()
            return JSONResponse(session.wire())
        if session.committed and session.overview == "Running":
            session.polls += 1
            session.updated = state.now()
            if session.polls >= state.op_steps:
                _session_files(state, session)
        return JSONResponse(session.wire())

    async def import_files(request: Request) -> Response:
        from .nexus_ops import MAX_FILES, sign

        session = session_or_error(request)
        if isinstance(session, Response):
            return session
        body = await request.json()
        files = (body or {}).get("files") if isinstance(body, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("filename") for f in files):
            return _error(400, "BadRequestError", "files must be a list of {filename, size, crc32c}")
        if session.committed or session.overview != "Running":
            return _error(400, "BadRequestError", "Files can no longer be added to this import session")
        if len(session.files) + len(files) > MAX_FILES:
            return _error(400, "BadRequestError", f"An import session holds at most {MAX_FILES} files")
        base = str(request.base_url).rstrip("/")
        out = []
        for f in files:
            name = str(f["filename"])
            session.files[name] = {"size": int(f.get("size") or 0), "crc32c": str(f.get("crc32c") or ""), "data": None}
            ident = f"{session.id}/{name}"
            url = f"{base}/uploads/{session.id}/{quote(name)}?{sign('upload', ident, state.url_ttl)}"
            headers = {"Content-Type": "application/octet-stream", "x-goog-hash": f"crc32c={f.get('crc32c')}"}
            expiry = int((time.time() + state.url_ttl) * 1000)
            out.append(
                {"filename": name, "upload": {"method": "PUT", "url": url, "headers": headers, "expiryDate": expiry}}
            )
        return JSONResponse({"id": session.id, "projectId": state.project_id, "files": out})

    async def import_logs(request: Request) -> Response:
        session = session_or_error(request)
        if isinstance(session, Response):
            return session
        return JSONResponse({"id": session.id, "projectId": state.project_id, "logs": session.logs})

    async def upload(request: Request) -> Response:
        from ..backends._remote import crc32c_b64
        from .nexus_ops import signed_ok

        sid, name = request.path_params["sid"], request.path_params["name"]
        q = request.query_params
        session = state.sessions.get(sid)
        if session is None or not signed_ok("upload", f"{sid}/{name}", q.get("expires", ""), q.get("signature", "")):
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        entry = session.files.get(name)
        data = await request.body()
        if entry is None or len(data) != entry["size"] or crc32c_b64(data) != entry["crc32c"]:
            return Response(b"<Error><Code>BadDigest</Code></Error>", 400, media_type="application/xml")
        entry["data"] = data
        return Response(b"", 200)

    # -- exports ----------------------------------------------------------------------------------------------
    async def exports(request: Request) -> Response:
        from .nexus_exports import ExportJob, build_export, export_format_problem

        refused = project_or_error(request)
        if refused is not None:
            return refused
        body = await request.json()
        if not isinstance(body, dict):
            return _error(400, "BadRequestError", "Request body must be a JSON object")
        problem = export_format_problem(body.get("format"))
        if problem:
            return _error(400, "BadRequestError", problem)
        job = ExportJob(state.now, state.op_steps, str(body["format"]))
        try:
            job.archive = build_export(job.format, body.get("options") or {}, state, state.tamper_export)
        except (ValueError, KeyError, TypeError) as exc:
            job.error = f"Export failed: {exc}"
        state.exports[job.id] = job
        return JSONResponse(job.wire())

    async def operation(request: Request) -> Response:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        job = state.exports.get(request.path_params["opid"])
        if job is None:
            return _error(404, "ResourceNotFoundError", "Requested Operation Resource Not Found")
        job.advance()
        return JSONResponse(job.wire())

    async def export(request: Request) -> Response:
        from .nexus_ops import sign

        refused = project_or_error(request)
        if refused is not None:
            return refused
        job = state.exports.get(request.path_params["opid"])
        if job is None:
            return _error(404, "ResourceNotFoundError", "Requested Export Resource Not Found")
        out: dict[str, Any] = {"opId": job.id, "status": job.overview}
        if job.overview == "Finished":
            base = str(request.base_url).rstrip("/")
            url = f"{base}/downloads/{job.id}.zip?{sign('download', job.id, state.url_ttl)}"
            out["download"] = {"method": "GET", "url": url, "expiryDate": int((time.time() + state.url_ttl) * 1000)}
        return JSONResponse(out)

    async def download(request: Request) -> Response:
        from .nexus_ops import signed_ok

        opid, q = request.path_params["opid"], request.query_params
        job = state.exports.get(opid)
        if job is None or job.archive is None or not signed_ok("download", opid, q.get("expires", ""),
                                                                 q.get("signature", "")):  # fmt: skip
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        return Response(job.archive, 200, media_type="application/zip")

    async def sim_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                state.faults.update(await request.json())
            except (ValueError, TypeError) as exc:
                return _error(400, "BadRequestError", str(exc))
        return JSONResponse(faults_dict(state.faults))

    async def sim_state(request: Request) -> Response:
        return JSONResponse({"projectId": state.project_id, "annotations": len(state.annotations),
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
        Route("/projects/{pid}/annotationimportsessions", import_sessions, methods=["GET", "POST"]),
        Route("/projects/{pid}/annotationimportsessions/{sid}", import_session, methods=["GET", "PATCH"]),
        Route("/projects/{pid}/annotationimportsessions/{sid}/files", import_files, methods=["POST"]),
        Route("/projects/{pid}/annotationimportsessions/{sid}/logs", import_logs),
        Route("/projects/{pid}/annotationexports", exports, methods=["POST"]),
        Route("/projects/{pid}/annotationexports/{opid}", export),
        Route("/projects/{pid}/operations/{opid}", operation),
        Route("/uploads/{sid}/{name}", upload, methods=["PUT"]),
        Route("/downloads/{opid}.zip", download),
        Route("/files/{aid}/{name}", file),
        Route("/_sim/faults", sim_faults, methods=["GET", "POST"]),
        Route("/_sim/state", sim_state),
    ]
    app = Starlette(routes=routes)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, "ResourceNotFoundError", "Requested Resource Not Found")

    async def bad_method(request: Request, exc: Exception) -> Response:
        return _error(405, "MethodNotAllowedError", "Method Not Allowed")

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, bad_method)
    return FaultMiddleware(app, state.faults, error_body)


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


def state_frame(state: NexusState) -> pd.DataFrame:
    """The simulator's annotations as a plain frame (tests compare against it)."""
    return pd.DataFrame([_wire(a, True) for a in state.annotations.values()])
