"""The HTTP/JSON face over a real port: OpenRLHF's remote reward contract, the JSON form of
Score, and the same keys, quotas and store as gRPC."""
from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
import requests

from reward_server.app import RunningServer, start_server
from reward_server.auth import KeyStore
from reward_server.config import ComponentConfig, ServerConfig, SpecConfig
from reward_server.http_face import HttpError, completion_from_query, strip_special_tokens
from reward_server.quotas import QuotaConfig, TeamQuota
from reward_server.store import ScoreStore
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.conftest import free_port

PROMPT = "<|im_start|>user\nWhat is 6*7? Put the answer in \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    db = tmp_path_factory.mktemp("http") / "r.db"
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{db}", workers=1, auth="on",
                       max_message_bytes=64 << 10,
                       quotas=QuotaConfig(teams={"slow": TeamQuota(samples_per_s=0.1, samples_burst=1)}),
                       specs={"math-r1": SpecConfig(components=[ComponentConfig(
                           name="math", params={"unanswered": "abstain"})])})
    with start_server(cfg) as srv:
        keys = KeyStore(srv.store)
        yield srv, {team: keys.create(team)[0] for team in ("rl", "slow")}


def url(srv: RunningServer, path: str, key: str = "") -> str:
    auth = f"team:{key}@" if key else ""
    return f"http://{auth}127.0.0.1:{srv.http_port}{path}"


def openrlhf_body() -> dict:
    # What OpenRLHF's make_experience sends: `query` is tokenizer.batch_decode(sequences,
    # skip_special_tokens=False), so left padding, the chat template and the EOS/right
    # padding are all in it; `prompts` are the templated prompts; `labels` the --label_key.
    pad = "<|endoftext|>"
    return {"query": [pad * 3 + PROMPT + "6*7 = \\boxed{42}<|im_end|>" + pad * 2,
                      PROMPT + "It is \\boxed{41}.<|im_end|>",
                      pad + PROMPT + "Let me think about it and stop here.<|im_end|>" + pad],
            "prompts": [PROMPT] * 3, "labels": ["42", "42", "42"]}


def test_openrlhf_remote_rm_contract_with_its_own_request(served):
    """Sent exactly as OpenRLHF's `request_api_wrapper` sends it (openrlhf/utils/remote_rm_utils.py,
    v0.5 to v0.8: `requests.post(url=url, json=data, headers={"Content-Type": "application/json"},
    timeout=180)` with data = {"query", "prompts", "labels"}), the key carried in the URL as
    requests turns `user:password@` into Basic auth; the answer holds what it reads: `rewards`
    (v0.5-0.7 `response["rewards"]`), `scores` and `extra_logs` (v0.8+), lists as OpenRLHF's
    own reference server returns them (openrlhf/cli/serve_rm.py, 0.11.2)."""
    srv, keys = served
    # The URL names the reward of a sample without one (here the ABSTAIN): see test_http_face_attacks.
    response = requests.post(url=url(srv, "/openrlhf/math-r1?failed_reward=0", keys["rl"]), json=openrlhf_body(),
                             headers={"Content-Type": "application/json"}, timeout=180)
    response.raise_for_status()
    out = response.json()
    assert out["rewards"] == [1.0, 0.0, 0.0]
    assert out["scores"] == out["rewards"]
    assert out["statuses"] == ["OK", "OK", "ABSTAIN"]
    assert out["extra_logs"] == {"reward_service_ok": [1.0, 1.0, 0.0]}
    # Stored under the key's team, the response cut out of the query without the prompt or special tokens.
    srv.store.flush()
    rows = list(srv.store.query_scores(team="rl"))
    assert sorted(r.completion_text for r in rows) == ["6*7 = \\boxed{42}", "It is \\boxed{41}.",
                                                        "Let me think about it and stop here."]
    assert {r.prompt_text for r in rows} == {PROMPT} and {r.reference_json for r in rows} == {"42"}


