"""Issue 16: a notebook run with ``%xmode Verbose`` that provokes each error, saved to disk, holds no key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from annotebook.testing import start
from tests.hardening._leaks import closed_port, echo_server

pytest.importorskip("starlette")

KEYS = {
    "nexus": "sk-nb-nexus-0123456789abcdef",
    "vi": "dtvi_" + ("nbverbose0123456789" * 6)[:98],
    "clarifai": "pat-nb-clarifai-0123456789abcdef",
    "pictograph": "pk-nb-pictograph-0123456789abcdef",
}
ARG = {"nexus": "endpoint", "vi": "endpoint", "clarifai": "base_url", "pictograph": "base_url"}


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    """Every platform's simulator (started with its key), as ab.connect arguments."""
    running = []
    out = {}
    try:
        for platform, key in KEYS.items():
            sim = start(platform, key=key, n_assets=2, image_dir=tmp_path / platform)
            running.append(sim)
            info = sim.connect_info()
            out[platform] = {**info.connect, "_dataset": info.dataset, "_env": info.key_env}
        yield out
    finally:
        for sim in running:
            sim.stop()


def _cells(sims: dict[str, dict[str, str]], echo: str, empty: str, hang: str, closed: str) -> list[str]:
    cells = ["%xmode Verbose", "import annotebook as ab"]
    for platform, connect in sims.items():
        arg, env, dataset = ARG[platform], connect["_env"], connect["_dataset"]
        args = ", ".join(f"{k}={v!r}" for k, v in connect.items() if k != arg and not k.startswith("_"))
        # the key comes from the environment, as a user's does: the notebook's source never holds it
        good = f"ab.connect({platform!r}, {args}, {arg}={{url!r}}, timeout=1)"
        load = f"conn.annotations({dataset!r})"
        cells += [
            # the key refused: AuthError (a wrong key of the same shape is sent)
            f"import os\nconn = ab.connect({platform!r}, {args}, {arg}={connect[arg]!r}, "
            f"key=os.environ[{env!r}][:-4] + 'zzzz')\n{load}",
            # the real key, then a page of the simulator cut in half: MalformedResponse quoting it
            "import httpx\n"
            f"httpx.post({connect[arg].rstrip('/') + '/_sim/faults'!r}, json={{'truncate': 3}})\n"
            f"conn = {good.format(url=connect[arg])}\n{load}",
            # server errors, retried, then ServerError
            f"httpx.post({connect[arg].rstrip('/') + '/_sim/faults'!r}, json={{'down': 20}})\n"
            f"conn = {good.format(url=connect[arg])}\nconn.backend._api.backoff = 0.01\n{load}",
            # an answer that echoes the request (its key) as text, and as JSON
            f"conn = {good.format(url=echo)}\n{load}",
            f"conn = {good.format(url=empty)}\n{load}",
            # no server, and a server that never answers
            f"conn = {good.format(url=closed)}\nconn.backend._api.retries = 0\n{load}",
            f"conn = {good.format(url=hang)}\nconn.backend._api.retries = 0\n{load}",
            "conn, conn.backend, conn.backend._api, vars(conn.backend)",
        ]
    return cells


@pytest.mark.slow
def test_verbose_tracebacks_in_a_saved_notebook_hold_no_key(
    tmp_path: Path, sims: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for platform, connect in sims.items():
        monkeypatch.setenv(connect["_env"], KEYS[platform])
    with echo_server("echo") as echo, echo_server("json-echo") as empty, echo_server("hang") as hang:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in _cells(sims, echo, empty, hang, closed_port())]
        client = NotebookClient(
            nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
        )
        client.execute()
    saved = tmp_path / "provoked.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text()
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    quiet = [c.source for c in nb.cells if "conn.annotations(" in c.source
             if not any(o.output_type == "error" for o in c.get("outputs", []))]  # fmt: skip
    assert not quiet, quiet
    names = sorted({e["ename"] for e in errors})
    # every provoked error happened, and each is one of ours
    assert len(errors) >= 6 * len(KEYS), names
    assert set(names) <= {"AuthError", "MalformedResponse", "ServerError", "ConnectionFailed", "NotFound"}, names
    assert any("Traceback" in "".join(e["traceback"]) or len(e["traceback"]) > 3 for e in errors)
    sightings = {platform: text.count(key) for platform, key in KEYS.items()}
    assert sightings == dict.fromkeys(KEYS, 0), sightings
    assert json.loads(text)  # the file is a whole notebook
