"""Where annotebook keeps its files: ``ANNOTEBOOK_HOME``, else the per-user data directory."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The annotebook home directory (created on first use)."""
    env = os.environ.get("ANNOTEBOOK_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("annotebook", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path
