"""Imports the bundled format modules, each of which registers itself."""

from __future__ import annotations

import importlib
import importlib.util

BUILTIN = ("coco", "yolo", "yolo_keras", "voc", "csv_boxes", "vi_jsonl", "labelstudio", "superannotate")

for _name in BUILTIN:
    if importlib.util.find_spec(f"{__package__}.{_name}") is not None:
        importlib.import_module(f"{__package__}.{_name}")
