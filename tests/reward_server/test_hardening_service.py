"""Issue #11, the service part: an ordinary team key against a real server with auth on.

The server must not be aimed at its own network or file system: a judge's endpoint and a
local model come from the operator's configuration (named endpoints with their keys, named
models, model roots, an allow-list of URL prefixes), never from the request. Undecodable
request bytes are INVALID_ARGUMENT, and GetStats shows a team only its own counts.

Real parts: a server on 127.0.0.1:0 with an SQLite file and auth = "on", two teams and an
admin with real keys, a loopback OpenAI-compatible stub (the configured endpoint), loopback
listeners that count TCP connections (the "internal" services a team aims at), and tiny
transformers models built here.
"""
from __future__ import annotations

import os

import grpc
import pytest

import verifiers.judges  # noqa: F401  (registers the judges)
from reward_server.app import reach_policy, start_server
from reward_server.auth import KeyStore
from reward_server.config import ConfigError, ServerConfig, load_config
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.helpers.listener import CountingListener
from tests.helpers.openai_stub import OpenAIStub
from verifiers.judges import models as judge_models
from verifiers.judges.openai_judge import reset_endpoints

SECRET = "INTERNAL-SECRET-0xC0FFEE"
SERVICE = "/rewards.v1.RewardService"


def md(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def sample(completion: str = "The answer is 4.", prompt: str = "What is two plus two ?",
           reference: str = "4") -> pb.Sample:
    s = pb.Sample(prompt=prompt, completion=completion)
    s.reference.string_value = reference
    return s


def spec(name: str, **params) -> pb.RewardSpec:
    return pb.RewardSpec(components=[pb.VerifierRef(name=name, params=params)])


def refused(fn) -> str:
    """Call `fn`, expect INVALID_ARGUMENT, return the message."""
    with pytest.raises(grpc.RpcError) as e:
        fn()
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    return e.value.details()


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from verifiers.judges.tiny import build_tiny_llama

    tmp = tmp_path_factory.mktemp("hardened")
    data, models_root, elsewhere = tmp / "data", tmp / "models", tmp / "elsewhere"
    for d in (data, models_root, elsewhere):
        d.mkdir()
    seven = build_tiny_llama(models_root / "seven", fixed_token="7")
    build_tiny_llama(models_root / "rm", head="seqcls")
    build_tiny_llama(elsewhere / "outside", fixed_token="7")         # a real model, outside every root
    (models_root / "escape").symlink_to(elsewhere / "outside")       # a link inside the root that leaves it
    reset_endpoints()
    with pytest.MonkeyPatch.context() as mp, OpenAIStub() as grader, CountingListener() as internal, \
            CountingListener() as leaky:
        for var in ("VERIFIERS_JUDGE_ALLOWED_URLS", "VERIFIERS_MODEL_ROOTS"):
            mp.delenv(var, raising=False)
        mp.setenv("GRADER_API_KEY", "sk-operator-key")
        config = ServerConfig(
            port=0, database_url=f"sqlite:///{data}/rewards.db", workers=1, auth="on", grace_s=2,
            judges={"endpoints": {"grader": {"base_url": grader.base_url, "model": "stub-judge",
                                             "api_key_env": "GRADER_API_KEY", "max_concurrency": 8,
                                             "max_retries": 1}},
                    # no path in the entry: the classic prefix-check bypass is user-info (…:PORT@other-host)
                    "allowed_urls": [f"http://127.0.0.1:{leaky.port}"]},
            models={"seven": {"path": str(seven)}, "rm": {"path": str(models_root / "rm")}},
            model_roots=[str(models_root)])
        with start_server(config) as srv:
            keys = KeyStore(srv.store)
            k = {"a": keys.create("team-a")[0], "b": keys.create("team-b")[0],
                 "admin": keys.create("platform", admin=True)[0]}
            with grpc.insecure_channel(srv.address) as ch:
                yield dict(srv=srv, ch=ch, rpc=pb_grpc.RewardServiceStub(ch), keys=k, grader=grader,
                           internal=internal, leaky=leaky, data=data, root=models_root, elsewhere=elsewhere)
    reset_endpoints()
    judge_models.clear_cache()


# -- SSRF: a judge's endpoint comes from the configuration --------------------------------

def test_a_request_url_is_refused_everywhere_and_nothing_connects(hardened):
    rpc, key, internal = hardened["rpc"], md(hardened["keys"]["a"]), hardened["internal"]
    leaky_port, internal_port = hardened["leaky"].port, internal.port
    for url in (internal.base_url,
                f"http://127.0.0.1:{leaky_port}@127.0.0.1:{internal_port}/v1",   # user-info host confusion
                f"http://127.0.0.1:{leaky_port}.evil.example/v1"):
        bad = spec("judge", base_url=url, model="m", max_retries=3)
        msg = refused(lambda: rpc.Score(pb.ScoreRequest(samples=[sample()], spec=bad), metadata=key))
        assert "params.base_url" in msg and "grader" in msg           # names the endpoints one may pick
        msg = refused(lambda: rpc.DryRun(pb.DryRunRequest(sample=sample(), spec=bad), metadata=key))
        assert "grader" in msg
        (res,) = list(rpc.ScoreGroups(iter([pb.GroupRequest(group_id="g", spec=bad, samples=[sample()])]),
                                      metadata=key))
        assert res.error.code == "INVALID_ARGUMENT" and "grader" in res.error.message
    admin = md(hardened["keys"]["admin"])                             # a stored spec cannot smuggle one in
    refused(lambda: rpc.PutSpec(pb.PutSpecRequest(name="ssrf", spec=spec("judge", base_url=internal.base_url,
                                                                         model="m")), metadata=admin))
    assert internal.connections == 0 and internal.requests == 0


def test_a_configured_endpoint_is_picked_by_name_and_sent_the_operator_key(hardened):
    rpc, key, grader = hardened["rpc"], md(hardened["keys"]["b"]), hardened["grader"]
    grader.behaviour = "score"
    grader.reset_counts()
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec("judge", endpoint="grader")),
                     metadata=key).results
    assert r.status == pb.STATUS_OK and r.reward == pytest.approx(6 / 9), r.reason   # 7 on [1, 10]
    assert grader.requests == 1 and grader.auth_headers == ["Bearer sk-operator-key"]
    assert grader.bodies[0]["model"] == "stub-judge"
    r = rpc.DryRun(pb.DryRunRequest(sample=sample("4"), spec=spec("judge", endpoint="grader")), metadata=key).result
    assert r.status == pb.STATUS_OK
    # the operator's key, model and limits stay the operator's
    for params, field in (({"endpoint": "grader", "api_key_env": "JUDGE_OTHER"}, "api_key_env"),
                          ({"endpoint": "grader", "model": "gpt-secret"}, "model"),
                          ({"endpoint": "grader", "max_concurrency": 1000}, "max_concurrency"),
                          ({"endpoint": "grader", "max_retries": 20}, "max_retries"),
                          ({"endpoint": "nope"}, "endpoint"),
                          ({"endpoint": "grader", "base_url": grader.base_url}, "base_url")):
        msg = refused(lambda: rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec("judge", **params)),
                                        metadata=key))
        assert field in msg, msg
    assert "grader" in refused(lambda: rpc.Score(pb.ScoreRequest(samples=[sample()],
                                                                 spec=spec("judge", endpoint="nope")), metadata=key))
    # a failing configured endpoint: a short excerpt of its reply helps the operator's users
    grader.behaviour = "garbage"
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample("garbage please")], spec=spec("judge", endpoint="grader")),
                     metadata=key).results
    assert r.status == pb.STATUS_ERROR and "upstream proxy error" in r.reason
    grader.behaviour = "score"


