"""Simulators of the remote platforms, served over real HTTP on 127.0.0.1 for the backend tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from annotebook.testing import Simulator, start

NEXUS_KEY = "sim-secret-key-7f3a9c"
#: a key of the shape the Vi SDK checks locally: "dtvi_" and 98 characters
VI_KEY = "dtvi_" + ("sim0123456789abcdef" * 6)[:98]
CLARIFAI_PAT = "sim-clarifai-pat-4e1b7d"
PICTOGRAPH_KEY = "pk_sim_pictograph_5c2e91"
#: a legacy SuperAnnotate SDK token: "<name>=<team id>"
SA_TOKEN = "sim-superannotate-7d41c2=1"


def _serve(platform: str, key: str, tmp: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A fresh simulator of ``platform`` (8 sample assets) on an ephemeral port, accepting only ``key``."""
    sim = start(platform, key=key, n_assets=8, image_dir=tmp.mktemp(f"{platform}-sim"))
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def nexus_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """Nexus: one project of 8 sample assets; ``NEXUS_KEY``."""
    yield from _serve("nexus", NEXUS_KEY, tmp_path_factory)


@pytest.fixture
def vi_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """Vi: 8 sample assets in "shapes" (phrase grounding) and "shapesqa" (VQA); ``VI_KEY``."""
    yield from _serve("vi", VI_KEY, tmp_path_factory)


@pytest.fixture
def clarifai_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """Clarifai: 8 sample inputs in app "shapes"; ``CLARIFAI_PAT``."""
    yield from _serve("clarifai", CLARIFAI_PAT, tmp_path_factory)


@pytest.fixture
def pictograph_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """Pictograph: 8 sample images in dataset "shapes"; ``PICTOGRAPH_KEY``."""
    yield from _serve("pictograph", PICTOGRAPH_KEY, tmp_path_factory)


@pytest.fixture
def superannotate_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """SuperAnnotate: 8 sample items in the root of project "shapes" (2 more in "shapes/folder1"); ``SA_TOKEN``."""
    yield from _serve("superannotate", SA_TOKEN, tmp_path_factory)


@pytest.fixture(scope="session")
def labelstudio_server() -> Iterator[Any]:
    """A real Label Studio server for the whole session (its cached venv and template are made on first use)."""
    from annotebook.testing.labelstudio_server import start_server

    server = start_server()
    print(f"Label Studio: {server.timings}")
    try:
        yield server
    finally:
        server.stop()
