"""Platform simulators for tests and offline use (extra ``annotebook[sim]``: Starlette + uvicorn).

``python -m annotebook.testing serve nexus --port 8765 [--key K]`` serves a Datature Nexus simulator on 127.0.0.1,
seeded with the sample "shapes" project; point a backend at it with ``endpoint="http://127.0.0.1:8765"``.
``serve vi`` serves a Datature Vi simulator (an organization with a phrase-grounding "shapes" dataset and a vqa
"shapesqa" one) the same way.

Examples
--------
>>> from annotebook.testing import start  # doctest: +SKIP
>>> sim = start("nexus")                   # doctest: +SKIP
>>> sim.url, sim.state.project_id          # doctest: +SKIP
>>> vi = start("vi", key="dtvi_" + "x" * 98)  # doctest: +SKIP
>>> vi.state.org_id, vi.state.dataset_ids    # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._server import Faults, RunningServer, serve_in_thread

__all__ = ["SIMULATORS", "Faults", "Simulator", "start"]

SIMULATORS = ("nexus", "vi")


@dataclass
class Simulator:
    """A running simulator: its URL, its in-memory state (with ``faults``) and the server to stop."""

    url: str
    state: Any
    server: RunningServer

    def stop(self) -> None:
        self.server.stop()


def start(platform: str, host: str = "127.0.0.1", port: int = 0, **options: Any) -> Simulator:
    """Start the ``platform`` simulator in a background thread (port 0: an ephemeral one)."""
    app: Any
    if platform == "nexus":
        from .nexus_sim import NexusState
        from .nexus_sim import make_app as nexus_app

        state: Any = NexusState(**options)
        app = nexus_app(state)
    elif platform == "vi":
        from .vi_sim import ViState
        from .vi_sim import make_app as vi_app

        state = ViState(**options)
        app = vi_app(state)
    else:
        raise ValueError(f"no simulator for {platform!r}; known: {list(SIMULATORS)}")
    server = serve_in_thread(app, host=host, port=port)
    return Simulator(url=server.url, state=state, server=server)
