"""Optional vLLM rollouts on CUDA: `--generation-backend vllm` (sampling.backend), off by default.

    pip install '.[vllm]'
    grpo-train train --model DIR --reward-address H:P --generation-backend vllm [--device cuda]

NOT TESTED IN THIS REPOSITORY: vLLM needs a CUDA GPU and is not installed where the
tests run. What is tested here is the pure glue (`rollout_from_vllm`,
`vllm_sampling_kwargs`, `vllm_problems`) and the error raised when vLLM or CUDA is
missing; the engine calls follow vLLM's documented `LLM` API and TRL's colocate mode.

How it works: each rank builds one `vllm.LLM` in its own process on its own GPU
(colocated with training, `gpu_memory_utilization` of it; under torchrun with
`distributed_executor_backend="external_launcher"`), from the policy's weights directory
(cfg.model). A chunk's prompts are tokenised by our tokenizer exactly as the HF path
does (`add_special_tokens=False`) and sent as token ids, G samples each (n=G) with the
same temperature/top-k/top-p/repetition penalty, a per-call seed and `logprobs=0` (the
sampled token's log-prob). The outputs become the same `Rollout` as HF generate's
(rollout.py: left-padded prompts, right-padded completions, mask 1 up to and including
EOS, truncated = stopped by the length limit), plus `sampler_logprobs` (N, L). The
trainer still recomputes π_old with the policy, so the loss is the same as with HF.
After every optimizer update the trainer pushes the full policy weights into the engine
(`load_weights` on the engine's model, then `reset_prefix_cache`), so the next step
samples from the updated policy. LoRA is refused at config time (the sync sends full
weights); under FSDP the sync gathers the full weights on every rank.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch

from .rollout import Rollout, SamplingParams

INSTALL_HINT = "pip install '.[vllm]'"


class VllmUnavailable(RuntimeError):
    """sampling.backend is vllm but vLLM cannot run here; the message says why and how."""


def vllm_problems(device: torch.device, *, vllm_importable: bool,
                  cuda_available: bool) -> list[str]:
    """What stops the vLLM back-end on `device` (empty list: nothing). Pure."""
    problems = []
    if not vllm_importable:
        problems.append(f"the vllm package is not installed ({INSTALL_HINT} on a CUDA host)")
    if device.type != "cuda":
        problems.append(f"vLLM generation needs a CUDA device, and the trainer's device is "
                        f"{device.type!r} (use --generation-backend hf, or --device cuda)")
    elif not cuda_available:
        problems.append("vLLM generation needs CUDA, and torch sees no CUDA GPU here")
    return problems


def require_vllm(device: torch.device) -> None:
    """Raise VllmUnavailable listing every problem, or return when vLLM can run on `device`."""
    import importlib.util

    problems = vllm_problems(device, vllm_importable=importlib.util.find_spec("vllm") is not None,
                             cuda_available=torch.cuda.is_available())
    if problems:
        raise VllmUnavailable("sampling.backend vllm cannot run: " + "; ".join(problems))


# --- the subset of vLLM's output objects this module reads --------------------------------
# vllm.RequestOutput / vllm.CompletionOutput / vllm.sequence.Logprob carry these fields
# under these names; the dataclasses below spell the subset out (and tests build them).

@dataclass(frozen=True)
class VllmLogprob:
    logprob: float


@dataclass(frozen=True)
class VllmCompletion:
    token_ids: Sequence[int]                          # the sampled tokens, EOS included
    logprobs: Sequence[dict[int, Any]] | None         # per token: {token id: .logprob}
    finish_reason: str | None                         # "stop" (EOS / stop) or "length"


@dataclass(frozen=True)
class VllmRequestOutput:
    prompt_token_ids: Sequence[int]
    outputs: Sequence[VllmCompletion]                 # n = G completions of this prompt


def vllm_sampling_kwargs(params: SamplingParams, n: int, seed: int | None) -> dict[str, Any]:
    """vllm.SamplingParams(**kwargs) equivalent to `params` for HF generate (pure).

    temperature 0 = greedy in both; our top_k 0 (off) is vLLM's -1; logprobs=0 returns
    the sampled token's log-prob only.
    """
    return dict(n=n, temperature=max(params.temperature, 0.0),
                top_k=params.top_k if params.top_k > 0 else -1, top_p=params.top_p,
                repetition_penalty=params.repetition_penalty,
                max_tokens=params.max_new_tokens, seed=seed, logprobs=0)


def _logprob_value(entry: Any) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def rollout_from_vllm(outputs: Sequence[Any], tokenizer, *,
                      device: torch.device | str = "cpu") -> Rollout:
    """vLLM request outputs (one per prompt, each with G completions) -> a Rollout (pure).

    Shapes as rollout.py: N = len(outputs)·G rows, prompt-major. prompt_ids/mask (N, P),
    prompts left-padded with the tokenizer's pad id; completion_ids/mask (N, L), right-
    padded, mask 1 on the completion's own tokens (vLLM stops at EOS, so: up to and
    including EOS); truncated (N,) = finish_reason "length"; sampler_logprobs (N, L)
    float32, 0 where masked, or None when vLLM returned no log-probs. texts are decoded
    by `tokenizer` exactly as the HF path does. Raises ValueError when the prompts do not
    all have the same number of completions.
    """
    groups = {len(o.outputs) for o in outputs}
    if len(groups) != 1:
        raise ValueError(f"every prompt needs the same number of completions, got {sorted(groups)}")
    pad = tokenizer.pad_token_id
    prompts = [list(o.prompt_token_ids) for o in outputs for _ in o.outputs]   # N
    comps = [c for o in outputs for c in o.outputs]                            # N
    P = max(len(p) for p in prompts)
    L = max(1, max(len(c.token_ids) for c in comps))   # keep one pad column if all empty
    N = len(comps)
    prompt_ids = torch.full((N, P), pad, dtype=torch.long)
    prompt_mask = torch.zeros((N, P), dtype=torch.long)
    completion_ids = torch.full((N, L), pad, dtype=torch.long)
    completion_mask = torch.zeros((N, L), dtype=torch.long)
    have_lp = all(c.logprobs is not None for c in comps)
    logprobs = torch.zeros((N, L), dtype=torch.float32) if have_lp else None
    for i, (p, c) in enumerate(zip(prompts, comps)):
        prompt_ids[i, P - len(p):] = torch.tensor(p, dtype=torch.long)
        prompt_mask[i, P - len(p):] = 1
        k = len(c.token_ids)
        if k:
            completion_ids[i, :k] = torch.tensor(list(c.token_ids), dtype=torch.long)
            completion_mask[i, :k] = 1
        if logprobs is not None:
            for t, (tok, entry) in enumerate(zip(c.token_ids, c.logprobs)):
                logprobs[i, t] = _logprob_value(entry[tok])
    truncated = torch.tensor([c.finish_reason == "length" for c in comps], dtype=torch.bool)
    texts = tokenizer.batch_decode(completion_ids * completion_mask + pad * (1 - completion_mask),
                                   skip_special_tokens=True)
    dev = torch.device(device)
    return Rollout(prompt_ids.to(dev), prompt_mask.to(dev), completion_ids.to(dev),
                   completion_mask.to(dev), texts, truncated.to(dev),
                   logprobs.to(dev) if logprobs is not None else None)


class VllmGenerator:
    """One colocated vllm.LLM on this rank's GPU (untested here: see the module docstring)."""

    def __init__(self, model_dir: str, *, device: torch.device, seed: int,
                 gpu_memory_utilization: float = 0.3, max_model_len: int | None = None):
        require_vllm(device)
        # the engine in this process, so that load_weights reaches its model directly
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        extra = {"distributed_executor_backend": "external_launcher"} \
            if int(os.environ.get("WORLD_SIZE", "1")) > 1 else {}
        self.device = device
        self.llm = LLM(model=model_dir, gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, seed=seed, dtype="auto", **extra)

    def generate(self, tokenizer, prompts: list[str], num_return_sequences: int,
                 params: SamplingParams, *, seed: int | None = None) -> Rollout:
        """G = num_return_sequences samples per prompt -> Rollout (N = len(prompts)·G)."""
        from vllm import SamplingParams as VSamplingParams

        ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        outs = self.llm.generate([{"prompt_token_ids": p} for p in ids],
                                 sampling_params=VSamplingParams(
                                     **vllm_sampling_kwargs(params, num_return_sequences, seed)),
                                 use_tqdm=False)
        return rollout_from_vllm(outs, tokenizer, device=self.device)

    @torch.no_grad()
    def load_weights(self, state: dict[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]
                     ) -> None:
        """Copy the policy's full weights (HF parameter names) into the engine's model."""
        items = sorted(state.items()) if isinstance(state, dict) else list(state)
        engine = self.llm.llm_engine
        model = engine.model_executor.driver_worker.model_runner.model
        model.load_weights(items)
        self.llm.reset_prefix_cache()
