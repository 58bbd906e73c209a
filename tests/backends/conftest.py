"""Simulators of the remote platforms, served over real HTTP on 127.0.0.1 for the backend tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from annotebook.testing import Simulator, start

NEXUS_KEY = "sim-secret-key-7f3a9c"


@pytest.fixture
def nexus_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A fresh Nexus simulator (8 sample assets) on an ephemeral port, accepting only ``NEXUS_KEY``."""
    sim = start("nexus", key=NEXUS_KEY, n_assets=8, image_dir=tmp_path_factory.mktemp("nexus-sim"))
    try:
        yield sim
    finally:
        sim.stop()


#: a key of the shape the Vi SDK checks locally: "dtvi_" and 98 characters
VI_KEY = "dtvi_" + ("sim0123456789abcdef" * 6)[:98]


@pytest.fixture
def vi_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A fresh Vi simulator (8 sample assets in "shapes" and "shapesqa") on an ephemeral port, accepting ``VI_KEY``."""
    sim = start("vi", key=VI_KEY, n_assets=8, image_dir=tmp_path_factory.mktemp("vi-sim"))
    try:
        yield sim
    finally:
        sim.stop()


CLARIFAI_PAT = "sim-clarifai-pat-4e1b7d"


@pytest.fixture
def clarifai_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A fresh Clarifai simulator (8 sample inputs in app "shapes") on an ephemeral port, accepting ``CLARIFAI_PAT``."""
    sim = start("clarifai", key=CLARIFAI_PAT, n_assets=8, image_dir=tmp_path_factory.mktemp("clarifai-sim"))
    try:
        yield sim
    finally:
        sim.stop()


PICTOGRAPH_KEY = "pk_sim_pictograph_5c2e91"


@pytest.fixture
def pictograph_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A fresh Pictograph simulator (8 sample images in dataset "shapes") on an ephemeral port, accepting only
    ``PICTOGRAPH_KEY``."""
    sim = start("pictograph", key=PICTOGRAPH_KEY, n_assets=8, image_dir=tmp_path_factory.mktemp("pictograph-sim"))
    try:
        yield sim
    finally:
        sim.stop()
