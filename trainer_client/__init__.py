"""GRPO training client of the reward service.

Pure maths: `advantages.group_advantages`, `losses` (clipped surrogate, k3 KL, the
grpo/bnpo/dr_grpo/dapo aggregations). Policy I/O: `rollout` (HF generate + log-probs).
Service: `rewards_client` (the contract's one client library; `reward_client` re-exports it). Loop: `trainer.train`. Demo:
`demo.run_demo` (`grpo-train demo`). Never imports reward_server.
"""
