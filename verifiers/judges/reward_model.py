"""`reward_model`: a sequence-classification reward model (Skywork-Reward, ArmoRM, any
`AutoModelForSequenceClassification`) scoring prompt + completion.

The text is the tokenizer's chat template over [user: prompt, assistant: completion]
when it has one (how these models were trained), else the (prompt, completion) pair
encoding. Tokenising happens in the calling thread; the micro-batcher right-pads the ids
and runs one forward pass per batch. The score is logit `logit_index`, then optionally
normalised (`normalize_reward`). An input longer than `max_length` tokens is never
silently cut. From 1.2.0 (issue #17), when the completion is what makes it too long, that
is the completion's own doing: OK with the scale's lowest reward (`overlong_reward`;
0 under sigmoid; a raw or affine logit has no floor, so there it must be set, else the
result stays an ERROR saying so). The prompt alone too long is the caller's: ERROR.

    shapes: input_ids, attention_mask (B, L); logits (B, num_labels); scores (B,)
"""
from __future__ import annotations

import math
import time
from typing import Any, Literal

from pydantic import Field

from ..core import Params, VerifierResult
from ..registry import register, register_compatible
from .errors import JudgeFailure, failure_result
from .models import Dtype, LoadedModel, LocalModelVerifier, ModelName, batched, load_model, model_path
from .templates import judge_inputs

Normalize = Literal["none", "affine", "sigmoid"]


def normalize_reward(logit: float, how: Normalize, scale: float = 1.0, shift: float = 0.0) -> float:
    """none: the logit; affine: scale·logit + shift; sigmoid: σ(scale·logit + shift)."""
    if how == "none":
        return logit
    z = scale * logit + shift
    if how == "affine":
        return z
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class RewardModelParamsV11(Params):
    """The parameters of reward_model@1.0.0 and 1.1.0 (kept, so their parameter hashes stay)."""

    model: ModelName = Field(..., min_length=1, description="a model the server configures by name, or the folder "
                                                            "(or cached Hub id) of a sequence-classification model "
                                                            "where the server allows paths")
    device: str = Field("auto", description="auto (CUDA when visible), cpu, cuda, cuda:1, …")
    dtype: Dtype = Field("auto", description="auto: bfloat16 on CUDA when supported, else float32")
    logit_index: int = Field(0, ge=0, description="which output logit is the reward")
    normalize: Normalize = Field("none", description="none | affine (scale·x + shift) | sigmoid (σ(scale·x + shift))")
    scale: float = Field(1.0, description="normalisation slope")
    shift: float = Field(0.0, description="normalisation offset")
    use_chat_template: bool = Field(True, description="use the tokenizer's chat template when it has one")
    max_length: int = Field(4096, ge=8, description="longer inputs are an ERROR, never cut")
    max_batch_size: int = Field(32, ge=1, le=4096, description="micro-batch size cap")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="longest the first request of a batch waits for "
                                                               "others")
    timeout_s: float = Field(120.0, gt=0, le=3600, description="longest one call waits for its batch")


class RewardModelParams(RewardModelParamsV11):
    overlong_reward: float | None = Field(None, description=(
        "reward of a completion that makes the input longer than max_length (OK, its own doing); default 0 "
        "with normalize='sigmoid', and required otherwise for such a completion not to be an ERROR"))


def encode_pair(loaded: LoadedModel, prompt: str, completion: str, use_chat_template: bool = True) -> list[int]:
    """Token ids of prompt + completion as the reward model reads them."""
    tok = loaded.tokenizer
    if use_chat_template and loaded.has_chat_template:
        text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": completion}], tokenize=False)
        return tok.encode(text, add_special_tokens=False)
    return tok(prompt, completion)["input_ids"]


