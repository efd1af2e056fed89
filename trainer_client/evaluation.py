"""Held-out accuracy, scored by the reward service.

Accuracy = fraction of held-out prompts whose completion (greedy when
temperature is 0) gets reward 1 from the accuracy component (the `math` verifier by
default). A completion whose component is not OK (e.g. ABSTAIN: no answer found)
counts as wrong and is counted in `non_ok`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .data import Problem
from rewards_client import ComponentScore, RewardClient, SampleScore, make_sample
from .rollout import SamplingParams, generate


def accuracy_of(score: SampleScore, names: str | Sequence[str]) -> ComponentScore | None:
    """The component that says whether `score`'s sample is correct: the first of `names`
    present on it (a routed spec: math rows carry `math`, code rows `code`), else None."""
    for name in ([names] if isinstance(names, str) else names):
        comp = score.component(name)
        if comp is not None:
            return comp
    return None


def eval_metadata(p: Problem, tag: str, default_task: str) -> dict[str, Any]:
    """A held-out sample's metadata: {"split": tag}, plus a file row's columns and task
    (which the spec's routes need)."""
    return {**p.sample_metadata(default_task), "split": tag} if p.source else {"split": tag}


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    correct: int
    total: int
    non_ok: int
    examples: tuple[tuple[str, str, str], ...]   # (question, completion, gold), first few


def evaluate(model, tokenizer, problems: list[Problem], client: RewardClient | None, spec, *,
             run_id: str, step: int, accuracy_component: str | Sequence[str],
             prompt_fn: Callable[[Problem], str], max_new_tokens: int,
             temperature: float = 0.0, batch_size: int = 64, seed: int = 0,
             tag: str = "heldout", synced: bool = False,
             default_task: str = "") -> EvalResult | None:
    """Generate one completion per problem and score it through the service.

    The scores are stored under `run_id` at `step`, one group per prompt with group id
    ``{tag}-s{step}-{i}`` so they are told apart from training groups.
    client=None generates without scoring and returns None: an FSDP rank other than 0
    joins rank 0's forward passes that way (synced=True: rollout.generate's synced).
    """
    if not problems:
        return EvalResult(float("nan"), 0, 0, 0, ()) if client is not None else None
    was_training = model.training
    model.eval()
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
    stream = client.open_group_stream(run_id, step, spec) if client is not None else None
    texts: list[str] = []
    for start in range(0, len(problems), batch_size):
        chunk = problems[start:start + batch_size]
        rollout = generate(model, tokenizer, [prompt_fn(p) for p in chunk], 1, params,
                           seed=seed + start, synced=synced)
        if stream is None:
            continue
        for i, (p, text) in enumerate(zip(chunk, rollout.texts), start=start):
            stream.submit(f"{tag}-s{step}-{i}", [make_sample(
                f"{tag}-s{step}-{i}-0", text, prompt=p.question, reference=p.answer,
                metadata=eval_metadata(p, tag, default_task))])
        texts.extend(rollout.texts)
    if stream is None:
        model.train(was_training)
        return None
    results = stream.collect()
    correct = non_ok = 0
    for i in range(len(problems)):
        comp = accuracy_of(results[f"{tag}-s{step}-{i}"][0], accuracy_component)
        if comp is None or comp.status != "OK":
            non_ok += 1
        elif comp.reward is not None and comp.reward >= 1.0 - 1e-9:
            correct += 1
    model.train(was_training)
    examples = tuple((p.question, t, p.answer) for p, t in zip(problems[:3], texts[:3]))
    return EvalResult(correct / len(problems), correct, len(problems), non_ok, examples)
