"""The backends the contract suite runs on: one `Platform` per backend, behind the one parametrized fixture.

Every test of this folder takes ``platform`` and runs once per backend. A new platform adds one factory to
`FACTORIES` (its simulator, its connection, the kind of rows it edits) and nothing else. A test is skipped only for
a capability the backend declares it lacks (`Platform.skip_unless`), and the skip names that capability.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import annotebook as ab
from annotebook import schema

from ..conftest import CLARIFAI_PAT, NEXUS_KEY, PICTOGRAPH_KEY, SA_TOKEN, VI_KEY
from .edits import EDITS, Content, Edits, live

DRIVER = Path(__file__).with_name("driver.py")

#: what a fresh load is compared on: every content column a platform keeps (ids and revisions apart)
COMPARED = ("asset", "kind", "label", "author", "status", "x0", "y0", "x1", "y1", "rotation", "points", "visibility",
            "value", "text", "answer", "parent", "span_start", "span_end", "attributes")  # fmt: skip


@dataclass
class Platform:
    """One backend as the contract suite sees it: how to connect (here and from a subprocess) and what to edit."""

    name: str
    dataset: str
    #: JSON, no key: ``{"backend", "dataset", "options"}``; a subprocess gets the key from `env`
    connect_kwargs: dict[str, Any]
    edits: Edits
    key: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    faults: Any = None  # the simulator's `Faults`; None for the local store
    #: significant digits a normalised coordinate keeps on a platform that stores pixels (None: every digit)
    digits: int | None = None

    def connect(self) -> ab.Connection:
        """A new connection with a new backend object, as a second notebook would open."""
        options = dict(self.connect_kwargs["options"], **({"key": self.key} if self.key else {}))
        return ab.connect(self.connect_kwargs["backend"], dataset=self.dataset, **options)

    def load(self, conn: ab.Connection) -> pd.DataFrame:
        """The annotations of the dataset, every page."""
        return conn.annotations(self.dataset)

    def fresh(self) -> pd.DataFrame:
        """What the platform holds now, by a load through a new connection."""
        return self.load(self.connect())

    def pick(self, frame: pd.DataFrame, not_on: tuple[str, ...] = ()) -> str:
        return self.edits.pick(frame, not_on)

    def edit(self, frame: pd.DataFrame, row_id: str, variant: int) -> Content:
        return self.edits.edit(frame, row_id, variant)

    def add(self, frame: pd.DataFrame) -> str:
        return self.edits.add(frame)

    @cached_property
    def capabilities(self) -> Any:
        return self.connect().backend.capabilities

    def declares(self, capability: str) -> Any:
        """The value of ``capability`` in the backend's `Capabilities`."""
        return getattr(self.capabilities, capability)

    def skip_unless(self, capability: str, why: str, wanted: Any = True) -> None:
        """Skip the test when the backend declares ``capability`` other than ``wanted``, naming it."""
        value = self.declares(capability)
        if value != wanted:
            pytest.skip(f"{self.name} declares {capability}={value}: {why}")

    def switch(self, name: str) -> Any:
        """The simulator's faults, checked to have the switch ``name``."""
        if not hasattr(self.faults, name):
            pytest.fail(f"the {self.name} simulator's Faults has no {name!r} switch")
        return self.faults

    def process_env(self) -> dict[str, str]:
        """The environment of a subprocess: this one's (``ANNOTEBOOK_HOME`` included) plus the key."""
        return {**os.environ, **self.env}


def contents(frame: pd.DataFrame, digits: int | None = None) -> list[tuple[str, ...]]:
    """The live rows' content in normal form, sorted: what a fresh load must show after a push.

    ``digits``: significant digits a platform that stores pixels keeps of a normalised coordinate (its
    `Platform.digits`); None compares exactly.
    """
    rows = live(frame)[list(COMPARED)].to_dict("records")

    def shown(column: str, value: Any) -> str:
        v = schema.normal_value(column, value)
        if digits is not None and isinstance(v, float):
            return f"{v:.{digits}g}"
        if digits is not None and column == "points" and v is not None:
            return repr(tuple(tuple(None if x is None else f"{x:.{digits}g}" for x in part) for part in v))
        return repr(v)

    return sorted(tuple(shown(c, r[c]) for c in COMPARED) for r in rows)


def ids_and_revs(frame: pd.DataFrame) -> dict[str, str]:
    """Live row id -> revision."""
    rows = live(frame)
    return dict(zip(rows["id"].astype(str), rows["rev"].astype(str), strict=True))


def driver_job(platform: Platform, tmp_path: Path, name: str, **job: Any) -> Path:
    """Write a job for `driver.py` (connection options, the kind of rows edited, the rest) and return its path."""
    path = tmp_path / f"{name}.job.json"
    body = {"connect": platform.connect_kwargs, "edits": platform.edits.kind, **job}
    path.write_text(json.dumps(body))
    return path


def _log(job: Path, *args: str) -> Path:
    return job.with_name(".".join([job.name.removesuffix(".json"), *args, "log"]))


