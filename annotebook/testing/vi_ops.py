"""The Vi simulator's long-running work over HTTP: the routes of import sessions and exports, uploads, downloads.

The wire contract is in the docstrings of `vi_imports` (annotation import sessions, note B4.4) and `vi_exports`
(dataset exports, note B4.5); the upload and download URLs are signed by `ViState.sign`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .kit import crc32c_b64, storage_error
from .vi_exports import ExportJob, build_export, export_problem
from .vi_imports import POLICIES, POLICY_KEYS, ImportSession, run_import
from .vi_sim import DIALECT, paged
from .vi_state import ViState

__all__ = ["routes"]

MAX_FILES = 1000


def _session_problem(body: Any) -> str | None:
    """Why a request to create an import session is refused, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        return "the body must be {spec: {uploadBefore, failurePolicies, source}, metadata: {attributes}}"
    before = body["spec"].get("uploadBefore")
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        return "spec.uploadBefore must be epoch milliseconds"
    policies = body["spec"].get("failurePolicies") or {}
    if not isinstance(policies, dict) or any(k not in POLICY_KEYS or v not in POLICIES for k, v in policies.items()):
        return f"spec.failurePolicies maps {', '.join(POLICY_KEYS)} to one of {', '.join(POLICIES)}"
    attributes = (body.get("metadata") or {}).get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        return "metadata.attributes must map names to strings"
    return None


def _ranged(data: bytes, header: str | None, head: bool) -> Response:
    """``data`` whole, or the single ``bytes=a-b`` range asked for (206), or 416."""
    n, zipped = len(data), "application/zip"
    if head:
        return Response(b"", 200, {"Content-Length": str(n), "Accept-Ranges": "bytes"}, media_type=zipped)
    if not header:
        return Response(data, 200, {"Accept-Ranges": "bytes"}, media_type=zipped)
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if m and m[1]:
        start, end = int(m[1]), min(int(m[2]), n - 1) if m[2] else n - 1
    elif m and m[2]:
        start, end = max(n - int(m[2]), 0), n - 1
    else:
        start, end = n, n
    if start >= n or start > end:
        return Response(b"", 416, {"Content-Range": f"bytes */{n}"})
    headers = {"Content-Range": f"bytes {start}-{end}/{n}", "Accept-Ranges": "bytes"}
    return Response(data[start : end + 1], 206, headers, media_type=zipped)


