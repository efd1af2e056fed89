"""GroupStream.collect(strict=False) (added for `rewardctl replay`): a group the service
refuses is left out and named in `refused`; the other groups' results still come back."""
from __future__ import annotations

import pytest

from rewards_client import RewardCallError, RewardClient, make_sample

GOOD = "<think>x</think><answer>4</answer>"


def test_a_refused_group_is_left_out_without_strict(server):
    with RewardClient(server.address, api_key="", tls_ca="") as client:
        run_id = client.start_run("refused")
        for strict in (False, True):
            stream = client.open_group_stream(run_id, 1 if strict else 0, ["format"])
            stream.submit("good", [make_sample("a", GOOD), make_sample("b", "no")])
            stream.submit("bad", [make_sample("c", GOOD, prompt="a\x00b")])    # the store cannot hold a NUL
            if strict:
                with pytest.raises(RewardCallError, match="bad: INVALID_ARGUMENT"):
                    stream.collect()
                continue
            got = stream.collect(strict=False)
            assert [(s.id, s.reward) for s in got["good"]] == [("a", 1.0), ("b", 0.0)]
            assert "bad" not in got
            code, message = stream.refused["bad"]
            assert code == "INVALID_ARGUMENT" and "prompt" in message
