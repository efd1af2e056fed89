"""Every RPC of the service through RewardClient, against a real server on loopback."""
from __future__ import annotations

import grpc
import pytest

from rewards_client import RewardCallError, RewardClient, make_sample, message_to_dict

R1 = "<think>2+2=4</think><answer>4</answer>"


def test_every_rpc(server):
    with RewardClient(server.address) as client:
        client.wait_ready(5)
        math = {v.version: v for v in client.list_verifiers(all_versions=True) if v.name == "math"}
        assert len(math) > 1 and sum(v.latest for v in math.values()) == 1
        stored = client.put_spec("client-math", [{"name": "math", "weight": 1.0}], "one math")
        assert (stored.name, stored.version) == ("client-math", 1)
        assert client.get_spec("client-math@1").description == "one math"
        assert [s.name for s in client.list_specs()] == ["client-math"]
        dry = client.dry_run(make_sample("d", R1, reference="4"), "client-math")
        assert dry.reward == 1.0 and dry.spec_name == "client-math" and dry.spec_version == 1

        run_id = client.start_run("calls", config={"lr": 1e-6})
        scores = client.score([{"id": "a", "completion": R1, "reference": "4"},
                               {"id": "b", "completion": "<think/><answer>5</answer>", "reference": "4"}],
                              "client-math", run_id=run_id, step=3)
        assert [(s.id, s.status, s.reward) for s in scores] == [("a", "OK", 1.0), ("b", "OK", 0.0)]
        client.log_step(run_id, 3, {"loss": 0.5, "skipped": None})
        run = client.finish_run(run_id, summary={"acc": 0.5})
        assert run.state == "finished" and client.get_run(run_id).summary["acc"] == 0.5
        assert run_id in [r.run_id for r in client.list_runs(limit=5)]
        assert [(s.step, dict(s.metrics)) for s in client.list_steps(run_id)] == [(3, {"loss": 0.5})]

        records = list(client.iter_scores(run_id, status="ok", step_min=3, step_max=3))
        assert sorted(r.sample_id for r in records) == ["a", "b"]
        assert [r.sample_id for r in client.iter_scores(run_id, reward_min=0.5)] == ["a"]
        one = client.get_score(records[0].score_id)
        assert one.run_id == run_id and message_to_dict(one)["run_id"] == run_id
        assert client.get_stats().score_rows_written >= 2
        with pytest.raises(RewardCallError) as e:
            client.get_score(10**9)
        assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_a_stream_of_groups_with_dict_samples(server):
    with RewardClient(server.address) as client:
        run_id = client.start_run("stream")
        stream = client.open_group_stream(run_id, 1, ["math"])
        stream.submit("g0", [{"id": "g0-0", "completion": R1, "reference": "4"},
                             {"id": "g0-1", "completion": "\\boxed{5}", "reference": "4"}])
        results = stream.collect()
    assert [s.reward for s in results["g0"]] == [1.0, 0.0] and client.scores_returned == 2


@pytest.mark.parametrize("step", ["007", 1.9, True, None])
def test_attack_a_step_or_score_id_that_is_not_an_int_is_named_not_coerced(server, step):
    # int("007") == 7 and int(1.9) == 1 would store the scores under another step, silently
    with RewardClient(server.address) as client:
        with pytest.raises(TypeError, match=r"step: an int"):
            client.score([make_sample("0", R1, reference="4")], ["math"], run_id="r", step=step)
        with pytest.raises(TypeError, match=r"step: an int"):
            client.log_step("r", step, {"loss": 0.5})
        with pytest.raises(TypeError, match=r"step: an int"):
            client.open_group_stream("r", step, ["math"])
        with pytest.raises(TypeError, match=r"score_id: an int"):
            client.get_score(step)
        with pytest.raises(ValueError, match=r"metrics\.loss"):
            client.log_step("r", 1, {"loss": "low"})
