"""The `judge` verifier against a real loopback OpenAI-compatible server that misbehaves on cue."""
from __future__ import annotations

import concurrent.futures as cf
import time

import pytest

import verifiers
import verifiers.judges  # noqa: F401  (registers the judges)
from tests.helpers.openai_stub import OpenAIStub
from verifiers import InvalidParamsError, Status
from verifiers.judges.openai_judge import JudgeParams, endpoint, reset_endpoints
from verifiers.judges.resilience import BreakerState

REF = {"prompt": "What is 2+2?", "reference": "4"}


@pytest.fixture
def judge_stub():
    reset_endpoints()
    with OpenAIStub() as s:
        yield s
    reset_endpoints()


def judge(stub: OpenAIStub, completion: str = "2+2 = 4", reference=REF, prompt: str | None = None, **params):
    base = {"base_url": stub.base_url, "model": "stub-judge", "backoff_base_s": 0.01, "backoff_max_s": 0.05}
    return verifiers.verify("judge", completion, reference, {**base, **params}, prompt=prompt)


@pytest.mark.parametrize("behaviour, params, status, fragments, requests", [
    ("score", {}, Status.OK, ["score 7 on [1, 10]"], 1),
    ("refusal", {}, Status.ABSTAIN, ["judge refused", "I'm sorry, but I can't help with that."], 1),
    ("refusal_field", {}, Status.ABSTAIN, ["judge refused", "I can't assist with grading"], 1),
    ("garbage", {}, Status.ERROR, ["not a JSON object", "<html>upstream proxy error"], 1),   # not retried
    ("500", {"max_retries": 2}, Status.ERROR, ["HTTP 500 after 3 attempts", "CUDA out of memory"], 3),
    ("429", {"max_retries": 2}, Status.ERROR, ["HTTP 429 after 3 attempts", "rate limited"], 3),
    ("drop", {"max_retries": 1}, Status.ERROR, ["connection failed", "after 2 attempts"], 2),
    ("slow", {"deadline_s": 0.3}, Status.TIMEOUT, ["no answer within the 0.3 s deadline"], 1),
    ("text", {}, Status.ERROR, ["unparseable answer: the last line is not 'Score: N'", "Hmm, hard to say."], 1),
])
def test_each_misbehaviour_has_its_status_and_reason(judge_stub, behaviour, params, status, fragments, requests):
    judge_stub.behaviour, judge_stub.text = behaviour, "Hmm, hard to say."
    t0 = time.perf_counter()
    r = judge(judge_stub, **params)
    assert r.status is status, r.reason
    assert (r.reward is not None) == (status is Status.OK)       # a failure is never a reward of 0
    for f in fragments:
        assert f in r.reason
    assert judge_stub.requests == requests
    assert time.perf_counter() - t0 < 2.0
    if status is Status.OK:
        assert r.reward == pytest.approx(6 / 9)                   # 7 on [1, 10]: (7 - 1) / 9


def test_transient_failures_are_retried_until_an_answer(judge_stub):
    judge_stub.script("500", "429", "drop")
    r = judge(judge_stub, max_retries=3)
    assert r.status is Status.OK and r.details["attempts"] == 4 and judge_stub.requests == 4
    assert judge_stub.by_behaviour == {"500": 1, "429": 1, "drop": 1, "score": 1}


def test_retry_after_is_honoured(judge_stub):
    judge_stub.retry_after = "0.4"
    judge_stub.script("429")
    t0 = time.perf_counter()
    r = judge(judge_stub, backoff_base_s=0.0, backoff_max_s=0.0)   # no backoff of our own: only Retry-After
    assert r.status is Status.OK and judge_stub.requests == 2
    assert time.perf_counter() - t0 >= 0.4


def test_retry_after_past_the_deadline_gives_up_at_once(judge_stub):
    judge_stub.behaviour, judge_stub.retry_after = "429", "30"
    t0 = time.perf_counter()
    r = judge(judge_stub, deadline_s=2.0)
    assert r.status is Status.ERROR and "would pass the deadline" in r.reason and "HTTP 429" in r.reason
    assert judge_stub.requests == 1 and time.perf_counter() - t0 < 1.0


