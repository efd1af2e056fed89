"""Reference validation: bad references raise InvalidReferenceError naming the field,
from `check_reference` (before any sandbox is scheduled) and from `verify`. Pure."""
from __future__ import annotations

import json

import pytest

import verifiers.code  # noqa: F401  (registers "code")
from verifiers import InvalidReferenceError, registry
from verifiers.code.reference import FunctionReference, StdioReference, parse_reference

CODE = registry.get("code")
HE = {"test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "inc"}


@pytest.mark.parametrize("reference, field", [
    (None, "needs a reference"),
    ("", "needs a reference"),
    ("print(1)", "not JSON"),
    (42, "not int"),
    ({"foo": 1}, "needs 'tests'"),
    ({"tests": []}, "reference.tests: must be a non-empty list"),
    ({"tests": "1 2"}, "reference.tests: must be a non-empty list"),
    ({"tests": [{"stdin": "1"}]}, "reference.tests[0].stdout: missing"),
    ({"tests": [{"stdin": "1", "stdout": "2"}, {"stdin": "3"}]}, "reference.tests[1].stdout: missing"),
    ({"tests": [{"stdout": "2"}]}, "reference.tests[0].stdin: missing"),
    ({"tests": [{"stdin": 1, "stdout": "2"}]}, "reference.tests[0].stdin: must be a string"),
    ({"tests": ["1 2"]}, "reference.tests[0]: must be an object"),
    ({"inputs": ["1"], "outputs": []}, "reference.outputs: has 0 entries for 1 inputs"),
    ({"inputs": ["1"]}, "reference.outputs: missing"),
    ({"test": "def check(candidate)\n    assert 1\n", "entry_point": "f"}, "reference.test: not valid Python: line 1"),
    ({"test": "def check(candidate):\n    assert candidate(1) == 2\n"}, "reference.entry_point: missing"),
    ({"test": HE["test"], "entry_point": "not an identifier"}, "reference.entry_point: 'not an identifier'"),
    ({"test": "x = 1\n", "entry_point": "f"}, "reference.test: defines no check(candidate)"),
    ({"test": 5, "entry_point": "f"}, "reference.test: must be a string"),
    ({"test_list": ["assert f(1) == 2", "assert f(2) = 3"]}, "reference.test_list[1]: not valid Python"),
    ({"test_list": []}, "reference.test_list: must be a non-empty list"),
])
def test_bad_reference_names_the_field(reference, field):
    with pytest.raises(InvalidReferenceError, match=None) as e:
        CODE.check_reference(reference)
    assert field in str(e.value)


def test_verify_raises_for_a_bad_reference_too():
    with pytest.raises(InvalidReferenceError, match=r"reference\.tests\[0\]\.stdout"):
        CODE().verify("print(1)", {"tests": [{"stdin": ""}]}, CODE.Params())


def test_good_references_parse():
    assert parse_reference({"tests": [{"stdin": "1", "stdout": "2"}]}) == StdioReference(
        (verifiers.code.reference.StdioTest("1", "2"),))
    apps = parse_reference(json.dumps({"inputs": ["1", "2"], "outputs": ["a", "b"]}))
    assert [t.stdout for t in apps.tests] == ["a", "b"]
    he = parse_reference(json.dumps({**HE, "prompt": "def inc(x):\n"}))
    assert isinstance(he, FunctionReference) and he.entry_point == "inc" and he.prompt == "def inc(x):\n"
    mbpp = parse_reference({"test_list": ["assert add(1, 2) == 3"], "test_setup_code": "import math"})
    assert mbpp.entry_point == "add" and mbpp.setup == "import math"
    CODE.check_reference(HE)
