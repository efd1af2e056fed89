"""Our GRPO trainer against TRL's `GRPOTrainer`: the same run, the same machine.

    python benchmarks/trainer_vs_trl.py [--steps 200] [--prompts 4] [--group-size 8]
        [--max-new-tokens 32] [--lr 1e-3] [--beta 0.0] [--loss-type dapo]
        [--sft-steps 150] [--threads 2] [--every 10] [--seed 0]

Both start from the same tiny local Llama (built here, no download), warm-started by the
same short supervised pass (so the reward is not stuck at 0), on the same reasoning-gym
prompts, with the same G, prompts per step, completion length, temperature 1, learning
rate, β, loss type and clip range (0.2 / 0.28). TRL scores with an in-process reward
function (the `math` verifier called directly); ours scores through a real reward server
on loopback (`reward_server.app.start_server`, one worker). Prints the median seconds per
step of both and their ratio (target ≤ 1.0), the mean reward per step every `--every`
steps for both, and the final mean reward (mean of the last 20% of steps ± one standard
error; target: ours not below TRL's by more than one standard error).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def build_start_model(root: Path, args) -> tuple[str, list, list]:
    """The tiny model, warm-started by a short SFT pass; and the train / held-out split."""
    import torch

    from trainer_client.config import DataConfig
    from trainer_client.data import format_prompt, train_heldout_split
    from trainer_client.sft import supervised_warmup
    from trainer_client.tiny_model import build_tiny_model
    from trainer_client.trainer import load_policy

    data = DataConfig()
    train_set, heldout = train_heldout_split(data.task, 2000, 0, args.seed, **data.task_config)
    base = build_tiny_model(root / "tiny")
    model, tok = load_policy(str(base), torch.device("cpu"))
    if args.sft_steps:
        supervised_warmup(model, tok, train_set, steps=args.sft_steps, batch_size=32,
                          seed=args.seed, prompt_fn=lambda p: format_prompt(p, tok, "plain"),
                          progress=False)
    out = root / "start"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out), train_set, heldout


def run_ours(model_dir: str, train_set, args, root: Path) -> tuple[list[float], list[float]]:
    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from trainer_client.config import load_config
    from trainer_client.trainer import train

    srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=1,
                                    database_url=f"sqlite:///{root}/rewards.db"))
    try:
        cfg = load_config(overrides=dict(
            model=model_dir, output_dir=str(root / "ours"), steps=args.steps, device="cpu",
            seed=args.seed, num_threads=args.threads, eval_every=0,
            sampling=dict(max_new_tokens=args.max_new_tokens, temperature=1.0),
            grpo=dict(prompts_per_step=args.prompts, group_size=args.group_size,
                      learning_rate=args.lr, beta=args.beta, loss_type=args.loss_type,
                      clip_eps_low=0.2, clip_eps_high=0.28, scale="group",
                      micro_batch_size=args.prompts * args.group_size,
                      generation_chunk_prompts=args.prompts, adam_beta2=0.999),
            reward=dict(address=f"127.0.0.1:{srv.port}", run_name="vs-trl",
                        components=[dict(name="math", weight=1.0)]),
            data=dict(prompt_template="plain"),
        ))
        res = train(cfg, problems=(train_set, []), progress=False, log=lambda m: None)
    finally:
        srv.stop()
    return ([h["step_time_s"] for h in res.history], [h["reward_mean"] for h in res.history])


def run_trl(model_dir: str, train_set, args, root: Path) -> tuple[list[float], list[float]]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import verifiers

    def math_reward(completions, answer, **_):
        out = []
        for c, a in zip(completions, answer):
            r = verifiers.verify("math", c, a)
            out.append(float(r.reward) if r.reward is not None else None)
        return out

    ds = Dataset.from_list([{"prompt": p.question + "\n", "answer": p.answer} for p in train_set])
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    n = args.prompts * args.group_size
    cfg = GRPOConfig(
        output_dir=str(root / "trl"), max_steps=args.steps, per_device_train_batch_size=n,
        num_generations=args.group_size, max_completion_length=args.max_new_tokens,
        learning_rate=args.lr, beta=args.beta, loss_type=args.loss_type, epsilon=0.2,
        epsilon_high=0.28, temperature=1.0, lr_scheduler_type="constant", warmup_steps=0,
        gradient_accumulation_steps=1, logging_steps=1, save_strategy="no", report_to=[],
        use_cpu=True, seed=args.seed, bf16=False, disable_tqdm=True, adam_beta2=0.999,
        dataloader_num_workers=0, scale_rewards="group",
    )
    times: list[float] = []
    rewards: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.monotonic()

        def on_step_end(self, *a, **k):
            times.append(time.monotonic() - self.t)

        def on_log(self, _args, _state, _control, logs=None, **k):
            if logs and "reward" in logs:
                rewards.append(float(logs["reward"]))

    trainer = GRPOTrainer(model=model, reward_funcs=math_reward, args=cfg, train_dataset=ds,
                          processing_class=tok, callbacks=[Timer()])
    trainer.train()
    return times, rewards


def tail_stats(xs: list[float]) -> tuple[float, float]:
    tail = [x for x in xs[-max(1, len(xs) // 5):] if not math.isnan(x)]
    m = statistics.fmean(tail)
    se = statistics.stdev(tail) / math.sqrt(len(tail)) if len(tail) > 1 else 0.0
    return m, se


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta", type=float, default=0.0)
    ap.add_argument("--loss-type", default="dapo")
    ap.add_argument("--sft-steps", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        torch.manual_seed(args.seed)
        model_dir, train_set, _ = build_start_model(root, args)
        torch.manual_seed(args.seed)
        trl_t, trl_r = run_trl(model_dir, train_set, args, root)
        torch.manual_seed(args.seed)
        our_t, our_r = run_ours(model_dir, train_set, args, root)

    n = args.prompts * args.group_size
    print(f"{args.steps} steps, {args.prompts} prompts x G={args.group_size} = {n} completions "
          f"x {args.max_new_tokens} tokens, lr {args.lr}, beta {args.beta}, loss {args.loss_type}, "
          f"{args.threads} threads")
    # the first steps warm caches up in both; skip them in the median
    skip = min(2, len(our_t) - 1)
    t_trl, t_ours = statistics.median(trl_t[skip:]), statistics.median(our_t[skip:])
    print(f"median s/step: TRL {t_trl:.3f}  ours {t_ours:.3f}  ratio ours/TRL {t_ours / t_trl:.2f}"
          f" (target <= 1.0)")
    print("mean reward per step (step: TRL / ours):")
    for i in range(0, args.steps, args.every):
        a = trl_r[i] if i < len(trl_r) else float("nan")
        b = our_r[i] if i < len(our_r) else float("nan")
        print(f"  {i + 1:4d}: {a:.3f} / {b:.3f}")
    (m_trl, se_trl), (m_ours, se_ours) = tail_stats(trl_r), tail_stats(our_r)
    print(f"final mean reward (last 20% of steps): TRL {m_trl:.3f} ± {se_trl:.3f}  "
          f"ours {m_ours:.3f} ± {se_ours:.3f}  "
          f"{'OK' if m_ours >= m_trl - max(se_trl, se_ours) else 'BELOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
