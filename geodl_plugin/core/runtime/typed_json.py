"""Typed values to JSON and back, for calls across the worker's pipe.

The worker's parameters and results are dataclasses (nested ones too: a family's options, tiling); JSON
carries their fields, and the receiving side rebuilds them from the annotations of the function it calls,
so a field that is not declared cannot travel and one that is always arrives with its type."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from pathlib import PurePath
from typing import Any, Union

import numpy as np


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def from_jsonable(kind: Any, data: Any) -> Any:
    """Rebuild ``data`` as ``kind`` (a dataclass, Optional/Union, list/tuple/dict of those, an Enum, or a plain
    type, which is returned as is). Unknown dataclass fields raise TypeError."""
    if data is None or kind is Any or kind is None:
        return data
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (Union, types.UnionType):
        for arg in (a for a in args if a is not type(None)):
            try:
                return from_jsonable(arg, data)
            except (TypeError, ValueError):
                continue
        return data
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(data, dict):
            raise TypeError(f"{kind.__name__} expects an object, not {type(data).__name__}")
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        unknown = set(data) - names
        if unknown:
            raise TypeError(f"{kind.__name__} has no field(s) {sorted(unknown)}")
        return kind(**{k: from_jsonable(hints.get(k, Any), v) for k, v in data.items()})
    if origin in (list, tuple) and isinstance(data, (list, tuple)):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(from_jsonable(a, v) for a, v in zip(args, data))
        item = args[0] if args else Any
        values = [from_jsonable(item, v) for v in data]
        return tuple(values) if origin is tuple else values
    if origin is dict and isinstance(data, dict):
        value_kind = args[1] if len(args) == 2 else Any
        return {k: from_jsonable(value_kind, v) for k, v in data.items()}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    return data
