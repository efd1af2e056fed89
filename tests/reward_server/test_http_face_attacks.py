"""The HTTP/JSON face attacked as a hostile tenant, a buggy client and a reward-hacking
policy would, over a real port: each test is a finding that failed on the landed face."""
from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reward_server.app import RunningServer, start_server
from reward_server.auth import KeyStore
from reward_server.config import ComponentConfig, ServerConfig, SpecConfig
from reward_server.quotas import QuotaConfig, TeamQuota
from reward_server.http_face import HttpError, completion_from_query
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.conftest import free_port

PROMPT = "<|im_start|>user\nWhat is 1+0? Example: 2+0 gives \\boxed{2}.<|im_end|>\n<|im_start|>assistant\n"
READ_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    db = tmp_path_factory.mktemp("http-attacks") / "r.db"
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{db}", workers=1, auth="on",
                       http_read_timeout_s=READ_TIMEOUT_S,
                       specs={"math": SpecConfig(components=[ComponentConfig(name="math")]),
                              "abstain": SpecConfig(components=[ComponentConfig(
                                  name="math", params={"unanswered": "abstain"})]),
                              "slow": SpecConfig(components=[ComponentConfig(name="format", version="1.0.0", params={
                                  "kind": "regex", "pattern": "(a|aa)+$", "timeout_s": 0.2})]),
                              "slow3": SpecConfig(components=[ComponentConfig(name="format", version="1.0.0", params={
                                  "kind": "regex", "pattern": "(a|aa)+$", "timeout_s": 3})])})
    # "slow"/"slow3" pin format@1.0.0: its backtracking engine is what makes them slow (2.0.0 is linear)
    with start_server(cfg) as srv:
        keys = KeyStore(srv.store)
        yield srv, {team: keys.create(team)[0] for team in ("a", "b")}


