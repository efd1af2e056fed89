"""Sampling completions with HF `generate`, and per-token log-probabilities.

Layout used everywhere (N = B*G sequences):
    prompt_ids, prompt_mask         : (N, P) left-padded prompts
    completion_ids, completion_mask : (N, L) right-padded completions; the mask is 1 up to
                                      and including the first EOS, 0 after it
The policy, π_old and the reference model all see exactly this layout, with position ids
cumsum(attention_mask) − 1, so their log-probs line up token for token.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import GenerationConfig


@dataclass(frozen=True)
class SamplingParams:
    """HF `generate` knobs. temperature 0 means greedy decoding."""

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0                  # 0 = off
    top_p: float = 1.0              # 1.0 = off
    repetition_penalty: float = 1.0


@dataclass
class Rollout:
    """Sampled completions of a batch of prompts (see the module docstring for shapes)."""

    prompt_ids: torch.Tensor        # (N, P)
    prompt_mask: torch.Tensor       # (N, P)
    completion_ids: torch.Tensor    # (N, L)
    completion_mask: torch.Tensor   # (N, L)
    texts: list[str]                # N decoded completions, special tokens removed
    truncated: torch.Tensor         # (N,) bool: hit max_new_tokens without EOS
    # (N, L) float: the sampler's own log-prob of each sampled token (vLLM returns it; HF
    # generate does not: None). 0 at masked positions. Not used by the loss: π_old is
    # recomputed by the trainer, so both back-ends train the same way.
    sampler_logprobs: torch.Tensor | None = None


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """(N, L) mask: 1 up to and including the first EOS of each row, 0 after it."""
    is_eos = completion_ids == eos_token_id                              # (N, L)
    # Number of EOS strictly before each position; a position is kept while that is 0.
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (eos_before == 0).long()


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], num_return_sequences: int,
             params: SamplingParams, *, seed: int | None = None,
             synced: bool = False) -> Rollout:
    """Sample `num_return_sequences` completions per prompt (prompt-major: N = len(prompts)*G).

    Deterministic given `seed` (a CPU/CUDA generator state is seeded before sampling).
    synced: HF's `synced_gpus`: keep running forward passes until every rank is done
    (needed under FSDP, where each forward is a collective all-gather).
    """
    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    enc = {k: v.to(device) for k, v in enc.items()}
    if seed is not None:
        torch.manual_seed(seed)
    # A fresh GenerationConfig: exactly the user's knobs, never the checkpoint's own
    # sampling defaults (an instruct model may ship top_k=20, repetition_penalty=1.05...).
    greedy = params.temperature <= 0.0
    sampling = {} if greedy else dict(temperature=params.temperature, top_k=params.top_k,
                                      top_p=params.top_p)             # top_k 0 / top_p 1: off
    gen_config = GenerationConfig(max_new_tokens=params.max_new_tokens, do_sample=not greedy,
                                  num_return_sequences=num_return_sequences,
                                  repetition_penalty=params.repetition_penalty,
                                  pad_token_id=tokenizer.pad_token_id,
                                  eos_token_id=tokenizer.eos_token_id, **sampling)
    out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                         generation_config=gen_config,
                         **({"synced_gpus": True} if synced else {}))    # (N, P + L)
    P = enc["input_ids"].shape[1]
    completion_ids = out[:, P:]                                           # (N, L)
    if completion_ids.shape[1] == 0:  # nothing generated at all: keep one pad column
        completion_ids = torch.full((out.shape[0], 1), tokenizer.pad_token_id, device=device)
    completion_mask = completion_mask_from_ids(completion_ids, tokenizer.eos_token_id)
    has_eos = ((completion_ids == tokenizer.eos_token_id) & completion_mask.bool()).any(dim=1)
    texts = tokenizer.batch_decode(completion_ids * completion_mask
                                   + tokenizer.pad_token_id * (1 - completion_mask),
                                   skip_special_tokens=True)
    prompt_ids = enc["input_ids"].repeat_interleave(num_return_sequences, dim=0)   # (N, P)
    prompt_mask = enc["attention_mask"].repeat_interleave(num_return_sequences, dim=0)
    return Rollout(prompt_ids, prompt_mask, completion_ids, completion_mask, texts, ~has_eos)


def token_logprobs(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   completion_ids: torch.Tensor, completion_mask: torch.Tensor, *,
                   temperature: float = 1.0, with_entropy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs of the completion tokens under `model`, and optionally the entropy.

    prompt_*: (N, P), completion_*: (N, L). Logits are divided by `temperature` (the
    sampling distribution). Returns logp (N, L) and entropy (N, L) or None; values at
    masked positions are meaningless (mask them).
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)           # (N, P+L)
    attn = torch.cat([prompt_mask, completion_mask], dim=1)              # (N, P+L)
    position_ids = (attn.cumsum(dim=1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attn,
                   position_ids=position_ids).logits                     # (N, P+L, V)
    P, L = prompt_ids.shape[1], completion_ids.shape[1]
    logits = logits[:, P - 1:P - 1 + L, :].float()                       # (N, L, V) predicts completion
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    logp_all = F.log_softmax(logits, dim=-1)                             # (N, L, V)
    logp = logp_all.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)  # (N, L)
    entropy = None
    if with_entropy:
        entropy = -(logp_all.exp() * logp_all).sum(dim=-1)               # (N, L)
    return logp, entropy


def _pad_to(x: torch.Tensor, width: int, value: int, left: bool) -> torch.Tensor:
    pad = width - x.shape[1]
    if pad == 0:
        return x
    fill = torch.full((x.shape[0], pad), value, dtype=x.dtype, device=x.device)
    return torch.cat([fill, x] if left else [x, fill], dim=1)


def cat_rollouts(parts: list[Rollout], pad_token_id: int) -> Rollout:
    """Concatenate rollouts along N: prompts re-left-padded, completions right-padded."""
    P = max(r.prompt_ids.shape[1] for r in parts)
    L = max(r.completion_ids.shape[1] for r in parts)
    return Rollout(
        prompt_ids=torch.cat([_pad_to(r.prompt_ids, P, pad_token_id, True) for r in parts]),
        prompt_mask=torch.cat([_pad_to(r.prompt_mask, P, 0, True) for r in parts]),
        completion_ids=torch.cat([_pad_to(r.completion_ids, L, pad_token_id, False)
                                  for r in parts]),
        completion_mask=torch.cat([_pad_to(r.completion_mask, L, 0, False) for r in parts]),
        texts=[t for r in parts for t in r.texts],
        truncated=torch.cat([r.truncated for r in parts]),
        sampler_logprobs=(torch.cat([_pad_to(r.sampler_logprobs, L, 0, False) for r in parts])
                          if all(r.sampler_logprobs is not None for r in parts) else None),
    )


def select_rows(r: Rollout, rows: torch.Tensor) -> Rollout:
    """The rollout restricted to sequence indices `rows` (k,), in that order."""
    idx = rows.to(r.completion_ids.device)
    return Rollout(r.prompt_ids[idx], r.prompt_mask[idx], r.completion_ids[idx],
                   r.completion_mask[idx], [r.texts[i] for i in rows.tolist()],
                   r.truncated[idx],
                   r.sampler_logprobs[idx] if r.sampler_logprobs is not None else None)
