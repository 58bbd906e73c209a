"""TFRecord files without TensorFlow: the ``tf.train.Example`` protobuf encoding and the TFRecord framing.

Both simulators write their TFRecord exports with these: Nexus's ``tfrecord`` formats (`nexus_export_files`) and
Vi's ``ViTfrecord`` (`vi_exports`).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable

__all__ = ["tf_example", "tfrecord"]


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # int64 is encoded as its two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _bytes(values: list[str]) -> bytes:
    """A ``tf.train.Feature`` holding a BytesList."""
    return _field(1, b"".join(_field(1, v.encode()) for v in values))


def _floats(values: list[float]) -> bytes:
    """A ``tf.train.Feature`` holding a FloatList (packed float32)."""
    return _field(2, _field(1, struct.pack(f"<{len(values)}f", *values)) if values else b"")


def _ints(values: list[int]) -> bytes:
    """A ``tf.train.Feature`` holding an Int64List (packed varints)."""
    return _field(3, _field(1, b"".join(_varint(int(v)) for v in values)) if values else b"")


def tf_example(features: dict[str, bytes]) -> bytes:
    """A serialised ``tf.train.Example`` of encoded Features (``Example.features.feature``: name -> Feature)."""
    return _field(1, b"".join(_field(1, _field(1, k.encode()) + _field(2, v)) for k, v in features.items()))


def _masked_crc(data: bytes) -> int:
    from .kit import crc32c_b64

    crc = int.from_bytes(base64.b64decode(crc32c_b64(data)), "big")
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(records: Iterable[bytes]) -> bytes:
    """TFRecord framing: per record its length (u64), masked CRC32C of the length, the data, masked CRC32C of it."""
    out = bytearray()
    for data in records:
        length = struct.pack("<Q", len(data))
        out += length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))
    return bytes(out)
