"""The simulator kit: every fault switch against a running simulator over real HTTP, on both platforms; the serve
command as a script uses it; and no simulator module borrows the client's wire code."""

from __future__ import annotations

import ast
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import annotebook as ab
from annotebook.testing import Faults, Simulator, start
from annotebook.testing.kit import Cursors, UrlSigner, crc32c_b64

from .conftest import NEXUS_KEY, VI_KEY

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Platform:
    """One simulator and what a test needs of its wire: a client, a read, a write and whether that write landed."""

    sim: Simulator
    client: Callable[[], httpx.Client]
    read_path: str
    write: Callable[[httpx.Client, str], httpx.Response]  # writes a marker value
    landed: Callable[[str], bool]  # whether the write of that marker is in the state
    error_code: Callable[[dict[str, Any]], str]


def _nexus(sim: Simulator) -> Platform:
    state = sim.state
    pid, asset = state.project_id, next(iter(state.assets))

    def write(c: httpx.Client, marker: str) -> httpx.Response:
        body = {"assetId": asset, "tag": "circle", "boundType": "Classification", "bound": [],
                "attributes": [{"name": "marker", "value": marker}]}  # fmt: skip
        return c.post(f"/projects/{pid}/annotations", json=body)

    def landed(marker: str) -> bool:
        return any(a["value"] == marker for ann in state.annotations.values() for a in ann["_attributes"])

    return Platform(
        sim,
        lambda: httpx.Client(base_url=sim.url, headers={"Secret-Key": NEXUS_KEY}, timeout=10),
        f"/projects/{pid}",
        write,
        landed,
        lambda body: str(body["code"]),
    )


def _vi(sim: Simulator) -> Platform:
    state = sim.state
    ds = state.dataset("shapes")
    org, asset = state.org_id, next(iter(ds.assets))
    victim = next(iter(ds.by_asset[asset]))
    path = f"/workspaces/{org}/datasets/{org}_{ds.id}"

    def write(c: httpx.Client, marker: str) -> httpx.Response:
        body = {"metadata": {"attributes": {"marker": marker}}}
        return c.patch(f"{path}/assets/{asset}/annotations/{victim}", json=body)

    def landed(marker: str) -> bool:
        return bool(ds.annotations[victim]["metadata"]["attributes"].get("marker") == marker)

    headers = {"Authorization": f"Bearer {VI_KEY}", "Organization-Id": org}
    return Platform(
        sim,
        lambda: httpx.Client(base_url=sim.url, headers=headers, timeout=10),
        path,
        write,
        landed,
        lambda body: str(body["error"]),
    )


