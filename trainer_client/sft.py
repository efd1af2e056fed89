"""Supervised warm start (the "cold start" step of the R1 recipe).

Teaches the completion format and a first, deliberately partial, skill on the training
split: cross-entropy on the completion tokens only (prompt tokens are masked out).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable

import torch

from .data import Problem, batches, sft_completion


def supervised_warmup(model, tokenizer, problems: list[Problem], *, steps: int,
                      batch_size: int = 64, learning_rate: float = 5e-3,
                      warmup_steps: int = 50, seed: int = 0,
                      prompt_fn: Callable[[Problem], str],
                      stop_fn: Callable[[int], bool] | None = None, check_every: int = 25,
                      progress: bool = True) -> dict[str, Any]:
    """Up to `steps` AdamW steps of completion-only cross-entropy. Returns a small summary.

    `stop_fn(step)`, called every `check_every` steps, ends the warm start early when it
    returns True (the demo stops once a training-split probe reaches a target accuracy,
    so that every seed starts GRPO from a similar, deliberately partial, skill).
    """
    if steps <= 0:
        return {"sft_steps": 0, "sft_loss": float("nan"), "sft_seconds": 0.0}
    from tqdm import tqdm

    device = next(model.parameters()).device
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup_steps)))
    it = batches(problems, min(batch_size, len(problems)), seed)
    eos = tokenizer.eos_token or ""
    t0, loss_value = time.monotonic(), float("nan")
    bar = tqdm(range(steps), desc="sft", file=sys.stderr, disable=not progress, leave=False)
    done = 0
    for _ in bar:
        batch = next(it)
        prompts = [prompt_fn(p) for p in batch]
        targets = [sft_completion(p) + eos for p in batch]
        p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
        width = max(len(a) + len(b) for a, b in zip(p_ids, t_ids))
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)     # (B, T)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (a, b) in enumerate(zip(p_ids, t_ids)):                       # right padding
            input_ids[i, :len(a) + len(b)] = torch.tensor(a + b)
            labels[i, len(a):len(a) + len(b)] = torch.tensor(b)              # completion only
            attn[i, :len(a) + len(b)] = 1
        out = model(input_ids=input_ids.to(device), attention_mask=attn.to(device),
                    labels=labels.to(device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss_value = float(out.loss.detach())
        done += 1
        bar.set_postfix(loss=f"{loss_value:.3f}")
        if stop_fn is not None and done % check_every == 0:
            model.eval()
            stop = stop_fn(done)
            model.train()
            if stop:
                break
    bar.close()
    model.eval()
    return {"sft_steps": done, "sft_loss": loss_value, "sft_seconds": time.monotonic() - t0}