def test_openrlhf_0_11_own_client_function(served):
    """OpenRLHF 0.11.2's own HTTP reward call (openrlhf/utils/agent.py,
    SingleTurnAgentExecutor._fetch_rewards_via_http: aiohttp, one query per request, no
    headers), run where it is installed: `pip install openrlhf==0.11.2 --no-deps aiohttp
    pylatexenc` (the rest of OpenRLHF needs GPUs)."""
    agent = pytest.importorskip("openrlhf.utils.agent", reason="OpenRLHF's client is not installed")
    srv, keys = served
    executor = agent.SingleTurnAgentExecutor(remote_rm_url=url(srv, "/openrlhf/math-r1", keys["rl"]))
    # Its query: hf_tokenizer.decode(prompt_token_ids + action_token_ids, skip_special_tokens=False).
    infos = asyncio.run(executor._fetch_rewards_via_http([PROMPT + "\\boxed{42}<|im_end|>"], [PROMPT], ["42"]))
    assert infos[0]["rewards"] == [1.0] and infos[0]["scores"] == [1.0]
    assert infos[0]["extra_logs"] == {"reward_service_ok": [1.0]}
    bad_key = agent.SingleTurnAgentExecutor(remote_rm_url=url(srv, "/openrlhf/math-r1", "rk_0000_nope"))
    with pytest.raises(RuntimeError, match="Request error for 5 times"):  # it retries 4xx too, then gives up
        asyncio.run(bad_key._fetch_rewards_via_http(["x"], [""], ["42"]))


def test_openrlhf_failed_reward_and_run_from_the_query_string(served):
    srv, keys = served
    with grpc.insecure_channel(srv.address) as ch:
        run = pb_grpc.RewardServiceStub(ch).StartRun(pb.StartRunRequest(name="openrlhf"),
                                                     metadata=[("authorization", f"Bearer {keys['rl']}")])
    r = httpx.post(url(srv, f"/openrlhf/math-r1@1?run_id={run.run_id}&step=7&failed_reward=-1"),
                   json=openrlhf_body(), headers={"Authorization": f"Bearer {keys['rl']}"})
    assert r.status_code == 200, r.text
    assert r.json()["rewards"] == [1.0, 0.0, -1.0]
    srv.store.flush()
    assert {(x.run_id, x.step) for x in srv.store.query_scores(run_id=run.run_id)} == {(run.run_id, 7)}
    bad = httpx.post(url(srv, "/openrlhf/math-r1?failed_reward=nan"), json=openrlhf_body(),
                     headers={"Authorization": f"Bearer {keys['rl']}"})
    assert bad.status_code == 400 and "failed_reward" in bad.json()["error"]["message"]


def test_openrlhf_empty_batch_and_metas_as_metadata(served):
    srv, keys = served
    auth = {"Authorization": f"Bearer {keys['rl']}"}
    empty = httpx.post(url(srv, "/openrlhf/math-r1"), json={"query": [], "prompts": [], "labels": []}, headers=auth)
    assert empty.status_code == 200 and empty.json()["rewards"] == [], empty.text
    body = {**openrlhf_body(), "metas": [{"task": "a"}, None, {"task": "b", "n": [1, 2]}]}
    r = httpx.post(url(srv, "/openrlhf/math-r1?run_id=&failed_reward=0"), json=body, headers=auth)
    assert r.status_code == 200 and r.json()["rewards"] == [1.0, 0.0, 0.0], r.text


def test_v1_score_is_the_json_mapping_of_score(served):
    srv, keys = served
    body = {"spec": {"components": [{"name": "math"}, {"name": "format", "weight": 0.5, "weightSet": True,
                                                        "params": {"kind": "regex", "pattern": "boxed"}}]},
            "samples": [{"id": "a", "prompt": "6*7?", "completion": "\\boxed{42}", "reference": "42"},
                        {"id": "b", "completion": "\\boxed{41}", "reference": "42", "spec": {"name": "math-r1"}}]}
    r = httpx.post(url(srv, "/v1/score"), json=body, headers={"Authorization": f"Bearer {keys['rl']}"})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == ["a", "b"]
    assert results[0]["status"] == "STATUS_OK" and results[0]["reward"] == 1.5
    assert [c["name"] for c in results[0]["components"]] == ["math", "format"]
    assert results[1]["status"] == "STATUS_OK" and results[1]["reward"] == 0.0 and results[1]["specName"] == "math-r1"


@pytest.mark.parametrize("headers, why", [({}, "missing API key"), ({"Authorization": "Bearer"}, "missing API key"),
                                          ({"Authorization": "Bearer rk_0000_nope"}, "unknown API key"),
                                          ({"Authorization": "Token abc"}, "Bearer KEY"),
                                          ({"Authorization": "Bearer rk_a b"}, "malformed API key")])
