"""The judges' reach policy (verifiers/judges/policy.py) without a server: which URL a judge
calls, which folder a local model loads from, and what a library user gets by default."""
from __future__ import annotations

import concurrent.futures as cf
import os

import pytest

import verifiers
import verifiers.judges  # noqa: F401  (registers the judges)
from tests.helpers.openai_stub import OpenAIStub
from verifiers import InvalidParamsError, Status
from verifiers.judges.openai_judge import reset_endpoints
from verifiers.judges.policy import (JudgeEndpoint, ReachPolicy, current_policy, install_policy, parse_url,
                                     policy_scope)

REF = {"prompt": "What is 2+2?", "reference": "4"}
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.02}


@pytest.fixture
def judge_stub():
    reset_endpoints()
    with OpenAIStub() as s:
        yield s
    reset_endpoints()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("VERIFIERS_JUDGE_ALLOWED_URLS", "VERIFIERS_MODEL_ROOTS"):
        monkeypatch.delenv(var, raising=False)


def judge(params: dict, completion: str = "2+2 = 4"):
    return verifiers.verify("judge", completion, REF, {**FAST, **params})


@pytest.mark.parametrize("url", [
    "http://judge.internal:80@evil.example/v1",          # user-info: the host is evil.example
    "http://judge.internal/v1?x=1", "http://judge.internal/v1#f",
    "http://judge.internal/v1/../admin", "http://judge.internal/v1/%2e%2e/admin",
    "http://judge.internal\\@evil.example/v1", "http://judge.internal:99999/v1", "ftp://judge.internal/v1",
    "http:///v1",
])
def test_parse_url_refuses_urls_that_hide_where_they_go(url):
    with pytest.raises(ValueError):
        parse_url(url)


@pytest.mark.parametrize("url, allowed", [
    ("http://judge.internal/v1", True),
    ("http://JUDGE.internal:80/v1/", True),                 # host case and the default port
    ("http://judge.internal/v1/chat", True),
    ("http://judge.internal/v10", False),                   # path segments, not characters
    ("https://judge.internal/v1", False),                   # another scheme
    ("http://judge.internal:8080/v1", False),               # another port
    ("http://judge.internal.evil.example/v1", False),       # a longer host
    ("http://judge.internal:80@evil.example/v1", False),    # user-info
    ("http://judge.internal/v1/../../admin", False),
])
def test_allowed_prefixes_compare_scheme_host_port_and_path_segments(url, allowed):
    policy = ReachPolicy(allowed_url_prefixes=("http://judge.internal/v1",), any_url=False)
    assert policy.url_allowed(url) is allowed


def test_env_allowlist_cannot_be_bypassed_by_host_confusion(judge_stub, monkeypatch):
    """A plain string-prefix check let `http://127.0.0.1:PORT@other-host/…` through an entry
    without a path, and `…PORT0` through one without a trailing slash."""
    monkeypatch.setenv("VERIFIERS_JUDGE_ALLOWED_URLS", f"http://127.0.0.1:{judge_stub.port}")
    for url in (f"http://127.0.0.1:{judge_stub.port}@127.0.0.1:9/v1",
                f"http://127.0.0.1:{judge_stub.port}.evil.example/v1"):
        with pytest.raises(InvalidParamsError, match="allowed judge URLs"):
            judge({"base_url": url, "model": "m"})
    assert judge({"base_url": judge_stub.base_url, "model": "m"}).status is Status.OK
    assert judge_stub.requests == 1


def test_the_library_default_allows_any_url_and_model(judge_stub):
    assert current_policy() == ReachPolicy()
    assert judge({"base_url": judge_stub.base_url, "model": "m"}).status is Status.OK
    assert current_policy().model_path("/anything/at/all") == "/anything/at/all"


