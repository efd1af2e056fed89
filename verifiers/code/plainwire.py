"""Plain data across the sandbox boundary, as JSON: nothing but values comes back.

A candidate's return value is encoded inside the sandbox and decoded by the trusted
side into fresh built-in objects, so an object whose `__eq__` always says True, a
subclass of `int` with a lying `__eq__`, or anything with behaviour never reaches the
comparison: it fails to encode (`NotPlainError`) and the test fails.

Encoding (JSON values, tagged objects for what JSON lacks):
    None, bool, str, finite float, int below 2**63 in size -> themselves
    list -> JSON array
    {"$": "int", "v": hex}          large ints (JSON/str() would hit the 4300-digit limit)
    {"$": "float", "v": "nan"|"inf"|"-inf"}
    {"$": "tuple"|"set"|"frozenset", "v": [...]}
    {"$": "dict", "v": [[k, v], ...]}   keys of any plain (hashable) type
    {"$": "bytes"|"bytearray", "v": hex}
    {"$": "complex", "v": [re, im]}
Only exact built-in types are accepted (`type(x) is int`, not `isinstance`). Depth and
size are bounded. This module is also copied into the sandbox, so it uses the
standard library only.
"""
from __future__ import annotations

import json
import math

MAX_DEPTH = 100
MAX_NODES = 2_000_000
_SMALL_INT = 1 << 63


class NotPlainError(ValueError):
    """A value that is not plain data (a custom object, a subclass, too deep or large)."""


def encode(value, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES):
    """`value` as JSON-ready plain data; raises NotPlainError."""
    budget = [max_nodes]

    def enc(x, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainError(f"value has more than {max_nodes} parts")
        if depth > max_depth:
            raise NotPlainError(f"value nested deeper than {max_depth} levels (or cyclic)")
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x if -_SMALL_INT < x < _SMALL_INT else {"$": "int", "v": hex(x)}
        if t is float:
            return x if math.isfinite(x) else {"$": "float", "v": repr(x)}
        if t is list:
            return [enc(i, depth + 1) for i in x]
        if t is tuple or t is set or t is frozenset:
            items = [enc(i, depth + 1) for i in x]
            if t is not tuple:
                items.sort(key=lambda e: json.dumps(e, sort_keys=True))  # a set's order is not data
            return {"$": t.__name__, "v": items}
        if t is dict:
            return {"$": "dict", "v": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in x.items()]}
        if t is bytes or t is bytearray:
            return {"$": t.__name__, "v": bytes(x).hex()}
        if t is complex:
            return {"$": "complex", "v": [enc(x.real, depth + 1), enc(x.imag, depth + 1)]}
        raise NotPlainError(f"an object of type {t.__module__}.{t.__qualname__}" if t.__module__ != "builtins"
                            else f"an object of type {t.__qualname__}")

    return enc(value, 0)


def decode(data, *, max_depth: int = MAX_DEPTH):
    """Fresh built-in objects from `encode`'s output; raises ValueError on anything else."""

    def dec(x, depth):
        if depth > max_depth:
            raise ValueError("encoded value too deep")
        t = type(x)
        if x is None or t in (bool, str, int, float):
            return x
        if t is list:
            return [dec(i, depth + 1) for i in x]
        if t is dict:
            tag, v = x.get("$"), x.get("v")
            if len(x) != 2:
                raise ValueError("malformed tagged value")
            if tag == "int" and type(v) is str:
                return int(v, 16)
            if tag == "float" and v in ("nan", "inf", "-inf"):
                return float(v)
            if tag in ("tuple", "set", "frozenset") and type(v) is list:
                items = [dec(i, depth + 1) for i in v]
                return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
            if tag == "dict" and type(v) is list:
                out = {}
                for pair in v:
                    if type(pair) is not list or len(pair) != 2:
                        raise ValueError("malformed dict item")
                    out[dec(pair[0], depth + 1)] = dec(pair[1], depth + 1)
                return out
            if tag in ("bytes", "bytearray") and type(v) is str:
                return (bytes if tag == "bytes" else bytearray)(bytes.fromhex(v))
            if tag == "complex" and type(v) is list and len(v) == 2:
                return complex(dec(v[0], depth + 1), dec(v[1], depth + 1))
            raise ValueError(f"unknown tag {tag!r}")
        raise ValueError(f"unexpected JSON type {t.__name__}")

    return dec(data, 0)


def dumps(value) -> str:
    """Canonical JSON text of an encoded value (stable key order, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
