"""Checks a serialised Earth Engine expression against the algorithm signatures bundled in earthengine-api
(``ee/tests/algorithms.json``, what ``ee.Initialize`` loads): every function exists, every argument it is
given is one the function declares, every required argument is there."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def signatures() -> dict[str, dict[str, bool]]:
    """function name → {argument name: optional}."""
    import ee

    data = json.loads((Path(ee.__file__).resolve().parent / "tests" / "algorithms.json").read_text())
    return {
        a["name"].split("/", 1)[1]: {arg["argumentName"]: bool(arg.get("optional", False)) for arg in a.get("arguments", [])}
        for a in data["algorithms"]
    }


def signature_errors(expression: Any) -> list[str]:
    """Every mismatch between the calls in ``expression`` (serialised JSON, any part of a request body) and
    the bundled signatures; empty when the request is well-formed."""
    errors: list[str] = []
    sigs = signatures()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            call = node.get("functionInvocationValue")
            if isinstance(call, dict) and "functionName" in call:
                name, args = call["functionName"], set(call.get("arguments", {}))
                if name not in sigs:
                    errors.append(f"unknown algorithm {name}")
                else:
                    unknown = args - set(sigs[name])
                    missing = {a for a, optional in sigs[name].items() if not optional} - args
                    if unknown:
                        errors.append(f"{name}: unknown arguments {sorted(unknown)}")
                    if missing:
                        errors.append(f"{name}: missing arguments {sorted(missing)}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(expression)
    return errors
