"""The sharded, concurrent annotation listing returns exactly what one sequential listing returns (real HTTP)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pandas as pd
import pytest

from annotebook.backends.nexus import NexusBackend
from annotebook.testing import Simulator, start

from .conftest import NEXUS_KEY


@pytest.fixture
def big_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A synthetic project: 130 assets (several shards), 1,200 boxes spread over them at random."""
    sim = start(
        "nexus", key=NEXUS_KEY, n_assets=130, n_annotations=1200, image_dir=tmp_path_factory.mktemp("nexus-big")
    )
    try:
        yield sim
    finally:
        sim.stop()


def backend(sim: Simulator, **options: object) -> NexusBackend:
    return NexusBackend(sim.state.project_id, key=NEXUS_KEY, endpoint=sim.url, progress=False, **options)  # type: ignore[arg-type]


def test_concurrent_listing_is_the_sequential_listing(big_sim: Simulator) -> None:
    concurrent, sequential = backend(big_sim, page_size=9, workers=8), backend(big_sim, page_size=9, workers=1)
    project = concurrent.project
    seen: set[str] = set()
    send = concurrent._api._client.send

    def spy(*args: object, **kwargs: object) -> object:
        seen.add(threading.current_thread().name)
        return send(*args, **kwargs)  # type: ignore[arg-type]

    concurrent._api._client.send = spy  # type: ignore[method-assign]
    fast, slow = concurrent.annotations(project), sequential.annotations(project)
    assert len([t for t in seen if t.startswith("nexus-list")]) > 1  # it did run shards at once
    pd.testing.assert_frame_equal(fast, slow)

    # one unsharded listing of the project, page after page: the same rows, by asset then in the server's order
    plain = [a for page in sequential._pages(sequential._path(project, "/annotations"), []) for a in page]
    assert len(plain) == len(big_sim.state.annotations) == len(fast) == 1200
    order = {a: n for n, a in enumerate(big_sim.state.assets)}
    assert fast["id"].tolist() == [a["id"] for a in sorted(plain, key=lambda a: order[a["assetId"]])]


def test_listing_some_assets_keeps_their_order(big_sim: Simulator) -> None:
    b = backend(big_sim, page_size=5)
    wanted = list(big_sim.state.assets)[::-7]  # 19 assets, in reverse
    anns = b.annotations(b.project, wanted)
    expected = [a["id"] for asset in wanted for a in big_sim.state.annotations.values() if a["assetId"] == asset]
    assert anns["id"].tolist() == expected


def test_a_failing_shard_fails_the_listing(big_sim: Simulator) -> None:
    from annotebook.errors import BackendError

    b = backend(big_sim, page_size=50)
    b._api._sleep = lambda seconds: None  # no backoff waits
    listed = b._asset_ids

    def then_down(dataset: str) -> list[str]:
        ids = listed(dataset)
        big_sim.state.faults.update({"down": 10_000})  # every shard's request is answered 503 from here on
        return ids

    b._asset_ids = then_down  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="503"):
        b.annotations(b.project)
    big_sim.state.faults.update({"down": 0})
