"""Issue 16: bad input gets a named error naming file / line / field, never a bare exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import annotebook as ab
from tests.hardening._leaks import echo_server


def _coco(path: Path, image: dict | None = None, ann: dict | None = None) -> Path:
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10, **(image or {})}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0,
                         **(ann or {})}],
        "categories": [{"id": 1, "name": "cat"}],
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("bad", [[1, 2], [[1]], {"a": 1}, 2**70, True, 1.5])
def test_coco_annotation_id_of_the_wrong_type_is_named(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ab.FormatError, match=r"annotations\[0\]\.id") as info:
        ab.read(_coco(tmp_path / "c.json", ann={"id": bad}))
    assert info.value.file == str(tmp_path / "c.json")


@pytest.mark.parametrize("width", [1e20, 2**63, 2**31])
def test_coco_width_too_large_is_named_not_wrapped(tmp_path: Path, width: float) -> None:
    with pytest.raises(ab.FormatError, match=r"images\[0\]\.width.*at most"):
        ab.read(_coco(tmp_path / "c.json", image={"width": width}))


def _deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize(
    ("name", "fmt", "text"),
    [
        ("v.jsonl", "vi_jsonl", '{"asset": ' + _deep(100_000) + "}\n"),
        ("ls.json", "labelstudio", _deep(100_000)),
        ("sa.json", "superannotate", '{"metadata": {}, "instances": ' + _deep(100_000) + "}"),
        ("c.json", "coco", '{"images": ' + _deep(100_000) + "}"),
    ],
)
def test_deeply_nested_json_is_a_format_error(tmp_path: Path, name: str, fmt: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ab.FormatError) as info:
        ab.read(path, format=fmt)
    assert str(path) in str(info.value)


def test_a_corrupt_store_file_is_named(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "store.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ab.CorruptStore, match=r"store\.sqlite") as info:
        ab.connect("local", path=str(store)).datasets()
    assert info.value.path == str(store / "store.sqlite")


def test_a_corrupt_registry_file_is_named(tmp_path: Path, ab_home: Path) -> None:
    ab_home.mkdir(parents=True, exist_ok=True)
    (ab_home / "registry.sqlite").write_bytes(b"\0garbage" * 500)
    from annotebook.sync.registry import Registry

    with pytest.raises(ab.CorruptStore, match=r"registry\.sqlite"):
        Registry(ab_home)


@pytest.mark.parametrize("platform", ["nexus", "vi", "pictograph"])
def test_an_empty_object_answer_is_not_an_empty_project(platform: str) -> None:
    """A 200 answer of ``{}`` to a listing is a MalformedResponse, never an empty dataset."""
    with echo_server("empty") as url:
        if platform == "nexus":
            conn = ab.connect("nexus", project="proj_x", endpoint=url, key="sk-0123456789")
        elif platform == "vi":
            conn = ab.connect("vi", organization="o", endpoint=url, key="dtvi_" + "x" * 98)
        else:
            conn = ab.connect("pictograph", base_url=url, key="pk-0123456789")
        with pytest.raises(ab.MalformedResponse):
            conn.annotations("proj_x" if platform == "nexus" else "d")


def test_a_body_nested_past_the_decoder_is_malformed() -> None:
    from annotebook.backends._http import make_client
    from tests.hardening._leaks import _Echo

    class Deep(_Echo):
        def _any(self) -> None:
            body = _deep(200_000).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _any

    from http.server import ThreadingHTTPServer
    from threading import Thread

    server = ThreadingHTTPServer(("127.0.0.1", 0), Deep)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = make_client(f"http://127.0.0.1:{server.server_address[1]}", {}, timeout=5)
        with pytest.raises(ab.MalformedResponse):
            client.get("/x")
    finally:
        server.shutdown()
        server.server_close()
