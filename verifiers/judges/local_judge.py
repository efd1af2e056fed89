"""`local_judge`: a generative judge on a transformers causal LM in this process (CPU or CUDA).

Same rubric templates and parsing as `judge`. score/verdict modes generate greedily
(`max_new_tokens`) and parse the text; yes_no mode runs one forward pass and reads the
next-token probabilities of the yes and no words (each word's single-token spellings:
"yes", " yes", "Yes", " Yes", "YES"), normalised as P(yes) / (P(yes) + P(no)).

Prompts are tokenised in the calling thread; requests from all threads are micro-batched
per (model, operation) and left padded, so the last position of every row is its own
last token.

    shapes: input_ids, attention_mask (B, L); logits (B, L, V); next-token probs (B, V)
"""
from __future__ import annotations

import inspect
import time
from typing import Any

from pydantic import Field

from ..core import VerifierResult
from ..registry import register, register_compatible
from .errors import JudgeFailure, ModelError, excerpt
from .models import Dtype, LoadedModel, LocalModelVerifier, ModelName, batched, load_model, model_path
from .parsing import yes_probability_from_probs
from .rubric import NO_VERDICT_DESCRIPTION, NoVerdict, RubricParams, check, failure_or_zero, read_text
from .templates import MissingPromptError


class LocalJudgeParamsV11(RubricParams):
    """The parameters of local_judge@1.0.0 and 1.1.0 (kept, so their parameter hashes stay)."""

    model: ModelName = Field(..., min_length=1, description="a model the server configures by name, or the folder "
                                                            "(or cached Hub id) of a causal LM where the server "
                                                            "allows paths")
    device: str = Field("auto", description="auto (CUDA when visible), cpu, cuda, cuda:1, …")
    dtype: Dtype = Field("auto", description="auto: bfloat16 on CUDA when supported, else float32")
    max_new_tokens: int = Field(256, ge=1, le=8192, description="score/verdict modes: answer length cap")
    max_input_tokens: int = Field(4096, ge=8, description="longer judge prompts are never cut: OK 0 when the "
                                                          "completion makes it too long (1.2.0; 1.1.0: ERROR), "
                                                          "ERROR when the rest of the prompt alone is")
    max_batch_size: int = Field(16, ge=1, le=1024, description="micro-batch size cap")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="longest the first request of a batch waits "
                                                               "for others")
    timeout_s: float = Field(120.0, gt=0, le=3600, description="longest one call waits for its batch")


class LocalJudgeParams(LocalJudgeParamsV11):
    no_verdict: NoVerdict = Field("error", description=NO_VERDICT_DESCRIPTION)


def render_chat(loaded: LoadedModel, messages: list[dict[str, str]]) -> str:
    """The judge prompt as the model expects it: its chat template with the generation
    prompt, or the plain messages joined when it has none."""
    if loaded.has_chat_template:
        return loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def encode_prompt(loaded: LoadedModel, text: str) -> list[int]:
    """Token ids of a rendered judge prompt (the chat template brings its own special tokens)."""
    return loaded.tokenizer.encode(text, add_special_tokens=not loaded.has_chat_template)


def left_pad(batch: list[list[int]], pad_id: int, device: str):
    """input_ids, attention_mask (B, L), left padded, so that column -1 is every row's last token."""
    import torch

    length = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), length), pad_id, dtype=torch.long)     # (B, L)
    attention_mask = torch.zeros((len(batch), length), dtype=torch.long)      # (B, L)
    for i, ids in enumerate(batch):
        input_ids[i, length - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, length - len(ids):] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}


def _generate_fn(loaded: LoadedModel, max_new_tokens: int):
    def run(batch: list[list[int]]) -> list[str]:
        import torch

        enc = left_pad(batch, loaded.tokenizer.pad_token_id, loaded.device)
        with loaded.lock, torch.inference_mode():
            out = loaded.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=loaded.tokenizer.pad_token_id)  # (B, L + new)
        return loaded.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return run


def word_token_ids(tokenizer: Any, words: list[str]) -> list[int]:
    """Ids of every single-token spelling of `words` ("yes", " yes", "Yes", " Yes", "YES")."""
    ids: set[int] = set()
    for w in words:
        for form in {w, " " + w, w.capitalize(), " " + w.capitalize(), w.upper()}:
            enc = tokenizer.encode(form, add_special_tokens=False)
            if len(enc) == 1 and enc[0] != tokenizer.unk_token_id:
                ids.add(enc[0])
    return sorted(ids)