def test_client_errors_are_not_retried(judge_stub):
    r = verifiers.verify("judge", "x", REF, {"base_url": f"http://127.0.0.1:{judge_stub.port}/wrong",
                                             "model": "m", "max_retries": 3})
    assert r.status is Status.ERROR and "HTTP 404" in r.reason and r.details["attempts"] == 1


def test_circuit_breaker_opens_after_repeated_failures_and_closes_later(judge_stub):
    judge_stub.behaviour = "500"
    params = {"max_retries": 0, "breaker_failure_threshold": 3, "breaker_reset_s": 0.3}
    for _ in range(3):
        assert judge(judge_stub, **params).status is Status.ERROR
    ep = endpoint(JudgeParams(base_url=judge_stub.base_url, model="stub-judge", **params))
    assert ep.breaker.state is BreakerState.OPEN and judge_stub.requests == 3
    r = judge(judge_stub, **params)
    assert r.status is Status.ERROR and "circuit open" in r.reason and r.details["failure"] == "CircuitOpenError"
    assert judge_stub.requests == 3                               # failed fast: nothing sent
    judge_stub.behaviour = "score"                                # the endpoint recovers
    time.sleep(0.35)
    r = judge(judge_stub, **params)                               # the half-open trial succeeds
    assert r.status is Status.OK and ep.breaker.state is BreakerState.CLOSED and judge_stub.requests == 4
    assert judge(judge_stub, **params).status is Status.OK


def test_concurrency_limit_is_never_exceeded(judge_stub):
    judge_stub.delay_s = 0.05
    with cf.ThreadPoolExecutor(40) as ex:
        results = list(ex.map(lambda i: judge(judge_stub, f"answer {i}", max_concurrency=4), range(40)))
    assert all(r.status is Status.OK for r in results)
    assert judge_stub.requests == 40 and judge_stub.max_in_flight == 4   # saturated, never above
    ep = endpoint(JudgeParams(base_url=judge_stub.base_url, model="stub-judge", max_concurrency=4))
    assert ep.concurrency.max_in_flight == 4 and ep.concurrency.in_flight == 0


def test_limits_are_shared_per_endpoint_and_model(judge_stub):
    a = JudgeParams(base_url=judge_stub.base_url, model="m", mode="score")
    b = JudgeParams(base_url=judge_stub.base_url + "/", model="m", mode="verdict", template="{completion}")
    c = JudgeParams(base_url=judge_stub.base_url, model="other")
    assert endpoint(a) is endpoint(b) and endpoint(a) is not endpoint(c)


def test_requests_per_minute_spaces_requests(judge_stub):
    # 600/min = 10/s with a burst of 10: 15 calls need 5 more tokens at 0.1 s each.
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(15) as ex:
        results = list(ex.map(lambda i: judge(judge_stub, requests_per_minute=600), range(15)))
    assert all(r.status is Status.OK for r in results)
    assert time.perf_counter() - t0 >= 0.4


def test_rate_limit_past_the_deadline_is_a_timeout(judge_stub):
    params = {"requests_per_minute": 1, "deadline_s": 0.5}
    assert judge(judge_stub, **params).status is Status.OK        # the one-token burst
    r = judge(judge_stub, **params)                               # next token due in 60 s
    assert r.status is Status.TIMEOUT and "rate limit" in r.reason and judge_stub.requests == 1


def test_api_key_is_read_from_the_named_variable(judge_stub, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "s3cret")
    assert judge(judge_stub, api_key_env="JUDGE_TEST_KEY").status is Status.OK
    assert judge_stub.auth_headers == ["Bearer s3cret"]
    monkeypatch.delenv("JUDGE_TEST_KEY")
    r = judge(judge_stub, api_key_env="JUDGE_TEST_KEY")
    assert r.status is Status.ERROR and "JUDGE_TEST_KEY is not set" in r.reason and judge_stub.requests == 1
    for bad in ("sk-live-abc123", "OPENAI_API_KEY"):             # a key, or a variable not meant for judges
        with pytest.raises(InvalidParamsError, match="api_key_env"):
            judge(judge_stub, api_key_env=bad)


