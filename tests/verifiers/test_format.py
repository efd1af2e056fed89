from __future__ import annotations

import pytest

import verifiers
from verifiers import InvalidParamsError, Status

R1 = "<think>7*6 = 42</think><answer>42</answer>"


@pytest.mark.parametrize("completion, params, reward", [
    (R1, {}, 1.0),
    ("  <think>a</think>\n<answer>b</answer>\n", {}, 1.0),
    ("Sure! " + R1, {}, 0.0),                                     # strict: nothing outside the blocks
    ("Sure! " + R1, {"strict": False}, 1.0),                      # lenient: text may surround them
    ("<think>a</think><answer>b</answer><answer>c</answer>", {}, 0.0),
    ("<think>a</think><answer>b</answer><answer>c</answer>", {"strict": False}, 0.0),
    ("<answer>b</answer><think>a</think>", {"strict": False}, 0.0),  # out of order
    ("<think>a<think>b</think><answer>c</answer>", {}, 0.0),          # nested open tag
    ("<think>a</think>", {"kind": "tags"}, 0.5),
    (R1, {"kind": "tags"}, 1.0),
    ("<think></think></think><answer>x</answer>", {"kind": "tags"}, 0.5),
    ("answer: 42", {"kind": "regex", "pattern": r"answer: \d+"}, 1.0),
    ("answer: 42!", {"kind": "regex", "pattern": r"answer: \d+", "full_match": True}, 0.0),
    ("x" * 10, {"kind": "length", "min_chars": 5, "max_chars": 10}, 1.0),
    ("x" * 11, {"kind": "length", "min_chars": 5, "max_chars": 10}, 0.0),
    ("x" * 4, {"kind": "length", "min_chars": 5}, 0.0),
])
def test_format_table(completion, params, reward):
    r = verifiers.verify("format", completion, None, params)
    assert r.status is Status.OK and r.reward == reward and r.reason


def test_catastrophic_regex_is_timeout_not_a_hang_in_1_0_0():
    # format@2.0.0 matches with RE2 (no backtracking): tests/verifiers/test_format_hostile.py
    r = verifiers.verify("format", "a" * 40 + "b", None, {"kind": "regex", "pattern": r"(a|aa)+$", "timeout_s": 0.1},
                         version="1.0.0")
    assert r.status is Status.TIMEOUT and r.reward is None


@pytest.mark.parametrize("params, field", [({"kind": "regex"}, "pattern"), ({"kind": "regex", "pattern": "("}, "pattern"),
                                           ({"kind": "length", "min_chars": 5, "max_chars": 1}, "max_chars"),
                                           ({"stric": True}, "params.stric")])
def test_bad_params_name_the_field(params, field):
    with pytest.raises(InvalidParamsError, match=field):
        verifiers.verify("format", R1, None, params)
