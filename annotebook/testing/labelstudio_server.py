"""A real Label Studio server on 127.0.0.1, for the tests and for a user's offline try-out.

Label Studio pins its own Django stack, so it lives in a virtual environment of its own, built once under the
test cache (``$ANNOTEBOOK_TEST_CACHE``, default ``~/.cache/annotebook-test``; the same folder
``tests/peers.py: cached_venv("labelstudio", LS_PACKAGES)`` names). Its database is migrated once into a template
data folder kept beside the venv (``label-studio init``, about a minute); each server starts on a copy of it
(a few seconds) with telemetry, the version check and Sentry off, the legacy token enabled and a known token, on
a free port, and is stopped by its process group (the one it was started in).

`sample_project` builds a project of the bundled "shapes" images (uploaded) and their boxes, polygons and
keypoints as annotations, with a label config whose controls use the Label Studio mapping's default names.

Examples
--------
>>> from annotebook.testing.labelstudio_server import start_server, sample_project  # doctest: +SKIP
>>> server = start_server()                        # doctest: +SKIP
>>> project = sample_project(server, n_assets=8)   # doctest: +SKIP
>>> server.stop()                                  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["LS_PACKAGES", "TOKEN", "LabelStudioServer", "label_config", "sample_project", "start_server"]

#: the pinned server (its own SDK, ``label-studio-sdk``, comes with it)
LS_PACKAGES = ("label-studio==1.23.2",)
TOKEN = "annotebook-ls-token-0123456789abcdef"
USER, PASSWORD = "annotebook@example.com", "annotebook-password-123"
#: the environment every start gets: no phone-home, the legacy token, local files served
QUIET = {
    "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
    "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
    "LABEL_STUDIO_USERNAME": USER,
    "LABEL_STUDIO_PASSWORD": PASSWORD,
}
#: bare names Label Studio also reads (``get_env`` falls back to them): a CI's stray PORT must not move the server
_BARE = ("HOST", "PORT", "USERNAME", "PASSWORD", "USER_TOKEN", "DEBUG", "LOG_LEVEL")


def cache_dir() -> Path:
    root = Path(os.environ.get("ANNOTEBOOK_TEST_CACHE", Path.home() / ".cache" / "annotebook-test"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _key(packages: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(packages).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(name: str) -> Any:
    with open(cache_dir() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def venv_python(packages: tuple[str, ...] = LS_PACKAGES) -> Path:
    """The Python of the cached venv holding Label Studio, built on first use (minutes: about 1 GB)."""
    name = f"labelstudio-{_key(packages)}"
    venv = cache_dir() / name
    python = venv / "bin" / "python"
    with _locked(name):
        if not (venv / ".complete").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
            (venv / ".complete").write_text("\n".join(packages))
    return python


def _env(data_dir: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _BARE}
    env.update(
        QUIET,
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USER_TOKEN=token,
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(data_dir / "files"),
    )
    return env


def template(python: Path, token: str = TOKEN) -> Path:
    """A migrated data folder with the user and ``token`` (``label-studio init``, once per venv and token)."""
    name = f"labelstudio-{_key((*LS_PACKAGES, token))}-template"
    folder = cache_dir() / name
    with _locked(name):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            (folder / "files").mkdir()
            cli = python.parent / "label-studio"
            subprocess.run(
                [
                    str(cli),
                    "init",
                    "-q",
                    "--username",
                    USER,
                    "--password",
                    PASSWORD,
                    "--user-token",
                    token,
                    "--enable-legacy-api-token",
                ],
                env=_env(folder, token),
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=900,
            )
            (folder / ".complete").write_text(token)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabelStudioServer:
    """A running server: its URL and token, its process (a group of its own) and its throw-away data folder."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.token}"}, timeout=120)

    def stop(self) -> None:
        """SIGTERM to the server's process group, then SIGKILL after 10 s; the data folder is removed."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_server(port: int = 0, token: str = TOKEN, timeout: float = 300.0) -> LabelStudioServer:
    """Start Label Studio on 127.0.0.1 (``port`` 0: a free one) on a copy of the template; ready when /health
    answers and the token is taken. Installs the venv and makes the template on first use."""
    began = time.monotonic()
    python = venv_python()
    installed = time.monotonic()
    source = template(python, token)
    prepared = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="annotebook-ls-"))
    shutil.copytree(source, data_dir, dirs_exist_ok=True)
    port = port or free_port()
    log = data_dir / "server.log"
    cli = python.parent / "label-studio"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(cli), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=_env(data_dir, token),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LabelStudioServer(f"http://127.0.0.1:{port}", token, process, data_dir, log)
    atexit.register(server.stop)  # a kernel or test run that ends without stopping it (a failed cell) still does
    try:
        _wait_ready(server, timeout)
    except BaseException:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        server.stop()
        raise RuntimeError(f"Label Studio did not start on port {port}:\n{tail}") from None
    ready = time.monotonic()
    server.timings = {"install": installed - began, "template": prepared - installed, "start": ready - prepared}
    return server


def _wait_ready(server: LabelStudioServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                if http.get(f"{server.url}/health").status_code == 200:
                    who = http.get(
                        f"{server.url}/api/current-user/whoami", headers={"Authorization": f"Token {server.token}"}
                    )
                    if who.status_code == 200:
                        return
                    raise RuntimeError(f"the server is up but refuses the token: HTTP {who.status_code}")
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"Label Studio did not answer /health within {timeout:.0f} s")


def label_config(labels: list[str]) -> str:
    """A config with a control of each kind the sample uses, named as the Label Studio mapping names them by default.
    No KeyPointLabels: with one, Label Studio's COCO converter writes every box under a "default" category."""
    opts = "".join(f'<Label value="{x}"/>' for x in labels)
    choices = "".join(f'<Choice value="{x}"/>' for x in labels)
    return (
        '<View><Image name="image" value="$image"/>'
        f'<RectangleLabels name="label" toName="image">{opts}</RectangleLabels>'
        f'<PolygonLabels name="polygon" toName="image">{opts}</PolygonLabels>'
        f'<Choices name="choice" toName="image" choice="multiple">{choices}</Choices>'
        '<TextArea name="caption" toName="image"/>'
        f'<BrushLabels name="brush" toName="image">{opts}</BrushLabels>'
        "</View>"
    )


