"""`judge`: a generative judge behind an OpenAI-compatible chat endpoint (vLLM, SGLang, a
hosted API), scored pointwise (a number on a scale, a verdict word) or by P(yes).

One call is: render the rubric → wait for a concurrency slot and a rate token → check
the circuit breaker → POST /chat/completions → read the answer. 429, 5xx, connection
errors and per-request timeouts are retried with exponential backoff (Retry-After is
honoured) while the call's deadline allows. Every way of not getting a score is a
JudgeFailure (see errors.py) and so a non-OK result with the raw answer or error.

Where a call goes is decided by this process's reach policy (policy.py): `endpoint: NAME`
picks an endpoint the operator configured (its URL, model, key and limits); `base_url` +
`model` name a URL of the request's own, accepted only where the policy allows it (any URL
in a library user's own process; on a shared server with auth on only URLs under the
operator's allowed prefixes, sent no server key, their raw replies withheld from reasons).

The limits and the breaker belong to the endpoint (a configured name, or base_url +
model), shared by every thread of the process: `_ENDPOINTS` below. A configured
endpoint's limits are the operator's; a request-chosen URL's are those of the most recent
call's parameters. The connection pool is shared too (httpx.Client is thread-safe); calls
run on the server's "judge" thread pool, so blocking I/O is fine. Redirects are never
followed.

`api_key_env` (request-chosen URLs only) names an environment variable (never a key) and
must start with `JUDGE_`, so a caller cannot have other server secrets sent to a URL of
its choosing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator, model_validator

from ..core import Verifier, VerifierResult
from ..registry import register, register_compatible
from .errors import (JudgeBadResponse, JudgeConnectionError, JudgeFailure, JudgeHTTPError, JudgeRefused,
                     JudgeTimeout, JudgeUnparseable, excerpt)
from .parsing import yes_probability
from .policy import JudgeEndpoint, JudgeTarget, current_policy
from .resilience import CircuitBreaker, ConcurrencyLimit, RateLimit, backoff_s, parse_retry_after
from .rubric import NO_VERDICT_DESCRIPTION, NoVerdict, RubricParams, check, failure_or_zero, read_text
from .templates import MissingPromptError

KEY_ENV_PREFIX = "JUDGE_"
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Set by the operator for a configured endpoint; a request may set them only for a URL of its own.
_ENDPOINT_LIMITS = ("max_concurrency", "requests_per_minute", "breaker_failure_threshold", "breaker_reset_s")
_DEFAULT_LIMITS = JudgeEndpoint(base_url="http://default.invalid", model="-")


class JudgeParamsV11(RubricParams):
    """The parameters of judge@1.0.0 and 1.1.0 (kept, so their parameter hashes stay)."""

    endpoint: str | None = Field(None, description="name of a judge endpoint the server configures (its URL, "
                                                   "model, key and limits); the way to pick a judge on a shared "
                                                   "server")
    base_url: str | None = Field(None, description="OpenAI-compatible API root, e.g. http://vllm:8000/v1, where "
                                                   "the server allows a URL of the request's own")
    model: str | None = Field(None, min_length=1, description="model name sent in the request (with base_url)")
    api_key_env: str | None = Field(None, description=f"with base_url: name of the environment variable holding "
                                                      f"the API key (must start with {KEY_ENV_PREFIX}); never the "
                                                      f"key itself")
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=32768, description="answer length cap; default 8 for yes_no, "
                                                                     "1024 otherwise")
    top_logprobs: int = Field(5, ge=1, le=20, description="yes_no mode: candidates per token to ask for")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra request fields (e.g. vLLM's "
                                                                         "chat_template_kwargs)")
    max_concurrency: int | None = Field(None, ge=1, le=1024, description="with base_url: requests in flight to "
                                                                         "this endpoint+model, process-wide "
                                                                         "(default 32)")
    requests_per_minute: float | None = Field(None, gt=0, description="with base_url: rate limit for this "
                                                                      "endpoint+model")
    deadline_s: float = Field(60.0, gt=0, le=3600, description="whole call: waiting, retries and answer")
    request_timeout_s: float = Field(30.0, gt=0, le=3600, description="one HTTP attempt")
    max_retries: int | None = Field(None, ge=0, le=20, description="retries after the first attempt (429, 5xx, "
                                                                   "timeouts, connection errors); default 3, or "
                                                                   "the endpoint's, which is also the most")
    backoff_base_s: float = Field(0.5, ge=0, le=60)
    backoff_max_s: float = Field(8.0, ge=0, le=600)
    breaker_failure_threshold: int | None = Field(None, ge=1, le=1000, description="with base_url: consecutive "
                                                  "failed attempts that open the circuit (default 5)")
    breaker_reset_s: float | None = Field(None, gt=0, le=3600, description="with base_url: how long the circuit "
                                          "stays open before a trial request (default 30)")

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8000/v1")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _key_env(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", v):
            raise ValueError("must be the NAME of an environment variable (A-Z, 0-9, _), not the key itself")
        if not v.startswith(KEY_ENV_PREFIX):
            raise ValueError(f"must start with {KEY_ENV_PREFIX} (only variables meant for judges may be sent)")
        return v

    @model_validator(mode="after")
    def _check(self) -> "JudgeParamsV11":
        t = target(self)  # raises ValueError naming the parameter and the allowed choices
        if t.limits is not None:
            fixed = [f for f in _ENDPOINT_LIMITS if getattr(self, f) is not None]
            if fixed:
                raise ValueError(f"params.{fixed[0]}: set by the operator for endpoint {t.endpoint!r}; leave "
                                 f"{', '.join(fixed)} out")
            if self.max_retries is not None and self.max_retries > t.limits.max_retries:
                raise ValueError(f"params.max_retries: at most {t.limits.max_retries} for endpoint {t.endpoint!r}")
        return self


class JudgeParams(JudgeParamsV11):
    max_completion_chars: int = Field(100_000, ge=1, le=10_000_000, description=(
        "a longer completion is a wrong answer (OK, reward 0, with the reason) and the judge is not called: "
        "its length is the completion's own doing, not the judge's failure"))
    no_verdict: NoVerdict = Field("error", description=NO_VERDICT_DESCRIPTION)


def target(params: JudgeParamsV11) -> JudgeTarget:
    """Where `params` send their calls, per this process's reach policy. Raises ValueError."""
    return current_policy().judge_target(endpoint=params.endpoint, base_url=params.base_url, model=params.model,
                                         api_key_env=params.api_key_env)


def limits(params: JudgeParamsV11, t: JudgeTarget) -> JudgeEndpoint:
    """The limits a call runs under: a configured endpoint's (max_retries as the request
    asks, up to the endpoint's), else the request's own over the defaults."""
    if t.limits is not None:
        if params.max_retries is None:
            return t.limits
        return t.limits.model_copy(update={"max_retries": params.max_retries})
    own = {f: getattr(params, f) for f in (*_ENDPOINT_LIMITS, "max_retries") if getattr(params, f) is not None}
    return _DEFAULT_LIMITS.model_copy(update=own)


@dataclass
class Endpoint:
    """Shared state of one endpoint+model in this process."""

    base_url: str
    model: str
    client: Any  # httpx.Client
    concurrency: ConcurrencyLimit
    rate: RateLimit
    breaker: CircuitBreaker
    requests_sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count_request(self) -> None:
        with self._lock:
            self.requests_sent += 1


_ENDPOINTS: dict[tuple[str | None, str, str], Endpoint] = {}
_ENDPOINTS_LOCK = threading.Lock()


def endpoint(params: JudgeParamsV11, t: JudgeTarget | None = None) -> Endpoint:
    """The shared state of `params`' endpoint (a configured name, or base_url + model), its
    limits set from the endpoint's configuration or, for a URL of the request's own, from
    `params`. `t` is `target(params)` when the caller has it."""
    import httpx

    t = t or target(params)
    lim = limits(params, t)
    key = (t.endpoint, t.base_url, t.model)
    with _ENDPOINTS_LOCK:
        ep = _ENDPOINTS.get(key)
        if ep is None:
            client = httpx.Client(limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
                                  follow_redirects=False)
            ep = Endpoint(t.base_url, t.model, client, ConcurrencyLimit(lim.max_concurrency),
                          RateLimit(lim.requests_per_minute),
                          CircuitBreaker(lim.breaker_failure_threshold, lim.breaker_reset_s))
            _ENDPOINTS[key] = ep
    if ep.concurrency.limit != lim.max_concurrency:
        ep.concurrency.set_limit(lim.max_concurrency)
    ep.rate.set_rpm(lim.requests_per_minute)
    ep.breaker.configure(lim.breaker_failure_threshold, lim.breaker_reset_s)
    return ep


def reset_endpoints() -> None:
    """Forget every endpoint's limits and breaker and close their connections (tests)."""
    with _ENDPOINTS_LOCK:
        eps = list(_ENDPOINTS.values())
        _ENDPOINTS.clear()
    for ep in eps:
        ep.client.close()