def test_without_a_valid_key_it_is_401(served, headers, why):
    srv, _ = served
    for path, body in (("/v1/score", {"samples": [{"completion": "x"}]}), ("/openrlhf/math-r1", openrlhf_body())):
        r = httpx.post(url(srv, path), json=body, headers=headers)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", r.text
        assert why in r.json()["error"]["message"] and r.json()["error"]["code"] == "UNAUTHENTICATED"


def test_bad_requests_get_a_status_and_a_message_that_says_what_to_fix(served):
    srv, keys = served
    auth = {"Authorization": f"Bearer {keys['rl']}"}

    def post(path: str, **kw) -> httpx.Response:
        return httpx.post(url(srv, path), headers={**auth, **kw.pop("headers", {})}, **kw)

    deep: dict = {"a": 1}
    for _ in range(150):
        deep = {"a": deep}
    cases = [
        (post("/v1/score", content=b'{"samples": [{"completion": "x"}'), 400, "line 1 column 33"),
        (post("/v1/score", content=b"\xff\xfe"), 400, "not UTF-8"),
        (post("/v1/score", content=b"[1]"), 400, "must be a JSON object"),
        (post("/v1/score", json={"sample": []}), 400, 'no field named "sample"'),
        (post("/v1/score", json={"samples": [{"completion": "x"}], "spec": {"components": [{"name": "nope"}]}}),
         404, "known"),
        (post("/v1/score", content=b'{"samples": [{"completion": NaN}]}'), 400, "NaN"),
        (post("/openrlhf/no-such-spec", json=openrlhf_body()), 404, "no-such-spec"),
        (post("/openrlhf/math-r1", json={"queries": []}), 400, "unknown field(s) queries"),
        (post("/openrlhf/math-r1", json={"query": ["a", "b"], "prompts": ["", ""], "labels": ["1"]}), 400,
         "labels: 1 items for 2"),
        (post("/openrlhf/math-r1", json={"query": ["no prompt here"], "prompts": ["P"]}), 400,
         "query[0]: does not start with prompts[0]"),
        (post("/openrlhf/math-r1", json={"query": [1], "prompts": [""]}), 400, "query[0]: must be a string"),
        (post("/openrlhf/math-r1", json={"query": ["x"]}), 400, "prompts: required"),
        (post("/openrlhf/math-r1", json={"query": ["x"], "prompts": [None]}), 400, "prompts[0]: must be a string"),
        (post("/openrlhf/math-r1?step=x", json=openrlhf_body()), 400, "step"),
        (post("/openrlhf/math-r1", json={"query": ["x"], "prompts": [""], "labels": [deep]}), 400,
         "labels[0]: Message too deep"),
        (post("/openrlhf/math-r1", json={"query": ["x"], "prompts": [""], "metas": [{"k": deep}]}), 400,
         "metas[0]: Message too deep"),
        (post("/v1/score", json={"samples": [{"completion": "x", "metadata": {"k": deep}}]}), 400, "too deep"),
        (post("/v1/score", content=b"[" * 30_000 + b"]" * 30_000), 400, "not valid JSON"),
        (post("/v1/score", content=b"x" * (65 << 10)), 413, "65536 bytes"),
        (post("/v1/score", content=iter([b"{" + b" " * (40 << 10), b" " * (40 << 10) + b"}"])), 413, "65536 bytes"),
        (httpx.get(url(srv, "/v1/score"), headers=auth), 405, "GET is not allowed"),
        (post("/v2/score", json={}), 404, "routes: POST /v1/score"),
    ]
    for r, status, text in cases:
        assert r.status_code == status, (r.request.url, r.text)
        assert text in r.json()["error"]["message"], (r.request.url, r.text)


def test_over_quota_is_429_with_retry_after(served):
    srv, keys = served
    auth = {"Authorization": f"Bearer {keys['slow']}"}
    body = {"query": [PROMPT + "\\boxed{42}"], "prompts": [PROMPT], "labels": ["42"]}
    first = httpx.post(url(srv, "/openrlhf/math-r1"), json=body, headers=auth)
    assert first.status_code == 200, first.text
    second = httpx.post(url(srv, "/openrlhf/math-r1"), json=body, headers=auth)
    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "RESOURCE_EXHAUSTED" and "samples/s" in second.json()["error"]["message"]
    assert 1 <= int(second.headers["Retry-After"]) <= 10


def test_healthz_reports_the_grpc_health(served):
    srv, _ = served
    r = httpx.get(url(srv, "/healthz"))
    assert r.status_code == 200 and r.json() == {"status": "SERVING"}


