"""Just enough of the protobuf wire format to personalise an ONNX file without the ``onnx`` package or torch.

A personal model is its base file with a few weights replaced and new metadata: the graph, every other
weight and so the per-hop cost stay exactly the same. This needs three operations on ``ModelProto``
bytes: read the graph's nodes and initializers, overwrite an initializer's ``raw_data`` in place (same
length, so no enclosing length changes), and rewrite the top-level ``metadata_props``. A fourth, adding a
graph output, builds the in-memory feature extractor (the fused vectors the head reads). Field numbers
are from ``onnx.proto`` (ModelProto: graph 7, metadata_props 14; GraphProto: node 1, initializer 5,
output 12; NodeProto: input 1, output 2, op_type 4; TensorProto: dims 1, data_type 2, name 8, raw_data 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from emotrack.errors import ModelError

__all__ = ["OnnxBytes"]

FLOAT = 1
"""TensorProto.DataType FLOAT."""


def _varint(buf: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelError("truncated ONNX file")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


@dataclass
class _Field:
    number: int
    wire: int
    start: int  # of the key
    value_start: int
    end: int
    varint: int = 0


def _fields(buf: bytes | bytearray, start: int = 0, end: int | None = None) -> Iterator[_Field]:
    pos, end = start, len(buf) if end is None else end
    while pos < end:
        key, vpos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, nxt = _varint(buf, vpos)
            yield _Field(number, wire, pos, vpos, nxt, value)
        elif wire == 1:
            yield _Field(number, wire, pos, vpos, vpos + 8)
            nxt = vpos + 8
        elif wire == 2:
            length, vstart = _varint(buf, vpos)
            nxt = vstart + length
            yield _Field(number, wire, pos, vstart, nxt)
        elif wire == 5:
            nxt = vpos + 4
            yield _Field(number, wire, pos, vpos, nxt)
        else:
            raise ModelError(f"unsupported protobuf wire type {wire} in ONNX file")
        pos = nxt


def _strings(buf: bytes | bytearray, f: _Field, number: int) -> list[str]:
    return [buf[s.value_start : s.end].decode() for s in _fields(buf, f.value_start, f.end) if s.number == number]


class OnnxBytes:
    """An ONNX model as bytes, with the few reads and edits personalisation needs."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        graphs = [f for f in _fields(self.data) if f.number == 7 and f.wire == 2]
        if len(graphs) != 1:
            raise ModelError("not an ONNX model (no graph)")
        self._graph = graphs[0]

    def _graph_fields(self, number: int) -> Iterator[_Field]:
        return (f for f in _fields(self.data, self._graph.value_start, self._graph.end) if f.number == number)

    def nodes(self) -> list[tuple[str, list[str], list[str]]]:
        """``(op_type, inputs, outputs)`` of every node of the main graph."""
        out = []
        for f in self._graph_fields(1):
            op = _strings(self.data, f, 4)
            out.append((op[0] if op else "", _strings(self.data, f, 1), _strings(self.data, f, 2)))
        return out

    def _initializer(self, name: str) -> tuple[list[int], int, _Field]:
        for f in self._graph_fields(5):
            parts = list(_fields(self.data, f.value_start, f.end))
            names = [self.data[p.value_start : p.end].decode() for p in parts if p.number == 8]
            if names != [name]:
                continue
            dims = [p.varint for p in parts if p.number == 1 and p.wire == 0]
            for p in parts:  # packed dims (wire type 2) as some writers emit them
                if p.number == 1 and p.wire == 2:
                    pos = p.value_start
                    while pos < p.end:
                        d, pos = _varint(self.data, pos)
                        dims.append(d)
            dtype = next((p.varint for p in parts if p.number == 2), 0)
            raw = [p for p in parts if p.number == 9]
            if not raw:
                raise ModelError(f"initializer {name!r} does not store raw data; cannot personalise this file")
            return dims, dtype, raw[0]
        raise ModelError(f"the model has no weight {name!r}: only MCA-family models can be personalised")

    def initializer(self, name: str) -> np.ndarray:
        """A float32 initializer as an array (a copy)."""
        dims, dtype, raw = self._initializer(name)
        if dtype != FLOAT:
            raise ModelError(f"weight {name!r} is not float32 (an fp16 export cannot be personalised)")
        return np.frombuffer(bytes(self.data[raw.value_start : raw.end]), "<f4").reshape(dims).copy()

    def set_initializer(self, name: str, value: np.ndarray) -> None:
        """Overwrite a float32 initializer in place (same shape, so the file layout does not move)."""
        dims, _, raw = self._initializer(name)
        value = np.asarray(value, "<f4")
        if list(value.shape) != dims:
            raise ValueError(f"{name}: shape {list(value.shape)} differs from the graph's {dims}")
        self.data[raw.value_start : raw.end] = value.tobytes()

    def metadata(self) -> dict[str, str]:
        out = {}
        for f in _fields(self.data):
            if f.number == 14:
                kv = {p.number: self.data[p.value_start : p.end].decode() for p in _fields(self.data, f.value_start,
                                                                                          f.end)}
                out[kv.get(1, "")] = kv.get(2, "")
        return out

    def with_metadata(self, props: dict[str, str]) -> bytes:
        """The model with its ``metadata_props`` replaced by ``props`` (everything else byte for byte)."""
        kept = b"".join(bytes(self.data[f.start : f.end]) for f in _fields(self.data) if f.number != 14)
        entries = b"".join(_field(14, _field(1, k.encode()) + _field(2, v.encode())) for k, v in props.items())
        return kept + entries

    def with_output(self, name: str) -> bytes:
        """The model with ``name`` (a float tensor inside the graph) added as a graph output."""
        tensor_type = _field(1, _encode_varint(1 << 3) + _encode_varint(FLOAT))  # TypeProto.tensor_type.elem_type
        value_info = _field(1, name.encode()) + _field(2, tensor_type)
        g = self._graph
        graph = bytes(self.data[g.value_start : g.end]) + _field(12, value_info)
        return bytes(self.data[: g.start]) + _field(7, graph) + bytes(self.data[g.end :])