def start_driver(platform: Platform, job: Path, *args: str) -> subprocess.Popen[str]:
    """Start `driver.py` on ``job`` (and ``args``) in a fresh Python; its output goes to a log beside the job."""
    with _log(job, *args).open("w") as log:
        return subprocess.Popen(
            [sys.executable, str(DRIVER), str(job), *args],
            env=platform.process_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def driver_log(job: Path, *args: str) -> str:
    """The end of what the driver run on ``job`` (and ``args``) printed."""
    path = _log(job, *args)
    return path.read_text()[-3000:] if path.exists() else ""


def run_driver(platform: Platform, job: Path, timeout: float = 120) -> dict[str, Any]:
    """Run `driver.py` on ``job`` to the end; its JSON result."""
    proc = start_driver(platform, job)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"the driver failed ({proc.returncode}):\n{driver_log(job)}"
    result: dict[str, Any] = json.loads(job.with_suffix(".result.json").read_text())
    return result


# -- the platforms -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store with the sample datasets, made once and copied for each test."""
    path = tmp_path_factory.mktemp("local-template") / "store"
    ab.connect("local", path=str(path))
    return path


def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    store = tmp_path / "store"
    shutil.copytree(request.getfixturevalue("local_template"), store)
    return Platform(
        name="local",
        dataset="shapes",
        connect_kwargs={"backend": "local", "dataset": "shapes", "options": {"path": str(store)}},
        edits=EDITS["box"](),
    )


def _nexus(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    sim = request.getfixturevalue("nexus_sim")
    project = sim.state.project_id
    return Platform(
        name="nexus",
        dataset=project,
        connect_kwargs={
            "backend": "nexus",
            "dataset": project,
            "options": {"project": project, "endpoint": sim.url, "progress": False},
        },
        edits=EDITS["box"](),
        key=NEXUS_KEY,
        env={"DATATURE_SECRET_KEY": NEXUS_KEY},
        faults=sim.state.faults,
    )


def _vi(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    sim = request.getfixturevalue("vi_sim")
    options = {"organization": sim.state.org_id, "endpoint": sim.url, "progress": False}
    return Platform(
        name="vi",
        dataset="shapes",
        connect_kwargs={"backend": "vi", "dataset": "shapes", "options": options},
        edits=EDITS["grounding"](),
        key=VI_KEY,
        env={"DATATURE_VI_SECRET_KEY": VI_KEY},
        faults=sim.state.faults,
    )


def _clarifai(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    sim = request.getfixturevalue("clarifai_sim")
    options = {"user_id": sim.state.user_id, "app_id": sim.state.app_id, "base_url": sim.url, "progress": False}
    return Platform(
        name="clarifai",
        dataset=sim.state.app_id,
        connect_kwargs={"backend": "clarifai", "dataset": sim.state.app_id, "options": options},
        edits=EDITS["box"](),
        key=CLARIFAI_PAT,
        env={"CLARIFAI_PAT": CLARIFAI_PAT},
        faults=sim.state.faults,
    )


def _pictograph(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    sim = request.getfixturevalue("pictograph_sim")
    options = {"base_url": sim.url, "progress": False}
    return Platform(
        name="pictograph",
        dataset=sim.state.dataset_name,
        connect_kwargs={"backend": "pictograph", "dataset": sim.state.dataset_name, "options": options},
        edits=EDITS["box"](),
        key=PICTOGRAPH_KEY,
        env={"PICTOGRAPH_API_KEY": PICTOGRAPH_KEY},
        faults=sim.state.faults,
        digits=12,  # pixels: a normalised float comes back within an ulp or two, not always to the bit
    )


def _superannotate(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    sim = request.getfixturevalue("superannotate_sim")
    options = {"url": sim.url, "progress": False}
    return Platform(
        name="superannotate",
        dataset=sim.state.project_name,
        connect_kwargs={"backend": "superannotate", "dataset": sim.state.project_name, "options": options},
        edits=EDITS["box"](),
        key=SA_TOKEN,
        env={"SA_TOKEN": SA_TOKEN},
        faults=sim.state.faults,
        digits=12,  # pixels: a normalised float comes back within an ulp or two, not always to the bit
    )


def _labelstudio(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    """The real Label Studio server of the session, a new project per test, behind a fault proxy of its own."""
    from annotebook.testing.labelstudio_proxy import start_proxy
    from annotebook.testing.labelstudio_server import sample_project

    server = request.getfixturevalue("labelstudio_server")
    project = str(sample_project(server, n_assets=8, title=f"contract {request.node.name}"[:50], image_dir=tmp_path))
    proxy = start_proxy(server.url)
    request.addfinalizer(proxy.stop)
    return Platform(
        name="labelstudio",
        dataset=project,
        connect_kwargs={
            "backend": "labelstudio",
            "dataset": project,
            "options": {"url": proxy.url, "project": project, "progress": False},
        },
        edits=EDITS["box"](),
        key=server.token,
        env={"LABEL_STUDIO_API_KEY": server.token},
        faults=proxy.faults,
        digits=12,  # percent: a normalised float comes back within an ulp or two, not always to the bit
    )


#: one entry per platform: everything else in this folder is shared
FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], Platform]] = {
    "local": _local,
    "nexus": _nexus,
    "vi": _vi,
    "clarifai": _clarifai,
    "pictograph": _pictograph,
    "superannotate": _superannotate,
    "labelstudio": _labelstudio,
}


@pytest.fixture(params=sorted(FACTORIES))
def platform(request: pytest.FixtureRequest, tmp_path: Path) -> Platform:
    """Each backend in turn, on a fresh store or a fresh simulator (function scope)."""
    return FACTORIES[request.param](request, tmp_path)