def test_an_allow_listed_url_chosen_by_the_request_never_has_its_reply_echoed(hardened):
    rpc, key, leaky = hardened["rpc"], md(hardened["keys"]["a"]), hardened["leaky"]
    run = rpc.StartRun(pb.StartRunRequest(name="leak"), metadata=key)
    (r,) = rpc.Score(pb.ScoreRequest(run_id=run.run_id, samples=[sample()],
                                     spec=spec("judge", base_url=leaky.base_url, model="m", max_retries=0)),
                     metadata=key).results
    assert leaky.requests == 1                                         # allow-listed: it was called
    assert r.status == pb.STATUS_ERROR and "not a chat completion" in r.reason
    assert SECRET not in r.reason and "withheld" in r.reason
    rows = list(rpc.QueryScores(pb.QueryScoresRequest(run_id=run.run_id), metadata=key))
    assert rows and all(SECRET not in row.reason for row in rows)
    # no server secret travels to a URL the request chose, even a JUDGE_ one
    msg = refused(lambda: rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec(
        "judge", base_url=leaky.base_url, model="m", api_key_env="JUDGE_ANY")), metadata=key))
    assert "api_key_env" in msg


# -- model paths: only configured names, or folders under configured roots ------------------

@pytest.mark.parametrize("verifier", ["local_judge", "reward_model", "embedding_similarity"])
def test_model_paths_outside_the_configuration_are_refused(hardened, verifier):
    rpc, key = hardened["rpc"], md(hardened["keys"]["a"])
    root = str(hardened["root"])
    for path in ("/etc", "../../..", str(hardened["data"]), os.path.join(root, "escape"),
                 os.path.join(root, "..", "elsewhere", "outside"), "some-org/some-hub-model"):
        msg = refused(lambda: rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec(verifier, model=path)),
                                        metadata=key))
        assert "params.model" in msg and "seven" in msg and "rm" in msg and root in msg, msg
        refused(lambda: rpc.DryRun(pb.DryRunRequest(sample=sample(), spec=spec(verifier, model=path)), metadata=key))


