"""A platform simulator in its own process for the benchmarks: ``python -m annotebook.testing serve ...``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(platform: str, key: str, *args: str) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """Start the ``platform`` simulator with ``args``; its process, URL and ``/_sim/state`` once it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "annotebook.testing", "serve", platform, "--port", str(port), "--key", key, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            return proc, url, dict(httpx.get(f"{url}/_sim/state", timeout=2).json())
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the {platform} simulator did not start") from None
            time.sleep(0.1)
