"""Train with TRL's GRPOTrainer, scoring every generation step with the shared reward service.

Start a service (another terminal):

    reward-server --port 50051 --database-url sqlite:///rewards.db

then, offline (a tiny random model built locally and a small arithmetic data set; this
only shows the wiring, the model learns nothing useful):

    python examples/trl_grpo_with_reward_service.py --server 127.0.0.1:50051 --max-steps 2

or with a real model and a stored spec (e.g. one put with PutSpec / the server's TOML):

    python examples/trl_grpo_with_reward_service.py --model Qwen/Qwen2.5-0.5B-Instruct \\
        --spec math-r1 --run-name qwen-arith --max-steps 50 --max-completion-length 256

Then read what was stored:  rewardctl history --run <RUN_ID printed at the end>

Options default to the environment: $REWARD_SERVER_ADDRESS, $REWARD_SPEC, $REWARD_API_KEY,
$REWARD_TLS_CA. Requires `trl` (pip install trl; this example was written against 1.16).

What it shows:
- `RewardServiceFunc` as a TRL reward function: one Score request per generation step;
  the reference comes from the data set's "answer" column.
- Non-OK results (a verifier that abstained, timed out or failed) come back as None, which
  TRL ignores for that reward function; they are never scored 0. TRL logs
  `rewards/<name>/ok_frac` beside `rewards/<name>/mean`.
- `run_name`: the scores are stored under a run and the trainer's step; the callback logs
  TRL's metrics with LogStep and finishes the run at the end. (Without the callback the
  run is still finished, when `reward` is closed or collected or the process ends, but
  TRL's metrics are not logged to it.)
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

try:
    from rlvr_integrations.trl import RewardServiceFunc
except ImportError:  # running from a checkout that is not installed: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from rlvr_integrations.trl import RewardServiceFunc

# Math is the reward; the R1 format check is logged only (weight 0) to watch it.
DEFAULT_SPEC = ('[{"name": "math", "weight": 1.0},'
                ' {"name": "format", "weight": 0.0, "params": {"kind": "r1", "strict": false}}]')
SYSTEM = "Think in <think></think>, then give the final answer in <answer></answer>."


def arithmetic_dataset(n: int, conversational: bool, seed: int = 0):
    """Questions with their answers in an "answer" column (no download)."""
    from datasets import Dataset

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        question = f"What is {a} + {b}?"
        prompt = ([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
                  if conversational else f"{SYSTEM}\n{question}\n")
        rows.append({"prompt": prompt, "answer": str(a + b)})
    return Dataset.from_list(rows)


def tiny_local_model(out_dir: str) -> str:
    """A random ~50k-parameter Llama with a character tokenizer, saved to `out_dir`."""
    import string

    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    chars = list(string.digits + string.ascii_letters + " +-*/=?.,:()<>\n")
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(specials + chars)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.environ.get("REWARD_SERVER_ADDRESS", "127.0.0.1:50051"))
    ap.add_argument("--spec", default=os.environ.get("REWARD_SPEC", DEFAULT_SPEC),
                    help="stored spec name (math-r1, math-r1@2) or JSON components")
    ap.add_argument("--api-key", default=None, help="team key (default $REWARD_API_KEY)")
    ap.add_argument("--tls-ca", default=None, help="PEM CA for TLS (default $REWARD_TLS_CA)")
    ap.add_argument("--model", default="tiny", help="a model path or hub id; 'tiny' builds a random local one")
    ap.add_argument("--run-name", default="trl-grpo-example")
    ap.add_argument("--max-steps", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4, help="per-device train batch size")
    ap.add_argument("--num-generations", type=int, default=2)
    ap.add_argument("--max-completion-length", type=int, default=16)
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--cpu", action="store_true", help="train on CPU (default for --model tiny)")
    args = ap.parse_args(argv)

    from trl import GRPOConfig, GRPOTrainer

    tmp = tempfile.TemporaryDirectory()
    model = tiny_local_model(tmp.name) if args.model == "tiny" else args.model
    # A model with a chat template gets conversational prompts; the tiny one has none.
    dataset = arithmetic_dataset(64, conversational=args.model != "tiny")

    reward = RewardServiceFunc(args.server, spec=args.spec, api_key=args.api_key, tls_ca=args.tls_ca,
                               reference_column="answer", run_name=args.run_name, name="reward_service",
                               run_config={"model": args.model, "max_steps": args.max_steps})
    config = GRPOConfig(
        output_dir=args.output_dir or os.path.join(tmp.name, "out"), max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, num_generations=args.num_generations,
        max_completion_length=args.max_completion_length, logging_steps=1, report_to=[],
        save_strategy="no", use_cpu=args.cpu or args.model == "tiny", bf16=False)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          callbacks=[reward.callback()])
    try:
        trainer.train()
    except BaseException:
        try:
            reward.finish_run("failed")
        except Exception as e:  # the service may be what failed; keep the original error
            print(f"could not mark run {reward.run_id} failed: {e}", file=sys.stderr)
        raise
    finally:
        tmp.cleanup()
    print(f"\nrun {reward.run_id}: {reward.calls} Score requests, statuses {dict(reward.status_counts)}")
    print(f"stored scores:  rewardctl history --run {reward.run_id} --server {args.server}")


if __name__ == "__main__":
    main()