@pytest.fixture(scope="module", params=["nexus", "vi"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One simulator per platform for the module (2 sample assets); every test leaves its faults as it found them."""
    name = request.param
    key = NEXUS_KEY if name == "nexus" else VI_KEY
    sim = start(name, key=key, n_assets=2, image_dir=tmp_path_factory.mktemp(f"{name}-kit"))
    try:
        yield (_nexus if name == "nexus" else _vi)(sim)
    finally:
        sim.stop()


@pytest.fixture
def faults(platform: Platform) -> Iterator[Faults]:
    yield platform.sim.state.faults
    platform.sim.state.faults.update(Faults().as_dict() | {"writes": platform.sim.state.faults.writes})


def _marker() -> str:
    return f"m{time.perf_counter_ns()}"


# -- the fault switches, over HTTP ------------------------------------------------------------------------------
def test_fail_after_applies_the_write_then_answers_500(platform, faults):
    with platform.client() as c:
        assert c.post("/_sim/faults", json={"fail_after": 2}).json()["fail_after"] == 2
        first, second, third = _marker(), _marker(), _marker()
        assert platform.write(c, first).status_code == 200 and platform.landed(first)
        failed = platform.write(c, second)
        assert failed.status_code == 500 and platform.error_code(failed.json()) == "InternalServerError"
        assert platform.landed(second)  # it landed; the client cannot tell
        assert faults.fail_after is None
        assert platform.write(c, third).status_code == 200  # spent: the next write is served


def test_reject_after_answers_503_and_applies_nothing(platform, faults):
    with platform.client() as c:
        c.post("/_sim/faults", json={"reject_after": 1})
        marker = _marker()
        rejected = platform.write(c, marker)
        assert rejected.status_code == 503 and platform.error_code(rejected.json()) == "ServiceUnavailableError"
        assert not platform.landed(marker)
        again = platform.write(c, marker)
        assert again.status_code == 200 and platform.landed(marker)


def test_cut_after_applies_the_write_and_drops_the_connection(platform, faults):
    with platform.client() as c:
        c.post("/_sim/faults", json={"cut_after": 1})
        marker = _marker()
        with pytest.raises(httpx.RemoteProtocolError):
            platform.write(c, marker)
    assert platform.landed(marker)


def test_truncate_sends_half_the_json_of_2xx_answers(platform, faults):
    with platform.client() as c:
        whole = c.get(platform.read_path).content
        c.post("/_sim/faults", json={"truncate": 2})
        missing = c.get(platform.read_path + "/no-such-thing")
        assert missing.status_code == 404 and missing.json()  # an error answer is whole and not counted
        for _ in range(2):
            cut = c.get(platform.read_path)
            assert cut.status_code == 200 and cut.content == whole[: len(whole) // 2]
            assert int(cut.headers["content-length"]) == len(cut.content)
            with pytest.raises(json.JSONDecodeError):
                json.loads(cut.content)
        assert c.get(platform.read_path).json()  # two, then whole answers again
        assert faults.truncate == 0


def test_rate_limit_answers_429_with_retry_after_then_serves(platform, faults):
    with platform.client() as c:
        c.post("/_sim/faults", json={"rate_limit": 2, "retry_after": 1.5})
        marker = _marker()
        for _ in range(2):
            limited = platform.write(c, marker)
            assert limited.status_code == 429 and limited.headers["Retry-After"] == "1.5"
            assert platform.error_code(limited.json()) == "TooManyRequestsError"
        assert not platform.landed(marker)
        assert platform.write(c, marker).status_code == 200 and platform.landed(marker)


def test_down_answers_503_and_latency_slows_every_request(platform, faults):
    with platform.client() as c:
        c.post("/_sim/faults", json={"down": 1, "latency_ms": 150})
        began = time.perf_counter()
        assert c.get(platform.read_path).status_code == 503
        assert c.get(platform.read_path).status_code == 200
        assert time.perf_counter() - began >= 0.3


def test_writes_are_counted_and_a_rejected_request_is_not_a_write(platform, faults):
    with platform.client() as c:
        before = faults.writes
        c.get(platform.read_path)
        c.post("/_sim/faults", json={"rate_limit": 1})
        platform.write(c, _marker())  # 429: never reached the simulator
        platform.write(c, _marker())
        assert faults.writes == before + 1


def test_unknown_switches_and_bad_values_are_refused_and_change_nothing(platform, faults):
    with platform.client() as c:
        for body in ({"explode": 1}, {"truncate": -1}, {"fail_after": "2"}, {"latency_ms": True}, [1]):
            refused = c.post("/_sim/faults", json=body)
            assert refused.status_code == 400 and platform.error_code(refused.json()) == "BadRequestError"
        assert c.get("/_sim/faults").json() == faults.as_dict()
    assert faults.truncate == 0 and faults.fail_after is None
    with pytest.raises(ValueError, match="unknown fault switches"):
        faults.update({"cut_after": 1, "explode": 1})
    assert faults.cut_after is None


def test_two_write_faults_on_one_write_reject_wins_and_both_are_spent():
    faults = Faults()
    faults.update({"reject_after": 1, "fail_after": 1, "cut_after": 2, "down_after_cut": 3})
    assert faults.take_write() == "reject_after" and faults.fail_after is None and faults.cut_after == 1
    assert faults.take_write() == "cut_after" and faults.down == 3 and faults.writes == 2


# -- the kit's own pieces -------------------------------------------------------------------------------------------
def test_crc32c_cursors_and_signed_urls():
    assert crc32c_b64(b"123456789") == base64_of(0xE3069283)  # the CRC-32C check value
    assert crc32c_b64(b"") == base64_of(0)
    for digits in (16, 24):
        cursors = Cursors(digits)
        assert cursors.decode(cursors.encode(123_456)) == 123_456 and "=" not in cursors.encode(1)
        with pytest.raises(ValueError, match="invalid page cursor"):
            cursors.decode("not a cursor!")
    items = list(range(0, 20, 2))
    first = Cursors().page(items, int, None, 4)
    assert first.items == [0, 2, 4, 6] and first.prev is None
    second = Cursors().page(items, int, first.next, 4)
    assert second.items == [8, 10, 12, 14] and Cursors().page(items, int, second.prev, 4).items == first.items
    signer = UrlSigner(b"k", param="expiry", millis=True)
    query, expiry = signer.sign("file", "a/b", 60)
    params = dict(p.split("=") for p in query.split("&"))
    assert int(params["expiry"]) == expiry > time.time() * 1000 and signer.valid("file", "a/b", params)
    assert not signer.valid("upload", "a/b", params) and not signer.valid("file", "a/c", params)
    forged = ("1" if params["signature"][0] == "0" else "0") + params["signature"][1:]
    assert not signer.valid("file", "a/b", {**params, "signature": forged})
    expired, _ = signer.sign("file", "a/b", -1)
    assert not signer.valid("file", "a/b", dict(p.split("=") for p in expired.split("&")))


def base64_of(crc: int) -> str:
    import base64

    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def test_no_simulator_module_imports_the_backends():
    """A simulator decodes and encodes the wire with its own code: borrowing the client's would hide its bugs."""
    folder = ROOT / "annotebook" / "testing"
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against annotebook.testing
                    parent = ["annotebook", "testing"][: max(2 - (node.level - 1), 0)]
                    base = ".".join([*parent, *([base] if base else [])])
                names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            bad = [n for n in names if n == "annotebook.backends" or n.startswith("annotebook.backends.")]
            if bad:
                offenders.append(f"{path.name}:{node.lineno} imports {bad[0]}")
    assert not offenders, offenders


def test_the_simulators_name_the_key_variables_the_backends_read():
    from annotebook.backends import nexus, vi
    from annotebook.testing import nexus_sim, vi_sim

    assert nexus_sim.KEY_ENV == nexus.KEY_ENV and vi_sim.KEY_ENV == vi.KEY_ENV


# -- serve, as a script uses it ---------------------------------------------------------------------------------
def _first_line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The first line the process prints, or a failure naming what it wrote to stderr."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"serve printed nothing in {timeout} s")
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"serve exited without a line: {err}")
    return line


@pytest.mark.slow
@pytest.mark.parametrize("platform_name", ["nexus", "vi"])
def test_serve_json_on_port_0_is_all_ab_connect_needs(platform_name, monkeypatch):
    command = [sys.executable, "-m", "annotebook.testing", "serve", platform_name, "--port", "0", "--json",
               "--assets", "3"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = _first_line(proc)
        info = json.loads(line)
        assert line.endswith("\n") and "\n" not in line.rstrip("\n")
        assert set(info) == {"url", "platform", "connect", "dataset", "key_env"} and info["platform"] == platform_name
        assert info["url"].startswith("http://127.0.0.1:") and not info["url"].endswith(":0")
        assert info["connect"]["endpoint"] == info["url"]
        assert set(info["connect"]) == ({"project", "endpoint"} if platform_name == "nexus" else
                                        {"organization", "endpoint"})  # fmt: skip
        monkeypatch.setenv(info["key_env"], "dtvi_" + "k" * 98 if platform_name == "vi" else "any-key")
        conn = ab.connect(platform_name, **info["connect"])
        anns = conn.annotations(info["dataset"])
        state = httpx.get(info["url"] + "/_sim/state").json()
        expected = state["annotations"] if platform_name == "nexus" else state["datasets"]["shapes"]["annotations"]
        assert len(anns) == expected > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
