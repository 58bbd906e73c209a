"""The Pictograph simulator's exports and its dataset download listing (protocol notes C.3, the SDK's ``exports``).

Exports, under ``/api/v1/developer/exports/``: ``POST`` (``{dataset_name, name, format, include_images,
class_filter?, status_filter?, organize_by_split?}``; unknown keys, an unknown format or a missing field are a 422
naming it, a name the dataset already has a 409) answers ``{"data": Export}`` pending, the ZIP built from the
dataset as it is then (`pictograph_export_files`). Each ``GET exports/{name}?dataset=`` moves it one step: pending,
processing, then completed with a signed ``download_url`` (or failed, with ``error_message``, when
``state.export_failure`` was set when it was made). ``GET exports/{name}/download?dataset=`` gives the
``download_url`` of a completed export (409 before); the by-id forms (``exports/{id}``, ``exports/{id}/download``,
no ``dataset``) and the listing (``dataset_name``, ``status``, ``limit`` / ``offset``) are there too, and ``DELETE``.
The ZIP is served without a key at its signed URL; ``state.cut_downloads`` cuts the next N transfers of ZIPs and
images half way (`storage_body`: the connection dropped after half the promised bytes).

The dataset download listing (``GET datasets/{name}/download?mode&limit[&status_filter]``) gives at most
``state.download_cap`` items (10,000, as the platform) and takes no offset, as the SDK has it.
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .kit import Dialect, storage_error
from .pictograph_export_files import FORMATS, Source, write_export

if TYPE_CHECKING:
    from .pictograph_state import PictographState

__all__ = ["ExportJob", "export_routes", "storage_body"]

A = "/api/v1/developer"
_FIELDS = {"dataset_name", "name", "format", "include_images", "class_filter", "status_filter", "organize_by_split"}
#: the statuses an export goes through, one per poll
STEPS = ("pending", "processing", "completed")


@dataclass
class ExportJob:
    """One export: what was asked, the ZIP (made when asked), and how far the polls have moved it."""

    dataset_id: str
    dataset_name: str
    name: str
    format: str
    include_images: bool
    class_filter: list[str] | None
    status_filter: str | None
    archive: bytes
    images: int
    annotations: int
    failure: str | None = None
    step: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def status(self) -> str:
        if self.step >= len(STEPS) - 1 and self.failure is not None:
            return "failed"
        return STEPS[min(self.step, len(STEPS) - 1)]

    def advance(self) -> None:
        self.step += 1

    def wire(self, download_url: str | None = None) -> dict[str, Any]:
        done = self.status == "completed"
        return {"id": self.id, "dataset_id": self.dataset_id, "dataset_name": self.dataset_name, "name": self.name,
                "format": self.format, "include_images": self.include_images, "class_filter": self.class_filter,
                "status_filter": self.status_filter, "status": self.status,
                "error_message": self.failure if self.status == "failed" else None,
                "file_size": len(self.archive) if done else None, "image_count": self.images,
                "annotation_count": self.annotations, "created_at": self.created, "expires_at": None,
                "download_url": download_url if done else None}  # fmt: skip


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:  # a server favours speed
        for name, data in sorted(files.items()):
            z.writestr(name, data)
    return out.getvalue()


def _problems(body: Any) -> list[dict[str, Any]]:
    """Every field of an export request the server's model refuses."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be an object", "type": "dict_type"}]
    out = [{"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
           for k in sorted(set(body) - _FIELDS)]  # fmt: skip
    for key in ("dataset_name", "name"):
        if not isinstance(body.get(key), str) or not body[key] or len(body[key]) > 100:
            out.append({"loc": ["body", key], "msg": "a string of 1 to 100 characters", "type": "missing"})
    if body.get("format", "pictograph") not in FORMATS:
        out.append({"loc": ["body", "format"], "msg": f"Input should be one of {', '.join(FORMATS)}",
                    "type": "literal_error"})  # fmt: skip
    filters = body.get("class_filter")
    if filters is not None and not (isinstance(filters, list) and all(isinstance(c, str) for c in filters)):
        out.append({"loc": ["body", "class_filter"], "msg": "a list of class names", "type": "list_type"})
    return out


def storage_body(state: PictographState, data: bytes, media_type: str) -> Response:
    """A file from the storage host: whole, or (while ``state.cut_downloads`` lasts) cut after half its bytes, the
    connection dropped short of the Content-Length it promised."""
    headers = {"content-length": str(len(data))}
    if state.cut_downloads <= 0:
        return Response(data, 200, media_type=media_type, headers=headers)
    state.cut_downloads -= 1
    half = data[: len(data) // 2]

    async def cut() -> AsyncIterator[bytes]:
        yield half
        raise ConnectionResetError("the simulator cut this download half way")

    return StreamingResponse(cut(), 200, media_type=media_type, headers=headers)


def export_routes(
    state: PictographState,
    auth: Callable[[Request], Response | None],
    dialect: Dialect,
    error_body: Callable[..., dict[str, Any]],
) -> list[Route]:
    """The routes of exports and their downloads, answering in Pictograph's words (``dialect``, ``error_body``)."""

    def json(content: Any, status: int) -> Response:
        return dialect.json(content, status)

    def error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None) -> Response:
        return dialect.json(error_body(code, message, errors), status)

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def signed(request: Request, job: ExportJob) -> str:
        query = state.sign("export", job.id)
        return f"{base(request)}/export-files/{job.id}/{job.name}.zip?{query}"

    def build(body: dict[str, Any]) -> ExportJob:
        fmt = str(body.get("format", "pictograph"))
        wanted = body.get("status_filter")
        classes = set(body.get("class_filter") or ()) or None
        images = []
        for image_id, img in state.images.items():
            if not state.status_is(image_id, wanted):
                continue
            anns = [a for a in state.annotations[image_id] if classes is None or a["name"] in classes]
            images.append(({**img}, anns))
        src = Source(images, state.classes, state.dataset_name, state.files)
        archive = _zip(write_export(fmt, src, bool(body.get("include_images")), bool(body.get("organize_by_split"))))
        failure, state.export_failure = state.export_failure, None
        return ExportJob(state.dataset_id, state.dataset_name, str(body["name"]), fmt,
                         bool(body.get("include_images")), body.get("class_filter"), wanted, archive, len(images),
                         sum(len(a) for _, a in images), failure)  # fmt: skip

    def find(request: Request, ident: str) -> ExportJob | Response:
        dataset = request.query_params.get("dataset")
        for job in state.exports.values():
            if (dataset is None and job.id == ident) or (
                dataset in (state.dataset_name, state.dataset_id) and job.name == ident
            ):
                return job
        return error(404, "not_found", f"Export {ident!r} not found", None)

    async def exports(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        if request.method == "GET":
            q = request.query_params
            found = [j.wire() for j in state.exports.values()
                     if q.get("dataset_name") in (None, j.dataset_name)
                     and q.get("status") in (None, j.status)]  # fmt: skip
            limit, offset = min(int(q.get("limit") or 100), 1000), int(q.get("offset") or 0)
            page = found[offset : offset + limit]
            return json({"data": page, "pagination": {"total": len(found), "limit": limit, "offset": offset,
                                                      "has_more": offset + limit < len(found)}}, 200)  # fmt: skip
        key = request.headers.get("idempotency-key")
        if key and key in state.idempotent:  # a retried create: the first answer again, no second export
            return json(state.idempotent[key][1], state.idempotent[key][0])
        status, answer = create(await dialect.body(request))
        if key:
            state.idempotent[key] = (status, answer)
        return json(answer, status)

    def create(body: Any) -> tuple[int, Any]:
        problems = _problems(body)
        if problems:
            return 422, error_body("validation_error", f"{len(problems)} field(s) refused", problems)
        if body["dataset_name"] not in (state.dataset_name, state.dataset_id):
            return 404, error_body("not_found", f"Dataset {body['dataset_name']!r} not found")
        if any(j.name == body["name"] for j in state.exports.values()):
            return 409, error_body("conflict", f"An export named {body['name']!r} already exists in this dataset")
        job = build(body)
        state.exports[job.id] = job
        return 201, {"data": job.wire()}

    async def export(request: Request) -> Response:
        refused = auth(request)
        if refused is not None:
            return refused
        rest = request.path_params["rest"]
        ident, _, tail = rest.partition("/")
        job = find(request, ident)
        if isinstance(job, Response):
            return job
        if request.method == "DELETE":
            del state.exports[job.id]
            return Response(status_code=204)
        if tail == "download":
            if job.status != "completed":
                return error(409, "conflict", f"Export {job.name!r} is {job.status}, not completed", None)
            return json({"data": {"download_url": signed(request, job)}}, 200)
        if tail:
            return error(404, "not_found", "Requested Resource Not Found", None)
        job.advance()
        return json({"data": job.wire(signed(request, job))}, 200)

    async def archive(request: Request) -> Response:
        job = state.exports.get(request.path_params["eid"])
        if job is None or job.status != "completed" or not state.signed_ok(job.id, request.query_params, "export"):
            return storage_error(403, "AccessDenied")
        return storage_body(state, job.archive, "application/zip")

    return [
        Route(f"{A}/exports/", exports, methods=["GET", "POST"]),
        Route(f"{A}/exports", exports, methods=["GET", "POST"]),
        Route(f"{A}/exports/{{rest:path}}", export, methods=["GET", "DELETE"]),
        Route("/export-files/{eid}/{name}", archive),
    ]
