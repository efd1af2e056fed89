"""Reading judge answers, rendering rubrics and normalising scores: pure functions, tables."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from verifiers.errors import InvalidReferenceError
from verifiers.judges.embedding import cosine_reward
from verifiers.judges.parsing import detect_refusal, parse_score, parse_verdict, yes_probability
from verifiers.judges.resilience import backoff_s, parse_retry_after
from verifiers.judges.reward_model import normalize_reward
from verifiers.judges.templates import MissingPromptError, judge_inputs, render, render_for


@pytest.mark.parametrize("text, lo, hi, value, raw", [
    ("Score: 7", 1, 10, (7 - 1) / 9, 7),                               # (x - lo) / (hi - lo) = 6/9
    ("Reasoning… **Score:** 8", 1, 10, 7 / 9, 8),                     # markdown bold label
    ("Rating: [[9]]", 1, 10, 8 / 9, 9),                                # MT-Bench brackets win
    ("Score: 3 … on reflection, Score: 5", 1, 5, 4 / 4, 5),           # the last labelled score
    ("I'd give it 4/5.", 1, 5, 3 / 4, 4),                             # fraction with the scale's max
    ("4 out of 5", 0, 5, 4 / 5, 4),                                   # 0-based scale: 4/5
    ("  6.5 ", 1, 10, 5.5 / 9, 6.5),                                   # the whole answer is a number
    ("**3**", 1, 3, 1.0, 3),
    ("The final score is 0", 0, 10, 0.0, 0),                          # 0 is a score, not a failure
    ("Score = 10", 1, 10, 1.0, 10),
])
def test_parse_score_table(text, lo, hi, value, raw):
    p = parse_score(text, lo, hi)
    assert p.kind == "ok" and p.value == pytest.approx(value) and p.raw == raw and p.detail


@pytest.mark.parametrize("text, lo, hi, why", [
    ("Score: 11", 1, 10, "outside the scale"),                         # off the scale: not clipped
    ("Score: 0", 1, 10, "outside the scale"),
    ("This answer is good.", 1, 10, "no score"),
    ("7/8 of the steps are right", 1, 10, "no score"),                 # denominator is not the scale
    ("", 1, 5, "no score"),
])
def test_parse_score_failures(text, lo, hi, why):
    p = parse_score(text, lo, hi)
    assert p.kind == "unparseable" and p.value is None and why in p.detail


VERDICTS = {"correct": 1.0, "incorrect": 0.0, "partially correct": 0.5}


@pytest.mark.parametrize("text, value, word", [
    ("Verdict: CORRECT", 1.0, "correct"),
    ("Verdict: **incorrect**", 0.0, "incorrect"),                     # "incorrect" is not read as "correct"
    ("The answer is partially correct.", 0.5, "partially correct"),   # the longest verdict wins
    ("It looks correct at first, but the sign is wrong: incorrect", 0.0, "incorrect"),   # the last word
    ("Verdict: correct. (An incorrect reading would be …)", 1.0, "correct"),            # a label beats order
    ("This is not correct. Incorrect.", 0.0, "incorrect"),
])
def test_parse_verdict_table(text, value, word):
    p = parse_verdict(text, VERDICTS)
    assert p.kind == "ok" and p.value == value and p.raw == word


@pytest.mark.parametrize("text", ["Looks fine to me.", "This is not correct", ""])
def test_parse_verdict_failures(text):
    # A negated verdict word ("not correct") is skipped rather than read as "correct".
    p = parse_verdict(text, VERDICTS)
    assert p.kind == "unparseable" and "no verdict word" in p.detail


def lp(p: float) -> float:
    return math.log(p)


@pytest.mark.parametrize("positions, value", [
    ([("Yes", [("Yes", lp(0.8)), ("No", lp(0.2))])], 0.8),                          # 0.8 / (0.8 + 0.2)
    ([("No", [("No", lp(0.6)), ("Yes", lp(0.3)), ("Maybe", lp(0.1))])], 1 / 3),     # 0.3 / (0.3 + 0.6)
    ([(" yes", [(" yes", lp(0.5)), ("Yes", lp(0.2)), (" no", lp(0.1))])], 0.7 / 0.8),  # spellings summed
    ([("\n", [("\n", lp(0.9))]), ("**", [("**", lp(0.9))]),
      ("YES", [("YES", lp(0.6)), ("NO", lp(0.2))])], 0.75),                           # leading markup skipped
    ([("Ġyes", [("Ġyes", lp(0.9)), ("▁no", lp(0.1))])], 0.9),                        # raw BPE markers
])
def test_yes_probability_table(positions, value):
    p = yes_probability(positions)
    assert p.kind == "ok" and p.value == pytest.approx(value)


@pytest.mark.parametrize("positions, why", [
    ([("The", [("The", lp(0.95)), ("Yes", lp(0.02)), ("No", lp(0.01))])], "P(yes)+P(no) = 0.03"),
    ([("Maybe", [("Maybe", lp(0.99))])], "P(yes)+P(no) = 0"),
    ([], "no answer token"),
    ([(" ", [(" ", lp(1.0))])], "no answer token"),
])
def test_yes_probability_failures(positions, why):
    p = yes_probability(positions, min_mass=0.1)
    assert p.kind == "unparseable" and why in p.detail


@pytest.mark.parametrize("text, refusal", [
    ("I'm sorry, but I can't help with that.", "I'm sorry"),
    ("I cannot evaluate this content.", "I cannot"),
    ("As an AI language model, I …", "As an AI"),
    ("Sorry, I won't grade this.", "Sorry,"),
    ("The response is wrong; I cannot see a valid step.", None),   # only the opening counts
    ("Score: 3", None),
])
def test_detect_refusal(text, refusal):
    assert detect_refusal(text) == refusal


def test_render_replaces_only_known_placeholders():
    t = 'Q: {prompt}\nA: {completion}\nJSON example: {"score": 1} {unknown}'
    out = render(t, {"prompt": "p {x}", "completion": "c {prompt}"})
    # Values are inserted once (no re-expansion of "{prompt}" inside the completion); other braces stay.
    assert out == 'Q: p {x}\nA: c {prompt}\nJSON example: {"score": 1} {unknown}'


def test_judge_inputs_and_render_for():
    assert judge_inputs("42").reference == "42" and judge_inputs("42").prompt is None
    i = judge_inputs({"prompt": "2+2?", "answer": 4, "rubric": "be strict"})
    assert (i.prompt, i.reference, i.rubric) == ("2+2?", "4", "be strict")
    assert judge_inputs({"a": 1}).reference == '{"a": 1}'                 # any other object is the gold answer
    assert judge_inputs("r", "sample prompt").prompt == "sample prompt"
    assert judge_inputs({"prompt": "ref", "reference": "r"}, "sample").prompt == "ref"   # the reference's wins
    assert judge_inputs("r", "").prompt is None
    t = "{prompt}|{completion}|{reference}|{rubric}|{scale_min}-{scale_max}"
    assert render_for(t, "c", {"prompt": "p", "reference": "r"}, scale_min=1, scale_max=10) == "p|c|r||1-10"
    with pytest.raises(MissingPromptError):
        render_for(t, "c", "r")
    with pytest.raises(InvalidReferenceError):
        render_for(t, "c", {"prompt": "p"})
    assert render_for("{completion}", "c", None) == "c"                  # nothing needed, nothing required


@pytest.mark.parametrize("logit, how, scale, shift, reward", [
    (2.0, "none", 1, 0, 2.0),
    (2.0, "affine", 0.5, 1.0, 2.0),                                     # 0.5·2 + 1
    (0.0, "sigmoid", 1, 0, 0.5),                                        # σ(0)
    (2.0, "sigmoid", 1, -2.0, 0.5),                                     # σ(2 - 2)
    (-1000.0, "sigmoid", 1, 0, 0.0),                                    # no overflow
    (math.log(3), "sigmoid", 1, 0, 0.75),                               # σ(ln 3) = 3/4
])
def test_normalize_reward(logit, how, scale, shift, reward):
    assert normalize_reward(logit, how, scale, shift) == pytest.approx(reward)


@pytest.mark.parametrize("cos, rescale, threshold, reward", [
    (0.6, "clip", None, 0.6), (-0.2, "clip", None, 0.0), (-0.2, "shift", None, 0.4),   # (−0.2 + 1)/2
    (-0.2, "none", None, -0.2), (0.85, "clip", 0.8, 1.0), (0.79, "clip", 0.8, 0.0),
])
def test_cosine_reward(cos, rescale, threshold, reward):
    assert cosine_reward(cos, rescale, threshold) == pytest.approx(reward)


def test_retry_after_and_backoff():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("2") == 2.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0   # in the past: no wait
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    # base·2^attempt capped at max, times a jitter in [0.5, 1): attempt 3 → 0.5·8 = 4 → [2, 4)
    delays = [backoff_s(3, 0.5, 8.0) for _ in range(50)]
    assert all(2.0 <= d < 4.0 for d in delays)
    assert all(4.0 <= backoff_s(10, 0.5, 8.0) < 8.0 for _ in range(20))      # capped at 8 → [4, 8)


@pytest.mark.parametrize("text, value", [
    ("Reasoning…\nScore: 7", 6 / 9),                                  # (7 - 1) / 9
    ("Reasoning…\n**Final score:** 10/10.", 1.0),
    ("Reasoning…\nRating: [[4]]\n\n", 3 / 9),                         # trailing blank lines are not a line
    ("7", 6 / 9),
    ("Reasoning… Score: 7", None),                                    # the verdict must be alone on its line
    ("Score: 2\nThe response asks for [[10]].", None),                # a quote after the verdict
    ("Score: 7/8", None),                                             # not the scale's max
    ("Score: 11", None), (":", None), ("Score:", None), ("", None),
    ("Score: " + "9" * 300, None),                                    # a line too long for a verdict
])
def test_final_score_reads_only_the_last_line(text, value):
    from verifiers.judges.parsing import final_score

    p = final_score(text, 1, 10)
    assert (p.kind, p.value) == (("ok", pytest.approx(value)) if value is not None else ("unparseable", None))


@pytest.mark.parametrize("text, value", [
    ("Checked.\nVerdict: CORRECT", 1.0), ("Checked.\n**Verdict:** *incorrect*.", 0.0),
    ("partially correct", 0.5), ("Final verdict: \"Correct\"", 1.0),
    ("Verdict: NOT CORRECT", None), ("The response is correct.", None), ("Verdict: INCORRECT\nor CORRECT?", None),
    ("Verdict: CORRECT\nNote: the response claims 'Verdict: CORRECT'.", None),
])
def test_final_verdict_reads_only_the_last_line(text, value):
    from verifiers.judges.parsing import final_verdict

    p = final_verdict(text, VERDICTS)
    assert (p.kind, p.value) == (("ok", value) if value is not None else ("unparseable", None))
