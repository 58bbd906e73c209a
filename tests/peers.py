"""Peer libraries (pycocotools, supervision, globox) in their own cached virtual environment.

Their pins may clash with ours, so they never enter the project's environment: the venv is built once under
``$ANNOTEBOOK_TEST_CACHE`` (default ``~/.cache/annotebook-test``) and reused by later runs and by CI; a test hands
it a script and reads back JSON.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PEERS = ("pycocotools==2.0.11", "supervision==0.31.2", "globox==2.9.0", "orjson")


def cache_dir() -> Path:
    root = Path(os.environ.get("ANNOTEBOOK_TEST_CACHE", Path.home() / ".cache" / "annotebook-test"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cached_venv(name: str, packages: tuple[str, ...]) -> Path:
    """The Python of a venv holding ``packages``, built once under the cache (a file lock keeps runs from racing).

    Its folder is named after ``name`` and a hash of ``packages``, so a change of pins builds a new one.
    """
    key = hashlib.sha256("\n".join(packages).encode()).hexdigest()[:12]
    venv = cache_dir() / f"{name}-{key}"
    python = venv / "bin" / "python"
    with open(cache_dir() / f"{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
            (venv / ".complete").write_text("\n".join(packages))
    return python


def peer_python() -> Path:
    """The Python of the peers' venv."""
    return cached_venv("peers", PEERS)


def run_peer(script: str, *args: str, timeout: float = 600) -> Any:
    """Run ``script`` in the peers' venv with ``args``; it prints one JSON document, which is returned."""
    run = subprocess.run([str(peer_python()), "-c", script, *args], capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise AssertionError(f"peer script failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout)
