"""Cheap inline checks go in batches (issue #17.4/17.7): one call, one event-loop wake-up and
one parameter validation per Scorer.INLINE_BATCH (16) verifications rather than one each, with the same verdicts;
a large batch's calls run in the worker processes, off the server's GIL and event loop."""
from __future__ import annotations

import asyncio
import gc
import os

import pytest

from reward_server import convert
from reward_server.app import settle_heap
from reward_server.scoring import Scorer
from rewards.v1 import rewards_pb2 as pb
from verifiers.pool import run_inline

# Issue #17's "validation" request: 1,024 samples, 50 different 8-component format specs.
SPECS = [pb.RewardSpec(components=[pb.VerifierRef(name="format", weight=float(w))] * 8) for w in range(50)]
COSTLY = [pb.Sample(completion=f"<think>{i}</think><answer>{i}</answer>" if i % 3 else f"x{i}",
                    spec=SPECS[i % 50]) for i in range(1024)]
MATH_AND_FORMAT = pb.RewardSpec(components=[pb.VerifierRef(name="format"), pb.VerifierRef(name="math")])


@pytest.fixture
def scorer():
    s = Scorer(workers=1, memory_limit_bytes=None)
    yield s
    s.close()


def test_a_large_batch_of_inline_checks_runs_in_the_workers_in_calls_of_inline_batch(scorer):
    samples = convert.samples_from_pb(COSTLY, pb.RewardSpec(), "request", None)
    outcomes = asyncio.run(scorer.score_many(samples, team="a"))
    # 8,192 verifications in 512 worker calls (not 8,192 thread calls), and the one distinct parameter set
    # (format's defaults; the weights differ) validated once per call.
    assert scorer.inline_batches == 8192 // Scorer.INLINE_BATCH == 512
    assert scorer.params_parsed == 512
    for s, o in zip(samples, outcomes):
        assert o.sample is s and len(o.components) == 8
        alone = run_inline("format", s.components[0].version, s.completion, None, s.components[0].params_json)
        for c, co in zip(s.components, o.components):
            assert co.component is c
            assert (co.result.status, co.result.reward, co.result.reason) == (alone.status, alone.reward,
                                                                               alone.reason)
            assert co.worker == o.components[0].worker != f"pool:{os.getpid()}" and not co.cached
            assert co.worker.startswith("pool:")
        assert o.reward == pytest.approx(sum(c.weight for c in s.components) * alone.reward)


def test_samples_with_other_components_are_scored_alone_and_in_order(scorer):
    raw = [pb.Sample(completion="<think>a</think><answer>1</answer>"),
           pb.Sample(completion="<think>b</think><answer>2</answer>"),
           pb.Sample(completion="<think>c</think><answer>\\boxed{3}</answer>", spec=MATH_AND_FORMAT),
           pb.Sample(completion="no tags")]
    raw[2].reference.string_value = "3"
    samples = convert.samples_from_pb(raw, pb.RewardSpec(components=[pb.VerifierRef(name="format")]), "request",
                                      None)
    assert scorer.units(samples) == [[0, 1], [2], [3]]  # a small call: its checks stay on the inline threads
    outcomes = asyncio.run(scorer.score_many(samples, team="a"))
    assert [o.sample.index for o in outcomes] == [0, 1, 2, 3]
    assert [o.reward for o in outcomes] == [1.0, 1.0, 2.0, 0.0]
    fmt, math = outcomes[2].components
    assert fmt.worker.startswith("inline:") and math.worker.startswith("pool:")
    # Three thread calls: the two format-only samples together, the mixed sample's format, the last.
    assert scorer.inline_batches == 3


def test_each_distinct_parameter_set_is_validated_once_per_call(scorer):
    spec = pb.RewardSpec(components=[pb.VerifierRef(name="format", params={"kind": "regex", "pattern": "a+"}),
                                     pb.VerifierRef(name="format")])
    samples = convert.samples_from_pb([pb.Sample(completion="aaa")], spec, "request", None)
    (o,) = asyncio.run(scorer.score_many(samples, team="a"))
    assert [co.result.reward for co in o.components] == [1.0, 0.0]
    assert scorer.params_parsed == 2  # two distinct parameter sets in the one call


def test_settle_heap_moves_the_start_up_objects_out_of_the_collectors_reach():
    before = len(gc.get_objects())
    try:
        settle_heap()
        # A full collection now walks only what was allocated since, not the start-up heap.
        assert gc.get_freeze_count() >= before // 2
        assert len(gc.get_objects()) < before // 10
    finally:
        gc.unfreeze()