def test_configured_model_names_and_folders_under_a_root_load(hardened):
    rpc, key = hardened["rpc"], md(hardened["keys"]["b"])
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec("local_judge", model="seven", max_new_tokens=1)),
                     metadata=key).results
    assert r.status == pb.STATUS_OK and r.reward == pytest.approx(6 / 9), r.reason
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample()], spec=spec("reward_model", model="rm")), metadata=key).results
    assert r.status == pb.STATUS_OK, r.reason
    inside = os.path.join(str(hardened["root"]), "seven")
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample("The answer is 5.")],
                                     spec=spec("local_judge", model=inside, max_new_tokens=1)), metadata=key).results
    assert r.status == pb.STATUS_OK, r.reason


# -- undecodable bytes ---------------------------------------------------------------------

def test_undecodable_request_bytes_are_invalid_argument_on_every_kind_of_rpc(hardened):
    ch, key = hardened["ch"], md(hardened["keys"]["a"])
    garbage = b"\xff\xff\xff\xff\x0f"
    for method in ("Score", "DryRun", "GetStats", "StartRun"):
        call = ch.unary_unary(f"{SERVICE}/{method}", request_serializer=None, response_deserializer=None)
        msg = refused(lambda: call(garbage, metadata=key))
        assert "could not be decoded" in msg and "rewards.v1." in msg, msg
    query = ch.unary_stream(f"{SERVICE}/QueryScores", request_serializer=None, response_deserializer=None)
    assert "could not be decoded" in refused(lambda: list(query(garbage, metadata=key)))
    groups = ch.stream_stream(f"{SERVICE}/ScoreGroups", request_serializer=None, response_deserializer=None)
    good = pb.GroupRequest(group_id="g1", spec=spec("format"), samples=[sample()]).SerializeToString()
    assert "could not be decoded" in refused(lambda: list(groups(iter([good, garbage]), metadata=key)))
    # the standard services too (health needs no key; reflection streams)
    check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None)
    assert "grpc.health.v1.HealthCheckRequest" in refused(lambda: check(garbage))
    info = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                            request_serializer=None, response_deserializer=None)
    assert "could not be decoded" in refused(lambda: list(info(iter([garbage]))))
    # the server is fine afterwards
    rpc = hardened["rpc"]
    (r,) = rpc.Score(pb.ScoreRequest(samples=[sample("<think>x</think><answer>4</answer>")], spec=spec("format")),
                     metadata=key).results
    assert r.status == pb.STATUS_OK


# -- GetStats: a team sees its own counts -----------------------------------------------------

def test_get_stats_is_per_team_for_team_keys_and_server_wide_for_admins(tmp_path):
    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/s.db", workers=1, auth="on",
                                   grace_s=2)) as srv:
        keys = KeyStore(srv.store)
        a, b, admin = keys.create("team-a")[0], keys.create("team-b")[0], keys.create("ops", admin=True)[0]
        with grpc.insecure_channel(srv.address) as ch:
            rpc = pb_grpc.RewardServiceStub(ch)
            fmt = spec("format")
            a_req = pb.ScoreRequest(samples=[sample("<think>a</think><answer>1</answer>"),
                                             sample("<think>b</think><answer>2</answer>")], spec=fmt)
            rpc.Score(a_req, metadata=md(a))
            rpc.Score(a_req, metadata=md(a))                        # two cache hits for team A
            rpc.Score(pb.ScoreRequest(samples=[sample("team b's own")], spec=fmt), metadata=md(b))
            sa = rpc.GetStats(pb.GetStatsRequest(), metadata=md(a))
            sb = rpc.GetStats(pb.GetStatsRequest(), metadata=md(b))
            sall = rpc.GetStats(pb.GetStatsRequest(), metadata=md(admin))
    assert (sa.team, sa.cache_hits, sa.cache_misses, sa.score_rows_written) == ("team-a", 2, 2, 4)
    assert sa.cache_hit_rate == pytest.approx(0.5)
    assert (sb.team, sb.cache_hits, sb.cache_misses, sb.score_rows_written) == ("team-b", 0, 1, 1)
    assert sb.cache_hit_rate == 0.0 and sb.score_rows_pending == 0
    assert (sall.team, sall.cache_hits, sall.cache_misses, sall.score_rows_written) == ("", 2, 3, 5)
    assert sa.replica == sb.replica == sall.replica and sa.replica.endswith(f":{os.getpid()}")