def _next_token_fn(loaded: LoadedModel, yes_ids: list[int], no_ids: list[int]):
    accepts_positions = "position_ids" in inspect.signature(loaded.model.forward).parameters

    def run(batch: list[list[int]]) -> list[tuple[float, float]]:
        import torch

        enc = left_pad(batch, loaded.tokenizer.pad_token_id, loaded.device)
        if accepts_positions:  # positions count real tokens only, as in generate()
            enc["position_ids"] = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with loaded.lock, torch.inference_mode():
            logits = loaded.model(**enc).logits[:, -1, :]            # (B, V): left padding puts each row's end last
        probs = torch.softmax(logits.float(), dim=-1)                # (B, V)
        p_yes = probs[:, yes_ids].sum(-1).tolist()                   # (B,)
        p_no = probs[:, no_ids].sum(-1).tolist()
        return list(zip(p_yes, p_no))
    return run


@register
class LocalJudge(LocalModelVerifier):
    name = "local_judge"
    # 1.1: `model` may name a model the server configures.
    # 1.2: the completion is fenced by a nonce it cannot contain, only the judge's last line is its
    #      verdict, and a completion that makes the prompt too long is OK 0 (issue #17).
    version = "1.2.0"
    description = ("Generative judge on a local transformers causal LM (CPU/CUDA), micro-batched: a score, a "
                   "verdict word, or P(yes) from next-token probabilities. The completion is fenced; only the "
                   "judge's last line is its verdict.")
    Params = LocalJudgeParams
    uses_prompt = True
    requires_reference = False
    strict = True  # fence + last-line reading (rubric.py); False in the frozen 1.0.0/1.1.0

    def verify(self, completion: str, reference: Any, params: LocalJudgeParamsV11,
               prompt: str | None = None) -> VerifierResult:
        who = f"local_judge {params.model}"
        t0 = time.monotonic()
        try:
            messages = params.messages(completion, reference, prompt, strict=self.strict)
        except MissingPromptError as e:
            return VerifierResult.error(f"{who}: {e}")
        try:
            loaded = load_model("causal", model_path(params.model), params.device, params.dtype)
            ids = encode_prompt(loaded, render_chat(loaded, messages))
            if len(ids) > params.max_input_tokens:
                over = f"judge prompt has {len(ids)} tokens, over max_input_tokens {params.max_input_tokens}"
                if self.strict and len(encode_prompt(loaded, render_chat(loaded, params.messages(
                        "", reference, prompt)))) <= params.max_input_tokens:
                    # the completion's own length: a wrong answer, not the judge's failure
                    return VerifierResult.ok(0.0, f"{who}: not asked: the completion makes the {over}")
                return VerifierResult.error(f"{who}: {over}")
            if params.mode == "yes_no":
                yes_ids = word_token_ids(loaded.tokenizer, params.yes_words)
                no_ids = word_token_ids(loaded.tokenizer, params.no_words)
                if not yes_ids or not no_ids:
                    missing = params.yes_words if not yes_ids else params.no_words
                    raise ModelError(f"the tokenizer has no single token for any of {missing}")
                p_yes, p_no = batched(("next-token", loaded.key, tuple(yes_ids), tuple(no_ids)),
                                      lambda: _next_token_fn(loaded, yes_ids, no_ids), ids, params,
                                      "local-judge-yes-no")
                parsed = check(yes_probability_from_probs(p_yes, p_no, min_mass=params.min_yes_no_mass), "")
                answer = ""
            else:
                answer = batched(("generate", loaded.key, params.max_new_tokens),
                                 lambda: _generate_fn(loaded, params.max_new_tokens), ids, params,
                                 "local-judge-generate")
                parsed = read_text(params, answer, strict=self.strict)
        except JudgeFailure as e:
            return failure_or_zero(e, who, getattr(params, "no_verdict", "error"),
                                   latency_ms=round((time.monotonic() - t0) * 1000, 1))
        return VerifierResult.ok(parsed.value, f"{who}: {parsed.detail}", answer=excerpt(answer),
                                 latency_ms=round((time.monotonic() - t0) * 1000, 1))


@register
class LocalJudgeV11(LocalJudge):
    """local_judge@1.1.0, frozen for pinned specs and replay: the completion pasted unfenced,
    a score or verdict read anywhere in the answer, and an over-long prompt an ERROR
    (issue #17). Use 1.2.0."""

    version = "1.1.0"
    description = "Generative judge on a local transformers causal LM (frozen; 1.2.0 fences the completion)."
    Params = LocalJudgeParamsV11
    strict = False


__all__ = ["LocalJudge", "LocalJudgeV11", "LocalJudgeParams", "LocalJudgeParamsV11", "render_chat", "encode_prompt", "left_pad",
           "word_token_ids"]


register_compatible(LocalJudgeV11, "1.0.0")  # 1.1.0 only added parameters: pinned specs keep working