def read_answer(s: socket.socket) -> str:
    """The whole HTTP answer on a raw socket (head and JSON body), or what came before it closed."""
    data = b""
    while not data.endswith(b"}}"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def post(srv: RunningServer, path: str, key: str, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    url = f"http://127.0.0.1:{srv.http_port}{path}"
    return httpx.post(url, headers=headers, timeout=kw.pop("timeout", 60), **kw)


def test_a_slow_body_is_cut_off_with_408_instead_of_holding_a_connection_forever(served):
    """Slow-loris: headers promising 100 bytes, then 1 byte and silence. Before, the face
    waited for the rest forever (a connection and its buffer held per attacker socket, and
    the server's graceful stop waited on it)."""
    srv, keys = served
    with socket.create_connection(("127.0.0.1", srv.http_port)) as s:
        s.sendall(f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nAuthorization: Bearer {keys['a']}"
                  f"\r\nContent-Type: application/json\r\n\r\n{{".encode())
        s.settimeout(READ_TIMEOUT_S + 10)
        t0 = time.monotonic()
        head = read_answer(s)
        assert time.monotonic() - t0 < READ_TIMEOUT_S + 5
    assert head.startswith("HTTP/1.1 408"), head
    assert "http_read_timeout_s" in head


@pytest.mark.parametrize("sent", [b"", b"POST /v1/score HTTP/1.1\r\nHost: x\r\n"], ids=["idle", "half-headers"])
def test_a_connection_without_a_whole_request_head_is_closed(served, sent):
    """A connection that sends nothing, or part of its request line and headers, was held
    forever (uvicorn's keep-alive timeout starts only after a first response): enough of them
    take every file descriptor of the process, and with them every team's gRPC calls."""
    srv, _ = served
    with socket.create_connection(("127.0.0.1", srv.http_port)) as s:
        s.sendall(sent)
        s.settimeout(READ_TIMEOUT_S + 10)
        t0 = time.monotonic()
        assert s.recv(4096) == b""  # closed by the server
        assert time.monotonic() - t0 < READ_TIMEOUT_S + 5


def test_keep_alive_connections_still_serve_requests_after_the_read_timeout(served):
    srv, keys = served
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.http_port}") as client:
        for _ in range(2):
            assert client.get("/healthz").status_code == 200
            time.sleep(READ_TIMEOUT_S / 2)


def test_parsing_a_big_body_does_not_freeze_grpc_for_other_teams(served):
    """1.5 MB of JSON (a label of 500,000 numbers, well under max_message_bytes) took the
    face's transcoding ~1 s per request on the server's event loop (12 MB: 30 s), and every
    team's gRPC call waited that long. Transcoding now runs off the loop. (The second query
    is no string: refused after the transcoding, so that only the face's own work is timed;
    the servicer's share is test_a_huge_reference_does_not_freeze_grpc_for_other_teams.)"""
    srv, keys = served
    body = json.dumps({"query": ["x", 1], "prompts": ["", ""], "labels": [[1] * 500_000, "2"]}).encode()
    latencies: list[float] = []
    done = threading.Event()

    def ping() -> None:
        with grpc.insecure_channel(srv.address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            health.Check(health_pb2.HealthCheckRequest(), timeout=30)  # connected before the attack
            started.set()
            while not done.is_set():
                t0 = time.perf_counter()
                health.Check(health_pb2.HealthCheckRequest(), timeout=30)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.01)

    started = threading.Event()
    t = threading.Thread(target=ping)
    t.start()
    started.wait(10)
    try:
        for _ in range(2):
            r = post(srv, "/openrlhf/math", keys["a"], content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and "query[1]: must be a string" in r.text, r.text
    finally:
        done.set()
        t.join()
    assert len(latencies) > 5 and max(latencies) < 0.5, f"gRPC health stalled {max(latencies):.2f} s"


def test_openrlhf_without_prompts_is_refused_rather_than_scoring_the_prompt(served):
    """Reward hacking: with no `prompts` the whole query (prompt + response) was scored as the
    response, so a policy answering "no idea" was credited with the prompt's own example
    answer (\\boxed{2}, here the reference)."""
    srv, keys = served
    r = post(srv, "/openrlhf/math", keys["a"], json={"query": [PROMPT + "no idea<|im_end|>"], "labels": ["2"]})
    assert r.status_code == 400, r.text
    assert "prompts: required" in r.json()["error"]["message"]
    ok = post(srv, "/openrlhf/math", keys["a"], json={"query": [PROMPT + "no idea<|im_end|>"], "prompts": [PROMPT],
                                                       "labels": ["2"]})
    assert ok.status_code == 200 and ok.json()["rewards"] == [0.0], ok.text


def test_a_prompt_found_only_inside_the_response_is_not_a_cut_point():
    """The query must start with its prompt (after left padding / BOS). When it does not (a
    decode that does not round-trip), a response that re-embeds the prompt chose which part
    of itself was scored: everything before its copy of the prompt went unscored."""
    decoded = PROMPT.replace("What is", "What  is")  # the query's prompt differs from `prompts`
    hack = decoded + "\\boxed{7} wrong, but unscored " + PROMPT + "\\boxed{1}"
    with pytest.raises(HttpError, match="does not start with prompts"):
        completion_from_query(hack, PROMPT, "0")
    # Left padding, BOS and whitespace before the prompt are fine.
    assert completion_from_query("<pad><pad><s> " + PROMPT + "\\boxed{1}</s><pad>", PROMPT, "0") == "\\boxed{1}"
    assert completion_from_query("[PAD][CLS]" + PROMPT + "ok", PROMPT, "0") == "ok"
    # A response that re-embeds its prompt after a real prompt: cut after the first one.
    assert completion_from_query(PROMPT + "x " + PROMPT + "y", PROMPT, "0") == "x " + PROMPT + "y"


def test_a_sample_without_a_reward_is_not_silently_a_zero(served):
    """A trainer that reads only `rewards` (OpenRLHF <= 0.7) cannot tell a TIMEOUT or an
    ABSTAIN from a real 0. Without an explicit `failed_reward` the batch is refused, saying
    which samples and how to choose; with one, they get it."""
    srv, keys = served
    timeout = post(srv, "/openrlhf/slow", keys["a"], json={"query": ["a" * 40 + "!", "aa"], "prompts": ["", ""]})
    assert timeout.status_code == 503 and timeout.headers["Retry-After"], timeout.text
    message = timeout.json()["error"]["message"]
    assert "query[0]: TIMEOUT" in message and "failed_reward" in message and "query[1]" not in message
    abstain = post(srv, "/openrlhf/abstain", keys["a"], json={"query": ["Let me think about it and stop here."], "prompts": [""],
                                                               "labels": ["2"]})
    assert abstain.status_code == 422 and "query[0]: ABSTAIN" in abstain.json()["error"]["message"], abstain.text
    chosen = post(srv, "/openrlhf/abstain?failed_reward=-1", keys["a"], json={
        "query": ["Let me think about it and stop here.", "\\boxed{2}"], "prompts": ["", ""], "labels": ["2", "2"]})
    assert chosen.status_code == 200 and chosen.json()["rewards"] == [-1.0, 1.0], chosen.text
    assert chosen.json()["extra_logs"]["reward_service_ok"] == [0.0, 1.0]


def test_an_overflowing_reward_is_never_an_internal_error_with_its_exception_text(served):
    """Weights of 1e308 summed to an infinite reward; JSON has no Infinity, so the OpenRLHF
    answer was a 500 quoting the ValueError. Such weights are now refused up front (400 saying
    the bound), over HTTP as over gRPC."""
    srv, keys = served
    spec = {"components": [{"name": "math", "weight": 1e308}, {"name": "math", "weight": 1e308}]}
    r = post(srv, "/v1/score", keys["a"], json={"spec": spec, "samples": [{"completion": "\\boxed{2}",
                                                                          "reference": "2"}]})
    assert r.status_code == 400 and "weight" in r.json()["error"]["message"], r.text
    assert "Traceback" not in r.text and "ValueError" not in r.text


def test_a_huge_reference_does_not_freeze_grpc_for_other_teams(served):
    srv, keys = served
    sample = pb.Sample(id="0", completion="x")
    sample.reference.list_value.values.extend(struct_value(1) for _ in range(1_000_000))
    request = pb.ScoreRequest(samples=[sample], spec=pb.RewardSpec(components=[pb.VerifierRef(name="math")]))
    latencies: list[float] = []
    with grpc.insecure_channel(srv.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        health.Check(health_pb2.HealthCheckRequest(), timeout=30)
        future = pb_grpc.RewardServiceStub(ch).Score.future(request, metadata=[("authorization",
                                                                                f"Bearer {keys['a']}")])
        while not future.done():
            t0 = time.perf_counter()
            health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.01)
    assert max(latencies) < 0.25, f"gRPC health stalled {max(latencies):.2f} s"


def struct_value(x: float) -> "struct_pb2.Value":
    return struct_pb2.Value(number_value=x)


def test_a_spec_whose_weights_overflow_is_refused(served):
    srv, keys = served
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="math", weight=1e308, weight_set=True),
                                     pb.VerifierRef(name="math", weight=1e308, weight_set=True)])
    sample = pb.Sample(completion="\\boxed{2}")
    sample.reference.string_value = "2"
    with grpc.insecure_channel(srv.address) as ch:
        with pytest.raises(grpc.RpcError) as e:
            pb_grpc.RewardServiceStub(ch).Score(pb.ScoreRequest(samples=[sample], spec=spec),
                                                metadata=[("authorization", f"Bearer {keys['a']}")])
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_number_beyond_a_double_is_refused_like_nan(served):
    """`NaN`/`Infinity` were refused, but `1e400` is valid JSON text that Python reads as inf:
    it reached references, metadata and weights as an infinity (or a 500 quoting the
    ValueError); a 400-digit integer was a 500 quoting an OverflowError."""
    srv, keys = served
    for path, body in (("/openrlhf/math", b'{"query": ["x"], "prompts": [""], "labels": [1e400]}'),
                       ("/openrlhf/math", b'{"query": ["x"], "prompts": [""], "metas": [{"n": -1e400}]}'),
                       ("/v1/score", b'{"samples": [{"completion": "x", "reference": {"answer": 1E+999}}]}'),
                       ("/openrlhf/math", b'{"query": ["x"], "prompts": [""], "labels": [' + b"9" * 400 + b"]}"),
                       ("/v1/score", b'{"samples": [{"completion": "x", "reference": -' + b"9" * 400 + b"}]}")):
        r = post(srv, path, keys["a"], content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert "out of the range of a double" in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("auth", ["", "Authorization: Bearer rk_0000_nope\r\n"], ids=["no-key", "unknown-key"])
def test_a_caller_without_a_valid_key_is_refused_before_its_body_is_read(served, auth):
    """The body was read (up to max_message_bytes, for up to the read timeout) and transcoded
    before gRPC refused the key: a caller with no key could make the face buffer and parse
    for it. Here the body never comes: the answer is 401 at once, not a 408 later."""
    srv, _ = served
    with socket.create_connection(("127.0.0.1", srv.http_port)) as s:
        s.sendall(f"POST /openrlhf/math HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n{auth}"
                  f"Content-Type: application/json\r\n\r\n".encode())
        s.settimeout(READ_TIMEOUT_S + 10)
        head = read_answer(s)
    assert head.startswith("HTTP/1.1 401"), head
    assert "API key" in head


def test_bodies_held_at_once_are_bounded_by_a_budget(tmp_path, caplog):
    """Each connection could hold a body of up to max_message_bytes while it arrives (and
    while it waits for the transcoding threads): a tenant with many connections grew the
    server's memory without bound (16 MiB each by default). The face holds at most
    4 x max_message_bytes of bodies; past that a request gets 503 with Retry-After. (A client
    that hangs up mid-body was also logged as an internal error with a traceback: log spam.)"""
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{tmp_path}/r.db", workers=1,
                       auth="on", max_message_bytes=64 << 10, http_read_timeout_s=20)
    # "slow"/"slow3" pin format@1.0.0: its backtracking engine is what makes them slow (2.0.0 is linear)
    with start_server(cfg) as srv:
        key = KeyStore(srv.store).create("a")[0]
        head = (f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: {60 << 10}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\n\r\n").encode()
        held = []
        try:
            for _ in range(4):  # 4 x 59 KiB, under the budget of 256 KiB: held, waiting for the rest
                s = socket.create_connection(("127.0.0.1", srv.http_port))
                s.sendall(head + b" " * (59 << 10))
                held.append(s)
            time.sleep(0.5)
            with socket.create_connection(("127.0.0.1", srv.http_port)) as s:
                s.settimeout(10)
                s.sendall(head + b" " * (59 << 10))
                answer = read_answer(s)
            assert answer.startswith("HTTP/1.1 503"), answer
            assert "retry-after: 1" in answer.lower() and "request bodies" in answer
        finally:
            for s in held:
                s.close()
        # Released: a whole request goes through again.
        time.sleep(0.5)
        r = httpx.post(f"http://127.0.0.1:{srv.http_port}/v1/score", headers={"Authorization": f"Bearer {key}"},
                       json={"samples": [{"completion": "x"}], "spec": {"components": [{"name": "format"}]}})
        assert r.status_code == 200, r.text
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name == "reward_server.http"]