def sample_project(
    server: LabelStudioServer, n_assets: int = 8, title: str = "shapes", image_dir: Path | None = None
) -> int:
    """A new project of the "shapes" sample: its images uploaded, its regions as one annotation per task."""
    from ..formats._registry import Tables
    from ..formats.labelstudio import tables_to_labelstudio
    from ..samples import make_shapes

    folder = Path(image_dir or server.data_dir / f"sample-{title}")  # removed with the server's data
    assets, anns, labels = make_shapes(folder, n_assets=n_assets)
    anns = anns[anns["kind"] != "keypoints"]  # a pose of five tips: Label Studio keypoints are single points
    names = list(dict.fromkeys([*(n for n in labels["name"].astype(str) if n != "star-tips"), *anns["label"]]))
    tasks = tables_to_labelstudio(Tables(annotations=anns, assets=assets, labels=labels))
    with server.client() as http:
        project = _ok(http.post("/api/projects/", json={"title": title, "label_config": label_config(names)}))["id"]
        files = {f"file{i}": (str(name), (folder / str(name)).read_bytes()) for i, name in enumerate(assets["name"])}
        _ok(http.post(f"/api/projects/{project}/import", files=files))
        listed = _ok(http.get("/api/tasks/", params={"project": project, "page_size": 100000}))["tasks"]
        by_name = {str(t["data"]["image"]).rsplit("/", 1)[-1].split("-", 1)[-1]: t["id"] for t in listed}
        for task in tasks:
            task_id = by_name[str(task["data"]["image"])]
            for annotation in task["annotations"]:
                _ok(http.post(f"/api/tasks/{task_id}/annotations/", json={"result": annotation["result"]}))
    return int(project)


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(
            f"Label Studio {response.request.method} {response.request.url.path}: "
            f"HTTP {response.status_code} {response.text[:500]}"
        )
    return response.json()


def connect_info(server: LabelStudioServer, project: int) -> Any:
    """What ``ab.connect`` needs to reach ``project`` on ``server`` (the key aside: ``LABEL_STUDIO_API_KEY``)."""
    from .kit import ConnectInfo

    return ConnectInfo(
        "labelstudio",
        "Label Studio",
        server.url,
        {"url": server.url, "project": str(project)},
        str(project),
        "LABEL_STUDIO_API_KEY",
        "the key it was started with (--key)",
    )


def serve(port: int = 0, token: str = TOKEN, n_assets: int = 36, as_json: bool = False) -> None:
    """Start the real server with the sample project, print how to connect (as the simulators do), and keep it
    running until Ctrl-C or until the server exits; then stop it."""
    import json

    server = start_server(port=port, token=token)
    try:
        info = connect_info(server, sample_project(server, n_assets=n_assets))
        print(json.dumps(info.as_json()) if as_json else info.line(), flush=True)
        while server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def prepare() -> dict[str, float]:
    """Build the cached venv and the template now (what a first `start_server` would), timed in seconds."""
    began = time.monotonic()
    python = venv_python()
    installed = time.monotonic()
    template(python)
    return {"install": round(installed - began, 1), "template": round(time.monotonic() - installed, 1)}


if __name__ == "__main__":  # ``python -m annotebook.testing.labelstudio_server prepare``: CI builds it up front
    if sys.argv[1:] != ["prepare"]:
        raise SystemExit("usage: python -m annotebook.testing.labelstudio_server prepare")
    print(f"Label Studio prepared: {prepare()}", flush=True)