def _send(ep: Endpoint, url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> Any:
    """One POST: the httpx.Response, or the httpx.HTTPError (timeout, connection) it ended in."""
    import httpx

    try:
        return ep.client.post(url, json=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as e:
        return e
    except BaseException:
        ep.breaker.abandon()  # not the endpoint's fault; never leave a half-open trial hanging
        raise


def _outcome(ep: Endpoint, resp: Any, timeout_s: float) -> dict[str, Any] | JudgeFailure:
    """Classify one attempt and tell the breaker: the JSON body, a retryable failure
    (returned), or a final one (raised)."""
    import httpx

    if isinstance(resp, httpx.TimeoutException):
        ep.breaker.record_failure()
        return JudgeTimeout(f"no answer within the {timeout_s:.3g} s request timeout")
    if isinstance(resp, httpx.HTTPError):
        ep.breaker.record_failure()
        return JudgeConnectionError(f"connection failed: {type(resp).__name__}", raw=str(resp))
    if resp.status_code in _RETRYABLE_STATUS:
        ep.breaker.record_failure()
        return JudgeHTTPError(resp.status_code, resp.text,
                              retry_after_s=parse_retry_after(resp.headers.get("retry-after")))
    if not 200 <= resp.status_code < 300:
        ep.breaker.abandon()  # the endpoint is up and our request is wrong: no retry, not a failure
        raise JudgeHTTPError(resp.status_code, resp.text)
    try:
        data = resp.json()
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError:
        ep.breaker.record_failure()
        raise JudgeBadResponse("reply is not a JSON object", raw=resp.text) from None
    ep.breaker.record_success()
    return data


def _post(ep: Endpoint, body: dict[str, Any], headers: dict[str, str], params: JudgeParamsV11, lim: JudgeEndpoint,
          deadline: float) -> tuple[dict[str, Any], int]:
    """POST with slot, rate token, breaker and retries (`lim.max_retries`); the parsed JSON
    body and the number of attempts. Raises JudgeFailure (with `attempts` set)."""
    url = f"{ep.base_url}/chat/completions"
    attempts = 0
    last: JudgeFailure | None = None
    try:
        for retry in range(lim.max_retries + 1):
            left = deadline - time.monotonic()
            if left <= 0 or not ep.concurrency.acquire(left):
                raise JudgeTimeout(f"deadline of {params.deadline_s:g} s passed waiting for one of "
                                   f"{ep.concurrency.limit} request slots", raw=str(last or ""))
            try:
                if not ep.rate.acquire(deadline):
                    raise JudgeTimeout(f"rate limit of {lim.requests_per_minute:g}/min would delay the request "
                                       f"past the {params.deadline_s:g} s deadline", raw=str(last or ""))
                try:
                    ep.breaker.before_request()
                except JudgeFailure as e:
                    e.raw = e.raw or (f"last failure: {last}" if last else "")
                    raise
                attempts += 1
                ep.count_request()
                timeout_s = min(params.request_timeout_s, max(0.001, deadline - time.monotonic()))
                outcome = _outcome(ep, _send(ep, url, body, headers, timeout_s), timeout_s)
            finally:
                ep.concurrency.release()
            if not isinstance(outcome, JudgeFailure):
                return outcome, attempts
            last = outcome
            if isinstance(last, JudgeTimeout) and deadline - time.monotonic() <= 0.005:
                raise JudgeTimeout(f"no answer within the {params.deadline_s:g} s deadline")
            if retry == lim.max_retries:
                break
            retry_after = getattr(last, "retry_after_s", None)
            delay = retry_after if retry_after is not None else backoff_s(retry, params.backoff_base_s,
                                                                          params.backoff_max_s)
            if time.monotonic() + delay >= deadline:
                raise _past_deadline(last, delay)
            time.sleep(delay)
        assert last is not None
        raise last
    except JudgeFailure as e:
        e.attempts = attempts
        raise


def _past_deadline(last: JudgeFailure, delay_s: float) -> JudgeFailure:
    """The last failure, noting that the next retry would have passed the deadline."""
    last.args = (f"{last.args[0]} (retrying in {delay_s:.3g} s would pass the deadline)",)
    return last


def _answer(data: dict[str, Any]) -> tuple[str, list[tuple[str, list[tuple[str, float]]]] | None, str]:
    """The first choice's text, its per-token top log-probabilities (None when absent) and
    its finish reason. Raises JudgeRefused / JudgeBadResponse."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError("message.content is not a string")
    except (KeyError, IndexError, TypeError, AttributeError) as e:
        raise JudgeBadResponse(f"reply is not a chat completion ({type(e).__name__}: {e})",
                               raw=json.dumps(data)[:500]) from None
    if message.get("refusal"):
        raise JudgeRefused("judge refused", raw=str(message["refusal"]))
    if choice.get("finish_reason") == "content_filter":
        raise JudgeRefused("judge answer withheld by the endpoint's content filter", raw=content)
    finish = str(choice.get("finish_reason") or "")
    lp = choice.get("logprobs") or {}
    tokens = lp.get("content") if isinstance(lp, dict) else None
    if not tokens:
        return content, None, finish
    try:
        positions = [(t["token"], [(c["token"], float(c["logprob"])) for c in (t.get("top_logprobs") or [])]
                      or [(t["token"], float(t["logprob"]))]) for t in tokens]
    except (KeyError, TypeError, ValueError) as e:
        raise JudgeBadResponse(f"malformed logprobs ({type(e).__name__}: {e})", raw=json.dumps(lp)[:500]) from None
    return content, positions, finish


@register
class OpenAIJudge(Verifier):
    name = "judge"
    # 1.1: `endpoint` picks a judge the server configures; `model` optional with it.
    # 1.2: the completion is fenced by a nonce it cannot contain and only the judge's last line is
    #      read as its verdict; an over-long completion is OK 0 (issue #17).
    version = "1.2.0"
    description = ("Generative judge on an OpenAI-compatible chat endpoint (vLLM, SGLang, hosted): a score on a "
                   "scale, a verdict word, or P(yes) from log-probabilities. The completion is fenced; only the "
                   "judge's last line is its verdict. Judge failures are ERROR/TIMEOUT/ABSTAIN, never 0.")
    Params = JudgeParams
    strict = True  # fence + last-line reading (rubric.py); False in the frozen 1.0.0/1.1.0
    isolated = False
    thread_pool = "judge"
    uses_prompt = True
    timeout_s = 120.0
    requires_reference = False

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("httpx") is None:
            return False, "httpx is not installed"
        return True, ""

    def verify(self, completion: str, reference: Any, params: JudgeParamsV11,
               prompt: str | None = None) -> VerifierResult:
        t = target(params)
        who = f"judge {t.label}"
        limit = getattr(params, "max_completion_chars", None)
        if limit is not None and len(completion) > limit:
            return VerifierResult.ok(0.0, f"{who}: not asked: the completion has {len(completion):,} chars, over "
                                          f"max_completion_chars {limit:,}")
        try:
            messages = params.messages(completion, reference, prompt, strict=self.strict)
        except MissingPromptError as e:
            return VerifierResult.error(f"{who}: {e}")
        headers = {}
        if t.api_key_env:
            key = os.environ.get(t.api_key_env)
            if not key:
                return VerifierResult.error(f"{who}: environment variable {t.api_key_env} is not set on the "
                                            f"server")
            headers["Authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {"model": t.model, "messages": messages, "temperature": params.temperature,
                                "max_tokens": params.max_tokens or (8 if params.mode == "yes_no" else 1024)}
        if params.mode == "yes_no":
            body.update(logprobs=True, top_logprobs=params.top_logprobs)
        body.update(params.extra_body)
        body["model"] = t.model  # extra_body may add fields, never re-aim the call at another model
        t0 = time.monotonic()
        ep, lim = endpoint(params, t), limits(params, t)
        attempts = 0
        try:
            data, attempts = _post(ep, body, headers, params, lim, t0 + params.deadline_s)
            text, positions, finish = _answer(data)
            try:
                if params.mode == "yes_no" and positions is not None:
                    parsed = check(yes_probability(positions, yes_words=params.yes_words, no_words=params.no_words,
                                                   min_mass=params.min_yes_no_mass), text)
                else:
                    parsed = read_text(params, text, strict=self.strict)
            except JudgeUnparseable as e:
                if finish == "length":
                    e.args = (f"{e.args[0]} (the answer was cut at max_tokens {body['max_tokens']})",)
                raise
        except JudgeFailure as e:
            e.attempts = e.attempts or attempts
            if t.withhold_replies:  # the request chose this URL: its replies are not the caller's to read
                e.raw = ""
                e.args = (f"{e.args[0]} (reply withheld: the request chose this endpoint's URL)",)
            return failure_or_zero(e, who, getattr(params, "no_verdict", "error"),
                                   latency_ms=round((time.monotonic() - t0) * 1000, 1))
        how = "" if params.mode != "yes_no" or positions is not None else " (no logprobs: the word)"
        return VerifierResult.ok(parsed.value, f"{who}: {parsed.detail}{how}", answer=excerpt(text),
                                 attempts=attempts, latency_ms=round((time.monotonic() - t0) * 1000, 1))


@register
class OpenAIJudgeV11(OpenAIJudge):
    """judge@1.1.0, frozen for pinned specs and replay: the completion pasted unfenced and a
    score or verdict read anywhere in the answer, so a judge quoting the response's own
    `[[10]]` could be read as full marks (issue #17). Use 1.2.0."""

    version = "1.1.0"
    description = "Generative judge on an OpenAI-compatible chat endpoint (frozen; 1.2.0 fences the completion)."
    Params = JudgeParamsV11
    strict = False


__all__ = ["OpenAIJudge", "OpenAIJudgeV11", "JudgeParams", "JudgeParamsV11", "Endpoint", "endpoint", "limits",
           "target", "reset_endpoints"]


register_compatible(OpenAIJudgeV11, "1.0.0")  # 1.1.0 only added parameters: pinned specs keep working