def test_one_teams_slow_uploads_do_not_take_the_body_budget_from_other_teams(tmp_path):
    """The budget of bodies held at once was one pool for every team: team a trickling four
    large bodies (each under max_message_bytes, each within http_read_timeout_s) held all of
    it, and every other team's request got 503 until a's uploads ended (a could start new
    ones forever). A team now holds at most half the budget."""
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{tmp_path}/r.db", workers=1,
                       auth="on", max_message_bytes=64 << 10, http_read_timeout_s=20)
    with start_server(cfg) as srv:
        keys = KeyStore(srv.store)
        a, b = keys.create("a")[0], keys.create("b")[0]
        head = (f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: {60 << 10}\r\nAuthorization: Bearer {a}\r\n"
                f"Content-Type: application/json\r\n\r\n").encode()
        held = []
        try:
            for _ in range(4):  # 4 x 59 KiB: the whole budget of 256 KiB if a team may take it
                s = socket.create_connection(("127.0.0.1", srv.http_port))
                s.settimeout(10)
                s.sendall(head + b" " * (59 << 10))
                held.append(s)
            time.sleep(0.5)
            r = httpx.post(f"http://127.0.0.1:{srv.http_port}/v1/score", headers={"Authorization": f"Bearer {b}"},
                           json={"samples": [{"completion": "x" * (40 << 10)}],
                                 "spec": {"components": [{"name": "format"}]}}, timeout=10)
            assert r.status_code == 200, r.text
            # Two of a's four are over a's half and answered 503 at once; which two depends on
            # the order the server read the four heads in, not always the order they were sent.
            answered: dict[socket.socket, str] = {}
            deadline = time.monotonic() + 10
            while len(answered) < 2 and time.monotonic() < deadline:
                ready, _, _ = select.select([s for s in held if s not in answered], [], [], 0.2)
                answered.update((s, read_answer(s)) for s in ready)
            refused = list(answered.values())
            assert len(refused) == 2 and all(x.startswith("HTTP/1.1 503") and "per team" in x for x in refused), \
                refused
            # ... and the other two are still being read (held within a's half), not answered.
            assert select.select([s for s in held if s not in answered], [], [], 0.5)[0] == []
        finally:
            for s in held:
                s.close()


