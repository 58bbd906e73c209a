"""Platform simulators for tests and offline use (extra ``annotebook[sim]``: Starlette + uvicorn).

``python -m annotebook.testing serve nexus --port 8765 [--key K] [--json]`` serves a Datature Nexus simulator on
127.0.0.1, seeded with the sample "shapes" project, and prints one line saying how ``ab.connect`` reaches it.
``serve vi`` serves a Datature Vi simulator (an organization with a phrase-grounding "shapes" dataset and a vqa
"shapesqa" one) the same way.

A simulator is its state module (what the platform holds), its routes (the wire) and the shared `kit` (error
bodies, keys, paging, signed URLs, the app factory) and `_server` (faults, serving). Simulators encode and decode
the wire with their own code, never with the backends' (a test checks that no module here imports
``annotebook.backends``), so a bug in a client cannot be cancelled out by the same bug in its simulator.

Examples
--------
>>> from annotebook.testing import start  # doctest: +SKIP
>>> sim = start("nexus")                   # doctest: +SKIP
>>> sim.url, sim.state.project_id          # doctest: +SKIP
>>> sim.connect_info().connect             # doctest: +SKIP
{'project': 'proj_...', 'endpoint': 'http://127.0.0.1:...'}
>>> vi = start("vi", key="dtvi_" + "x" * 98)  # doctest: +SKIP
>>> vi.state.org_id, vi.state.dataset_ids    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._server import Faults, RunningServer, serve_in_thread

if TYPE_CHECKING:
    from .kit import ConnectInfo

__all__ = ["SIMULATORS", "Faults", "Simulator", "start"]

SIMULATORS = ("nexus", "vi", "pictograph", "clarifai", "superannotate")
#: each simulator module's state class
_STATES = {"nexus": "NexusState", "vi": "ViState", "pictograph": "PictographState", "clarifai": "ClarifaiState"}
_STATES["superannotate"] = "SuperAnnotateState"


@dataclass
class Simulator:
    """A running simulator: its URL, its in-memory state (with ``faults``) and the server to stop."""

    url: str
    state: Any
    server: RunningServer
    platform: str = ""

    def stop(self) -> None:
        self.server.stop()

    def connect_info(self) -> ConnectInfo:
        """What ``ab.connect`` needs to reach this simulator (the key aside), and the sample dataset's id."""
        return _module(self.platform).connect_info(self.state, self.url)


def _module(platform: str) -> Any:
    """The simulator module of ``platform`` (imported late: Starlette is an extra)."""
    if platform == "nexus":
        from . import nexus_sim

        return nexus_sim
    if platform == "vi":
        from . import vi_sim

        return vi_sim
    if platform == "pictograph":
        from . import pictograph_sim

        return pictograph_sim
    if platform == "clarifai":
        from . import clarifai_sim

        return clarifai_sim
    if platform == "superannotate":
        from . import superannotate_sim

        return superannotate_sim
    raise ValueError(f"no simulator for {platform!r}; known: {list(SIMULATORS)}")


def start(
    platform: str, host: str = "127.0.0.1", port: int = 0, log_level: str = "critical", **options: Any
) -> Simulator:
    """Start the ``platform`` simulator in a background thread (port 0: an ephemeral one); ``options`` go to its
    state (``key=``, ``n_assets=``, ``n_annotations=``, ``image_dir=``, ...)."""
    module = _module(platform)
    state: Any = getattr(module, _STATES[platform])(**options)
    server = serve_in_thread(module.make_app(state), host=host, port=port, log_level=log_level)
    return Simulator(url=server.url, state=state, server=server, platform=platform)
