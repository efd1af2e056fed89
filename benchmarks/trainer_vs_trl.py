"""Our GRPO trainer against TRL's `GRPOTrainer`: the same run, the same machine.

Two modes.

The race (default): learning curves on the tiny model, same seed, same data.

    python benchmarks/trainer_vs_trl.py [--steps 200] [--prompts 4] [--group-size 8]
        [--max-new-tokens 32] [--lr 1e-3] [--beta 0.0] [--loss-type dapo]
        [--sft-steps 150] [--threads 2] [--every 10] [--seed 0]

Speed on a real model shape (`--model-config`): a randomly initialised model of that
architecture (built locally, no download: trainer_client.tiny_model.build_qwen2_model),
the same batch, loss, β, clip range and sampling for both trainers, both scoring through
the same real reward server on loopback (TRL through rlvr_integrations.trl's
RewardServiceFunc, ours through its ScoreGroups stream). Each trainer runs in its own
process, so peak memory is its own. Prints median seconds per step, generation tokens/s
(completion tokens / time in generate) and peak memory (CUDA: max allocated; CPU: peak
RSS) of both, and the step-time ratio (target ≤ 1.0).

    # the GPU-sized run (issue #19): 16 prompts x 8 completions x 256 new tokens, micro-batches of 16
    python benchmarks/trainer_vs_trl.py --model-config qwen2.5-0.5b --random-init \
        --device cuda --steps 12 [--backend hf|vllm]
    # the scaled-down CPU run
    python benchmarks/trainer_vs_trl.py --model-config qwen2-tiny --random-init --device cpu \
        --prompts 4 --group-size 4 --max-new-tokens 32 --steps 6 --threads 2

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
import json
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


# --- speed mode ---------------------------------------------------------------------------
SPEED_PRESETS = {"qwen2.5-0.5b": "qwen2.5-0.5b", "qwen2-tiny": "tiny"}


def speed_prompts(tokenizer, n: int, seed: int):
    """`n` reasoning-gym sums as (problem, chat-formatted prompt) pairs, the same for both."""
    from trainer_client.config import DataConfig
    from trainer_client.data import format_prompt, train_heldout_split

    data = DataConfig()
    train, _ = train_heldout_split(data.task, n, 0, seed, **data.task_config)
    return [(p, format_prompt(p, tokenizer, "chat")) for p in train]


def peak_memory_bytes(device: str) -> int:
    import resource

    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024   # Linux: KiB


def child_ours(args) -> dict:
    from trainer_client.config import load_config
    from trainer_client.trainer import train

    n = args.prompts * args.group_size
    cuda = args.device.startswith("cuda")
    cfg = load_config(overrides=dict(
        model=args.model_dir, output_dir=str(Path(args.model_dir).parent / "ours"),
        steps=args.steps, device=args.device, seed=args.seed, num_threads=args.threads,
        eval_every=0, monitors=False,
        sampling=dict(max_new_tokens=args.max_new_tokens, temperature=1.0, backend=args.backend),
        grpo=dict(prompts_per_step=args.prompts, group_size=args.group_size, learning_rate=args.lr,
                  beta=args.beta, loss_type=args.loss_type, clip_eps_low=0.2, clip_eps_high=0.28,
                  scale="group", micro_batch_size=args.micro_batch or n,
                  generation_chunk_prompts=args.gen_chunk or args.prompts, adam_beta2=0.999,
                  bf16_autocast=cuda),
        reward=dict(address=args.address, run_name="speed-ours",
                    components=[dict(name="math", weight=1.0)]),
        data=dict(prompt_template="chat"),
    ))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model_dir)
    problems = [p for p, _ in speed_prompts(tok, 512, args.seed)]
    res = train(cfg, problems=(problems, []), progress=False, log=lambda m: None)
    steps = [h["step_time_s"] for h in res.history]
    tok_s = [h["completion_len_mean"] * n / h["generate_time_s"] for h in res.history
             if h["generate_time_s"] > 0]
    return {"step_s": steps, "gen_tokens_per_s": tok_s,
            "peak_memory_bytes": peak_memory_bytes(args.device)}


def child_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_integrations.trl import RewardServiceFunc

    tok = AutoTokenizer.from_pretrained(args.model_dir)
    pairs = speed_prompts(tok, 512, args.seed)
    ds = Dataset.from_list([{"prompt": text, "answer": p.answer} for p, text in pairs])
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    gen_s: list[float] = []
    generate = model.generate

    def timed_generate(*a, **k):            # generation time, for tokens/s
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.monotonic()
        out = generate(*a, **k)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        gen_s.append(time.monotonic() - t)
        return out

    model.generate = timed_generate
    n = args.prompts * args.group_size
    mb = args.micro_batch or n          # the same micro-batch as ours: gradient accumulation
    if n % mb or mb % args.group_size:
        raise SystemExit(f"--micro-batch {mb} must divide {n} and be a multiple of G")
    cuda = args.device.startswith("cuda")
    cfg = GRPOConfig(
        output_dir=str(Path(args.model_dir).parent / "trl"), max_steps=args.steps,
        per_device_train_batch_size=mb, gradient_accumulation_steps=n // mb,
        steps_per_generation=n // mb,   # one generation of all n completions per optimizer step
        num_generations=args.group_size,
        max_completion_length=args.max_new_tokens, learning_rate=args.lr, beta=args.beta,
        loss_type=args.loss_type, epsilon=0.2, epsilon_high=0.28, temperature=1.0,
        lr_scheduler_type="constant", warmup_steps=0,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=not cuda, seed=args.seed,
        bf16=cuda, disable_tqdm=True, adam_beta2=0.999, dataloader_num_workers=0,
        scale_rewards="group", use_vllm=args.backend == "vllm",
        **(dict(vllm_mode="colocate", vllm_gpu_memory_utilization=0.3)
           if args.backend == "vllm" else {}),
    )
    times: list[float] = []
    lengths: list[float] = []

    class Timer(TrainerCallback):
        """Seconds between optimizer steps (on_step_end to on_step_end: the whole step,
        generation and every accumulated micro-batch included)."""

        def on_train_begin(self, *a, **k):
            self.t = time.monotonic()

        def on_step_end(self, *a, **k):
            now = time.monotonic()
            times.append(now - self.t)
            self.t = now

        def on_log(self, _args, _state, _control, logs=None, **k):
            if logs and "completions/mean_length" in logs:
                lengths.append(float(logs["completions/mean_length"]))

    reward = RewardServiceFunc(args.address, spec=["math"], reference_column="answer")
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=ds,
                          processing_class=tok, callbacks=[Timer()])
    trainer.train()
    # one generate() per step (HF backend); with vLLM, TRL's own timing is not split out
    tok_s = ([ln * n / g for ln, g in zip(lengths, gen_s) if g > 0]
             if args.backend == "hf" and len(gen_s) == len(times) else [])
    return {"step_s": times, "gen_tokens_per_s": tok_s,
            "peak_memory_bytes": peak_memory_bytes(args.device)}


def speed_main(args) -> int:
    import subprocess

    from reward_server.app import start_server
    from reward_server.config import ServerConfig
    from trainer_client.tiny_model import build_qwen2_model

    if not args.random_init:
        raise SystemExit("--model-config needs --random-init (no weights are downloaded here)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model_dir = build_qwen2_model(root / "model", SPEED_PRESETS[args.model_config],
                                      seed=args.seed)
        srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=args.workers,
                                        database_url=f"sqlite:///{root}/rewards.db"))
        results = {}
        try:
            for who in ("trl", "ours"):
                cmd = [sys.executable, __file__, "--child", who, "--address",
                       f"127.0.0.1:{srv.port}", "--model-dir", str(model_dir), *sys.argv[1:]]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if proc.returncode != 0 or line is None:
                    print(f"{who} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
                          file=sys.stderr)
                    return 1
                results[who] = json.loads(line[len("RESULT "):])
        finally:
            srv.stop()
    import torch

    card = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
            and torch.cuda.is_available() else f"CPU, {args.threads} threads")
    n = args.prompts * args.group_size
    print(f"{args.model_config} (random init), {card}, backend {args.backend}: {args.steps} steps "
          f"of {args.prompts} prompts x G={args.group_size} = {n} completions x "
          f"{args.max_new_tokens} new tokens, loss {args.loss_type}, beta {args.beta}, lr {args.lr}; "
          f"scoring through a real reward server on loopback for both")
    skip = min(2, args.steps - 1)      # the first steps warm caches up in both

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    rows = {}
    for who, r in results.items():
        rows[who] = (med(r["step_s"][skip:]), med(r["gen_tokens_per_s"][skip:]),
                     r["peak_memory_bytes"] / 2**30)
    print(f"{'':6s} {'median s/step':>14s} {'gen tokens/s':>13s} {'peak memory GiB':>16s}")
    for who in ("trl", "ours"):
        t, g, m = rows[who]
        print(f"{who:6s} {t:14.3f} {g:13.1f} {m:16.2f}")
    ratio = rows["ours"][0] / rows["trl"][0]
    print(f"step-time ratio ours/TRL {ratio:.2f} (target <= 1.0: {'met' if ratio <= 1.0 else 'NOT met'})")
    return 0


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
    # speed mode
    ap.add_argument("--model-config", choices=sorted(SPEED_PRESETS),
                    help="speed mode on a randomly initialised model of this shape")
    ap.add_argument("--random-init", action="store_true",
                    help="build the --model-config model with random weights (required)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda (speed mode)")
    ap.add_argument("--backend", choices=["hf", "vllm"], default="hf",
                    help="rollouts: transformers generate, or colocated vLLM (CUDA)")
    ap.add_argument("--micro-batch", type=int, default=0, help="sequences per forward/"
                    "backward, both trainers (TRL: per-device batch with gradient accumulation "
                    "over one generation); 0 = the whole batch; qwen2.5-0.5b default 16")
    ap.add_argument("--gen-chunk", type=int, default=0, help="ours: prompts per generate() "
                    "call (0 = the whole batch at once, as TRL)")
    ap.add_argument("--workers", type=int, default=2, help="reward server workers")
    ap.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--address", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    if "--model-config" in " ".join(argv) and "--steps" not in argv:
        argv += ["--steps", "12"]
    if any(a.startswith("--model-config") for a in argv) and "qwen2.5-0.5b" in argv:
        for flag, value in (("--prompts", "16"), ("--group-size", "8"),
                            ("--max-new-tokens", "256"), ("--lr", "1e-6"), ("--micro-batch", "16")):
            if flag not in argv:
                argv += [flag, value]
    args = ap.parse_args(argv)
    if args.model_config or args.child:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.child:
            out = child_ours(args) if args.child == "ours" else child_trl(args)
            print("RESULT " + json.dumps(out), flush=True)
            return 0
        return speed_main(args)

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