def test_a_team_over_its_quota_is_refused_before_its_body_is_read(tmp_path):
    """gRPC refuses a team over its quota before validating its request (precheck), but the
    face read and transcoded the team's body first: an over-quota team could go on taking
    the transcoding threads (and the body budget) for requests that were sure to be refused.
    Now the face answers 429 with Retry-After as soon as the head has arrived."""
    quotas = QuotaConfig(teams={"a": TeamQuota(samples_per_s=0.01, samples_burst=1)})
    cfg = ServerConfig(port=0, http_port=free_port(), database_url=f"sqlite:///{tmp_path}/r.db", workers=1,
                       auth="on", http_read_timeout_s=20, quotas=quotas)
    with start_server(cfg) as srv:
        key = KeyStore(srv.store).create("a")[0]
        one = {"samples": [{"completion": "x"}], "spec": {"components": [{"name": "format"}]}}
        assert post(srv, "/v1/score", key, json=one).status_code == 200
        assert post(srv, "/v1/score", key, json=one).status_code == 429  # over: gRPC refuses it
        with socket.create_connection(("127.0.0.1", srv.http_port)) as s:  # a body that never comes
            s.settimeout(10)
            s.sendall(f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nAuthorization: Bearer "
                      f"{key}\r\nContent-Type: application/json\r\n\r\n{{".encode())
            t0 = time.monotonic()
            answer = read_answer(s)
        assert answer.startswith("HTTP/1.1 429"), answer
        assert "retry-after:" in answer.lower() and time.monotonic() - t0 < 5


