"""The code verifier through a real server on a loopback port: a code score, a cheat
rejected, a bad reference refused up front, and the service healthy afterwards."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import verifiers.code  # noqa: F401  (registers "code" until verifiers/__init__ imports it)
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from verifiers import registry

AVAILABLE, WHY = registry.get("code").available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"code verifier unavailable: {WHY}")

HE = {"prompt": "def add(a, b):\n", "entry_point": "add",
      "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(5, 7) == 12\n"}
STDIO = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "5 7\n", "stdout": "12\n"}]}
CODE = pb.RewardSpec(components=[pb.VerifierRef(name="code", params={"timeout_per_test_s": 2})])


def sample(completion: str, reference: dict, id: str, as_struct: bool = True) -> pb.Sample:
    s = pb.Sample(id=id, completion=completion, prompt="add two numbers")
    if as_struct:
        s.reference.struct_value.update(reference)
    else:
        s.reference.string_value = json.dumps(reference)
    return s


def test_code_scores_through_the_server_and_it_stays_healthy(tmp_path):
    from reward_server.app import start_server
    from reward_server.config import ServerConfig

    srv = start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/r.db", workers=1))
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.RewardServiceStub(ch)
            info = {v.name: v for v in stub.ListVerifiers(pb.ListVerifiersRequest()).verifiers}["code"]
            assert info.available and {p.name for p in info.params} >= {"language", "comparator", "partial_credit"}

            resp = stub.Score(pb.ScoreRequest(spec=CODE, samples=[
                sample("    return a + b\n", HE, "fn-good"),
                sample("```python\ndef add(a, b):\n    class E:\n        def __eq__(s, o): return True\n"
                       "    return E()\n```", HE, "fn-always-equal"),
                sample("```python\na, b = map(int, input().split())\nprint(a + b)\n```", STDIO, "io-good",
                       as_struct=False),
                sample("```python\nimport sys\nsys.exit(0)\n```", STDIO, "io-exit-0"),
                sample("I don't know.", STDIO, "no-code"),
            ]))
            by_id = {r.id: r for r in resp.results}
            assert by_id["fn-good"].status == pb.STATUS_OK and by_id["fn-good"].reward == 1.0
            assert by_id["io-good"].reward == 1.0
            for cheat in ("fn-always-equal", "io-exit-0"):
                assert by_id[cheat].status == pb.STATUS_OK and by_id[cheat].reward == 0.0
                assert "first failure" in by_id[cheat].components[0].reason
            # prose runs as Python: a compile error, never an ABSTAIN that a trainer would drop
            assert by_id["no-code"].status == pb.STATUS_OK and by_id["no-code"].reward == 0.0
            assert by_id["fn-good"].components[0].name == "code"

            with pytest.raises(grpc.RpcError) as e:  # a stdin test without stdout: refused before scheduling
                stub.Score(pb.ScoreRequest(spec=CODE, samples=[
                    sample("print(3)", {"tests": [{"stdin": "1 2\n"}]}, "bad-ref")]))
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "samples[0].reference" in e.value.details() and "tests[0].stdout" in e.value.details()

            health = health_pb2_grpc.HealthStub(ch)
            assert health.Check(health_pb2.HealthCheckRequest(service="")).status == \
                health_pb2.HealthCheckResponse.SERVING
            fmt = pb.RewardSpec(components=[pb.VerifierRef(name="format")])
            (r,) = stub.Score(pb.ScoreRequest(spec=fmt, samples=[
                pb.Sample(completion="<think>a</think><answer>b</answer>")])).results
            assert r.reward == 1.0
    finally:
        srv.stop()


# -- issue 11: code verdicts that no trick flips, over a server with auth on ----------------

SHARED_CC = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "code_stdio_codecontests.jsonl"


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def code_spec(version: str = "", **params) -> pb.RewardSpec:
    return pb.RewardSpec(components=[pb.VerifierRef(name="code", version=version,
                                                    params={"timeout_per_test_s": 2, **params})])


@pytest.fixture(scope="module")
def authed(tmp_path_factory):
    """A real server with auth on, two teams' keys (the cache off: every score is a run)."""
    from reward_server.app import start_server
    from reward_server.auth import KeyStore
    from reward_server.config import ServerConfig

    tmp = tmp_path_factory.mktemp("code-auth")
    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp}/r.db", workers=1, auth="on", grace_s=2,
                                   cache_ttl_s=0, thread_pools={"sandbox": 2})) as srv:
        keys = KeyStore(srv.store)
        a, b = keys.create("team-a")[0], keys.create("team-b")[0]
        with grpc.insecure_channel(srv.address, options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
            yield pb_grpc.RewardServiceStub(ch), a, b


def score(rpc, key, samples, spec) -> list:
    return list(rpc.Score(pb.ScoreRequest(samples=samples, spec=spec), metadata=md(key), timeout=300).results)


def test_integer_answers_and_huge_return_values_are_verdicts_over_the_server(authed):
    rpc, a, b = authed
    mod = {"tests": [{"stdin": "3\n", "stdout": "1000000006\n"}]}
    huge = {"entry_point": "f", "test": "def check(candidate):\n    assert candidate(1) == 7\n"}
    res = score(rpc, a, [sample("```python\nprint('1000000005.0')\n```", mod, "float-wrong"),
                         sample("```python\nprint('1.0000000e9')\n```", mod, "exp-wrong"),
                         sample("```python\nprint(1000000006)\n```", mod, "right"),
                         sample("```python\ndef f(x):\n    return 10 ** 5000\n```", huge, "huge-int")], code_spec())
    by = {r.id: r for r in res}
    for bad in ("float-wrong", "exp-wrong", "huge-int"):
        assert by[bad].status == pb.STATUS_OK and by[bad].reward == 0.0, (bad, by[bad].reason)
        assert "wrong answer" in by[bad].components[0].reason, by[bad].reason
        assert by[bad].components[0].version == "1.2.0"
    assert "5001 digits" in by["huge-int"].components[0].reason
    assert by["right"].reward == 1.0
    # the other team's spec pinned to the old version still resolves (and keeps its rule)
    (old,) = score(rpc, b, [sample("```python\nprint('1000000005.0')\n```", mod, "pinned")], code_spec("1.0.0"))
    assert old.status == pb.STATUS_OK and old.components[0].version == "1.0.0" and old.reward == 1.0


@pytest.mark.skipif(not SHARED_CC.exists(), reason=f"shared benchmark data not found at {SHARED_CC}")
def test_constant_printers_of_the_shared_corpus_run_every_test_and_fail(authed):
    rpc, a, b = authed
    problems = [json.loads(x) for x in SHARED_CC.read_text().splitlines() if x.strip()]
    samples, expect = [], {}
    for p in problems:
        for s in p["submissions"]:
            if s["variant"] in ("hardcode_first_test", "canonical"):
                sid = f"{p['problem_id']}/{s['variant']}"
                samples.append(sample(f"```python\n{s['program']}\n```", {"tests": p["tests"]}, sid))
                expect[sid] = (s["expected"], len(p["tests"]))
    # every test runs (no stop at the first failure), compared as CodeContests does
    spec = code_spec(comparator="tokens", case_sensitive=False, stop_at_first_failure=False)
    res = score(rpc, a, samples, spec)
    assert len(res) == len(samples) and sum(not e for e, _ in expect.values()) == len(problems)
    for r in res:
        passes, n = expect[r.id]
        assert r.status == pb.STATUS_OK, (r.id, r.reason)
        assert (r.reward == 1.0) is passes, (r.id, r.reason)
        assert f"/{n} tests passed" in r.components[0].reason, (r.id, r.reason)
        assert "not run" not in r.components[0].reason
    # a problem whose tests all share the first answer: the constant printer is right
    same = {"tests": [{"stdin": f"{i}\n", "stdout": "YES\n"} for i in range(5)]}
    (ok,) = score(rpc, b, [sample("```python\nprint('YES')\n```", same, "same")], spec)
    assert ok.reward == 1.0 and "5/5 tests passed" in ok.components[0].reason


def test_no_process_outlives_its_verdict_and_the_reason_names_the_limit_over_the_server(authed):
    from tests.verifiers.test_sandbox_lingering import assert_nothing_left, daemons

    rpc, a, b = authed
    marker = f"rlvr-linger-{uuid.uuid4().hex[:12]}"
    ref = {"tests": [{"stdin": "", "stdout": "spawned\n"}, {"stdin": "again\n", "stdout": "spawned\n"}]}
    fn_ref = {"entry_point": "f", "test": "def check(candidate):\n    assert candidate() == 1\n"}
    res = score(rpc, b, [sample(f"```python\n{daemons(marker)}```", ref, "daemons"),
                         sample("```python\nwhile True:\n    pass\n```", ref, "spin"),
                         sample("```python\nimport time\ntime.sleep(60)\n```", ref, "sleep"),
                         sample("```python\ndef f():\n    while True:\n        pass\n```", fn_ref, "fn-spin")],
                code_spec(timeout_per_test_s=0.5))
    by = {r.id: r for r in res}
    assert by["daemons"].status == pb.STATUS_OK and by["daemons"].reward == 1.0, by["daemons"].reason
    assert_nothing_left(marker)
    for sid, limit in (("spin", "CPU-time limit 0.5 s"), ("sleep", "wall-clock limit 3 s"),
                       ("fn-spin", "CPU-time limit 0.5 s")):
        assert by[sid].status == pb.STATUS_OK and by[sid].reward == 0.0, by[sid].reason
        why = by[sid].components[0].reason
        assert "time limit" in why and limit in why, why


# -- issue 17.6 / 21: one team's sleeping programs do not hold the sandbox -------------------

def test_a_teams_sleeping_programs_do_not_delay_another_teams_correct_program(tmp_path):
    import concurrent.futures as cf
    import time

    from reward_server.app import start_server
    from reward_server.auth import KeyStore
    from reward_server.config import ServerConfig

    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/r.db", workers=1, auth="on",
                                   grace_s=2, cache_ttl_s=0)) as srv:
        keys = KeyStore(srv.store)
        a, b = keys.create("team-a")[0], keys.create("team-b")[0]
        with grpc.insecure_channel(srv.address) as ch:
            rpc = pb_grpc.RewardServiceStub(ch)
            good = sample("```python\na, b = map(int, input().split())\nprint(a + b)\n```", STDIO, "b-good")
            assert score(rpc, b, [good], code_spec())[0].reward == 1.0  # warm
            sleepers = [sample("```python\nimport time\ntime.sleep(60)\n```", STDIO, f"a-sleep-{i}")
                        for i in range(24)]
            # a 1 s CPU limit: each sleeper holds its slot for its 5.5 s wall-clock backstop, so a
            # team B run stuck behind them would wait ~4 s, twice the bound below (the default 2 s
            # held 10.5 s: the two waves took 21 s)
            with cf.ThreadPoolExecutor(2) as ex:
                flood = ex.submit(score, rpc, a, sleepers, code_spec(timeout_per_test_s=1))
                time.sleep(1.5)  # team A's sleepers now hold what they can
                took = []
                for _ in range(3):
                    t0 = time.monotonic()
                    (r,) = score(rpc, b, [good], code_spec())
                    took.append(time.monotonic() - t0)
                    assert r.status == pb.STATUS_OK and r.reward == 1.0, r.reason
                assert max(took) < 2.0, f"team B's correct program took {took} s behind team A's sleepers"
                results = flood.result()
            assert all(r.status == pb.STATUS_OK and r.reward == 0.0 and "wall-clock" in r.components[0].reason
                       for r in results), [r.components[0].reason for r in results][:3]
