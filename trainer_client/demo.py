"""`grpo-train demo`: the whole R1-style recipe on 2 CPU cores in a few minutes.

  1. start the reward service as a real subprocess on a free port (SQLite file),
     wait for health SERVING;
  2. build the tiny Llama + char tokenizer, save it, load it back through
     AutoModelForCausalLM / AutoTokenizer (or take `--model`, e.g. a hub id);
  3. supervised warm start on the training split, deliberately short so RL has room;
  4. GRPO against the service (math + format verifiers), held-out accuracy (greedy,
     scored by the service) measured before the first and after the last GRPO step;
  5. SIGTERM the service and print exactly one JSON line on stdout.

Problems: reasoning-gym `basic_arithmetic`, "Calculate 47 + 38." (two 2-digit terms, +).
The SFT target works the sum in columns inside <think> ("7+8+0=15,4+3+1=8") and puts the
result in <answer>; the warm start stops once greedy accuracy on 64 *training* prompts
reaches 30 %, so GRPO starts from a partial skill and has room. The held-out split (its
own seed, every training question removed) is never trained on. Held-out accuracy is
greedy decoding, math reward 1 from the service. Everything is seeded; on CPU a run is
deterministic given `--seed` (same torch build and thread count).
"""
from __future__ import annotations

import dataclasses
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoSettings:
    """The demo's knobs. None = the tuned default for the tiny model (TINY) or, with
    `model` set, for a pretrained hub model (HUB; not tuned here: no GPU, no network)."""

    seed: int = 0
    model: str | None = None            # None: build the tiny model
    output_dir: str = "grpo-demo"
    device: str = "auto"
    num_threads: int = 2
    sft_max_steps: int | None = None
    sft_target_accuracy: float = 0.3    # stop SFT once the train probe reaches this (>=1: never)
    sft_check_every: int = 20
    probe_size: int = 64
    sft_batch_size: int | None = None
    sft_learning_rate: float | None = None
    grpo_steps: int | None = None
    prompts_per_step: int | None = None
    group_size: int = 8
    learning_rate: float | None = None
    beta: float | None = None
    loss_type: str = "dapo"
    temperature: float = 1.0
    max_new_tokens: int | None = None
    train_size: int = 3000
    heldout_size: int = 200
    format_weight: float = 0.1          # reward = math + 0.1 * format (R1's format reward)
    server_workers: int = 1

    def resolved(self) -> "DemoSettings":
        base = TINY if self.model is None else HUB
        return dataclasses.replace(self, **{k: v for k, v in base.items()
                                            if getattr(self, k) is None})


# Tuned on 2 CPU cores: SFT stops near 30 % probe accuracy (~150 steps), then 100 GRPO
# steps of 32 prompts x 8 completions take held-out accuracy from ~45 % to ~85 %.
TINY: dict[str, Any] = dict(sft_max_steps=1500, sft_batch_size=64, sft_learning_rate=5e-3,
                            grpo_steps=100, prompts_per_step=32, learning_rate=3e-4,
                            beta=0.02, max_new_tokens=36)
# A pretrained instruct model (e.g. Qwen/Qwen2.5-0.5B-Instruct on a GPU): gentle rates.
HUB: dict[str, Any] = dict(sft_max_steps=200, sft_batch_size=16, sft_learning_rate=1e-5,
                           grpo_steps=100, prompts_per_step=16, learning_rate=1e-6,
                           beta=0.04, max_new_tokens=128)


def free_port() -> int:
    """Bind port 0, read the port the OS picked, release it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    """`python -m reward_server` as a subprocess; `stop()` sends SIGTERM and waits."""

    def __init__(self, database_url: str, workers: int, log_path: Path):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.database_url = database_url
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reward_server", "--host", "127.0.0.1", "--port", str(self.port),
             "--database-url", database_url, "--workers", str(workers), "--log-level", "WARNING"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        from rewards_client import RewardClient, RewardServiceUnavailable

        deadline = time.monotonic() + timeout_s
        with RewardClient(self.address) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"reward server exited with {self.proc.returncode}; "
                                       f"see {self._log.name}")
                try:
                    client.wait_ready(timeout_s=min(2.0, max(0.1, deadline - time.monotonic())))
                    return
                except RewardServiceUnavailable:
                    if time.monotonic() > deadline:
                        raise

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def run_demo(s: DemoSettings, *, progress: bool = True) -> dict[str, Any]:
    """Run the whole demo; returns the summary dict that is printed as JSON."""
    t_start = time.monotonic()
    s = s.resolved()
    out = Path(s.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "rewards.db"
    for suffix in ("", "-wal", "-shm", "-journal"):      # a fresh store for every demo run
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    database_url = f"sqlite:///{db_path}"
    service = ServiceProcess(database_url, s.server_workers, out / "reward-server.log")
    try:
        import torch
        from tqdm import tqdm
        from transformers.utils import logging as hf_logging

        from .config import DataConfig, load_config
        from .data import train_heldout_split
        from .evaluation import evaluate
        from rewards_client import RewardClient, make_spec
        from .sft import supervised_warmup
        from .tiny_model import build_tiny_model
        from .trainer import load_policy, prompt_fn_for, resolve_device, save_checkpoint, train

        hf_logging.disable_progress_bar()     # no "Loading weights" bars in the demo's log
        torch.set_num_threads(s.num_threads)
        torch.manual_seed(s.seed)
        log = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731 - stdout is for the JSON

        # 1. the problems: train split and a held-out split that never reaches training.
        data_cfg = DataConfig(train_size=s.train_size, heldout_size=s.heldout_size)
        train_set, heldout = train_heldout_split(data_cfg.task, s.train_size, s.heldout_size,
                                                 s.seed, **data_cfg.task_config)
        cfg_over: dict[str, Any] = dict(
            output_dir=str(out / "grpo"), device=s.device, seed=s.seed,
            steps=s.grpo_steps, num_threads=s.num_threads,
            sampling=dict(temperature=s.temperature, max_new_tokens=s.max_new_tokens),
            grpo=dict(prompts_per_step=s.prompts_per_step, group_size=s.group_size,
                      learning_rate=s.learning_rate, beta=s.beta, loss_type=s.loss_type,
                      generation_chunk_prompts=max(1, s.prompts_per_step // 2),
                      micro_batch_size=s.prompts_per_step * s.group_size),
            reward=dict(address=service.address, run_name=f"demo-seed{s.seed}", components=[
                dict(name="math", weight=1.0),
                dict(name="format", weight=s.format_weight,
                     params={"kind": "r1", "strict": True})]),
            data=data_cfg.model_dump())

        # 2. the policy: the tiny model built here (or --model), loaded the real way.
        device = resolve_device(s.device)
        if s.model is None:
            base = build_tiny_model(out / "tiny-base")
            log(f"built tiny model at {base}")
            model_id = str(base)
        else:
            model_id = s.model
        model, tokenizer = load_policy(model_id, device)
        cfg = load_config(overrides={**cfg_over, "model": model_id})  # validate early
        prompt_fn = prompt_fn_for(cfg, tokenizer)

        # 3. supervised warm start on the training split, deliberately partial: stop once
        #    greedy accuracy on a probe of *training* prompts (scored by the service)
        #    reaches sft_target_accuracy, so every seed starts GRPO from a similar skill.
        service.wait_ready()
        client = RewardClient(service.address)
        spec = make_spec(cfg.reward.components)
        probe_run = client.start_run(f"demo-seed{s.seed}-sft-probe", {"probe_size": s.probe_size})
        probe = train_set[:s.probe_size]

        def reached_target(step: int) -> bool:
            ev = evaluate(model, tokenizer, probe, client, spec, run_id=probe_run, step=step,
                          accuracy_component="math", prompt_fn=prompt_fn,
                          max_new_tokens=s.max_new_tokens, tag="probe")
            log(f"sft step {step}: train-probe accuracy {ev.accuracy:.3f}")
            return ev.accuracy >= s.sft_target_accuracy

        info = supervised_warmup(model, tokenizer, train_set, steps=s.sft_max_steps,
                                 batch_size=s.sft_batch_size, learning_rate=s.sft_learning_rate,
                                 seed=s.seed, prompt_fn=prompt_fn, progress=progress,
                                 stop_fn=reached_target if s.sft_target_accuracy < 1 else None,
                                 check_every=s.sft_check_every)
        client.finish_run(probe_run, "finished", {"sft_steps": float(info["sft_steps"])})
        client.close()
        log(f"sft: {info['sft_steps']} steps, loss {info['sft_loss']:.3f}, "
            f"{info['sft_seconds']:.0f} s")
        sft_dir = save_checkpoint(model, tokenizer, out / "sft")
        model = None                          # free it: train() loads the saved checkpoint
        if device.type == "cuda":
            torch.cuda.empty_cache()
        cfg = load_config(overrides={**cfg_over, "model": sft_dir})

        # 4. GRPO through the service (held-out evals at step 0 and after the last step).
        result = train(cfg, problems=(train_set, heldout), progress=progress, log=log)
        before = result.evals[0].accuracy
        after = result.evals[max(result.evals)].accuracy
    finally:
        service.stop()
    return {"heldout_accuracy_before": round(before, 4), "heldout_accuracy_after": round(after, 4),
            "steps": result.steps, "seconds": round(time.monotonic() - t_start, 1),
            "database": database_url}


def main(settings: DemoSettings, progress: bool = True) -> int:
    summary = run_demo(settings, progress=progress)
    print(json.dumps(summary), flush=True)
    return 0
