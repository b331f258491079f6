"""TFRecord files of ``tf.train.Example`` records, read and written without TensorFlow.

This is the sample format of the whole plugin, in the layout of an Earth Engine table export: one Example
per sample, one float feature per band (a k×k patch flattened row-major, Y outer), the class as a float
property. Earth Engine exports and locally cut samples therefore go through one reader, and the random
forest works with no TensorFlow installed. Files written here are read by ``tf.data.TFRecordDataset`` and
vice versa (tested both ways).

Framing: ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np

from ..runtime.errors import GeoDLError

try:  # C implementation, installed with google-cloud-storage
    import google_crc32c as _crc_impl

    def crc32c(data: bytes) -> int:
        return int(_crc_impl.value(data))

except ImportError:  # pragma: no cover - slow but correct fallback
    _TABLE = []
    for _i in range(256):
        _c = _i
        for _ in range(8):
            _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
        _TABLE.append(_c)

    def crc32c(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for byte in data:
            crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


FeatureValue = Union[np.ndarray, Sequence[float], Sequence[int], bytes, str, float, int]
Record = Mapping[str, FeatureValue]


# --- protobuf encoding of tf.train.Example ------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _encode_feature(value: FeatureValue) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return _field(1, _field(1, bytes(value)))  # BytesList
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        packed = b"".join(_varint(int(v)) for v in array.ravel())
        return _field(3, _field(1, packed))  # Int64List, packed
    floats = np.ascontiguousarray(array, dtype="<f4").ravel()
    return _field(2, _field(1, floats.tobytes()))  # FloatList, packed


def encode_example(record: Record) -> bytes:
    """Serialise a mapping of name → value into ``tf.train.Example`` bytes. Arrays are flattened
    row-major; integer arrays become Int64List, everything numeric else FloatList."""
    entries = []
    for key in sorted(record):
        entry = _field(1, key.encode("utf-8")) + _field(2, _encode_feature(record[key]))
        entries.append(_field(1, entry))
    return _field(1, b"".join(entries))


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, memoryview | int]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            yield number, wire, buf[pos : pos + length]
            pos += length
        elif wire == 0:
            value, pos = _read_varint(buf, pos)
            yield number, wire, value
        elif wire == 5:
            yield number, wire, buf[pos : pos + 4]
            pos += 4
        elif wire == 1:
            yield number, wire, buf[pos : pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _decode_feature(buf: memoryview) -> np.ndarray | list[bytes]:
    for kind, _wire, payload in _fields(buf):
        assert isinstance(payload, memoryview)
        if kind == 2:  # FloatList
            chunks = []
            for _n, wire, value in _fields(payload):
                assert isinstance(value, memoryview)
                if wire == 2:
                    chunks.append(np.frombuffer(value, dtype="<f4"))  # packed
                else:
                    chunks.append(np.frombuffer(value, dtype="<f4"))  # unpacked, one float
            return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if kind == 3:  # Int64List
            values: list[int] = []
            for _n, wire, value in _fields(payload):
                if wire == 2:
                    assert isinstance(value, memoryview)
                    p = 0
                    while p < len(value):
                        v, p = _read_varint(value, p)
                        values.append(v)
                else:
                    values.append(int(value))
            arr = np.array(values, dtype=np.uint64).astype(np.int64)
            return arr
        if kind == 1:  # BytesList
            return [bytes(v) for _n, _w, v in _fields(payload)]  # type: ignore[arg-type]
    return np.zeros(0, np.float32)  # an empty Feature


def decode_example(data: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """Parse ``tf.train.Example`` bytes into name → 1-D array (or list of bytes)."""
    out: dict[str, np.ndarray | list[bytes]] = {}
    for number, _wire, features in _fields(memoryview(data)):
        if number != 1:
            continue
        assert isinstance(features, memoryview)
        for _n, _w, entry in _fields(features):
            assert isinstance(entry, memoryview)
            key = ""
            value: np.ndarray | list[bytes] = np.zeros(0, np.float32)
            for num, _ww, part in _fields(entry):
                assert isinstance(part, memoryview)
                if num == 1:
                    key = bytes(part).decode("utf-8")
                elif num == 2:
                    value = _decode_feature(part)
            out[key] = value
    return out


# --- record framing ----------------------------------------------------------------------------------
def _open_read(path: Path) -> BinaryIO:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_records(path: str | os.PathLike) -> Iterator[bytes]:
    """Yield the raw records of one TFRecord file (GZIP or not, detected), checking every CRC."""
    p = Path(path)
    index = 0
    try:
        with _open_read(p) as fh:
            while True:
                header = fh.read(12)
                if not header:
                    return
                if len(header) < 12:
                    raise GeoDLError(f"{p}: record {index} is truncated (incomplete header). Re-export the file.")
                (length,) = struct.unpack("<Q", header[:8])
                (length_crc,) = struct.unpack("<I", header[8:])
                if _masked_crc(header[:8]) != length_crc:
                    raise GeoDLError(f"{p}: record {index} is corrupt (bad length checksum). Re-export the file.")
                data = fh.read(length)
                footer = fh.read(4)
                if len(data) < length or len(footer) < 4:
                    raise GeoDLError(f"{p}: record {index} is truncated. Re-export or re-download the file.")
                if _masked_crc(data) != struct.unpack("<I", footer)[0]:
                    raise GeoDLError(f"{p}: record {index} is corrupt (bad data checksum). Re-export the file.")
                yield data
                index += 1
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise GeoDLError(f"The TFRecord file '{p}' does not exist.") from exc
        raise GeoDLError(f"{p}: cannot read record {index} ({exc}). The file is damaged; re-export it.") from exc


def read_examples(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> Iterator[dict]:
    """Yield decoded Examples from one or more files, in file order (sorted, as Earth Engine names them)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for path in paths:
        for index, data in enumerate(read_records(path)):
            try:
                yield decode_example(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise GeoDLError(f"{path}: record {index} is not a valid tf.train.Example ({exc}).") from exc


@dataclass
class TFRecordWriter:
    """Append Examples to a file; GZIP by default (as Earth Engine writes them)."""

    path: Path
    compress: bool = True

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._fh: BinaryIO = gzip.open(self.path, "wb", compresslevel=6) if self.compress else open(self.path, "wb")  # type: ignore[assignment]
        self.count = 0

    def write_raw(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._fh.write(header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data)))
        self.count += 1

    def write(self, record: Record) -> None:
        self.write_raw(encode_example(record))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_examples(path: str | os.PathLike, records: Iterable[Record], compress: bool = True) -> int:
    """Write records to ``path`` atomically; return how many were written."""
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        with TFRecordWriter(tmp, compress=compress) as writer:
            for record in records:
                writer.write(record)
            count = writer.count
    return count
