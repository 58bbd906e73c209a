"""A real JupyterLab on 127.0.0.1 (fresh token, config, runtime and settings dirs) and headless Debian Chromium.

One JupyterLab, one browser page and one open notebook serve the whole session (starting them is most of the
suite's time): the notebook shows a `host` box, and each test puts its widget into it from a kernel client
(`Lab.show`), so nothing depends on cell order. The browser test runs whenever /usr/bin/chromium exists; when it
does not, it is skipped with a loud reason, unless ANNOTEBOOK_REQUIRE_BROWSER=1 (set by CI), which turns the skip
into a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", Path(__file__).parent / "artifacts"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_browser() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"BROWSER TEST NOT RUN: no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("ANNOTEBOOK_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    print(f"\n{'!' * 80}\n{message}\n{'!' * 80}", file=sys.stderr)
    pytest.skip(message)


def serve_jupyter(tmp_path: Path, app: str, app_args: list[str], log_name: str) -> Iterator[dict[str, Any]]:
    """Run ``python -m <app>`` (JupyterLab or Notebook 7) on a free port serving ``tmp_path/root``, its kernels'
    ANNOTEBOOK_HOME ``tmp_path/home`` and its config / runtime / IPython dirs under ``tmp_path``; yield its
    coordinates, stop it after, and keep its log in the artifacts as ``log_name``."""
    root = tmp_path / "root"
    root.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, ANNOTEBOOK_HOME=str(tmp_path / "home"))
    for key, sub in (("JUPYTER_CONFIG_DIR", "cfg"), ("JUPYTER_RUNTIME_DIR", "rt"), ("IPYTHONDIR", "ipy")):
        env[key] = str(tmp_path / sub)
    notif = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed in the finally below
    common = ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
              f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={root}",
              "--ServerApp.jpserver_extensions={'jupyter_lsp': False, 'jupyter_server_terminals': False}"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", app, *common, *app_args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError(f"{app} did not start:\n" + (tmp_path / "server.log").read_text()) from None
            time.sleep(0.2)
    try:
        yield {"base": base, "token": token, "root": root, "runtime": tmp_path / "rt", "home": tmp_path / "home"}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "server.log", ARTIFACTS / log_name)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """JupyterLab serving ``tmp_path/root`` with a kernel whose ANNOTEBOOK_HOME is ``tmp_path/home``."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("lab")
    yield from serve_jupyter(
        tmp_path,
        "jupyterlab",
        [
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        "server.log",
    )


def idle_kernel(page: Any) -> str:
    """Wait until the notebook open in ``page`` (JupyterLab or Notebook 7) has an idle kernel; its id."""
    page.wait_for_function(
        "window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext",
        timeout=90_000,
    )
    kernel_id: str = page.evaluate(
        """async () => {
        const app = window.jupyterapp; await app.restored;
        const nb = app.shell.currentWidget; await nb.context.ready; await nb.sessionContext.ready;
        const k = nb.sessionContext.session.kernel;
        while (k.status !== 'idle') { await new Promise(r => setTimeout(r, 100)); }
        return k.id; }"""
    )
    return kernel_id


@pytest.fixture(scope="session")
def page(lab: dict[str, Any]) -> Iterator[Any]:
    """A Chromium page (1280x1000), its console kept for the failure artifacts."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        pg = browser.new_page(viewport={"width": 1500, "height": 1000})
        pg.console_lines = []  # type: ignore[attr-defined]
        pg.on("console", lambda m: pg.console_lines.append(f"{m.type}: {m.text}"))  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            browser.close()


def kernel_eval(kc: Any, expr: str, timeout: float = 15) -> str:
    """Evaluate ``expr`` silently in the notebook's kernel; its text/plain repr."""
    msg_id = kc.execute("", silent=True, store_history=False, user_expressions={"r": expr})
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    result = reply["content"]["user_expressions"]["r"]
    assert result["status"] == "ok", result
    return str(result["data"]["text/plain"])


def kernel_exec(kc: Any, code: str, timeout: float = 60) -> None:
    """Run ``code`` in the notebook's kernel (from the test's own client); raise its error, if any."""
    msg_id = kc.execute(code, silent=True, store_history=False)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    content = reply["content"]
    assert content["status"] == "ok", f"{content.get('ename')}: {content.get('evalue')}\n{code}"


HOST_CELL = """\
import annotebook as ab
import ipywidgets as widgets
conn = ab.samples.reset()
host = widgets.VBox()
host"""


class Lab:
    """The open notebook: its page, its kernel (through a client of the test's own) and the host box."""

    def __init__(self, page: Any, kc: Any, root: Path):
        self.page, self.kc, self.root = page, kc, root

    def run(self, code: str, timeout: float = 60) -> None:
        kernel_exec(self.kc, code, timeout)

    def eval(self, expr: str) -> Any:
        """A Python literal computed in the kernel (``repr`` parsed back)."""
        import ast

        return ast.literal_eval(kernel_eval(self.kc, expr))

    def value(self, expr: str) -> str:
        """The kernel's text/plain repr of ``expr``."""
        return kernel_eval(self.kc, expr)

    def wait(self, expr: str, want: Any, timeout: float = 20) -> float:
        """Poll ``expr`` (a kernel expression) until it equals ``want``; seconds it took."""
        start = time.monotonic()
        while (got := self.eval(expr)) != want:
            assert time.monotonic() - start < timeout, f"{expr} stayed {got!r}, wanted {want!r}"
            time.sleep(0.03)
        return time.monotonic() - start

    def wait_for_value(self, expr: str, ok: Any, timeout: float = 20) -> Any:
        """Poll ``expr`` until ``ok(value)`` holds; the value."""
        start = time.monotonic()
        while not ok(got := self.eval(expr)):
            assert time.monotonic() - start < timeout, f"{expr} stayed {got!r}"
            time.sleep(0.03)
        return got

    def show(self, code: str, name: str = "w") -> None:
        """Run ``code`` (which binds ``name`` to a widget) and put the widget in the host box, alone."""
        self.run(f"for _old in host.children:\n    _old.close()\n{code}\nhost.children = [{name}]")

    def shot(self, name: str, locator: Any = None) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path


@pytest.fixture(scope="session")
def notebook(lab: dict[str, Any], page: Any) -> Iterator[Lab]:
    """The session's notebook, open in the page, its host cell run, and a kernel client of the tests' own."""
    import nbformat
    from jupyter_client import BlockingKernelClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(HOST_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(lab["root"] / "edit.ipynb"))
    page.goto(f"{lab['base']}/lab/tree/edit.ipynb?token={lab['token']}")
    kernel_id = idle_kernel(page)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    kc = BlockingKernelClient()
    kc.load_connection_file(str(lab["runtime"] / f"kernel-{kernel_id}.json"))
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    deadline = time.monotonic() + 90
    while kernel_eval(kc, "'host' in globals()") != "True":
        assert time.monotonic() < deadline, "the host cell did not run"
        time.sleep(0.2)
    try:
        yield Lab(page, kc, lab["root"])
    finally:
        kc.stop_channels()


@pytest.fixture
def nb(notebook: Lab, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The notebook for one test; a failure leaves a screenshot and the console behind, named after the test."""
    yield notebook
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        notebook.shot(f"failure-{request.node.name}")
        (ARTIFACTS / f"console-{request.node.name}.log").write_text("\n".join(notebook.page.console_lines))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep
