"""File formats at scale, side by side in one run (run by hand, not collected by pytest).

    python tests/bench/bench_formats.py [--images 10000 --annotations 200000 --repeat 3 --only annotebook,reference]

A deterministic COCO set (30% polygons) is written to a temporary folder, then three tasks are timed:
COCO to table, table to YOLO, table to VOC; for annotebook, a plain orjson + pandas reference (same columns: asset,
label, normalised x0, y0, x1, y1, the polygon lists; plain writers for YOLO and VOC), pycocotools, globox and
supervision (the peers run in their own cached venv, `tests.peers`). Every measurement runs in a fresh subprocess
that times the task itself (wall and CPU) and reports the peak RSS *during* the task (Linux: VmHWM after resetting
it through /proc/self/clear_refs; elsewhere ru_maxrss, the process's lifetime peak) and, on Linux, how far that
peak rose above the RSS the task started from ("task MB": the task's own memory, without the imports and, for a
write, the tables it was handed, which differ between contenders).

The contenders take turns within each of the --repeat rounds (reference, annotebook, ..., then again), so that a
machine shared with other work slows them alike; each ratio is the median over the rounds of the contender's run
divided by the reference's run of the same round, and the times shown are medians. Targets (issue 3): COCO load
and YOLO write within 1.2x and VOC write within 1.5x of the reference, peak memory no higher.

The set and every output live on /dev/shm where it is writable (--dir to choose): on a shared disk, creating 10,000
files is dominated by other processes' I/O and the write ratios mean little.

supervision decodes every polygon into a full-image mask, which for this set would need tens of GB: it is given the
same file with segmentation removed (boxes only), and its row says so.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("load", "yolo", "voc")
CONTENDERS = ("reference", "annotebook", "pycocotools", "globox", "supervision")
PEERS = ("pycocotools", "globox", "supervision")
SIZES = ((640, 480), (1280, 720), (800, 600), (1024, 1024), (500, 375))
MEASURES = ("wall", "cpu", "peak_mb", "task_mb")  # what a worker reports of one run
NAN = float("nan")


# ---------------------------------------------------------------------------------------------------------------
# the data set


def make_coco(n_images: int, n_annotations: int, polygon_share: float = 0.3, seed: int = 0) -> dict[str, Any]:
    """A COCO document: images of five sizes, 80 categories, boxes and (``polygon_share``) 3-15-vertex polygons."""
    import numpy as np

    rng = np.random.default_rng(seed)
    wh = np.asarray(SIZES)[rng.integers(0, len(SIZES), n_images)]
    images = [
        {"id": i + 1, "file_name": f"{i:06d}.jpg", "width": int(w), "height": int(h)} for i, (w, h) in enumerate(wh)
    ]
    categories = [{"id": c + 1, "name": f"class_{c:02d}", "supercategory": "thing"} for c in range(80)]
    img = np.sort(rng.integers(0, n_images, n_annotations))
    width, height = wh[img, 0], wh[img, 1]
    bw = np.round(rng.uniform(0.02, 0.5, n_annotations) * width, 2)
    bh = np.round(rng.uniform(0.02, 0.5, n_annotations) * height, 2)
    x = np.round(rng.uniform(0, 1, n_annotations) * (width - bw), 2)
    y = np.round(rng.uniform(0, 1, n_annotations) * (height - bh), 2)
    cat = rng.integers(1, 81, n_annotations)
    poly = rng.uniform(size=n_annotations) < polygon_share
    nv = rng.integers(3, 16, n_annotations)
    annotations = []
    for k in range(n_annotations):
        a: dict[str, Any] = {"id": k + 1, "image_id": int(img[k]) + 1, "category_id": int(cat[k]), "iscrowd": 0}
        if poly[k]:
            t = np.sort(rng.uniform(0, 2 * np.pi, nv[k]))
            px = np.round(x[k] + bw[k] * (0.5 + 0.5 * np.cos(t)), 2)
            py = np.round(y[k] + bh[k] * (0.5 + 0.5 * np.sin(t)), 2)
            x0, y0 = float(px.min()), float(py.min())
            a["segmentation"] = [np.column_stack([px, py]).ravel().tolist()]
            a["bbox"] = [x0, y0, float(px.max()) - x0, float(py.max()) - y0]
            a["area"] = float(0.5 * abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1))))
        else:
            a["segmentation"] = []
            a["bbox"] = [float(x[k]), float(y[k]), float(bw[k]), float(bh[k])]
            a["area"] = float(bw[k] * bh[k])
        annotations.append(a)
    return {
        "info": {"description": "bench"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_set(folder: Path, n_images: int, n_annotations: int) -> None:
    """coco.json, coco_boxes.json (no segmentation, for supervision) and tiny image files of the right sizes."""
    from io import BytesIO

    import orjson
    from PIL import Image

    doc = make_coco(n_images, n_annotations)
    (folder / "coco.json").write_bytes(orjson.dumps(doc))
    for a in doc["annotations"]:
        a["segmentation"] = []
    (folder / "coco_boxes.json").write_bytes(orjson.dumps(doc))
    blobs = {}
    for w, h in SIZES:  # PNG bytes under .jpg names: readers sniff the content, and it keeps the set small
        buf = BytesIO()
        Image.new("L", (w, h)).save(buf, format="PNG")
        blobs[(w, h)] = buf.getvalue()
    (folder / "images").mkdir()
    for img in doc["images"]:
        (folder / "images" / img["file_name"]).write_bytes(blobs[(img["width"], img["height"])])


# ---------------------------------------------------------------------------------------------------------------
# workers: each runs in its own process (the peers' ones in the peers' venv) and times one task


def reference_load(path: Path) -> Any:
    import orjson
    import pandas as pd

    doc = orjson.loads(path.read_bytes())
    images = {i["id"]: i for i in doc["images"]}
    names = {c["id"]: c["name"] for c in doc["categories"]}
    asset, label, x0, y0, x1, y1, points = [], [], [], [], [], [], []
    for a in doc["annotations"]:
        im = images[a["image_id"]]
        w, h = im["width"], im["height"]
        x, y, bw, bh = a["bbox"]
        asset.append(im["file_name"])
        label.append(names[a["category_id"]])
        x0.append(x / w)
        y0.append(y / h)
        x1.append((x + bw) / w)
        y1.append((y + bh) / h)
        seg = a.get("segmentation")
        points.append(
            tuple(tuple(v / w if i % 2 == 0 else v / h for i, v in enumerate(r)) for r in seg) if seg else None
        )
    frame = pd.DataFrame({"asset": asset, "label": label, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "points": points})
    sizes = pd.DataFrame(doc["images"])[["file_name", "width", "height"]]
    return frame, sizes


def _by_asset(assets: list[str], lines: list[str]) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {}
    for asset, line in zip(assets, lines, strict=True):
        files.setdefault(asset, []).append(line)
    return files


def reference_yolo(tables: Any, out: Path) -> None:
    """One ``<stem>.txt`` per image: ``class cx cy w h`` for boxes, ``class x y x y ...`` for polygons, 6 decimals."""
    frame, _ = tables
    index = {name: i for i, name in enumerate(sorted(set(frame["label"])))}
    x0, y0, x1, y1 = (frame[c].to_numpy() for c in ("x0", "y0", "x1", "y1"))
    cls = [index[label] for label in frame["label"].tolist()]
    lines = [
        f"{k} {a:.6f} {b:.6f} {c:.6f} {d:.6f}" if p is None else f"{k} " + " ".join(f"{v:.6f}" for v in p[0])
        for k, a, b, c, d, p in zip(
            cls,
            ((x0 + x1) / 2).tolist(),
            ((y0 + y1) / 2).tolist(),
            (x1 - x0).tolist(),
            (y1 - y0).tolist(),
            frame["points"].tolist(),
            strict=True,
        )
    ]
    out.mkdir(parents=True, exist_ok=True)
    for asset, rows in _by_asset(frame["asset"].tolist(), lines).items():
        (out / (Path(asset).stem + ".txt")).write_text("\n".join(rows) + "\n")
    (out / "classes.txt").write_text("\n".join(index) + "\n")


def reference_voc(tables: Any, out: Path) -> None:
    """One ``<stem>.xml`` per image: size and ``bndbox`` objects in VOC's 1-based integer pixels."""
    import numpy as np

    frame, sizes = tables
    wh = dict(zip(sizes["file_name"], zip(sizes["width"], sizes["height"], strict=True), strict=True))
    assets = frame["asset"].tolist()
    w = np.asarray([wh[a][0] for a in assets])
    h = np.asarray([wh[a][1] for a in assets])
    xmin, ymin = np.rint(frame["x0"].to_numpy() * w) + 1, np.rint(frame["y0"].to_numpy() * h) + 1
    xmax, ymax = np.rint(frame["x1"].to_numpy() * w), np.rint(frame["y1"].to_numpy() * h)
    objects = [
        f"<object><name>{label}</name><bndbox><xmin>{a:.0f}</xmin><ymin>{b:.0f}</ymin><xmax>{c:.0f}</xmax>"
        f"<ymax>{d:.0f}</ymax></bndbox></object>"
        for label, a, b, c, d in zip(
            frame["label"].tolist(), xmin.tolist(), ymin.tolist(), xmax.tolist(), ymax.tolist(), strict=True
        )
    ]
    out.mkdir(parents=True, exist_ok=True)
    for asset, rows in _by_asset(assets, objects).items():
        width, height = wh[asset]
        xml = (
            f"<annotation><filename>{asset}</filename><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{''.join(rows)}</annotation>\n"
        )
        (out / (Path(asset).stem + ".xml")).write_text(xml)


def annotebook_load(path: Path) -> Any:
    from annotebook.formats import coco

    return coco.load_coco(path)


def annotebook_writer(fmt: str) -> Callable[[Any, Path], None]:
    def write(tables: Any, out: Path) -> None:
        from annotebook import formats

        formats.save(tables.annotations, out, format=fmt, assets=tables.assets, labels=tables.labels)

    return write


def annotebook_has(fmt: str) -> bool:
    from annotebook.formats import _builtin  # noqa: F401 - registers the bundled formats
    from annotebook.formats._registry import FORMATS

    return fmt in FORMATS


def pycocotools_load(path: Path) -> Any:
    import contextlib

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(sys.stderr):
        c = COCO(str(path))
    images, names = c.imgs, {k: v["name"] for k, v in c.cats.items()}
    cols: dict[str, list[Any]] = {k: [] for k in ("asset", "label", "x0", "y0", "x1", "y1", "points")}
    for a in c.loadAnns(c.getAnnIds()):  # the same columns, as lists: pycocotools has no table
        im = images[a["image_id"]]
        w, h = im["width"], im["height"]
        x, y, bw, bh = a["bbox"]
        cols["asset"].append(im["file_name"])
        cols["label"].append(names[a["category_id"]])
        cols["x0"].append(x / w)
        cols["y0"].append(y / h)
        cols["x1"].append((x + bw) / w)
        cols["y1"].append((y + bh) / h)
        seg = a.get("segmentation")
        cols["points"].append([[v / (w if i % 2 == 0 else h) for i, v in enumerate(r)] for r in seg] if seg else None)
    return cols


def globox_load(path: Path) -> Any:
    from globox import AnnotationSet

    return AnnotationSet.from_coco(path)


def globox_yolo(s: Any, out: Path) -> None:
    s.save_yolo_darknet(out, label_to_id={label: i for i, label in enumerate(sorted(s._labels()))})


def globox_voc(s: Any, out: Path) -> None:
    s.save_pascal_voc(out)


def supervision_load(path: Path) -> Any:
    import supervision as sv

    return sv.DetectionDataset.from_coco(
        images_directory_path=str(path.parent / "images"), annotations_path=str(path.parent / "coco_boxes.json")
    )


def supervision_yolo(ds: Any, out: Path) -> None:
    ds.as_yolo(annotations_directory_path=str(out / "labels"), data_yaml_path=str(out / "data.yaml"))


def supervision_voc(ds: Any, out: Path) -> None:
    ds.as_pascal_voc(annotations_directory_path=str(out))


WORKERS: dict[str, dict[str, Any]] = {
    "reference": {"load": reference_load, "yolo": reference_yolo, "voc": reference_voc},
    "annotebook": {"load": annotebook_load, "yolo": annotebook_writer("yolo"), "voc": annotebook_writer("voc")},
    "pycocotools": {"load": pycocotools_load},
    "globox": {"load": globox_load, "yolo": globox_yolo, "voc": globox_voc},
    "supervision": {"load": supervision_load, "yolo": supervision_yolo, "voc": supervision_voc},
}