@pytest.mark.parametrize("step", ["9223372036854775808", "-9223372036854775809", "1" * 5000])
def test_a_step_beyond_int64_is_a_400_not_an_internal_error(served, step):
    """`?step=` past int64 was a 500 quoting protobuf's ValueError."""
    srv, keys = served
    r = post(srv, f"/openrlhf/math?failed_reward=0&step={step}", keys["a"],
             json={"query": ["\\boxed{2}"], "prompts": [""], "labels": ["2"]})
    assert r.status_code == 400, r.text
    assert "step" in r.json()["error"]["message"] and len(r.text) < 500


def test_another_teams_run_cannot_be_written_through_the_query_string(served):
    """Guard (issue #17 item 8, held by the servicer): team a naming team b's run_id gets
    NOT_FOUND, as over gRPC, and nothing is stored in b's run."""
    srv, keys = served
    with grpc.insecure_channel(srv.address) as ch:
        run = pb_grpc.RewardServiceStub(ch).StartRun(pb.StartRunRequest(name="b's"),
                                                     metadata=[("authorization", f"Bearer {keys['b']}")])
    body = {"query": ["\\boxed{2}"], "prompts": [""], "labels": ["2"]}
    r = post(srv, f"/openrlhf/math?run_id={run.run_id}&step=1&failed_reward=0", keys["a"], json=body)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND", r.text
    r = post(srv, "/v1/score", keys["a"], json={"runId": run.run_id, "samples": [{"completion": "x", "reference": "2"}],
                                                 "spec": {"name": "math"}})
    assert r.status_code == 404, r.text
    srv.store.flush()
    assert list(srv.store.query_scores(run_id=run.run_id)) == []