def routes(state: ViState, dataset_or_error: Callable[[Request], Any], ds_path: str) -> list[Route]:
    """The import-session and export routes of ``state``'s app (``dataset_or_error`` authenticates)."""

    def session_or_error(request: Request) -> ImportSession | Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        session = state.sessions.get(request.path_params["sid"])
        if session is None or session.ds is not ds:
            return DIALECT.not_found("Annotation Import Session")
        return session

    async def sessions(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        if request.method == "GET":
            mine = {k: s for k, s in state.sessions.items() if s.ds is ds}
            try:
                chunk, cursors = paged(request, list(mine), {k: s.created for k, s in mine.items()}, state.max_page)
            except ValueError as exc:
                return DIALECT.bad_request(str(exc))
            return DIALECT.json({"items": [mine[k].wire() for k in chunk], **cursors})
        body = await DIALECT.body(request)
        problem = _session_problem(body)
        if problem:
            return DIALECT.bad_request(problem)
        session = ImportSession(ds, state.now, body["spec"], (body.get("metadata") or {}).get("attributes") or {})
        state.sessions[session.id] = session
        return DIALECT.json(session.wire())

    async def session(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        if found.committed and not found.finished:
            found.polls += 1
            found.touch()
            if found.polls >= state.op_steps:
                found.finished = True
                run_import(found)
        return DIALECT.json(found.wire())

    async def status(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        body = await DIALECT.body(request)
        conditions = ((body or {}).get("status") or {}).get("conditions") if isinstance(body, dict) else None
        cancelled = isinstance(body, dict) and (body.get("spec") or {}).get("status") == "Cancelled"
        if not cancelled and (not isinstance(conditions, list) or not all(
            isinstance(c, dict) and c.get("condition") == "FilesInserted" for c in conditions
        )):  # fmt: skip
            return DIALECT.bad_request("status.conditions may only set FilesInserted")
        if found.committed or found.finished:
            return DIALECT.conflict("The import session was already committed or abandoned")
        for c in conditions or [{"status": "FailedReach", "reason": "CancelledByUser"}]:
            if c.get("status") == "Reached":
                found.committed = True
                found.settle("FilesInserted", "Reached")
                found.settle("AnnotationsCommitted", "Waiting")
            elif c.get("status") == "FailedReach":
                reason = c.get("reason") if c.get("reason") in ("CancelledByUser", "UserUploadErrored") else None
                found.finished = True
                found.settle("FilesInserted", "FailedReach", reason)
                found.log(None, None, "Error", f"the client abandoned the session ({reason}); nothing was imported")
        if found.committed and state.op_steps <= 0:
            found.finished = True
            run_import(found)
        return DIALECT.json(found.wire())

    async def files(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        body = await DIALECT.body(request)
        given = body.get("files") if isinstance(body, dict) else None
        if not isinstance(given, dict) or not given or not all(
            isinstance(v, dict) and isinstance(v.get("sizeBytes"), int) and isinstance(v.get("crc32c"), str)
            and k and "/" not in k for k, v in given.items()
        ):  # fmt: skip
            return DIALECT.bad_request("files must map file names to {sizeBytes, crc32c, kind}")
        if found.committed or found.finished:
            return DIALECT.conflict("Files can no longer be added to this import session")
        if len(set(found.files) | set(given)) > MAX_FILES:
            return DIALECT.bad_request(f"An import session holds at most {MAX_FILES} files")
        out = {}
        for name, spec in given.items():
            found.files[name] = {"sizeBytes": spec["sizeBytes"], "crc32c": spec["crc32c"],
                                 "kind": spec.get("kind") or "Unknown", "data": None}  # fmt: skip
            url = f"{str(request.base_url).rstrip('/')}/uploads/{found.id}/{quote(name)}"
            query, _ = state.sign("upload", f"{found.id}/{name}")
            out[name] = {"method": "PUT", "url": f"{url}?{query}",
                         "headers": {"Content-Type": "application/octet-stream",
                                     "x-goog-hash": f"crc32c={spec['crc32c']}"}}  # fmt: skip
        found.touch()
        return DIALECT.json({"files": out})

    async def one_file(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        if request.path_params["name"] not in found.files:
            return DIALECT.not_found("Import File")
        if found.committed or found.finished:
            return DIALECT.conflict("Files can no longer be removed from this import session")
        del found.files[request.path_params["name"]]
        found.touch()
        return Response(status_code=204)

    async def files_sample(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        items = [{"name": n, "sizeBytes": f["sizeBytes"], "crc32c": f["crc32c"], "kind": f["kind"],
                  "status": "Uploaded" if f["data"] is not None else "Registered"}
                 for n, f in list(found.files.items())[:10]]  # fmt: skip
        return DIALECT.json({"items": items})

    async def logs(request: Request) -> Response:
        found = session_or_error(request)
        if isinstance(found, Response):
            return found
        return DIALECT.json({"items": found.logs, "nextPage": None, "prevPage": None})

    async def upload(request: Request) -> Response:
        sid, name = request.path_params["sid"], request.path_params["name"]
        found = state.sessions.get(sid)
        if found is None or not state.signed_ok("upload", f"{sid}/{name}", request.query_params):
            return storage_error(403, "AccessDenied")
        entry = found.files.get(name)
        if entry is None or found.committed or found.finished or time.time() * 1000 > found.upload_before:
            return storage_error(403, "AccessDenied")
        data = await request.body()
        if len(data) != entry["sizeBytes"] or crc32c_b64(data) != entry["crc32c"]:
            return storage_error(400, "BadDigest")
        entry["data"] = data
        return Response(b"", 200)

    async def exports(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        if request.method == "GET":
            mine = {k: j for k, j in state.exports.items() if j.ds is ds}
            try:
                chunk, cursors = paged(request, list(mine), {k: j.created for k, j in mine.items()}, state.max_page)
            except ValueError as exc:
                return DIALECT.bad_request(str(exc))
            return DIALECT.json({"items": [mine[k].wire(download(request, mine[k])) for k in chunk], **cursors})
        body = await DIALECT.body(request)
        spec = body.get("spec") if isinstance(body, dict) else None
        problem = export_problem(ds, spec)
        if problem or not isinstance(spec, dict):
            return DIALECT.bad_request(problem or "the body must be {spec: {format, options}}")
        job = ExportJob(ds, state.now, str(spec["format"]), dict(spec.get("options") or {}))
        try:
            job.archive = build_export(ds, job.format, job.options)
        except (ValueError, KeyError, TypeError) as exc:
            job.error = f"Export failed: {exc}"
        state.exports[job.id] = job
        return DIALECT.json(job.wire(None))

    def download(request: Request, job: ExportJob) -> dict[str, Any] | None:
        if not job.ready:
            return None
        query, expiry = state.sign("download", job.id)
        return {"url": f"{str(request.base_url).rstrip('/')}/downloads/{job.id}.zip?{query}", "expiresAt": expiry}

    async def export(request: Request) -> Response:
        ds = dataset_or_error(request)
        if isinstance(ds, Response):
            return ds
        job = state.exports.get(request.path_params["eid"])
        if job is None or job.ds is not ds:
            return DIALECT.not_found("Dataset Export")
        job.advance(state.op_steps)
        return DIALECT.json(job.wire(download(request, job)))

    async def archive(request: Request) -> Response:
        job = state.exports.get(request.path_params["eid"])
        if job is None or not job.ready or not state.signed_ok("download", job.id, request.query_params):
            return storage_error(403, "AccessDenied")
        assert job.archive is not None
        return _ranged(job.archive, request.headers.get("range"), request.method == "HEAD")

    sessions_path = ds_path + "/annotationImportSessions"
    return [
        Route(sessions_path, sessions, methods=["GET", "POST"]),
        Route(sessions_path + "/{sid}", session),
        Route(sessions_path + "/{sid}/status", status, methods=["PATCH"]),
        Route(sessions_path + "/{sid}/files", files, methods=["POST"]),
        Route(sessions_path + "/{sid}/files/{name}", one_file, methods=["DELETE"]),
        Route(sessions_path + "/{sid}/filesSample", files_sample),
        Route(sessions_path + "/{sid}/logs", logs),
        Route(ds_path + "/datasetExports", exports, methods=["GET", "POST"]),
        Route(ds_path + "/datasetExports/{eid}", export),
        Route("/uploads/{sid}/{name}", upload, methods=["PUT"]),
        Route("/downloads/{eid}.zip", archive, methods=["GET", "HEAD"]),
    ]