#: what each contender imports, done before the clock starts
IMPORTS = {
    "reference": ("orjson", "pandas"),
    "annotebook": ("annotebook.formats.coco", "annotebook.formats._builtin"),
    "pycocotools": ("pycocotools.coco",),
    "globox": ("globox",),
    "supervision": ("supervision",),
}


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_mb() -> float:
    """The current RSS (Linux), else NaN."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return NAN


def _peak_mb(reset: bool) -> float:
    if reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(contender: str, task: str, folder: Path) -> dict[str, Any]:
    """Run one task once in this process; the load before a write is not timed."""
    jobs = WORKERS[contender]
    path = folder / "coco.json"
    out = Path(tempfile.mkdtemp(dir=folder, prefix=f"{contender}-{task}-"))
    for module in IMPORTS[contender]:
        importlib.import_module(module)
    try:
        tables = None if task == "load" else jobs["load"](path)
        reset = _reset_peak()
        start_mb = _rss_mb() if reset else NAN
        wall, cpu = time.perf_counter(), time.process_time()
        if task == "load":
            jobs["load"](path)
        else:
            jobs[task](tables, out)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = _peak_mb(reset)
        return {"wall": wall, "cpu": cpu, "peak_mb": peak, "task_mb": peak - start_mb}
    finally:
        shutil.rmtree(out, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# the driver


def available(contender: str, task: str) -> str | None:
    """None when the contender can run the task, else why not."""
    if task not in WORKERS[contender]:
        return "no such writer"
    if contender == "annotebook" and task != "load":
        sys.path.insert(0, str(ROOT))
        try:
            if not annotebook_has(task):
                return "not available (format not registered yet)"
        except Exception as exc:
            return f"not available ({type(exc).__name__}: {str(exc).splitlines()[0][:80]})"
    return None


def run_once(contender: str, task: str, folder: Path) -> dict[str, Any]:
    if contender in PEERS:
        sys.path.insert(0, str(ROOT))
        from tests.peers import peer_python

        python = str(peer_python())
    else:
        python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [python, __file__, "--worker", contender, task, str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--annotations", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--dir", help="where the set and the outputs go (default: /dev/shm when writable, a RAM disk")
    parser.add_argument("--worker", nargs=3, metavar=("CONTENDER", "TASK", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        contender, task, folder = args.worker
        print(json.dumps(worker(contender, task, Path(folder))))
        return
    contenders = [c for c in CONTENDERS if c in args.only.split(",")]
    if "reference" not in contenders:
        contenders.insert(0, "reference")
    scratch = args.dir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    with tempfile.TemporaryDirectory(prefix="bench-formats-", dir=scratch) as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        write_set(folder, args.images, args.annotations)
        size = (folder / "coco.json").stat().st_size / 1e6
        print(
            f"set: {args.images} images, {args.annotations} annotations (30% polygons), coco.json {size:.1f} MB, "
            f"written in {time.perf_counter() - started:.1f} s; {args.repeat} rounds, contenders in turns; medians of "
            "times and of each round's ratio to the reference; CPU = process time"
        )
        for task in args.tasks.split(","):
            report(task, contenders, folder, args.repeat)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else NAN


def report(task: str, contenders: list[str], folder: Path, repeat: int) -> None:
    title = {"load": "COCO -> table", "yolo": "table -> YOLO", "voc": "table -> VOC"}[task]
    print(f"\n{title}")
    print(
        f"  {'':<13}{'wall s':>8}{'cpu s':>8}{'x ref (cpu)':>13}{'x ref (wall)':>14}{'peak MB':>9}{'x ref':>7}"
        f"{'task MB':>9}{'x ref':>7}"
    )
    runnable, runs = [], {}
    for contender in contenders:
        why = available(contender, task)
        if why:
            print(f"  {contender:<13}{why}")
        else:
            runnable.append(contender)
            runs[contender] = []
    for _ in range(repeat):  # in turns: one subprocess per run (no warm caches, an honest peak), rounds alike
        for contender in runnable:
            if not runs[contender] or "error" not in runs[contender][-1]:
                runs[contender].append(run_once(contender, task, folder))
    base = runs.get("reference", [])
    for contender in runnable:
        mine = runs[contender]
        if "error" in mine[-1]:
            print(f"  {contender:<13}error: {mine[-1]['error'][:150]}")
            continue
        med = {k: statistics.median(r[k] for r in mine) for k in MEASURES}
        paired = [(r, b) for r, b in zip(mine, base, strict=False) if "error" not in b]
        ratio = {k: statistics.median(_ratio(r[k], b[k]) for r, b in paired) if paired else NAN for k in MEASURES}
        note = "  (boxes only: masks would not fit)" if contender == "supervision" and task == "load" else ""
        print(
            f"  {contender:<13}{med['wall']:>8.2f}{med['cpu']:>8.2f}{ratio['cpu']:>13.2f}{ratio['wall']:>14.2f}"
            f"{med['peak_mb']:>9.0f}{ratio['peak_mb']:>7.2f}{med['task_mb']:>9.0f}{ratio['task_mb']:>7.2f}{note}"
        )


if __name__ == "__main__":
    main()
