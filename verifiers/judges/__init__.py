"""Model-based verifiers: LLM judges, reward models and embedding similarity.

    judge                 generative judge on an OpenAI-compatible chat endpoint   thread_pool "judge"
    local_judge           generative judge on a local transformers causal LM       thread_pool "model"
    reward_model          sequence-classification reward model (Skywork, ArmoRM)   thread_pool "model"
    embedding_similarity  cosine of sentence embeddings to the reference           thread_pool "model"

    parsing.py      reading a judge's answer (score on a scale, verdict word, P(yes)); pure
    templates.py    rubric templates and where {prompt}, {reference}, {rubric} come from
    rubric.py       the rubric parameters and answer reading shared by both generative judges
    errors.py       why a judge gave no score, mapped to ERROR / TIMEOUT / ABSTAIN in one place
    resilience.py   concurrency limit, rate limit, backoff, Retry-After, circuit breaker
    batching.py     MicroBatcher: dynamic micro-batching for local models (pure threading)
    models.py       local models loaded once per process, keyed by path + device
    policy.py       what judges may reach: named endpoints and models, model roots, URL prefixes
    tiny.py         tiny Llama models built from nothing, for tests and benchmarks

Importing this package registers the four verifiers; torch and transformers are imported
only when a local model is first used. A judge's failure (timeout, HTTP error, refusal,
unparseable answer) is a non-OK result with the raw answer or error in the reason, never
a reward of 0.
"""
from . import embedding, local_judge, openai_judge, reward_model  # noqa: F401  (registration)
from .batching import MicroBatcher
__all__ = ["MicroBatcher"]
