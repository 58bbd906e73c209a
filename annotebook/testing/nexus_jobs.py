"""The Nexus simulator's long-running work over HTTP: the routes of import sessions and exports, uploads, downloads.

What an import session does with its files is `nexus_ops` (finished here by `_session_files` once the session has
been polled ``op_steps`` times); what an export holds is `nexus_exports`. Upload and download URLs are signed by
`nexus_ops.sign`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pandas as pd
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .kit import crc32c_b64, storage_error
from .nexus_sim import DIALECT
from .nexus_state import NexusState, _seed_annotation

__all__ = ["routes"]


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


def routes(state: NexusState, project_or_error: Callable[[Request], Response | None]) -> list[Route]:
    """The routes of import sessions and exports of ``state``; ``project_or_error`` checks the key and project."""

    # -- import sessions ------------------------------------------------------------------------------------
    async def import_sessions(request: Request) -> Response:
        from .nexus_ops import ImportSession

        refused = project_or_error(request)
        if refused is not None:
            return refused
        if request.method == "POST":
            session = ImportSession(state.project_id, state.now, state.op_steps)
            state.sessions[session.id] = session
            return DIALECT.json(session.wire())
        return DIALECT.json([s.wire() for s in state.sessions.values()])

    def session_or_error(request: Request) -> Any:
        refused = project_or_error(request)
        if refused is not None:
            return refused
        session = state.sessions.get(request.path_params["sid"])
        return session or DIALECT.not_found("Import Session")

    async def import_session(request: Request) -> Response:
        session = session_or_error(request)
        if isinstance(session, Response):
            return session
        if request.method == "PATCH":
            body = await DIALECT.body(request)
            conditions = ((body if isinstance(body, dict) else {}).get("status") or {}).get("conditions") or []
            if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
                return DIALECT.bad_request("status.conditions must be a list of {condition, status}")
            for c in conditions:
                if c.get("status") == "FailedReach":
                    session.overview, session.message = "Errored", "The client abandoned the session"
                    session.log("Error", "The import session was abandoned by the client; nothing was imported.")
                elif c.get("condition") == "FilesInserted" and c.get("status") == "Reached":
                    session.committed, session.message = True, "Processing files"
            session.updated = state.now()
            return DIALECT.json(session.wire())
        if session.committed and session.overview == "Running":
            session.polls += 1
            session.updated = state.now()
            if session.polls >= state.op_steps:
                _session_files(state, session)
        return DIALECT.json(session.wire())

    async def import_files(request: Request) -> Response:
        from .nexus_ops import MAX_FILES

        session = session_or_error(request)
        if isinstance(session, Response):
            return session
        body = await DIALECT.body(request)
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("filename") for f in files):
            return DIALECT.bad_request("files must be a list of {filename, size, crc32c}")
        if session.committed or session.overview != "Running":
            return DIALECT.bad_request("Files can no longer be added to this import session")
        if len(session.files) + len(files) > MAX_FILES:
            return DIALECT.bad_request(f"An import session holds at most {MAX_FILES} files")
        base = str(request.base_url).rstrip("/")
        out = []
        for f in files:
            name = str(f["filename"])
            session.files[name] = {"size": int(f.get("size") or 0), "crc32c": str(f.get("crc32c") or ""), "data": None}
            ident = f"{session.id}/{name}"
            query, expires = state.sign("upload", ident)
            url = f"{base}/uploads/{session.id}/{quote(name)}?{query}"
            headers = {"Content-Type": "application/octet-stream", "x-goog-hash": f"crc32c={f.get('crc32c')}"}
            expiry = expires * 1000
            out.append(
                {"filename": name, "upload": {"method": "PUT", "url": url, "headers": headers, "expiryDate": expiry}}
            )
        return DIALECT.json({"id": session.id, "projectId": state.project_id, "files": out})

    async def import_logs(request: Request) -> Response:
        session = session_or_error(request)
        if isinstance(session, Response):
            return session
        return DIALECT.json({"id": session.id, "projectId": state.project_id, "logs": session.logs})

    async def upload(request: Request) -> Response:
        sid, name = request.path_params["sid"], request.path_params["name"]
        session = state.sessions.get(sid)
        if session is None or not state.signed_ok("upload", f"{sid}/{name}", request.query_params):
            return storage_error(403, "AccessDenied")
        entry = session.files.get(name)
        data = await request.body()
        if entry is None or len(data) != entry["size"] or crc32c_b64(data) != entry["crc32c"]:
            return storage_error(400, "BadDigest")
        entry["data"] = data
        return Response(b"", 200)

    # -- exports ----------------------------------------------------------------------------------------------
    async def exports(request: Request) -> Response:
        from .nexus_exports import ExportJob, build_export, export_format_problem

        refused = project_or_error(request)
        if refused is not None:
            return refused
        body = await DIALECT.body(request)
        if not isinstance(body, dict):
            return DIALECT.bad_request("Request body must be a JSON object")
        problem = export_format_problem(body.get("format"))
        if problem:
            return DIALECT.bad_request(problem)
        job = ExportJob(state.now, state.op_steps, str(body["format"]))
        try:
            job.archive = build_export(job.format, body.get("options") or {}, state, state.tamper_export)
        except (ValueError, KeyError, TypeError) as exc:
            job.error = f"Export failed: {exc}"
        state.exports[job.id] = job
        return DIALECT.json(job.wire())

    def job_or_error(request: Request, what: str) -> Any:
        """The export operation of the path, or the error answer (``what`` names the resource in a 404)."""
        refused = project_or_error(request)
        if refused is not None:
            return refused
        job = state.exports.get(request.path_params["opid"])
        if job is None:
            return DIALECT.not_found(what)
        return job

    async def operation(request: Request) -> Response:
        job = job_or_error(request, "Operation")
        if isinstance(job, Response):
            return job
        job.advance()
        return DIALECT.json(job.wire())

    async def export(request: Request) -> Response:
        job = job_or_error(request, "Export")
        if isinstance(job, Response):
            return job
        out: dict[str, Any] = {"opId": job.id, "status": job.overview}
        if job.overview == "Finished":
            base = str(request.base_url).rstrip("/")
            query, expires = state.sign("download", job.id)
            out["download"] = {"method": "GET", "url": f"{base}/downloads/{job.id}.zip?{query}",
                               "expiryDate": expires * 1000}  # fmt: skip
        return DIALECT.json(out)

    async def download(request: Request) -> Response:
        opid = request.path_params["opid"]
        job = state.exports.get(opid)
        if job is None or job.archive is None or not state.signed_ok("download", opid, request.query_params):
            return storage_error(403, "AccessDenied")
        return Response(job.archive, 200, media_type="application/zip")

    return [
        Route("/projects/{pid}/annotationimportsessions", import_sessions, methods=["GET", "POST"]),
        Route("/projects/{pid}/annotationimportsessions/{sid}", import_session, methods=["GET", "PATCH"]),
        Route("/projects/{pid}/annotationimportsessions/{sid}/files", import_files, methods=["POST"]),
        Route("/projects/{pid}/annotationimportsessions/{sid}/logs", import_logs),
        Route("/projects/{pid}/annotationexports", exports, methods=["POST"]),
        Route("/projects/{pid}/annotationexports/{opid}", export),
        Route("/projects/{pid}/operations/{opid}", operation),
        Route("/uploads/{sid}/{name}", upload, methods=["PUT"]),
        Route("/downloads/{opid}.zip", download),
    ]