def test_an_http_port_in_use_fails_the_start(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"http_port: could not bind 127.0.0.1:{port}"):
            start_server(ServerConfig(port=0, http_port=port, database_url=f"sqlite:///{tmp_path}/r.db", workers=1))


def test_auth_off_needs_no_key_and_tls_serves_https(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{tmp_path}/r.db", workers=1,
                       tls_cert_file=cert_file, tls_key_file=key_file)
    with start_server(cfg) as srv:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        r = httpx.post(f"https://localhost:{srv.http_port}/v1/score", verify=ctx,
                       json={"samples": [{"completion": "\\boxed{2}", "reference": "2"}],
                             "spec": {"components": [{"name": "math"}]}})
        assert r.status_code == 200 and r.json()["results"][0]["reward"] == 1.0
        stray = httpx.post(f"https://localhost:{srv.http_port}/v1/score", verify=ctx, json={
            "samples": [{"completion": "x"}], "spec": {"components": [{"name": "format"}]}},
            headers={"Authorization": "Bearer not a key"})  # auth off: ignored, as gRPC ignores it
        assert stray.status_code == 200, stray.text
        with pytest.raises(httpx.HTTPError):  # plaintext is refused
            httpx.post(f"http://localhost:{srv.http_port}/v1/score", json={})


def test_cutting_the_response_out_of_the_query():
    assert strip_special_tokens("x<|im_end|><|endoftext|> <|endoftext|>\n") == "x"
    assert strip_special_tokens("done</s></s>") == "done"
    assert strip_special_tokens("deep<｜end▁of▁sentence｜>") == "deep"
    assert strip_special_tokens("a | b |>") == "a | b |>"  # not a token: spaces inside
    assert strip_special_tokens("keep  trailing  ") == "keep  trailing  "  # nothing stripped without a token
    assert completion_from_query("<pad>PQ answer PQ<eos>", "PQ", "0") == " answer PQ"
    # A prompt OpenRLHF cut from the left to fit its budget: the query starts inside it.
    prompt = "Long context. " * 20 + "Question: 6*7?"
    assert completion_from_query(prompt[100:] + " \\boxed{42}<|im_end|>", prompt, "0") == " \\boxed{42}"
    assert completion_from_query("\ufffd" + prompt[101:] + " ok", prompt, "0") == " ok"  # a split character
    with pytest.raises(HttpError, match="does not start with prompts"):
        completion_from_query("an unrelated text long enough to probe" * 3, prompt, "0")
    long = "<|endoftext|>" * 50_000
    assert strip_special_tokens("x" + long) == "x"  # linear: right padding of a long batch


def test_basic_auth_with_the_key_as_user_or_password(served):
    srv, keys = served
    for cred in (f"team:{keys['rl']}", f"{keys['rl']}:"):
        token = base64.b64encode(cred.encode()).decode()
        r = httpx.post(url(srv, "/openrlhf/math-r1?failed_reward=0"), json=openrlhf_body(),
                       headers={"Authorization": f"Basic {token}"})
        assert r.status_code == 200, r.text
    r = httpx.post(url(srv, "/openrlhf/math-r1"), json=openrlhf_body(), headers={"Authorization": "Basic ***"})
    assert r.status_code == 401 and "base64" in r.json()["error"]["message"]


def test_sigterm_lets_an_in_flight_http_request_finish(tmp_path):
    """Shutdown stops the HTTP face before the gRPC server it calls: a request being scored
    is answered (and stored) before the process lets go."""
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{tmp_path}/r.db", workers=1,
                       grace_s=30)
    srv = start_server(cfg)
    # format@1.0.0 keeps the backtracking engine (2.0.0 is linear), so the call is still in flight
    slow = {"name": "format", "version": "1.0.0", "params": {"kind": "regex", "pattern": "(a|aa)+$", "timeout_s": 1}}
    answer: dict = {}

    def call() -> None:
        answer["r"] = httpx.post(f"http://127.0.0.1:{srv.http_port}/v1/score", timeout=30, json={
            "spec": {"components": [slow]}, "samples": [{"completion": "a" * 40 + "!"}]})

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)  # the regex is backtracking now
    srv.stop()
    t.join(60)
    r = answer["r"]
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "STATUS_TIMEOUT", r.text
    store = ScoreStore(cfg.database_url)
    try:
        assert [row.status for row in store.query_scores()] == ["TIMEOUT"]
    finally:
        store.close()
