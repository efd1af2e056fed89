"""Issue #17, findings 1, 2 and 14 (format part): caller-supplied patterns and completions
that once froze or killed the server, and the empty R1 blocks that earned full credit.

Rules checked here: a caller's regex goes through RE2 (linear time, bounded program
size); syntax RE2 lacks is INVALID_ARGUMENT saying what to rewrite; built-in checks are
linear scans; and an outcome caused by the completion itself (too long) is OK 0 with the
reason, never TIMEOUT/ERROR. The real-server half (the server survives the pattern that
used to OOM it) is tests/reward_server/test_format_service.py.
"""
from __future__ import annotations

import time

import pytest

import verifiers
from verifiers import InvalidParamsError, Status
import verifiers.format
MAX_INPUT_CHARS = getattr(verifiers.format, "MAX_INPUT_CHARS", 1_000_000)

# 33 characters; the `regex` library expands the nested counted repeats at compile time
# (10^8 copies of `a`) and the process runs out of memory.
EXPANDING = "(?:(?:(?:a{100}){100}){100}){100}"


def test_the_expanding_pattern_is_refused_at_once_with_what_to_fix():
    assert len(EXPANDING) == 33
    t0 = time.perf_counter()
    with pytest.raises(InvalidParamsError) as e:
        verifiers.verify("format", "aaa", None, {"kind": "regex", "pattern": EXPANDING})
    assert time.perf_counter() - t0 < 0.5
    assert "params.pattern" in str(e.value) and "repetition" in str(e.value)


@pytest.mark.parametrize("pattern, hint", [
    (r"(a)\1", "backreference"),
    (r"(?=a)a", "lookaround"),
    (r"(?!a)b", "lookaround"),
    (r"(?<=a)b", "lookaround"),
    (r"(?<!a)b", "lookaround"),
    (r"a++", "RE2"),
    ("(", "RE2"),
])
def test_syntax_re2_lacks_is_invalid_argument_saying_what_to_fix(pattern, hint):
    with pytest.raises(InvalidParamsError) as e:
        verifiers.verify("format", "ab", None, {"kind": "regex", "pattern": pattern})
    assert "params.pattern" in str(e.value) and hint in str(e.value)


def test_an_overlong_pattern_is_refused():
    with pytest.raises(InvalidParamsError, match="params.pattern"):
        verifiers.verify("format", "ab", None, {"kind": "regex", "pattern": "a" * 5000})


def test_the_old_backtracking_pattern_is_linear_now_and_a_verdict():
    # format@1.0.0 reported TIMEOUT on this; RE2 has no backtracking
    t0 = time.perf_counter()
    r = verifiers.verify("format", "a" * 100_000 + "b", None, {"kind": "regex", "pattern": r"(a|aa)+$"})
    assert r.status is Status.OK and r.reward == 0.0
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("text, params, reward", [
    ("answer: 42", {"pattern": r"answer: \d+"}, 1.0),
    ("answer: 42!", {"pattern": r"answer: \d+", "full_match": True}, 0.0),
    ("answer: 42", {"pattern": r"answer: \d+", "full_match": True}, 1.0),
    ("a\nb", {"pattern": "a.b"}, 1.0),                                   # DOTALL as before
    ("Ünïcode 42", {"pattern": r"^\pL+ \d+$", "full_match": True}, 1.0),  # \pL: Unicode letters
    ("Ünïcode 42", {"pattern": r"^\w+ \d+$", "full_match": True}, 0.0),   # \w is ASCII in RE2 (documented)
    ("x\ud800y", {"pattern": "x.*y"}, 1.0),                              # a lone surrogate is no crash
])
def test_re2_patterns_score_as_users_expect(text, params, reward):
    r = verifiers.verify("format", text, None, {"kind": "regex", **params})
    assert r.status is Status.OK and r.reward == reward, r.reason


@pytest.mark.parametrize("attack", [
    "<think>" + "</think><answer></answer>" * 6000 + "x",    # 150 KB: 10 s of backtracking in 1.0.0
    "<think>x" + "</think><answer></answer>" * 6000,
    "<think>" + "</think><answer>" * 6000 + "</answer>" * 6000 + "x",
])
@pytest.mark.parametrize("params", [{}, {"strict": False}, {"kind": "tags"}])
def test_r1_check_is_linear_on_many_tag_pairs(attack, params):
    t0 = time.perf_counter()
    r = verifiers.verify("format", attack, None, params)
    assert time.perf_counter() - t0 < 0.1
    assert r.status is Status.OK and r.reward == 0.0


@pytest.mark.parametrize("kind", [{}, {"strict": False}, {"kind": "tags"},
                                  {"kind": "regex", "pattern": "a"}])
def test_a_completion_over_the_input_limit_is_a_wrong_answer_not_a_failure(kind):
    r = verifiers.verify("format", "<think>a</think><answer>a</answer>" + " " * MAX_INPUT_CHARS, None, kind)
    assert r.status is Status.OK and r.reward == 0.0 and "limit" in r.reason