def test_a_configured_endpoint_brings_its_url_model_key_and_limits(judge_stub, monkeypatch):
    monkeypatch.setenv("OPERATOR_KEY", "sk-op")
    judge_stub.delay_s = 0.05
    ep = JudgeEndpoint(base_url=judge_stub.base_url, model="served-model", api_key_env="OPERATOR_KEY",
                       max_concurrency=2, max_retries=1)
    with policy_scope(ReachPolicy(endpoints={"grader": ep}, any_url=False, untrusted_callers=True)):
        with cf.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(lambda i: judge({"endpoint": "grader"}, f"answer {i}"), range(8)))
        assert all(r.status is Status.OK for r in results), results[0].reason
        assert judge_stub.max_in_flight == 2                       # the operator's limit, not a default
        assert set(judge_stub.auth_headers) == {"Bearer sk-op"}
        assert {b["model"] for b in judge_stub.bodies} == {"served-model"}
        # extra_body may add fields but never re-aim the call at another model
        judge({"endpoint": "grader", "extra_body": {"model": "costly-model", "seed": 1}})
        assert judge_stub.bodies[-1]["model"] == "served-model" and judge_stub.bodies[-1]["seed"] == 1
        for params, fragment in (({"endpoint": "grader", "max_concurrency": 100}, "params.max_concurrency"),
                                 ({"endpoint": "grader", "breaker_reset_s": 1}, "params.breaker_reset_s"),
                                 ({"endpoint": "grader", "requests_per_minute": 1e6}, "requests_per_minute"),
                                 ({"endpoint": "grader", "max_retries": 2}, "at most 1"),
                                 ({"endpoint": "grader", "api_key_env": "JUDGE_X"}, "operator's key"),
                                 ({"endpoint": "other"}, "configured: grader"),
                                 ({}, "params.endpoint: name one of this server's judge endpoints (grader)"),
                                 ({"base_url": judge_stub.base_url, "model": "m"}, "none: a request may not")):
            with pytest.raises(InvalidParamsError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
                judge(params)
        judge_stub.behaviour = "500"
        r = judge({"endpoint": "grader", "max_retries": 0})        # a request may lower retries
        assert r.status is Status.ERROR and "CUDA out of memory" in r.reason   # operator's endpoint: excerpt shown


def test_replies_of_a_request_chosen_url_are_withheld_for_untrusted_callers(judge_stub):
    judge_stub.behaviour = "garbage"
    policy = ReachPolicy(allowed_url_prefixes=(judge_stub.base_url,), any_url=False, untrusted_callers=True)
    with policy_scope(policy):
        r = judge({"base_url": judge_stub.base_url, "model": "m"})
        assert r.status is Status.ERROR and "not a JSON object" in r.reason and "withheld" in r.reason
        assert "upstream proxy error" not in r.reason
        with pytest.raises(InvalidParamsError, match="api_key_env"):
            judge({"base_url": judge_stub.base_url, "model": "m", "api_key_env": "JUDGE_KEY"})
    r = judge({"base_url": judge_stub.base_url, "model": "m"})      # the library default: the caller is the owner
    assert "upstream proxy error" in r.reason


def test_model_names_and_roots(tmp_path):
    root, outside = tmp_path / "models", tmp_path / "outside"
    (root / "rm").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (outside / "back-in").symlink_to(root / "rm")
    policy = ReachPolicy(models={"skywork": "/srv/skywork"}, model_roots=(str(root),), any_model=False)
    assert policy.model_path("skywork") == "/srv/skywork"
    assert policy.model_path(str(root / "rm")) == os.path.realpath(root / "rm")
    assert policy.model_path(str(outside / "back-in")) == os.path.realpath(root / "rm")   # judged by its target
    assert policy.model_path("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"                     # packaged
    for name in (str(root / "escape"), str(outside), "/etc", "../../..", str(root / ".." / "outside"),
                 "org/hub-model", str(root / "missing")):
        with pytest.raises(ValueError, match="params.model") as e:
            policy.model_path(name)
        assert "skywork" in str(e.value) and os.path.realpath(root) in str(e.value)
    with pytest.raises(ValueError, match=r"\(none\)"):
        ReachPolicy(any_model=False).model_path("/etc")


def test_installed_policies_are_removed_in_any_order():
    a, b = ReachPolicy(any_url=False), ReachPolicy(any_model=False)
    remove_a, remove_b = install_policy(a), install_policy(b)
    assert current_policy() is b
    remove_a()
    assert current_policy() is b
    remove_b()
    assert current_policy() == ReachPolicy()