def _score_fn(loaded: LoadedModel, logit_index: int):
    pad_id = loaded.tokenizer.pad_token_id

    def run(batch: list[list[int]]) -> list[float]:
        import torch

        length = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), length), pad_id, dtype=torch.long)     # (B, L), right padded
        attention_mask = torch.zeros((len(batch), length), dtype=torch.long)      # (B, L)
        for i, ids in enumerate(batch):
            input_ids[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[i, :len(ids)] = 1
        with loaded.lock, torch.inference_mode():
            logits = loaded.model(input_ids=input_ids.to(loaded.device),
                                  attention_mask=attention_mask.to(loaded.device)).logits  # (B, num_labels)
        return logits[:, logit_index].float().tolist()                                     # (B,)
    return run


@register
class RewardModelVerifier(LocalModelVerifier):
    name = "reward_model"
    # 1.1: `model` may name a model the server configures.
    # 1.2: a completion that makes the input too long is OK with `overlong_reward` (issue #17).
    version = "1.2.0"
    description = ("Sequence-classification reward model (Skywork-Reward, ArmoRM family) on prompt + completion, "
                   "chat-templated; reward = a logit, optionally affine or sigmoid normalised. Micro-batched.")
    Params = RewardModelParams
    uses_prompt = True
    requires_reference = False

    def verify(self, completion: str, reference: Any, params: RewardModelParamsV11,
               prompt: str | None = None) -> VerifierResult:
        who = f"reward_model {params.model}"
        t0 = time.monotonic()
        prompt = judge_inputs(reference, prompt).prompt
        if prompt is None:
            return VerifierResult.error(f"{who}: no prompt reached the reward model (give it as reference.prompt, "
                                        f"or send the sample's prompt)")
        try:
            loaded = load_model("seqcls", model_path(params.model), params.device, params.dtype)
            n_labels = getattr(loaded.model.config, "num_labels", 1)
            if params.logit_index >= n_labels:
                return VerifierResult.error(f"{who}: logit_index {params.logit_index} but the model has {n_labels} "
                                            f"output(s)")
            ids = encode_pair(loaded, prompt, completion, params.use_chat_template)
            if len(ids) > params.max_length:
                return self._overlong(loaded, prompt, params, f"{who}: input has {len(ids)} tokens, over max_length "
                                                             f"{params.max_length}")
            logit = batched(("seqcls-score", loaded.key, params.logit_index),
                            lambda: _score_fn(loaded, params.logit_index), ids, params, "reward-model")
        except JudgeFailure as e:
            return failure_result(e, who, latency_ms=round((time.monotonic() - t0) * 1000, 1))
        if not math.isfinite(logit):
            return VerifierResult.error(f"{who}: the model returned a non-finite logit ({logit})")
        reward = normalize_reward(logit, params.normalize, params.scale, params.shift)
        how = "" if params.normalize == "none" else f" → {params.normalize} {reward:.4g}"
        return VerifierResult.ok(reward, f"{who}: logit[{params.logit_index}] = {logit:.4g}{how}", logit=logit,
                                 tokens=len(ids), latency_ms=round((time.monotonic() - t0) * 1000, 1))


    @staticmethod
    def _overlong(loaded: LoadedModel, prompt: str, params: RewardModelParamsV11, why: str) -> VerifierResult:
        if not isinstance(params, RewardModelParams):  # 1.0.0/1.1.0
            return VerifierResult.error(why)
        if len(encode_pair(loaded, prompt, "", params.use_chat_template)) > params.max_length:
            return VerifierResult.error(f"{why}, the prompt alone too (the caller's spec, not the completion)")
        reward = params.overlong_reward
        if reward is None and params.normalize == "sigmoid":
            reward = 0.0
        if reward is None:
            return VerifierResult.error(f"{why}, because of the completion; set params.overlong_reward (the lowest "
                                        f"reward on this model's scale) to score such completions as wrong")
        return VerifierResult.ok(reward, f"{why}, because of the completion: a wrong answer (overlong_reward "
                                         f"{reward:g})")


@register
class RewardModelVerifierV11(RewardModelVerifier):
    """reward_model@1.1.0, frozen for pinned specs and replay: an over-long input is an ERROR."""

    version = "1.1.0"
    description = "Sequence-classification reward model (frozen; 1.2.0 scores over-long completions as wrong)."
    Params = RewardModelParamsV11


__all__ = ["RewardModelVerifier", "RewardModelVerifierV11", "RewardModelParams", "RewardModelParamsV11",
           "normalize_reward", "encode_pair"]


register_compatible(RewardModelVerifierV11, "1.0.0")  # 1.1.0 only added parameters: pinned specs keep working
