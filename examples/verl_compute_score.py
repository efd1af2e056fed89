"""verl custom reward function: score rollouts with the shared reward service.

Point verl at this file (verl >= 0.6 config layout; older versions use the top-level
`custom_reward_function.*` keys instead of `reward.custom_reward_function.*`):

    python -m verl.trainer.main_ppo ... \\
        reward.custom_reward_function.path=examples/verl_compute_score.py \\
        reward.custom_reward_function.name=compute_score \\
        +reward.custom_reward_function.reward_kwargs.address=reward.internal:50051 \\
        +reward.custom_reward_function.reward_kwargs.spec=math-r1 \\
        +reward.custom_reward_function.reward_kwargs.run_id=my-verl-run-001

(`reward_kwargs` travel with the config to every reward worker; settings not given there
are read from the environment of the process that scores: REWARD_SERVER_ADDRESS,
REWARD_SPEC, REWARD_API_KEY, REWARD_TLS_CA, REWARD_RUN_ID, ... — with Ray, set them where
the workers see them, e.g. `+ray_kwargs.ray_init.runtime_env.env_vars.REWARD_API_KEY=...`.)
With verl's batch reward manager (older verl: `reward_model.reward_manager=batch`) use
`name=compute_score_batch`: a whole batch is then one Score request.

`rlvr_integrations.verl` is also importable directly: `path=pkg://rlvr_integrations.verl`.

Policy for samples the service did not score (ABSTAIN / TIMEOUT / ERROR): verl needs a
float, so the result is {"score": 0.0, "status": "TIMEOUT", "valid": False, "reason": ...}
(`failure_score` / REWARD_FAILURE_SCORE changes the 0.0; `on_failure="raise"` /
REWARD_ON_FAILURE=raise stops training instead). Scored samples return the same keys with
"valid": True, so `valid` and `status` appear in verl's reward_extra_info. If the service
cannot be reached the call raises: an outage is never scored as 0.

Run this file to check the wiring against a running service:

    reward-server --port 50051 &
    python examples/verl_compute_score.py --server 127.0.0.1:50051
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

try:
    from rlvr_integrations.verl import compute_score, compute_score_batch
except ImportError:  # a checkout that is not installed: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from rlvr_integrations.verl import compute_score, compute_score_batch

__all__ = ["compute_score", "compute_score_batch"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="score a few samples as verl would")
    ap.add_argument("--server", default=os.environ.get("REWARD_SERVER_ADDRESS", "127.0.0.1:50051"))
    ap.add_argument("--spec", default=os.environ.get("REWARD_SPEC", '["math"]'),
                    help="stored spec name (math-r1) or JSON components")
    args = ap.parse_args(argv)
    settings = {"address": args.server, "spec": args.spec}

    # verl's per-sample call (naive reward manager / reward loop)
    one = compute_score(data_source="openai/gsm8k", solution_str="<think>6*7</think><answer>42</answer>",
                        ground_truth="42", extra_info={"index": 0, "question": "What is 6*7?"}, **settings)
    print("compute_score:", json.dumps(one))
    # verl's batch reward manager call
    many = compute_score_batch(data_sources=["openai/gsm8k"] * 3,
                               solution_strs=["\\boxed{12}", "The answer is 13.", "I am not sure."],
                               ground_truths=["12", "12", "12"], extra_infos=[{"index": i} for i in range(3)],
                               **settings)
    for out in many:
        print("compute_score_batch:", json.dumps(out))   # the last one: ABSTAIN, score 0.0, valid false


if __name__ == "__main__":
    main()
