"""A real JupyterLab on 127.0.0.1 (fresh token, config, runtime and settings dirs) and headless Debian Chromium.

The browser test runs whenever /usr/bin/chromium exists; when it does not, it is skipped with a loud reason, unless
ANNOTEBOOK_REQUIRE_BROWSER=1 (set by CI), which turns the skip into a failure.
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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """JupyterLab serving ``tmp_path/root`` with a kernel whose ANNOTEBOOK_HOME is ``tmp_path/home``."""
    require_browser()
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
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            "--LabApp.extension_manager=readonly",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.jpserver_extensions={'jupyter_lsp': False, 'jupyter_server_terminals': False}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
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
                raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "server.log").read_text()) from None
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
        shutil.copy(tmp_path / "server.log", ARTIFACTS / "server.log")


@pytest.fixture
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
