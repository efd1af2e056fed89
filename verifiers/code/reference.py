"""The two reference layouts the code verifier accepts, validated up front.

Standard input/output (CodeContests / APPS)::

    {"tests": [{"stdin": "1 2\\n", "stdout": "3\\n"}, ...]}
    {"inputs": ["1 2\\n", ...], "outputs": ["3\\n", ...]}          # APPS "input_output"

Function tests (HumanEval / MBPP)::

    {"test": "def check(candidate):\\n    assert candidate(1, 2) == 3\\n",
     "entry_point": "add", "prompt": "def add(a, b):\\n    \\"\\"\\"…\\"\\"\\"\\n"}   # prompt optional
    {"test_list": ["assert add(1, 2) == 3", ...], "entry_point": "add"}   # MBPP; entry_point
                                                                         # optional there
    (MBPP's "test_setup_code" and "test_imports" are honoured.)

A JSON string holding one of these objects is accepted too. `parse_reference` raises
InvalidReferenceError naming the offending field (`reference.tests[3].stdout`).
"""
from __future__ import annotations

import ast
import builtins
import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidReferenceError

MAX_TESTS = 10_000


@dataclass(frozen=True)
class StdioTest:
    stdin: str
    stdout: str


@dataclass(frozen=True)
class StdioReference:
    tests: tuple[StdioTest, ...]


@dataclass(frozen=True)
class FunctionReference:
    test: str                 # module text: defines check(candidate), or asserts calling entry_point
    entry_point: str
    prompt: str = ""          # prepended to a completion that continues it (HumanEval)
    setup: str = ""           # run before the test module (MBPP test_setup_code / imports)
    tree: ast.Module | None = None


Reference = StdioReference | FunctionReference


def _bad(field: str, msg: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"reference.{field}: {msg}" if field else f"reference: {msg}")


def _str(ref: dict[str, Any], key: str, required: bool = True) -> str:
    v = ref.get(key)
    if v is None:
        if required:
            raise _bad(key, "missing")
        return ""
    if not isinstance(v, str):
        raise _bad(key, f"must be a string, not {type(v).__name__}")
    return v


def _parse_python(text: str, field: str) -> ast.Module:
    try:
        return ast.parse(text)
    except SyntaxError as e:
        raise _bad(field, f"not valid Python: line {e.lineno}: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise _bad(field, f"not valid Python: {type(e).__name__}") from None


def calls_name(node: ast.AST, names: set[str]) -> bool:
    """Whether `node` contains a call to a bare name in `names`."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
               for n in ast.walk(node))


def find_check(tree: ast.Module) -> ast.FunctionDef | None:
    """The last top-level `def check(candidate)` (HumanEval layout), if any."""
    found = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check" and node.args.args:
            found = node
    return found


def _stdio(ref: dict[str, Any]) -> StdioReference:
    if "tests" in ref:
        raw = ref["tests"]
        if not isinstance(raw, list) or not raw:
            raise _bad("tests", "must be a non-empty list of {stdin, stdout}")
        tests = []
        for i, t in enumerate(raw):
            if not isinstance(t, dict):
                raise _bad(f"tests[{i}]", f"must be an object with stdin and stdout, not {type(t).__name__}")
            pair = []
            for key, alias in (("stdin", "input"), ("stdout", "output")):
                v = t.get(key, t.get(alias))
                if v is None:
                    raise _bad(f"tests[{i}].{key}", "missing")
                if not isinstance(v, str):
                    raise _bad(f"tests[{i}].{key}", f"must be a string, not {type(v).__name__}")
                pair.append(v)
            tests.append(StdioTest(*pair))
    else:
        ins, outs = ref.get("inputs"), ref.get("outputs")
        if not isinstance(ins, list) or not ins:
            raise _bad("inputs", "must be a non-empty list of strings")
        if not isinstance(outs, list):
            raise _bad("outputs", "missing (one expected output per input)")
        if len(ins) != len(outs):
            raise _bad("outputs", f"has {len(outs)} entries for {len(ins)} inputs")
        for name, seq in (("inputs", ins), ("outputs", outs)):
            for i, v in enumerate(seq):
                if not isinstance(v, str):
                    raise _bad(f"{name}[{i}]", f"must be a string, not {type(v).__name__}")
        tests = [StdioTest(a, b) for a, b in zip(ins, outs)]
    if len(tests) > MAX_TESTS:
        raise _bad("tests", f"{len(tests)} tests; at most {MAX_TESTS}")
    return StdioReference(tuple(tests))


def _function(ref: dict[str, Any]) -> FunctionReference:
    prompt = _str(ref, "prompt", required=False)
    if "test_list" in ref:  # MBPP
        tl = ref["test_list"]
        if not isinstance(tl, list) or not tl or not all(isinstance(t, str) for t in tl):
            raise _bad("test_list", "must be a non-empty list of assert statements (strings)")
        for i, t in enumerate(tl):
            _parse_python(t, f"test_list[{i}]")
        test = "\n".join(tl) + "\n"
        setup = "\n".join(x for x in (_str(ref, "test_setup_code", False),
                                      "\n".join(ref.get("test_imports") or [])) if x.strip())
        entry = _str(ref, "entry_point", required=False)
        tree = _parse_python(test, "test_list")
        if not entry:
            called = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                      and not hasattr(builtins, n.func.id)]
            if not called:
                raise _bad("entry_point", "missing, and test_list calls no function to take it from")
            entry = called[0]
    else:
        test = _str(ref, "test")
        entry = _str(ref, "entry_point")
        setup = _str(ref, "test_setup_code", required=False)
        tree = _parse_python(test, "test")
    if not entry.isidentifier():
        raise _bad("entry_point", f"{entry!r} is not a Python identifier")
    if setup:
        _parse_python(setup, "test_setup_code")
    check = find_check(tree)
    if check is None and not any(calls_name(stmt, {entry}) for stmt in tree.body):
        raise _bad("test_list" if "test_list" in ref else "test",
                   f"defines no check(candidate) and no statement calls {entry!r}")
    return FunctionReference(test=test, entry_point=entry, prompt=prompt, setup=setup, tree=tree)


def parse_reference(reference: Any) -> Reference:
    """The reference as a typed object; raises InvalidReferenceError naming the field."""
    if isinstance(reference, str):
        try:
            reference = json.loads(reference)
        except ValueError:
            raise _bad("", "the code verifier needs tests: an object with 'tests' (stdin/stdout) or "
                           "'test' + 'entry_point' (function tests); got a string that is not JSON") from None
    if not isinstance(reference, dict):
        raise _bad("", f"must be an object with 'tests' or 'test' + 'entry_point', not {type(reference).__name__}")
    if "tests" in reference or "inputs" in reference:
        return _stdio(reference)
    if "test" in reference or "test_list" in reference:
        return _function(reference)
    raise _bad("", "needs 'tests' (stdin/stdout tests) or 'test' + 'entry_point' (function tests); "
                   f"got keys {sorted(reference)[:8]}")