def test_allowed_urls_restrict_endpoints(judge_stub, monkeypatch):
    monkeypatch.setenv("VERIFIERS_JUDGE_ALLOWED_URLS", "https://judge.internal/v1")
    with pytest.raises(InvalidParamsError, match="allowed judge URLs"):
        judge(judge_stub)
    monkeypatch.setenv("VERIFIERS_JUDGE_ALLOWED_URLS", f"https://judge.internal/v1, {judge_stub.base_url}")
    assert judge(judge_stub).status is Status.OK


def test_yes_no_uses_logprobs_and_falls_back_to_the_word(judge_stub):
    judge_stub.behaviour, judge_stub.p_yes = "logprobs", 0.3
    r = judge(judge_stub, mode="yes_no")
    assert r.status is Status.OK and r.reward == pytest.approx(0.3) and "P(yes)=0.3000" in r.reason
    body = judge_stub.bodies[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == 5 and body["max_tokens"] == 8
    judge_stub.behaviour, judge_stub.text = "no_logprobs", "No."
    r = judge(judge_stub, mode="yes_no")
    assert r.status is Status.OK and r.reward == 0.0 and "no logprobs" in r.reason


def test_verdict_mode_and_request_shape(judge_stub):
    judge_stub.behaviour, judge_stub.text = "text", "The signs differ.\nVerdict: INCORRECT"
    r = judge(judge_stub, mode="verdict", system_prompt="You are strict.", temperature=0.0,
              extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert r.status is Status.OK and r.reward == 0.0
    body = judge_stub.bodies[-1]
    assert body["model"] == "stub-judge" and body["messages"][0] == {"role": "system", "content": "You are strict."}
    user = body["messages"][1]["content"]
    assert "What is 2+2?" in user and "2+2 = 4" in user and "[Reference answer]\n4" in user
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and "logprobs" not in body


def test_reasoning_is_skipped_and_a_cut_answer_says_so(judge_stub):
    judge_stub.behaviour = "text"
    judge_stub.text = "<think>Score: 2 at first sight… no, it is right.</think>\n8"
    r = judge(judge_stub)
    assert r.status is Status.OK and r.reward == pytest.approx(7 / 9)   # 8 on [1, 10], not the 2 in the thoughts
    judge_stub.text, judge_stub.finish_reason = "<think>Let me check each step of the", "length"
    r = judge(judge_stub, max_tokens=16)
    assert r.status is Status.ERROR and "cut at max_tokens 16" in r.reason


def test_prompt_comes_from_the_reference_or_the_caller(judge_stub):
    r = judge(judge_stub, reference="4")                          # the default template needs {prompt}
    assert r.status is Status.ERROR and "{prompt}" in r.reason and judge_stub.requests == 0
    r = judge(judge_stub, reference="4", prompt="How much is two plus two?")
    assert r.status is Status.OK and "How much is two plus two?" in judge_stub.bodies[-1]["messages"][0]["content"]
    r = judge(judge_stub, reference=None, template="Rate this from 1 to 10: {completion}")
    assert r.status is Status.OK                                  # a rubric-only template needs neither


@pytest.mark.parametrize("params, field", [
    ({"template": "no placeholder"}, "completion"),
    ({"scale_min": 5, "scale_max": 5}, "scale_max"),
    ({"verdicts": {"good": 2.0}}, "verdicts"),
    ({"base_url": "ftp://x"}, "base_url"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"colour": "red"}, "colour"),
])
def test_bad_params_name_the_field(judge_stub, params, field):
    with pytest.raises(InvalidParamsError, match=field):
        judge(judge_stub, **params)
