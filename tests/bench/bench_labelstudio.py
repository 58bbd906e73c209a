"""Loading a big Label Studio project: annotebook against ``label-studio-sdk``, on the real server, in one run
(run by hand).

    python tests/bench/bench_labelstudio.py [--tasks 1000 --regions 10 --repeat 3]

The real server (`annotebook.testing.labelstudio_server`, its cached venv) gets a project of ``--tasks`` tasks
with one annotation of ``--regions`` rectangles each, imported in one request. annotebook loads it with
``conn.annotations()`` (a DataFrame of every region, in contract dtypes); the SDK (the one the server brings, in the
server's venv) with ``ls.tasks.list(project=..., fields="all")`` iterated to the end, as its docs show, timed inside
its own process (import and client set-up left out). Both must see every region. Prints both times (best of
``--repeat``) and the ratio; the machine may be shared, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import annotebook as ab  # noqa: E402
from annotebook.testing.labelstudio_server import label_config, start_server, venv_python  # noqa: E402

SDK_DRIVER = r"""
import json, os, sys, time
from label_studio_sdk import LabelStudio
cmd = json.loads(sys.argv[1])
ls = LabelStudio(base_url=cmd["url"], api_key=os.environ["LABEL_STUDIO_API_KEY"])
times = []
for _ in range(cmd["repeat"]):
    start = time.perf_counter()
    regions = []
    for task in ls.tasks.list(project=cmd["project"], fields="all"):
        for annotation in task.annotations or []:
            regions += annotation["result"] if isinstance(annotation, dict) else annotation.result
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "regions": len(regions)}))
"""


def tasks(n: int, regions: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        result = []
        for k in range(regions):
            x, y = rng.uniform(0, 80), rng.uniform(0, 80)
            result.append(
                {
                    "id": f"r{i}x{k}",
                    "type": "rectanglelabels",
                    "from_name": "label",
                    "to_name": "image",
                    "original_width": 640,
                    "original_height": 480,
                    "image_rotation": 0,
                    "value": {
                        "x": x,
                        "y": y,
                        "width": rng.uniform(1, 19),
                        "height": rng.uniform(1, 19),
                        "rotation": 0,
                        "rectanglelabels": [rng.choice(["circle", "square", "star"])],
                    },
                }
            )
        out.append({"data": {"image": f"/data/local-files/?d=img{i:05d}.png"}, "annotations": [{"result": result}]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--regions", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("ANNOTEBOOK_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "annotebook-bench-ls"))
    began = time.perf_counter()
    server = start_server()
    print(f"server: {server.timings} (total {time.perf_counter() - began:.1f} s)")
    try:
        with server.client() as http:
            project = http.post(
                "/api/projects/", json={"title": "bench", "label_config": label_config(["circle", "square", "star"])}
            ).json()["id"]
            t = time.perf_counter()
            made = http.post(f"/api/projects/{project}/import", json=tasks(args.tasks, args.regions)).json()
            print(
                f"import: {made['task_count']} tasks, {made['annotation_count']} annotations in "
                f"{time.perf_counter() - t:.1f} s"
            )
        want = args.tasks * args.regions
        conn = ab.connect("labelstudio", url=server.url, project=project, token=server.token, progress=False)
        mine = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            anns = conn.annotations()
            mine.append(time.perf_counter() - t)
            assert len(anns) == want, len(anns)
        env = {**os.environ, "LABEL_STUDIO_API_KEY": server.token}
        cmd = json.dumps({"url": server.url, "project": project, "repeat": args.repeat})
        run = subprocess.run([str(venv_python()), "-c", SDK_DRIVER, cmd], capture_output=True, text=True, env=env)
        if run.returncode:
            raise SystemExit(run.stderr[-3000:])
        sdk = json.loads(run.stdout)
        assert sdk["regions"] == want, sdk["regions"]
        a, s = min(mine), min(sdk["times"])
        print(f"{args.tasks} tasks x {args.regions} regions = {want} rows")
        print(f"annotebook conn.annotations(): {a:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in mine)})")
        print(f"label-studio-sdk tasks.list(): {s:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in sdk['times'])})")
        print(f"ratio sdk / annotebook: {s / a:.2f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