def test_the_result_cache_never_tells_one_team_what_another_scored(tmp_path):
    """A hit is reported (`cached`) and counted: team B sending team A's exact text must be
    scored afresh, or B learns that A scored it."""
    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/c.db", workers=1, auth="on",
                                   grace_s=2, replica_id="replica-7")) as srv:
        keys = KeyStore(srv.store)
        a, b = keys.create("team-a")[0], keys.create("team-b")[0]
        with grpc.insecure_channel(srv.address) as ch:
            rpc = pb_grpc.RewardServiceStub(ch)
            req = pb.ScoreRequest(samples=[sample("Team A's secret solution: \\boxed{4}")], spec=spec("math"))
            first_a = rpc.Score(req, metadata=md(a)).results[0]
            again_a = rpc.Score(req, metadata=md(a)).results[0]
            first_b = rpc.Score(req, metadata=md(b)).results[0]
            sb = rpc.GetStats(pb.GetStatsRequest(), metadata=md(b))
    assert first_a.reward == again_a.reward == first_b.reward == 1.0
    assert not first_a.components[0].cached and again_a.components[0].cached   # A's own repeat hits
    assert not first_b.components[0].cached                                     # B's identical text does not
    assert (sb.cache_hits, sb.cache_misses, sb.replica) == (0, 1, "replica-7")


# -- the policy the server installs: config first, then the environment; auth on denies ------

def test_the_server_builds_its_reach_policy_from_config_then_env(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path}/p.db"
    monkeypatch.delenv("VERIFIERS_JUDGE_ALLOWED_URLS", raising=False)
    monkeypatch.delenv("VERIFIERS_MODEL_ROOTS", raising=False)
    p = reach_policy(ServerConfig(database_url=db))                  # auth off, nothing set: as the library
    assert p.any_url and p.any_model and not p.untrusted_callers
    p = reach_policy(ServerConfig(database_url=db, auth="on"))       # auth on, nothing set: nothing else
    assert not p.any_url and not p.any_model and p.untrusted_callers and p.allowed_url_prefixes == ()
    monkeypatch.setenv("VERIFIERS_JUDGE_ALLOWED_URLS", "http://env-judge/v1")
    monkeypatch.setenv("VERIFIERS_MODEL_ROOTS", str(tmp_path))
    p = reach_policy(ServerConfig(database_url=db))                  # the environment is the fallback
    assert p.allowed_url_prefixes == ("http://env-judge/v1",) and not p.any_url
    assert p.model_roots == (os.path.realpath(tmp_path),) and not p.any_model
    p = reach_policy(ServerConfig(database_url=db, auth="on", judges={"allowed_urls": ["http://cfg/v1"]},
                                  model_roots=[]))                   # the config wins over it
    assert p.allowed_url_prefixes == ("http://cfg/v1",) and p.model_roots == () and not p.any_model
    with pytest.raises(ConfigError, match="judges.endpoints.g.api_key_env: environment variable NO_SUCH_KEY"):
        reach_policy(ServerConfig(database_url=db, judges={"endpoints": {"g": {
            "base_url": "http://g/v1", "model": "m", "api_key_env": "NO_SUCH_KEY"}}}))
    monkeypatch.setenv("VERIFIERS_JUDGE_ALLOWED_URLS", "http://ok/v1, http://a:1@b/v1")
    with pytest.raises(ConfigError, match="VERIFIERS_JUDGE_ALLOWED_URLS"):
        reach_policy(ServerConfig(database_url=db))
    with pytest.raises(ConfigError, match="judges.allowed_urls"):
        load_config(database_url=db, judges={"allowed_urls": ["http://a:1@b/v1"]})
    with pytest.raises(ConfigError, match="judges.endpoints.g.base_url"):
        load_config(database_url=db, judges={"endpoints": {"g": {"base_url": "http://a/v1/../x", "model": "m"}}})
    with pytest.raises(ConfigError, match="models.rm.path"):
        load_config(database_url=db, models={"rm": {"path": str(tmp_path / "missing")}})
