"""Pictograph poses: the joints of one object read as one ``keypoints`` row, and that row written back as joints.

Pictograph has no pose type (``pictograph/models/annotation.py``, ``_keypoint.py`` of the SDK): a pose is several
``keypoint`` annotations, each *named for its joint's own class* (``nose``, ``tip1``), sharing an ``instance_id``
(1-based, per image). The object's class is a keypoint class whose ``skeleton`` template lists the joint classes
(``{"nodes": [{"name"}...], "edges": [[i, j]...]}``, 0-based edges); the node order is the order of a COCO
``[x, y, v]`` triplet. Occlusion rides on a joint's attributes as ``occluded: "true"``.

Reading, as Pictograph's own grouping does: an image's keypoints with the same ``instance_id`` are one object; the
template covering most of their names (the first in class order on a tie) is its class; each joint takes its
template slot by name, the first one wins. The object becomes one keypoints row of the data contract: ``label`` the
template class, ``points`` one part of every node in template order (NaN where the object has no such joint),
``visibility`` 2, 1 (occluded) or 0 (absent), ``attributes`` the joints' shared attributes plus ``instance_id``;
its ``id`` is the id of its first joint in template order. Joints that cannot be grouped stay rows of one point
labelled with their own class, as do keypoints without an ``instance_id``: a joint outside the template, a second
joint for a taken slot, and every joint of an object whose joints differ in confidence, author or attributes (one
row cannot hold two of those, and a save must give back what was read).

Writing: a keypoints row whose label is a template class with as many nodes as the row has points is saved as one
keypoint per labelled point (visibility 1 or 2), named for its node, with the ids the joints were read with (new
joints get new ids) and the row's ``instance_id`` (a new pose gets the next free one on its image).

>>> templates_of([{"name": "tip"}, {"name": "star", "skeleton": {"nodes": [{"name": "tip"}]}}])
{'star': ('tip',)}
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OCCLUDED", "Templates", "attributes_of", "group", "is_pose", "occluded", "pose_wires", "templates_of"]

#: class name -> its joint classes in template order, for the keypoint classes that have a template (class order)
Templates = Mapping[str, tuple[str, ...]]
OCCLUDED = "occluded"
#: the spellings Pictograph reads as an occluded joint (the SDK's ``_keypoint._TRUTHY``)
_TRUTHY = frozenset({"true", "1", "yes", "y", "t", "occluded"})


def templates_of(classes: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """The joint template of every class that has one (``skeleton.nodes`` names), in the dataset's class order."""
    out: dict[str, tuple[str, ...]] = {}
    for c in classes:
        skeleton = c.get("skeleton")
        nodes = skeleton.get("nodes") if isinstance(skeleton, Mapping) else None
        names = tuple(str(n["name"]) for n in nodes or () if isinstance(n, Mapping) and n.get("name"))
        if names and c.get("name"):
            out[str(c["name"])] = names
    return out


def occluded(attributes: Any) -> bool:
    """Whether a joint's attributes say it is occluded (a bool, or one of Pictograph's true spellings)."""
    raw = attributes.get(OCCLUDED) if isinstance(attributes, Mapping) else None
    if isinstance(raw, bool):
        return raw
    return raw is not None and str(raw).strip().lower() in _TRUTHY


def attributes_of(raw: Any) -> dict[str, Any]:
    """An annotation's attributes as a dict: a dict as is, a list of ``{name, value}`` or of names (true)."""
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items()}
    out: dict[str, Any] = {}
    for a in raw or []:
        if isinstance(a, Mapping) and "name" in a:
            out[str(a["name"])] = a.get("value")
        else:
            out[str(a)] = True
    return out


def _shared(ann: Mapping[str, Any]) -> str:
    """What every joint of one row must have in common: confidence, author, attributes but occlusion."""
    kept = {k: v for k, v in attributes_of(ann.get("attributes")).items() if k != OCCLUDED}
    return json.dumps([float(ann.get("confidence", 1.0)), ann.get("created_by"), kept], sort_keys=True, default=str)


def _match(names: set[str], templates: Templates) -> str | None:
    best, hits = None, 0
    for label, nodes in templates.items():
        n = len(names & set(nodes))
        if n > hits:
            best, hits = label, n
    return best


def group(items: Sequence[Mapping[str, Any]], templates: Templates) -> list[tuple[str | None, list[int | None]]]:
    """How one image's annotation list becomes rows: per row, in the order of its first annotation, the template
    class and the positions of its joints by slot (None: no joint), or ``(None, [position])`` for a row of one."""
    objects: dict[int, list[int]] = {}
    for i, a in enumerate(items):
        if a.get("type") == "keypoint" and isinstance(a.get("instance_id"), int):
            objects.setdefault(int(a["instance_id"]), []).append(i)
    rows: dict[int, tuple[str | None, list[int | None]]] = {}  # first position -> row
    taken: set[int] = set()
    for members in objects.values():
        label = _match({str(items[i].get("name")) for i in members}, templates) if templates else None
        if label is None:
            continue
        slots: list[int | None] = [None] * len(templates[label])
        index = {name: k for k, name in enumerate(templates[label])}
        for i in members:  # the first joint of a name takes its slot; a second one stays a row of its own
            k = index.get(str(items[i].get("name")))
            if k is not None and slots[k] is None:
                slots[k] = i
        placed = [i for i in slots if i is not None]
        if len({_shared(items[i]) for i in placed}) != 1:
            continue
        rows[min(placed)] = (label, slots)
        taken.update(placed)
    for i in range(len(items)):
        if i not in taken:
            rows[i] = (None, [i])
    return [rows[i] for i in sorted(rows)]


def is_pose(label: Any, n_points: int, templates: Templates) -> bool:
    """Whether a keypoints row of ``n_points`` labelled ``label`` is a pose (saved as joints)."""
    return isinstance(label, str) and label in templates and len(templates[label]) == n_points


def pose_wires(
    row: Mapping[str, Any],
    nodes: Sequence[str],
    size: tuple[float, float],
    px: Any,
    ids: Mapping[str, str],
    instance_id: int,
) -> list[dict[str, Any]]:
    """The joints of a pose row, in template order: one keypoint per labelled point (``px(t, scale)`` gives its
    pixel), ``ids`` the joint ids to keep by node name (others get new ones)."""
    w, h = size
    (part,) = row["points"]
    attrs = {k: v for k, v in (row.get("attributes") or {}).items() if k != "instance_id" and v is not None}
    score: Any = row.get("score")
    confidence = 1.0 if score is None or (isinstance(score, float) and math.isnan(score)) else float(score)
    out = []
    for k, (node, v) in enumerate(zip(nodes, row["visibility"], strict=True)):
        x, y = float(part[2 * k]), float(part[2 * k + 1])
        if int(v) == 0 or math.isnan(x) or math.isnan(y):
            continue
        joint: dict[str, Any] = {"id": ids.get(node) or str(uuid.uuid4()), "name": node, "type": "keypoint",
                                 "keypoint": {"x": px(x, w), "y": px(y, h)}, "instance_id": int(instance_id),
                                 "confidence": confidence}  # fmt: skip
        if isinstance(row.get("author"), str):
            joint["created_by"] = row["author"]
        joint["attributes"] = {**attrs, **({OCCLUDED: "true"} if int(v) == 1 else {})}
        out.append(joint)
    return out
