"""Prometheus /metrics scraped over a real port after real Score calls: the counters move
with the right labels, and the live gauges follow the writer."""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import verifiers.code  # noqa: F401  (registers "code")
from reward_server.app import RunningServer, start_server
from reward_server.auth import KeyStore
from reward_server.config import ServerConfig
from reward_server.quotas import QuotaConfig, TeamQuota
from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.conftest import free_port
from verifiers import registry

MATH = pb.RewardSpec(components=[pb.VerifierRef(name="math")])
MATH_VERSION = registry.get("math").version


def scrape(srv: RunningServer) -> dict[tuple[str, frozenset], float]:
    """Every sample of GET /metrics: (name, labels) -> value."""
    r = httpx.get(f"http://127.0.0.1:{srv.metrics_port}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    cfg = ServerConfig(port=0, metrics_port=free_port(), http_port=free_port(), database_url=f"sqlite:///{tmp_path}/r.db",
                       workers=1, auth="on", quotas=QuotaConfig(teams={"slow": TeamQuota(samples_per_s=0.1,
                                                                                         samples_burst=2)}))
    with start_server(cfg) as srv:
        keys = KeyStore(srv.store)
        yield srv, {team: keys.create(team)[0] for team in ("a", "b", "slow")}


def score(srv: RunningServer, key: str, samples: list[pb.Sample], spec: pb.RewardSpec = MATH) -> pb.ScoreResponse:
    with grpc.insecure_channel(srv.address) as ch:
        return pb_grpc.RewardServiceStub(ch).Score(pb.ScoreRequest(samples=samples, spec=spec),
                                                   metadata=[("authorization", f"Bearer {key}")])


def math_samples() -> list[pb.Sample]:
    right = pb.Sample(completion="\\boxed{42}")
    right.reference.string_value = "42"
    wrong = pb.Sample(completion="\\boxed{41}")
    wrong.reference.string_value = "42"
    return [right, wrong]


def test_scores_cache_latency_quota_and_http_counters_move_with_their_labels(served):
    srv, keys = served
    before = scrape(srv)
    assert value(before, "reward_component_results_total", verifier="math", version=MATH_VERSION, status="OK",
                 team="a") == 0
    score(srv, keys["a"], math_samples())
    score(srv, keys["b"], math_samples())
    score(srv, keys["b"], math_samples())  # the same texts again: cache hits (the cache is per team)
    score(srv, keys["slow"], math_samples())
    with pytest.raises(grpc.RpcError) as refused:
        score(srv, keys["slow"], math_samples())
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert httpx.post(f"http://127.0.0.1:{srv.http_port}/v1/score", json={}).status_code == 401

    m = scrape(srv)
    math_ok = dict(verifier="math", version=MATH_VERSION, status="OK")
    assert value(m, "reward_component_results_total", **math_ok, team="a") == 2
    assert value(m, "reward_component_results_total", **math_ok, team="b") == 4
    assert value(m, "reward_component_results_total", **math_ok, team="slow") == 2
    assert value(m, "reward_samples_total", status="OK", team="b") == 4
    assert value(m, "reward_cache_lookups_total", verifier="math", result="hit") == 2
    assert value(m, "reward_cache_lookups_total", verifier="math", result="miss") == 6
    # Latency of real verifier calls only: the 6 misses, not the 2 hits.
    assert value(m, "reward_verifier_latency_seconds_count", verifier="math", version=MATH_VERSION) == 6
    assert value(m, "reward_verifier_latency_seconds_sum", verifier="math", version=MATH_VERSION) > 0
    assert value(m, "reward_quota_refusals_total", team="slow") == 1
    assert value(m, "reward_quota_refusals_total", team="a") == 0
    assert value(m, "reward_http_requests_total", route="/v1/score", code="401") == 1
    assert value(m, "reward_store_rows_written_total") == 8
    assert value(m, "reward_store_rows_pending") == 0 and value(m, "reward_store_writer_lag_seconds") == 0
    assert value(m, "reward_pool_queue_depth", pool="process") == 0
    assert ("reward_pool_queue_depth", frozenset({("pool", "sandbox")})) in m


def test_rows_pending_and_writer_lag_follow_a_stalled_database(served, tmp_path):
    srv, keys = served
    lock = sqlite3.connect(tmp_path / "r.db", timeout=30)
    lock.execute("BEGIN IMMEDIATE")  # the writer now waits for this transaction
    done = threading.Event()
    t = threading.Thread(target=lambda: (score(srv, keys["a"], math_samples()), done.set()))
    t.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            m = scrape(srv)
            if value(m, "reward_store_writer_lag_seconds") > 0.3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert value(m, "reward_store_rows_pending") == 2 and value(m, "reward_store_writer_lag_seconds") > 0.3
        assert not done.is_set()  # not answered before its rows are committed
    finally:
        lock.rollback()
        lock.close()
    t.join(30)
    assert done.is_set()
    m = scrape(srv)
    assert value(m, "reward_store_rows_pending") == 0 and value(m, "reward_store_writer_lag_seconds") == 0


CODE_OK, CODE_WHY = registry.get("code").available()


@pytest.mark.skipif(not CODE_OK, reason=f"code verifier unavailable: {CODE_WHY}")
def test_sandbox_runs_are_counted_by_outcome(served):
    srv, keys = served
    ref = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}]}
    good = pb.Sample(completion="```python\na, b = map(int, input().split())\nprint(a + b)\n```")
    crash = pb.Sample(completion="```python\nraise SystemExit(3)\n```")
    for s in (good, crash):
        s.reference.struct_value.update(ref)
    r = score(srv, keys["a"], [good, crash], pb.RewardSpec(components=[pb.VerifierRef(name="code")]))
    assert [x.reward for x in r.results] == [1.0, 0.0]
    m = scrape(srv)
    assert value(m, "reward_sandbox_runs_total", backend="bubblewrap", outcome="ok") == 1
    assert value(m, "reward_sandbox_runs_total", backend="bubblewrap", outcome="exit_nonzero") == 1
    assert value(m, "reward_sandbox_run_seconds_count", backend="bubblewrap") == 2
    assert value(m, "reward_component_results_total", verifier="code", version=registry.get("code").version,
                 status="OK", team="a") == 2


def test_the_grafana_dashboard_only_queries_metrics_the_server_exports(served):
    srv, _ = served
    text = httpx.get(f"http://127.0.0.1:{srv.metrics_port}/metrics").text
    exported = {f.name + suffix for f in text_string_to_metric_families(text)
                for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    dashboard = json.loads((Path(__file__).parents[2] / "deploy/grafana/rewards.json").read_text())
    queried = {name for p in dashboard["panels"] for t in p["targets"]
               for name in re.findall(r"\breward_[a-z_]+", t["expr"])}
    assert queried and queried <= exported, queried - exported