def test_a_request_whose_client_hung_up_stops_being_scored(served):
    """OpenRLHF gives up on a request after its timeout and sends it again: the abandoned
    one went on being scored (and stored, and counted) in full, so every retry added a
    copy of the work. The face now cancels the gRPC call when its client disconnects."""
    srv, keys = served
    completion = "a" * 40 + "!"  # backtracks until the 3 s regex timeout
    auth = {"Authorization": f"Bearer {keys['b']}"}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"http://127.0.0.1:{srv.http_port}/v1/score", timeout=0.5, headers=auth,
                   json={"spec": {"name": "slow3"}, "samples": [{"id": "gone", "completion": completion}]})
    # Scored after it on the same worker: when this one is answered, the first would be done.
    kept = httpx.post(f"http://127.0.0.1:{srv.http_port}/v1/score", timeout=60, headers=auth,
                      json={"spec": {"name": "slow3"}, "samples": [{"id": "kept", "completion": completion + "!"}]})
    assert kept.status_code == 200, kept.text
    srv.store.flush()
    stored = [r.completion_text for r in srv.store.query_scores(team="b")]
    assert completion + "!" in stored and completion not in stored


def test_the_private_grpc_socket_is_in_a_folder_only_the_server_user_can_enter(served):
    """Guard: the Unix socket the face calls gRPC through carries no TLS; another local user
    must not reach it (it would still need a key, as on the TCP port, but not TLS)."""
    srv, _ = served
    folder = srv._parts.web._socket_dir
    assert folder is not None and (folder / "grpc.sock").exists()
    st = os.stat(folder)
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == os.getuid()


def test_a_revoked_key_stops_working_over_http_within_the_grpc_cache_delay(served):
    """The HTTP face checks keys through the gRPC Authenticator: a key revoked in the store is
    refused before its body is read once the shared cache entry lapses (CACHE_TTL_S), the
    same delay as on gRPC, and never later."""
    from reward_server.auth import Authenticator

    srv, _ = served
    keys = KeyStore(srv.store)
    key, row = keys.create("c")
    body = {"query": ["\\boxed{1}"], "prompts": [""], "labels": ["1"]}
    assert post(srv, "/openrlhf/math", key, json=body).status_code == 200
    keys.revoke(row.prefix)
    time.sleep(Authenticator.CACHE_TTL_S + 0.5)
    r = post(srv, "/openrlhf/math", key, json=body)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"], r.text


def test_a_query_padded_with_a_million_end_tokens_is_cut_in_linear_time(served):
    """The response's trailing special tokens were cut one slice at a time: quadratic, so
    one 4 MB OpenRLHF query of `</s>` padding (a quarter of max_message_bytes) held a
    transcoding thread for minutes, and two such requests stopped the HTTP face for every
    team. The cut is one linear scan now."""
    srv, keys = served
    body = {"query": [PROMPT + "\\boxed{1}" + "</s>" * 1_000_000], "prompts": [PROMPT], "labels": ["1"]}
    t0 = time.monotonic()
    r = post(srv, "/openrlhf/math", keys["a"], json=body, timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["rewards"] == [1.0]
    assert time.monotonic() - t0 < 10


def test_one_teams_slow_to_transcode_bodies_do_not_hold_both_threads(served):
    """JSON transcoding ran on two threads, first come first served: a body of tiny values
    (200,000 empty samples, 0.8 MB; 16 MB of them take ~40 s) keeps a thread busy for seconds
    before gRPC refuses it, and two such requests from team a held both threads, so team b's
    small request waited behind them. Teams take turns, one thread each at most."""
    srv, keys = served
    heavy = json.dumps({"samples": [{}] * 200_000}).encode()
    answers: list[int] = []

    def send_heavy() -> None:
        answers.append(post(srv, "/v1/score", keys["a"], content=heavy,
                            headers={"Content-Type": "application/json"}).status_code)

    threads = [threading.Thread(target=send_heavy) for _ in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(0.5)  # both of a's bodies are being transcoded
    tb = time.monotonic()
    r = post(srv, "/v1/score", keys["b"], json={"samples": [{"completion": "x"}],
                                                "spec": {"components": [{"name": "format"}]}})
    b_s = time.monotonic() - tb
    for t in threads:
        t.join()
    a_s = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert answers and all(code in (400, 413) for code in answers), answers
    assert b_s < max(2.0, a_s / 3), f"team b waited {b_s:.1f} s behind team a's {a_s:.1f} s of transcoding"
