"""The plain-data encoding that return values cross the sandbox boundary in. Pure."""
from __future__ import annotations

import json
import math

import pytest

from verifiers.code.plainwire import NotPlainError, decode, dumps, encode


@pytest.mark.parametrize("value", [
    None, True, False, 0, -5, 2**70, -(2**200), 1.5, -0.0, "héllo", "",
    [1, [2, [3]]], (1, "a"), (), {"a": 1, (1, 2): [3]}, {1, 2, 3}, frozenset({"x"}), b"\x00\xff",
    bytearray(b"ab"), 1 + 2j, {"nested": ({1}, [None, (True,)])},
])
def test_round_trip_keeps_types(value):
    wire = json.loads(dumps(encode(value)))  # through JSON text, as across the boundary
    back = decode(wire)
    assert back == value and type(back) is type(value)


def test_non_finite_floats():
    assert math.isnan(decode(json.loads(dumps(encode(float("nan"))))))
    assert decode(json.loads(dumps(encode(float("-inf"))))) == float("-inf")


class AlwaysEqual:
    def __eq__(self, other):
        return True


class LyingInt(int):
    def __eq__(self, other):
        return True


class LyingStr(str):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value, what", [
    (AlwaysEqual(), "AlwaysEqual"),
    (LyingInt(3), "LyingInt"),          # subclasses of built-ins are refused, not coerced
    ([1, LyingStr("a")], "LyingStr"),
    ({"k": object()}, "object"),
    (lambda: 1, "function"),
])
def test_custom_objects_are_refused(value, what):
    with pytest.raises(NotPlainError, match=what):
        encode(value)


def test_depth_and_cycles_are_bounded():
    a: list = []
    a.append(a)
    with pytest.raises(NotPlainError, match="deeper"):
        encode(a)
    with pytest.raises(NotPlainError, match="parts"):
        encode(list(range(100)), max_nodes=50)


@pytest.mark.parametrize("wire", [{"$": "evil", "v": 1}, {"a": 1}, {"$": "int", "v": 5}, {"$": "dict", "v": [[1]]}])
def test_decoder_rejects_anything_else(wire):
    with pytest.raises(ValueError):
        decode(wire)


def test_set_encoding_is_canonical():
    assert dumps(encode({3, 1, 2})) == dumps(encode({2, 3, 1}))
