"""Label Studio: the projects of a Label Studio server (community edition, 1.x), over its REST API.

Wire facts (``shared/protocols/labelstudio.md``): ``Authorization: Token <key>`` (the legacy token); a project is
a dataset (its id), a task an asset (its id), an annotation or a prediction a list of results; tasks listed with
``GET /api/tasks/?project=&fields=all&page=&page_size=`` (``{total, tasks}``; a page past the end is a 404);
``PATCH /api/annotations/{id}/`` replaces an annotation's whole result list; ``POST /api/tasks/{id}/annotations/``
makes a new one as the connecting user. How results map to rows is `labelstudio_rows` (through the one Label
Studio mapping, `annotebook.formats.labelstudio`); imports and snapshot exports are `labelstudio_transfer`.

Writing. Label Studio's only write of a region is the write of its annotation's whole result list, with no
precondition, so the engine's ``replace`` strategy runs with the annotation as its unit (``annotation`` column):
each touched annotation is re-read (a task GET, ``updated_at`` as the rows' rev), checked, re-checked right before
its ``PATCH`` and read again after. Rows added to a task go to the connecting user's own annotation of it (the
latest), or to a new one (unit ``task:<id>`` until the next load names it). Results no row holds (relations,
ellipses, per-region controls of other types) and rows left unchanged are sent back exactly as read; drafts and
other users' annotations are not touched. The label config is read before every push: a label it does not define
is refused before any request, naming the labels it has.

Examples
--------
>>> import annotebook as ab
>>> ls = ab.connect("labelstudio", url="http://localhost:8080", project=3)  # doctest: +SKIP
>>> anns = ls.assets().annot.load()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pandas as pd

from .. import schema
from .._home import home
from ..errors import AuthError, BackendError, MalformedResponse, NotFound, ValidationError
from ..formats.labelstudio import read_tasks
from ._http import ApiClient, make_client
from ._remote import gc_paused, progress_bar
from ._rows import _SHAPE_ERRORS, parses
from .base import Capabilities, Changes
from .labelstudio_rows import LabelConfig, content_key, result_id, results_of
from .labelstudio_transfer import EXPORT_FORMATS, LabelStudioTransfer

__all__ = ["KEY_ENV", "URL_ENV", "LabelStudioBackend"]

KEY_ENV = "LABEL_STUDIO_API_KEY"
URL_ENV = "LABEL_STUDIO_URL"
DEFAULT_URL = "http://localhost:8080"
_NEW_UNIT = re.compile(r"^task:(\d+)$")


class LabelStudioBackend(LabelStudioTransfer):
    """The projects of one Label Studio server; the key from ``token=`` or ``LABEL_STUDIO_API_KEY``."""

    name = "labelstudio"
    title = "Label Studio"
    capabilities = Capabilities(
        update=False,
        create=True,
        replace_per_asset=True,
        unit="annotation",
        batch_size=1,
        client_ids=False,
        revisions="updated_at",
        conditional_write=False,
        creates_labels=False,
        statuses=False,
        atomic=False,
        export_formats=EXPORT_FORMATS,
    )

    def __init__(
        self,
        url: str | None = None,
        project: int | str | None = None,
        token: str | None = None,
        key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 120.0,
        page_size: int | None = None,
        workers: int = 4,
        progress: bool = True,
        predictions: bool = True,
    ):
        """``predictions``: load predictions as rows too (author ``model:<version>``, their scores).

        ``page_size``: a whole project is read in one JSON export by default (about twice as fast on the server as
        its task listing); a number reads it in task pages of that size instead."""
        token = token or key or os.environ.get(KEY_ENV)
        if not token:
            raise AuthError(f"no Label Studio API key: set {KEY_ENV} or pass token=...")
        self.base_url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        self.bound_dataset = None if project is None else str(project)
        self.page_size, self.workers, self.progress, self.predictions = page_size, workers, progress, predictions
        headers = {"Authorization": f"Token {token}", "User-Agent": "annotebook (httpx)", "Accept": "application/json"}
        self._api: ApiClient = make_client(
            self.base_url, headers, timeout, transport, service="LabelStudio", key_env=KEY_ENV
        )
        weakref.finalize(self, self._api.close)
        self._auth = {"Authorization": headers["Authorization"]}
        self._me: dict[str, Any] | None = None
        self._users: dict[int, str] = {}
        #: task id -> (image URL, (width, height) or None), from the last read of it
        self._tasks: dict[str, tuple[str, tuple[int, int] | None]] = {}
        #: annotation (unit) -> task id
        self._unit_task: dict[str, str] = {}
        #: row id -> its content key as read, and (unit, result id) -> the results as read: unchanged rows go back
        #: exactly as they came
        self._read_keys: dict[str, tuple[Any, ...]] = {}
        self._raw: dict[tuple[str, str], list[dict[str, Any]]] = {}
        #: unit -> the results of it no row holds, from the latest read
        self._kept: dict[str, list[dict[str, Any]]] = {}
        #: "task:<id>" units -> the connecting user's annotation ids of that task, from the latest read
        self._mine: dict[str, list[str]] = {}
        #: annotation id -> the ids of its drafts, from the latest read (a save of it would delete them)
        self._drafts: dict[str, list[str]] = {}
        #: unit -> (task id, the annotation as the server answered this push's write of it)
        self._written: dict[str, tuple[str, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"LabelStudioBackend(url={self.base_url!r}, project={self.bound_dataset!r})"

    def spec(self) -> dict[str, Any]:
        return {"url": self.base_url, "project": self.bound_dataset}

    # -- who and what -------------------------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        """The connecting user (``id``, ``email``)."""
        if self._me is None:
            me = self._api.get("/api/current-user/whoami")
            if not isinstance(me, dict) or "id" not in me:
                raise MalformedResponse(f"Label Studio sent a user without an id: {str(me)[:200]}")
            self._me = me
        return self._me

    def _user(self, who: Any) -> str | None:
        """An annotation's ``completed_by`` (an id, or a user object) as the author: the user's e-mail."""
        if isinstance(who, dict):
            return str(who.get("email") or who.get("id"))
        if who is None or isinstance(who, bool) or not str(who).isdigit():
            return None if who is None else str(who)
        uid = int(who)
        if uid not in self._users:
            users = self._api.get("/api/users/", params={"page_size": 1000})
            users = users.get("results", []) if isinstance(users, dict) else users
            self._users.update(
                {int(u["id"]): str(u.get("email") or u["id"]) for u in users or [] if isinstance(u, dict) and "id" in u}
            )
        return self._users.get(uid, str(uid))

    def datasets(self) -> pd.DataFrame:
        rows = []
        page = 1
        while True:
            answer = self._api.get("/api/projects/", params={"page": page, "page_size": 100})
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list):
                raise MalformedResponse(f"Label Studio sent projects that are not a page: {str(answer)[:200]}")
            rows += [
                {"dataset": str(p.get("id")), "title": p.get("title"), "tasks": p.get("task_number")}
                for p in results
                if isinstance(p, dict)
            ]
            if not answer.get("next"):
                break
            page += 1
        return pd.DataFrame(rows, columns=["dataset", "title", "tasks"]).astype(
            {"dataset": schema.STR, "title": schema.STR, "tasks": "Int64"}
        )

    def dataset_id(self, dataset: str | int) -> str:
        """A project's id from its id or its title."""
        text = str(dataset)
        if text.isdigit():
            return text
        found = self.datasets()
        hit = found[found["title"] == text]
        if len(hit) != 1:
            raise NotFound(f"{len(hit)} Label Studio projects are titled {text!r}; pass the project id")
        return str(hit["dataset"].iloc[0])

    def project(self, dataset: str) -> dict[str, Any]:
        answer = self._api.get(f"/api/projects/{quote(str(dataset))}/")
        if not isinstance(answer, dict) or "id" not in answer:
            raise MalformedResponse(f"Label Studio sent a project without an id: {str(answer)[:200]}")
        return answer

    def label_config(self, dataset: str) -> LabelConfig:
        """The project's controls and labels, read now."""
        return LabelConfig(self.project(dataset).get("parsed_label_config") or {})

    def labels(self, dataset: str) -> pd.DataFrame:
        parsed = self.project(dataset).get("parsed_label_config") or {}
        rows: dict[str, dict[str, Any]] = {}
        for control in parsed.values():
            attrs = control.get("labels_attrs") or {} if isinstance(control, dict) else {}
            for name in control.get("labels") or [] if isinstance(control, dict) else []:
                color = (attrs.get(name) or {}).get("background")
                rows.setdefault(
                    name,
                    {
                        "dataset": dataset,
                        "name": name,
                        "index": len(rows),
                        "color": color if isinstance(color, str) and len(color) == 7 else None,
                    },
                )
        return schema.labels_frame(list(rows.values()))

    # -- reading --------------------------------------------------------------------------------------------------
    def _task_pages(self, dataset: str, progress: bool) -> Iterator[list[dict[str, Any]]]:
        page, seen, bar = 1, 0, None
        try:
            while True:
                params = {"project": dataset, "fields": "all", "page": page, "page_size": self.page_size or 1000}
                answer = self._api.get("/api/tasks/", params=params)
                tasks = answer.get("tasks") if isinstance(answer, dict) else None
                if not isinstance(tasks, list):
                    raise MalformedResponse(f"Label Studio sent a task page without tasks: {str(answer)[:200]}")
                total = int(answer.get("total") or 0)
                if bar is None:
                    bar = progress_bar(total, "listing tasks", progress, "task")
                bar.update(len(tasks))
                seen += len(tasks)
                yield tasks
                if not tasks or seen >= total:
                    return
                page += 1
        finally:
            if bar is not None:
                bar.close()

    def _exported(self, dataset: str, progress: bool) -> list[dict[str, Any]]:
        """Every task of the project with its annotations, in one synchronous JSON export; predictions (which it
        names by id only) from the project's prediction listing."""
        bar = progress_bar(1, "reading the project", progress, "export")
        try:
            params = {"exportType": "JSON", "download_all_tasks": "true"}
            tasks = self._api.get(f"/api/projects/{quote(str(dataset))}/export", params=params)
            if not isinstance(tasks, list) or not all(isinstance(t, dict) and "id" in t for t in tasks):
                raise MalformedResponse(f"Label Studio sent an export that is not a list of tasks: {str(tasks)[:200]}")
            named = self.predictions and any(t.get("predictions") for t in tasks)
            by_task: dict[Any, list[dict[str, Any]]] = {}
            if named:
                found = self._api.get("/api/predictions/", params={"project": dataset})
                for p in found if isinstance(found, list) else []:
                    if isinstance(p, dict):
                        by_task.setdefault(p.get("task"), []).append(p)
            bar.update(1)
            return [{**t, "predictions": by_task.get(t["id"], [])} for t in tasks]
        finally:
            bar.close()

    def _task(self, task_id: str) -> dict[str, Any] | None:
        """One task with its annotations and predictions; None when it is gone."""
        try:
            task = self._api.get(f"/api/tasks/{quote(str(task_id))}/")
        except NotFound:
            return None
        if not isinstance(task, dict) or "id" not in task:
            raise MalformedResponse(f"Label Studio sent a task without an id: {str(task)[:200]}")
        return task

    def _tasks_by_id(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The tasks ``ids`` (gone ones left out), ``self.workers`` requests at once."""
        if self.workers <= 1 or len(ids) <= 1:
            found = [self._task(t) for t in ids]
        else:
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="labelstudio") as pool:
                found = list(pool.map(self._task, ids))
        return [t for t in found if t is not None]

    def _rows(self, dataset: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of ``tasks``; remembers what a later write sends back unchanged."""
        if not self.predictions:
            tasks = [{**t, "predictions": []} for t in tasks]
        tasks = [t if isinstance(t.get("data"), dict) and t["data"] else {**t, "data": {"image": ""}} for t in tasks]
        for t in tasks:  # an empty image URL is a task without pixels, not an error of the mapping
            if not any(isinstance(v, str) and v for v in t["data"].values()):
                t["data"] = {**t["data"], "image": f"#task-{t.get('id')}"}
        sizes = {str(t["id"]): s for t in tasks if (s := self._tasks.get(str(t["id"]), ("", None))[1]) is not None}
        try:
            rows, assets, kept = read_tasks(tasks, dataset=dataset, sizes=sizes)
        except _SHAPE_ERRORS as exc:
            raise MalformedResponse(f"Label Studio sent tasks annotebook cannot read ({type(exc).__name__}: "
                                    f"{str(exc)[:120]})") from exc  # fmt: skip
        for t in tasks:
            tid = str(t["id"])
            info = assets.get(tid, {})
            size = (int(info["width"]), int(info["height"])) if info.get("width") else sizes.get(tid)
            self._tasks[tid] = (_image_url(t), size)
            for d in t.get("drafts") or []:
                if isinstance(d, dict) and d.get("annotation") is not None:
                    self._drafts.setdefault(str(d["annotation"]), []).append(str(d.get("id")))
            for group, prefix in ((t.get("annotations") or [], ""), (t.get("predictions") or [], "p")):
                for g in group:
                    unit = f"{prefix}{g.get('id')}"
                    self._unit_task[unit] = tid
                    self._kept[unit] = kept.get(unit, [])
                    for r in g.get("result") or []:
                        if isinstance(r, dict) and r.get("id") is not None:
                            self._raw.setdefault((unit, str(r["id"])), []).append(r)
        authors: dict[str, str | None] = {}
        for r in rows:
            a = r.get("author")
            if a is not None and not str(a).startswith("model:"):
                r["author"] = authors[a] if a in authors else authors.setdefault(a, self._user(a))
            self._read_keys[r["id"]] = content_key(r)
        return rows

    def _fresh_raw(self, tasks: list[dict[str, Any]]) -> None:
        """Forget what was read of these tasks' annotations (a re-read replaces it)."""
        units = {
            f"{p}{g.get('id')}"
            for t in tasks
            for k, p in (("annotations", ""), ("predictions", "p"))
            for g in t.get(k) or []
        }
        for unit in units:
            self._drafts.pop(unit, None)
        for key in [k for k in self._raw if k[0] in units]:
            del self._raw[key]

    def annotations(
        self, dataset: str, assets: Sequence[str] | None = None, progress: bool | None = None
    ) -> pd.DataFrame:
        """Every annotation's and prediction's rows of the project (or of these tasks)."""
        show = self.progress if progress is None else progress
        with gc_paused():
            if assets is None and self.page_size is None:
                try:
                    tasks = self._exported(dataset, show)
                except MalformedResponse:  # two exports of a project in the same second can share a file: one
                    tasks = [t for page in self._task_pages(dataset, show) for t in page]  # comes back empty
            elif assets is None:
                tasks = [t for page in self._task_pages(dataset, show) for t in page]
            else:
                tasks = self._tasks_by_id([str(a) for a in dict.fromkeys(assets)])
            self._fresh_raw(tasks)
            return schema.annotations_frame(self._rows(dataset, tasks))

    def assets(self, dataset: str) -> pd.DataFrame:
        rows = []
        for page in self._task_pages(dataset, False):
            for t in page:
                url = _image_url(t)
                size = _size_of(t)
                self._tasks[str(t["id"])] = (url, size)
                rows.append(
                    {
                        "dataset": dataset,
                        "asset": str(t["id"]),
                        "name": _file_name(url, t),
                        "width": size[0] if size else None,
                        "height": size[1] if size else None,
                        "uri": self._absolute(url) if url else None,
                        "status": "labeled" if t.get("is_labeled") else "unlabeled",
                    }
                )
        return schema.assets_frame(rows)

    def _absolute(self, url: str) -> str:
        return url if urlsplit(url).scheme else f"{self.base_url}/{url.lstrip('/')}"

    def image_path(self, dataset: str, asset: str) -> str | None:
        """The task's image in the on-disk cache, downloaded once (the server's own files with the key)."""
        if str(asset) not in self._tasks and self._task(str(asset)) is not None:
            self._rows(dataset, self._tasks_by_id([str(asset)]))
        url = self._tasks.get(str(asset), ("", None))[0]
        if not url:
            return None
        host = urlsplit(self.base_url).netloc.replace(":", "_")
        folder = home() / "cache" / "labelstudio" / host / str(dataset)
        found = list(folder.glob(f"{asset}.*")) if folder.exists() else []
        if found:
            return str(found[0])
        target = self._absolute(url)
        if urlsplit(target).netloc == urlsplit(self.base_url).netloc:
            content = self._api.request("GET", target).content
        else:  # another host: never send the key there
            with httpx.Client(timeout=60, follow_redirects=True) as plain:
                response = plain.get(target)
            if response.status_code != 200:
                raise BackendError(f"image of task {asset}: HTTP {response.status_code} from {urlsplit(target).netloc}")
            content = response.content
        folder.mkdir(parents=True, exist_ok=True)
        suffix = Path(urlsplit(target).path).suffix or ".img"
        path, tmp = folder / f"{asset}{suffix}", folder / f".{asset}{suffix}.part"
        tmp.write_bytes(content)
        tmp.replace(path)
        return str(path)

    def _size(self, dataset: str, task: str) -> tuple[int, int] | None:
        """A task's image size: from its results, else from its pixels (EXIF applied)."""
        size = self._tasks.get(task, ("", None))[1]
        if size is not None:
            return size
        path = self.image_path(dataset, task)
        if path is None:
            return None
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            w, h = ImageOps.exif_transpose(im).size
        self._tasks[task] = (self._tasks.get(task, ("", None))[0], (w, h))
        return (w, h)

    # -- the sync engine's primitives (`annotebook.sync.replace`: one PATCH per annotation) -------------------------
    def row_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        """What Label Studio keeps of a row, without its id: how the engine finds a written row's id again."""
        return content_key(row)

    def check_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Rows the project's label config cannot take are named before any request (with the labels it has)."""
        self.label_config(dataset).check(rows)

    def _my_annotations(self, task: dict[str, Any]) -> list[str]:
        me = int(self.whoami()["id"])
        mine = []
        for g in task.get("annotations") or []:
            who = g.get("completed_by")
            who = who.get("id") if isinstance(who, dict) else who
            if str(who) == str(me) and not g.get("was_cancelled"):
                mine.append(str(g["id"]))
        return sorted(mine, key=int)

    def place_rows(self, changes: Changes) -> None:
        """Rows added without an annotation go to the connecting user's latest annotation of their task, else to
        a new one (``task:<id>``); a row moved to another annotation is refused."""
        for name in ("updates", "deletes", "known"):  # rows pushed as additions carry their annotation in their id
            frame = getattr(changes, name)
            if "annotation" in frame and len(frame):
                ids = pd.Series(frame.index if name == "known" else frame["id"], index=frame.index).astype(str)
                missing = frame["annotation"].isna() & ids.str.contains("/", regex=False)
                if missing.any():
                    frame = frame.copy()
                    frame.loc[missing, "annotation"] = ids[missing].str.split("/", n=1).str[0]
                    setattr(changes, name, frame)
        known = changes.known
        moved = []
        for r in changes.updates[["id", "annotation"]].to_dict("records"):
            before: Any = known.at[r["id"], "annotation"] if r["id"] in known.index and "annotation" in known else None
            if not _same(before, r["annotation"]):
                moved.append(
                    {
                        "id": r["id"],
                        "column": "annotation",
                        "problem": f"moved from annotation {before!s} to {r['annotation']!s}: add a copy to the "
                        "other annotation and delete this row instead",
                    }
                )
        if moved:
            raise ValidationError(
                f"{len(moved)} row(s) cannot move between Label Studio annotations; nothing was written",
                pd.DataFrame(moved),
            )
        creates = changes.creates
        empty = creates["annotation"].isna().to_numpy(dtype=bool)
        if not empty.any():
            return
        tasks = {t: self._task(t) for t in sorted(set(creates.loc[empty, "asset"].astype(str)))}
        gone = [t for t, task in tasks.items() if task is None]
        if gone:
            raise ValidationError(f"rows were added to tasks that are not in the project: {gone}; nothing was written")
        units = {}
        for t, task in tasks.items():
            mine = self._my_annotations(task or {})
            units[t] = mine[-1] if mine else f"task:{t}"
        creates = creates.copy()
        creates.loc[empty, "annotation"] = [units[str(a)] for a in creates.loc[empty, "asset"]]
        changes.creates = creates

    def read_units(self, dataset: str, units: Sequence[str]) -> pd.DataFrame:
        """The rows of these annotations now (``task:<id>``: the connecting user's annotations of that task)."""
        wanted: dict[str, set[str]] = {}
        for u in units:
            task = _NEW_UNIT.match(u)
            tid = task.group(1) if task else self._unit_task.get(u) or self._task_of_annotation(u)
            if tid is not None:
                wanted.setdefault(tid, set()).add(u)
        try:
            tasks = self._tasks_by_id(sorted(wanted))
        except BackendError:
            tasks = self._as_written(wanted)
        self._fresh_raw(tasks)
        rows = self._rows(dataset, tasks)
        by_task = {str(t["id"]): t for t in tasks}
        out = []
        for tid, asked in wanted.items():
            mine = set(self._my_annotations(by_task[tid])) if f"task:{tid}" in asked and tid in by_task else set()
            if f"task:{tid}" in asked:
                self._mine[f"task:{tid}"] = sorted(mine, key=int)
            for r in rows:
                if r["asset"] != tid:
                    continue
                if r.get("annotation") in asked:
                    out.append(r)
                elif r.get("annotation") in mine:
                    out.append({**r, "annotation": f"task:{tid}"})
        return schema.annotations_frame(out)

    def _as_written(self, wanted: Mapping[str, set[str]]) -> list[dict[str, Any]]:
        """The tasks ``wanted`` as this push's writes were answered, when the server cannot be read after them (an
        outage right after a write): what it said it holds. Any unit not written here: the read's error again."""
        if not self._written or any(u not in self._written for units in wanted.values() for u in units):
            raise
        tasks: dict[str, dict[str, Any]] = {}
        for units in wanted.values():
            for u in units:
                tid, ann = self._written[u]
                task = tasks.setdefault(
                    tid,
                    {
                        "id": int(tid),
                        "data": {"image": self._tasks.get(tid, ("", None))[0]},
                        "annotations": [],
                        "predictions": [],
                    },
                )
                task["predictions" if u.startswith("p") else "annotations"].append(ann)
        return list(tasks.values())

    def _task_of_annotation(self, unit: str) -> str | None:
        path = f"/api/predictions/{unit[1:]}/" if unit.startswith("p") else f"/api/annotations/{unit}/"
        try:
            answer = self._api.get(path)
        except NotFound:
            return None
        tid = answer.get("task") if isinstance(answer, dict) else None
        if tid is None:
            raise MalformedResponse(f"Label Studio sent an annotation without its task: {str(answer)[:200]}")
        self._unit_task[unit] = str(tid)
        return str(tid)

    def _results(self, dataset: str, unit: str, rows: pd.DataFrame, config: LabelConfig) -> list[dict[str, Any]]:
        """The result list of one annotation: unchanged rows as read, the others written by the mapping, then
        the results no row holds."""
        recs = [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]
        task = str(recs[0]["asset"]) if recs else self._unit_task.get(unit, unit.removeprefix("task:"))
        read_unit = (self._mine.get(unit) or [""])[-1] if unit.startswith("task:") else unit
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in recs:
            base = str(r["id"]).split("/", 1)[1].split("#", 1)[0] if "/" in str(r["id"]) else str(r["id"])
            groups.setdefault(base, []).append(r)
        taken = {b for b in groups if "/" in str(groups[b][0]["id"])}
        out: list[dict[str, Any]] = []
        fresh: list[dict[str, Any]] = []
        for base, members in groups.items():
            raw = self._raw.get((str(read_unit), base)) if "/" in str(members[0]["id"]) else None
            owners = {
                k
                for k in self._read_keys
                if k.split("/", 1)[0] == str(read_unit) and k.split("/", 1)[1].split("#", 1)[0] == base
            }
            same = (
                raw is not None
                and {str(m["id"]) for m in members} == owners
                and all(self._read_keys.get(str(m["id"])) == content_key(m) for m in members)
            )
            if same and raw is not None:
                out += raw
                continue
            rid = result_id(str(members[0]["id"]), taken)
            taken.add(rid)
            fresh += [
                {**m, "id": rid + ("#" + str(m["id"]).split("#", 1)[1] if "#" in str(m["id"]) else "")} for m in members
            ]
        if fresh:
            out += results_of(fresh, config, self._size(dataset, task))
        return out + list(self._kept.get(str(read_unit), []))

    def replace_units(
        self, dataset: str, units: Mapping[str, pd.DataFrame], recheck: Callable[[], None]
    ) -> dict[str, str]:
        """Write each annotation's whole result list (``PATCH``; ``POST`` for a task's first annotation of the
        connecting user). ``recheck`` runs right before the first write. Returns, per annotation refused, why."""
        config = self.label_config(dataset)
        self._written.clear()
        recheck()
        bodies = {u: self._results(dataset, u, rows, config) for u, rows in units.items()}
        refused: dict[str, str] = {}
        landed = 0
        failure: Exception | None = None
        for unit, results in bodies.items():
            target = (self._mine.get(unit) or [""])[-1] if unit.startswith("task:") else unit
            if self._drafts.get(target):
                refused[unit] = (
                    f"annotation {target} has draft(s) {self._drafts[target]}: Label Studio deletes an "
                    "annotation's drafts when it is saved; submit or discard them first"
                )
                continue
            if failure is not None:
                refused[unit] = f"not sent after an earlier write failed ({failure})"
                continue
            try:
                task = self._unit_task.get(unit) or unit.removeprefix("task:")
                self._written[unit] = (task, self._write(unit, results))
                landed += 1
            except BackendError as exc:
                if not landed:
                    raise
                failure = exc
                refused[unit] = f"the write failed ({exc}); a lost answer is reconciled on the next push"
            except _Refused as exc:
                refused[unit] = str(exc)
        return refused

    def _write(self, unit: str, results: list[dict[str, Any]]) -> dict[str, Any]:
        """One annotation's write; the annotation as the server answered it."""
        new = _NEW_UNIT.match(unit)
        if new is None:
            path = f"/api/predictions/{unit[1:]}/" if unit.startswith("p") else f"/api/annotations/{unit}/"
            answer = self._api.json("PATCH", path, json={"result": results})
        else:
            mine = self._mine.get(unit, [])
            if len(mine) > 1:
                raise _Refused(f"task {new.group(1)} has {len(mine)} annotations of this user now; reload")
            if mine:
                answer = self._api.json("PATCH", f"/api/annotations/{mine[0]}/", json={"result": results})
            else:
                answer = self._api.post(f"/api/tasks/{new.group(1)}/annotations/", json={"result": results})
        if not isinstance(answer, dict) or "id" not in answer:
            raise MalformedResponse(f"Label Studio answered a write with no annotation: {str(answer)[:200]}")
        return answer


class _Refused(Exception):
    pass


def _same(a: Any, b: Any) -> bool:
    a_missing = a is None or (isinstance(a, float) and a != a) or a is pd.NA
    b_missing = b is None or (isinstance(b, float) and b != b) or b is pd.NA
    return (a_missing and b_missing) or (not a_missing and not b_missing and str(a) == str(b))


def _image_url(task: Mapping[str, Any]) -> str:
    data = task.get("data") if isinstance(task.get("data"), dict) else {}
    url = data.get("image") if isinstance(data, dict) else None
    if not isinstance(url, str):
        texts = [v for v in (data or {}).values() if isinstance(v, str)]
        url = texts[0] if len(texts) == 1 else ""
    return "" if url.startswith("#task-") else url


def _size_of(task: Mapping[str, Any]) -> tuple[int, int] | None:
    for key in ("annotations", "predictions"):
        for g in task.get(key) or []:
            for r in g.get("result") or [] if isinstance(g, dict) else []:
                if isinstance(r, dict) and r.get("original_width") and r.get("original_height"):
                    return int(r["original_width"]), int(r["original_height"])
    return None


def _file_name(url: str, task: Mapping[str, Any]) -> str:
    from urllib.parse import parse_qs, unquote

    upload = task.get("file_upload")
    if isinstance(upload, str) and upload:
        return upload
    parts = urlsplit(url)
    d = parse_qs(parts.query).get("d")
    path = d[0] if d else parts.path or url
    return unquote(path.rstrip("/").rsplit("/", 1)[-1]) or f"task-{task.get('id')}"


@parses("Label Studio")
def read_server_tasks(tasks: list[Any], dataset: str) -> list[dict[str, Any]]:
    """The rows of ``tasks`` as the server lists them; an answer of a shape nobody foresaw is a `MalformedResponse`."""
    return read_tasks(tasks, dataset=dataset)[0]