@pytest.mark.parametrize("completion, params, reward", [
    ("<think></think><answer></answer>", {}, 0.0),
    ("<think> \n</think><answer>42</answer>", {}, 0.0),
    ("<think>7*6</think><answer>  </answer>", {}, 0.0),
    ("<think></think><answer></answer>", {"strict": False}, 0.0),
    ("<think></think><answer></answer>", {"kind": "tags"}, 0.0),
    ("<think>7*6</think><answer></answer>", {"kind": "tags"}, 0.5),
    ("<think>7*6</think><answer>42</answer>", {}, 1.0),
])
def test_empty_blocks_earn_no_format_credit(completion, params, reward):
    r = verifiers.verify("format", completion, None, params)
    assert r.status is Status.OK and r.reward == reward, r.reason
    if reward < 1:
        assert "empty" in r.reason


def test_format_1_0_0_stays_registered_with_its_old_verdicts_but_bounded():
    old = {"version": "1.0.0"}
    assert verifiers.verify("format", "<think></think><answer></answer>", None, **old).reward == 1.0
    assert verifiers.verify("format", "a" * 40 + "b", None, {"kind": "regex", "pattern": r"(a|aa)+$",
                                                            "timeout_s": 0.1}, **old).status is Status.TIMEOUT
    assert verifiers.verify("format", "aa", None, {"kind": "regex", "pattern": r"(a)\1"}, **old).reward == 1.0
    # ... but its validation no longer compiles an expanding pattern in the caller's process
    t0 = time.perf_counter()
    with pytest.raises(InvalidParamsError, match="params.pattern"):
        verifiers.verify("format", "aaa", None, {"kind": "regex", "pattern": EXPANDING}, **old)
    assert time.perf_counter() - t0 < 0.5


def _random_text(n: int) -> str:
    import random

    rng = random.Random(0)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def test_a_pattern_whose_program_is_too_large_is_refused():
    # 134,205 RE2 instructions: 1.5 s per MB even in linear time
    with pytest.raises(InvalidParamsError, match="instructions"):
        verifiers.verify("format", "ab", None, {"kind": "regex", "pattern": r"(?:\pL|\pN){100}Q"})


@pytest.mark.parametrize("pattern", [r"(?:.{999})*y{5}",        # 10-90 s on 1 MB before (submatch NFA)
                                     r"(?:a|b)*.{700}zzzz",      # RE2's DFA gives up: the NFA, 1.2 s per MB
                                     r"(?:a|b)*.{350}zzzz", r"(?:.{355})*y{5}", r"(?:.?){277}y{277}",
                                     r"(?:.{140})*y{5}", r"^\pL+ \d+$"])
def test_a_caller_pattern_on_a_megabyte_is_bounded_in_time(pattern):
    text = _random_text(MAX_INPUT_CHARS)
    t0 = time.perf_counter()
    try:
        r = verifiers.verify("format", text, None, {"kind": "regex", "pattern": pattern})
    except InvalidParamsError as e:
        assert "instructions" in str(e)        # refused up front, as the caller's pattern
        return
    assert time.perf_counter() - t0 < 2.0       # 0.6 s at worst on a quiet machine
    assert r.status is Status.OK and r.reason


def test_a_large_pattern_scans_a_bounded_prefix_of_work_and_says_so():
    # a pattern of P instructions may scan REGEX_WORK_BUDGET / P bytes; a longer completion is OK 0
    from verifiers.format import REGEX_WORK_BUDGET, compile_pattern

    pattern = r"(?:\pL|\pN)x{800}"
    size = compile_pattern(pattern).programsize
    may_scan = REGEX_WORK_BUDGET // size
    assert 1250 < size <= 2500 and may_scan < MAX_INPUT_CHARS
    short = verifiers.verify("format", "é" + "x" * 800, None, {"kind": "regex", "pattern": pattern})
    assert short.status is Status.OK and short.reward == 1.0
    r = verifiers.verify("format", "é" + "x" * may_scan, None, {"kind": "regex", "pattern": pattern})
    assert r.status is Status.OK and r.reward == 0.0 and f"{may_scan:,}" in r.reason
    # up to 1,250 instructions (a Unicode class and some more) the whole 1 MB is scanned
    r = verifiers.verify("format", "x" * (MAX_INPUT_CHARS - 1) + "é", None, {"kind": "regex", "pattern": r"\pL$"})
    assert r.status is Status.OK and r.reward == 1.0


def test_format_1_0_0_sizes_only_short_patterns():
    # Python's parser takes 0.5 s on 100 KB of pattern, wherever the request is validated
    with pytest.raises(InvalidParamsError, match="at most 10,000 characters"):
        verifiers.verify("format", "a", None, {"kind": "regex", "pattern": "(?:a|b)" * 2000}, version="1.0.0")
