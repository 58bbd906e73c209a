"""Loading 2,000 SuperAnnotate items of 25 instances each: annotebook against the SDK's own bulk ``get_annotations``,
in one run (by hand, not collected).

    python tests/bench/bench_superannotate.py [--items 2000 --instances 25 --latency-ms 20 --rounds 2]

Each contestant gets its own simulator process (``python -m annotebook.testing serve superannotate``, a synthetic
project of boxes, the same seed) with a latency added to every request, standing for the network. annotebook loads
the project's root folder into an annotations frame (``conn.annotations("shapes")``: the item search, the size
classification, then ``workers`` streams at once and the rows built). The SDK (``superannotate==4.6.2``, in the
cached venv of ``tests/backends/test_superannotate_sdk.py``) runs ``SAClient.get_annotations("shapes")``, its
documented bulk path: the same item search and classification, then the server's small groups streamed
``MAX_COROUTINE_COUNT`` (8) at a time; it returns the JSON dicts (no table). Both are timed around the one call, in
their own process, after a warm-up load of one item each (their lazy imports, client set-up and the project's
lookup left out; the server's encoding of the 2,000 items is still ahead of both). Prints the times, the best of
``--rounds``, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import _simulators  # beside this script (run as `python tests/bench/...`)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-superannotate=1"

SDK_DRIVER = r"""
import json, os, sys, time
os.environ["SA_VERSION_CHECK"] = "false"
os.environ["SA_SKIP_METRICS"] = "true"
BASE = sys.argv[1]
import superannotate
for name, mod in list(sys.modules.items()):
    if name.endswith("infrastructure.serviceprovider") and hasattr(mod, "ServiceProvider"):
        mod.ServiceProvider._get_work_management_url = staticmethod(lambda c: f"{BASE}/wm/api/v1/")
        mod.ServiceProvider._get_item_service_url = staticmethod(lambda c: f"{BASE}/item/api/v1/")
    if name.endswith("infrastructure.services.annotation") and hasattr(mod, "AnnotationService"):
        mod.AnnotationService.get_assets_provider_url = (
            lambda self, version=None: f"{BASE}/assets/api/{version or self.ASSETS_PROVIDER_VERSION}/")
sa = superannotate.SAClient(config={"SA_TOKEN": os.environ["SA_TOKEN"], "SA_URL": BASE})
sa.get_annotations("shapes", ["synthetic-000000.png"])  # warm: imports, sessions, the project's lookup
start = time.perf_counter()
docs = sa.get_annotations("shapes")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "items": len(docs), "instances": sum(len(d["instances"]) for d in docs)}))
"""

ANNOTEBOOK_DRIVER = r"""
import json, os, sys, tempfile, time
os.environ["ANNOTEBOOK_HOME"] = tempfile.mkdtemp()
import annotebook as ab
conn = ab.connect("superannotate", project="shapes", url=sys.argv[1], progress=False)
conn.annotations("shapes", assets=[str(conn.assets("shapes")["asset"].iloc[0])])  # warm: imports, the client
start = time.perf_counter()
anns = conn.annotations("shapes")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "items": int(anns["asset"].nunique()), "instances": len(anns)}))
"""


def run(python: str, script: str, items: int, instances: int, latency_ms: float) -> dict[str, Any]:
    """``script`` against a fresh simulator of its own (stopped after); its JSON line."""
    proc, url, _ = _simulators.serve("superannotate", TOKEN, "--latency-ms", str(latency_ms), "--assets", str(items),
                                     "--annotations", str(items * instances))  # fmt: skip
    try:
        env = {**os.environ, "SA_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([python, "-c", script, url], capture_output=True, text=True, timeout=3600, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"driver failed:\n{out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--instances", type=int, default=25)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.backends.test_superannotate_sdk import sdk_python

    sdk = str(sdk_python())
    ours, theirs = [], []
    for n in range(args.rounds):  # alternated, so a load on the shared machine falls on both
        ours.append(run(sys.executable, ANNOTEBOOK_DRIVER, args.items, args.instances, args.latency_ms))
        theirs.append(run(sdk, SDK_DRIVER, args.items, args.instances, args.latency_ms))
        print(f"  ... round {n + 1}: annotebook {ours[-1]['seconds']:.2f}s, SDK {theirs[-1]['seconds']:.2f}s",
              file=sys.stderr, flush=True)  # fmt: skip
    want = {"items": args.items, "instances": args.items * args.instances}
    for r in ours + theirs:
        assert {k: r[k] for k in want} == want, r
    a, s = min(r["seconds"] for r in ours), min(r["seconds"] for r in theirs)
    print(f"{args.items:,} items x {args.instances} instances ({want['instances']:,}), {args.latency_ms:g} ms a "
          f"request, each load against its own simulator process; best of {args.rounds}")  # fmt: skip
    print(f"  {'annotebook conn.annotations (a frame)':44} {a:>8.2f} s   all: {[round(r['seconds'], 2) for r in ours]}")
    print(f"  {'SDK get_annotations (JSON dicts)':44} {s:>8.2f} s   all: {[round(r['seconds'], 2) for r in theirs]}")
    print(f"  ratio SDK / annotebook: {s / a:.2f}x")


if __name__ == "__main__":
    main()
