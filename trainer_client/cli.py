"""`grpo-train`: GRPO against the reward service.

    grpo-train train --model DIR_OR_HUB_ID --reward-address HOST:PORT [--config FILE] [...]
    grpo-train train ... --resume OUTPUT_DIR/checkpoint-N     (continue a run bit-for-bit)
    grpo-train eval --model DIR --reward-address HOST:PORT --num-samples 8 --k 1,4
    grpo-train train ... --train-file data.jsonl [--train-file more.parquet] [--eval-file F]
    grpo-train demo [--seed N] [--model HUB_ID] [--output-dir DIR]
    grpo-train tiny-model OUT [--arch llama|qwen2]  (the tests' and the demo's tiny model)

`train` flags override the config file, which overrides the defaults (trainer_client.config).
`demo` starts its own reward service and prints one JSON line on stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

# flag -> (config path, type). One table instead of a chain of ifs.
TRAIN_FLAGS: dict[str, tuple[str, type]] = {
    "--model": ("model", str),
    "--output-dir": ("output_dir", str),
    "--device": ("device", str),
    "--dtype": ("dtype", str),
    "--steps": ("steps", int),
    "--seed": ("seed", int),
    "--save-every": ("save_every", int),
    "--eval-every": ("eval_every", int),
    "--num-threads": ("num_threads", int),
    "--dist-strategy": ("dist_strategy", str),
    "--generation-backend": ("sampling.backend", str),
    "--temperature": ("sampling.temperature", float),
    "--top-k": ("sampling.top_k", int),
    "--top-p": ("sampling.top_p", float),
    "--repetition-penalty": ("sampling.repetition_penalty", float),
    "--max-new-tokens": ("sampling.max_new_tokens", int),
    "--group-size": ("grpo.group_size", int),
    "--prompts-per-step": ("grpo.prompts_per_step", int),
    "--scale": ("grpo.scale", str),
    "--eps-low": ("grpo.clip_eps_low", float),
    "--eps-high": ("grpo.clip_eps_high", float),
    "--beta": ("grpo.beta", float),
    "--loss-type": ("grpo.loss_type", str),
    "--num-iterations": ("grpo.num_iterations", int),
    "--lr": ("grpo.learning_rate", float),
    "--micro-batch-size": ("grpo.micro_batch_size", int),
    "--importance-sampling-level": ("grpo.importance_sampling_level", str),
    "--max-extra-draws": ("grpo.max_extra_draws", int),
    "--overlong-cache-len": ("grpo.overlong_cache_len", int),
    "--ref-refresh-every": ("grpo.ref_refresh_every", int),
    "--lora-r": ("grpo.lora_r", int),
    "--lora-alpha": ("grpo.lora_alpha", int),
    "--lora-dropout": ("grpo.lora_dropout", float),
    "--reward-address": ("reward.address", str),
    "--reward-spec": ("reward.spec", str),
    "--tls-ca": ("reward.tls_ca", str),
    "--outage-timeout-s": ("reward.outage_timeout_s", float),
    "--num-samples": ("eval.num_samples", int),
    "--eval-temperature": ("eval.temperature", float),
    "--run-name": ("reward.run_name", str),
    "--task": ("data.task", str),
    "--train-size": ("data.train_size", int),
    "--heldout-size": ("data.heldout_size", int),
    "--prompt-template": ("data.prompt_template", str),
    "--system-prompt": ("data.system_prompt", str),
    "--max-prompt-tokens": ("data.max_prompt_tokens", int),
    "--eval-fraction": ("data.eval_fraction", float),
    "--non-ok-policy": ("grpo.non_ok_policy", str),
}
# repeatable flags -> list-valued config paths
LIST_FLAGS: dict[str, str] = {"--train-file": "data.train_files", "--eval-file": "data.eval_files"}


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def _train(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .datafiles import DataError
    from rewards_client import RewardServiceError
    from .trainer import ModelPathError, train
    from .vllm_backend import VllmUnavailable

    overrides: dict[str, Any] = {}
    for flag, (path, _) in TRAIN_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            _set(overrides, path, value)
    for flag, path in LIST_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value:
            _set(overrides, path, value)
    if args.task_config:
        try:
            _set(overrides, "data.task_config", json.loads(args.task_config))
        except json.JSONDecodeError as e:
            print(f"grpo-train: --task-config is not JSON: {e}", file=sys.stderr)
            return 2
    if getattr(args, "k", None):
        _set(overrides, "eval.ks", [int(k) for k in args.k.split(",")])
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        print(f"grpo-train: {e}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        if args.command == "eval":
            from .passk import evaluate_model

            print(json.dumps(evaluate_model(cfg)), flush=True)
            return 0
        result = train(cfg, progress=not args.quiet, resume=args.resume)
    except RewardServiceError as e:
        print(f"grpo-train: {e}", file=sys.stderr)
        return 3
    except (VllmUnavailable, DataError, ModelPathError) as e:
        print(f"grpo-train: {e}", file=sys.stderr)
        return 2
    summary = {"run_id": result.run_id, "steps": result.steps, "final_dir": result.final_dir,
               **{f"heldout_accuracy_step{k}": v.accuracy for k, v in result.evals.items()}}
    if os.environ.get("RANK", "0") == "0":   # torchrun / accelerate: one summary line, rank 0's
        print(json.dumps(summary), flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoSettings, main as demo_main

    fields = {f.name for f in dataclasses.fields(DemoSettings)}
    chosen = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    return demo_main(DemoSettings(**chosen), progress=not args.quiet)


def _tiny_model(args: argparse.Namespace) -> int:
    from .tiny_model import QWEN2_TINY, TinyModelSpec, build_qwen2_model, build_tiny_model

    if args.arch == "llama":
        out = build_tiny_model(args.out, TinyModelSpec(seed=args.seed))
    else:
        out = build_qwen2_model(args.out, QWEN2_TINY if args.preset == "tiny" else args.preset,
                                seed=args.seed)
    print(json.dumps({"model": str(out), "arch": args.arch}), flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="grpo-train", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="GRPO on data files or reasoning-gym prompts against a "
                                      "running service")
    tr.add_argument("--config", help="JSON or TOML file with TrainConfig fields")
    for flag, (path, typ) in TRAIN_FLAGS.items():
        tr.add_argument(flag, type=typ, default=None, help=f"config {path}")
    for flag, path in LIST_FLAGS.items():
        tr.add_argument(flag, action="append", help=f"config {path} (repeat for several)")
    tr.add_argument("--task-config", help="JSON object of reasoning-gym dataset options")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.add_argument("--resume", help="checkpoint-N directory (or output dir: its latest) to "
                                     "continue from; use the same config")
    tr.add_argument("--k", help="comma-separated k of held-out pass@k, e.g. 1,4")
    tr.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="held-out pass@1 / pass@k of a model through the service")
    ev.add_argument("--config", help="JSON or TOML file with TrainConfig fields")
    for flag, (path, typ) in TRAIN_FLAGS.items():
        ev.add_argument(flag, type=typ, default=None, help=f"config {path}")
    for flag, path in LIST_FLAGS.items():
        ev.add_argument(flag, action="append", help=f"config {path} (repeat for several)")
    ev.add_argument("--task-config", help="JSON object of reasoning-gym dataset options")
    ev.add_argument("--k", help="comma-separated k of pass@k, e.g. 1,4 (each <= --num-samples)")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=_train)

    from .demo import HUB, TINY, DemoSettings
    d = DemoSettings()

    def dflt(name: str) -> str:
        value = getattr(d, name)
        return f"default {value}" if value is not None else \
            f"default {TINY[name]} (tiny model) / {HUB[name]} (--model)"

    de = sub.add_parser("demo", help="build a tiny model, SFT, GRPO against a local service")
    de.add_argument("--seed", type=int, help=dflt("seed"))
    de.add_argument("--model", help="HF causal LM (dir or hub id) instead of the tiny model")
    de.add_argument("--output-dir", help=dflt("output_dir"))
    de.add_argument("--device", help="auto | cpu | cuda")
    de.add_argument("--sft-max-steps", type=int, help=dflt("sft_max_steps") + "; 0 = no SFT")
    de.add_argument("--sft-target-accuracy", type=float,
                    help="stop SFT at this train-probe accuracy; " + dflt("sft_target_accuracy"))
    de.add_argument("--sft-learning-rate", type=float, help=dflt("sft_learning_rate"))
    de.add_argument("--grpo-steps", type=int, help=dflt("grpo_steps"))
    de.add_argument("--prompts-per-step", type=int, help=dflt("prompts_per_step"))
    de.add_argument("--group-size", type=int, help=dflt("group_size"))
    de.add_argument("--learning-rate", type=float, help="GRPO lr; " + dflt("learning_rate"))
    de.add_argument("--beta", type=float, help=dflt("beta"))
    de.add_argument("--loss-type", help=dflt("loss_type"))
    de.add_argument("--temperature", type=float, help=dflt("temperature"))
    de.add_argument("--max-new-tokens", type=int, help=dflt("max_new_tokens"))
    de.add_argument("--train-size", type=int, help=dflt("train_size"))
    de.add_argument("--heldout-size", type=int, help=dflt("heldout_size"))
    de.add_argument("--num-threads", type=int, help=dflt("num_threads"))
    de.add_argument("--quiet", action="store_true", help="no progress bars")
    de.set_defaults(func=_demo)

    tm = sub.add_parser("tiny-model", help="build a small randomly initialised model + tokenizer "
                                           "and save_pretrained it into OUT (no download)")
    tm.add_argument("out", metavar="OUT")
    tm.add_argument("--arch", choices=["llama", "qwen2"], default="llama",
                    help="llama: the demo's char-level model (default); qwen2: a byte-level BPE "
                         "tokenizer with a ChatML chat template, as Qwen2.5-Instruct has")
    tm.add_argument("--preset", choices=["tiny", "qwen2.5-0.5b"], default="tiny",
                    help="qwen2 size: tiny (~1 M parameters) or the Qwen2.5-0.5B shape")
    tm.add_argument("--seed", type=int, default=0)
    tm.set_defaults(func=_tiny_model)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
