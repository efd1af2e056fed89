"""pass@k on a held-out split, scored by the reward service.

The unbiased estimator of Chen et al. 2021 (arXiv:2107.03374, eq. 1): with n samples
of which c are correct,

    pass@k = 1 − C(n−c, k) / C(n, k)

computed stably as 1 − Π_{i=n−c+1..n} (1 − k/i) (no large binomials), and 1 when
n − c < k. pass@1 reduces to c/n. A run's pass@k is the mean over problems.

`evaluate_pass_at_k` samples n completions per problem (temperature > 0 when n > 1),
streams one group per problem to the service (group id ``{tag}-s{step}-{i}``) and
counts a sample correct when the accuracy component is OK with reward 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from .data import Problem


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with n samples, c correct (0 <= c <= n, 1 <= k <= n)."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):      # C(n−c, k)/C(n, k) = Π (1 − k/i)
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean of pass_at_k over problems given (n, c) per problem."""
    if not counts:
        return float("nan")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


@dataclass(frozen=True)
class PassAtKResult:
    pass_at: dict[int, float]                 # k -> mean pass@k
    num_samples: int                          # n per problem
    problems: int
    non_ok: int                               # samples whose accuracy component was not OK
    counts: tuple[tuple[int, int], ...] = field(default=())   # (n, c) per problem

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """LogStep metrics: eval/pass@1, eval/pass@k..., eval/non_ok."""
        out = {f"{prefix}pass@{k}": v for k, v in sorted(self.pass_at.items())}
        out[f"{prefix}non_ok"] = float(self.non_ok)
        return out


def evaluate_pass_at_k(model, tokenizer, problems: list[Problem], client, spec, *,
                       run_id: str, step: int, accuracy_component: str | Sequence[str],
                       prompt_fn: Callable[[Problem], str], max_new_tokens: int,
                       num_samples: int = 1, ks: Sequence[int] = (1,),
                       temperature: float = 1.0, batch_size: int = 16, seed: int = 0,
                       tag: str = "passk", synced: bool = False,
                       default_task: str = "") -> PassAtKResult | None:
    """Sample `num_samples` completions per problem and score them through the service.

    client=None samples without scoring and returns None (an FSDP rank other than 0
    joining rank 0's forward passes; synced=True: rollout.generate's synced).
    """
    from .evaluation import accuracy_of, eval_metadata
    from rewards_client import make_sample
    from .rollout import SamplingParams, generate

    n = num_samples
    ks = sorted({k for k in ks if 1 <= k <= n})
    if not problems:
        return PassAtKResult({k: float("nan") for k in ks}, n, 0, 0) if client is not None else None
    was_training = model.training
    model.eval()
    params = SamplingParams(max_new_tokens=max_new_tokens,
                            temperature=temperature)
    stream = client.open_group_stream(run_id, step, spec) if client is not None else None
    for start in range(0, len(problems), batch_size):
        chunk = problems[start:start + batch_size]
        r = generate(model, tokenizer, [prompt_fn(p) for p in chunk], n, params, seed=seed + start,
                     synced=synced)
        if stream is None:
            continue
        for j, p in enumerate(chunk):
            i = start + j
            stream.submit(f"{tag}-s{step}-{i}", [
                make_sample(f"{tag}-s{step}-{i}-{s}", r.texts[j * n + s], prompt=p.question,
                            reference=p.answer, metadata=eval_metadata(p, tag, default_task)) for s in range(n)])
    model.train(was_training)
    if stream is None:
        return None
    results = stream.collect()
    counts, non_ok = [], 0
    for i in range(len(problems)):
        c = 0
        for score in results[f"{tag}-s{step}-{i}"]:
            comp = accuracy_of(score, accuracy_component)
            if comp is None or comp.status != "OK":
                non_ok += 1
            elif comp.reward is not None and comp.reward >= 1.0 - 1e-9:
                c += 1
        counts.append((n, c))
    return PassAtKResult({k: mean_pass_at_k(counts, k) for k in ks}, n, len(problems), non_ok,
                         tuple(counts))


def _stored(client, ref: str):
    from rewards_client import stored_spec_ref

    stored = client.get_spec(ref)
    return stored_spec_ref(stored.name, stored.version)


def evaluate_model(cfg) -> dict[str, float | str | int]:
    """`grpo-train eval`: pass@k of cfg.model on cfg.data's held-out split, logged as a run.

    Starts a run named ``{run_name}-eval`` on the service, logs the metrics at step 0,
    finishes it, and returns {"run_id", "problems", "eval/pass@k"...}.
    """
    import torch

    from .datafiles import load_data
    from rewards_client import RewardClient, make_spec
    from .trainer import load_policy, prompt_fn_for, resolve_device

    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    r = cfg.reward
    with RewardClient(r.address, api_key=r.api_key, rpc_timeout_s=r.rpc_timeout_s,
                      stream_timeout_s=r.stream_timeout_s, max_retries=r.max_retries,
                      outage_timeout_s=r.outage_timeout_s, tls_ca=r.tls_ca) as client:
        client.wait_ready(r.connect_timeout_s)
        _, heldout, _ = load_data(cfg.data, cfg.seed)    # data errors before the model
        model, tokenizer = load_policy(cfg.model, resolve_device(cfg.device), cfg.dtype)
        n = cfg.eval.num_samples
        run_id = client.start_run(f"{r.run_name}-eval", config=cfg.model_dump(
            mode="json", exclude={"reward": {"api_key"}}))
        res = evaluate_pass_at_k(
            model, tokenizer, heldout, client,
            make_spec(r.components, r.routes) if not r.spec else _stored(client, r.spec),
            run_id=run_id, step=0, default_task=cfg.data.task,
            accuracy_component=[a.strip() for a in r.accuracy_component.split(",")], prompt_fn=prompt_fn_for(cfg, tokenizer),
            max_new_tokens=cfg.sampling.max_new_tokens, num_samples=n, ks=cfg.eval.ks,
            temperature=cfg.eval.temperature if n > 1 else cfg.sampling.eval_temperature,
            seed=cfg.seed)
        metrics = res.metrics()
        client.log_step(run_id, 0, metrics)
        client.finish_run(run_id, "finished", metrics)
    return {"run_id": run_id, "problems": res.problems, "num_samples": n, **metrics}
