"""A TRL reward function that scores with the shared reward service.

    from trl import GRPOConfig, GRPOTrainer
    from rlvr_integrations.trl import RewardServiceFunc

    reward = RewardServiceFunc("reward.internal:50051", spec="math-r1", reference_column="answer",
                               run_name="qwen-gsm8k-grpo")
    trainer = GRPOTrainer(model=..., args=GRPOConfig(...), train_dataset=dataset,
                          reward_funcs=[reward], callbacks=[reward.callback()])

`RewardServiceFunc` is called as TRL calls custom reward functions,
`reward(prompts=[...], completions=[...], completion_ids=[...], **columns)`, once per
generation step with the whole local batch, and sends that batch as ONE `Score` request.

Inputs
- completions: strings, or conversations (lists of `{"role", "content"}` messages); of a
  conversation the content of the last assistant message is scored (all messages' text
  when none is marked assistant). Content given as parts keeps the text parts.
- prompts: strings, or conversations, of which the last user message is sent as the
  sample's prompt (judges read it).
- the reference comes from the dataset column `reference_column` (default "answer"),
  which TRL passes as a keyword argument; `reference_column=None` sends none (a
  format-only spec). A missing column is an error, not a silent "no reference".
- `metadata_columns` (default ("task",)) are sent as the sample's metadata when present,
  so a spec that routes by task works; `trainer_state.global_step` is the step stored
  with the scores.

Outputs: one value per completion, the reward when the service returned STATUS_OK and
**None** otherwise (ABSTAIN, TIMEOUT, ERROR). A failure is never turned into 0. TRL
(>= 0.17) treats None as "this reward function does not apply" (NaN, ignored by its
nansum/nanmean); a completion for which every reward function returned None is
excluded from its group's baseline and gets advantage 0. Each call also logs
`rewards/<name>/ok_frac` with TRL's `log_metric` and a `<name>_status` column in the
completions table (`log_extra`), so failures stay visible; `status_counts` keeps totals.

Failures of the call itself (service unreachable after the retries, bad spec, quota
still exceeded after retries) raise `RewardServiceError`, which stops training: those are
not per-sample outcomes and must not be scored as anything.

Runs. With `run_name` (and/or `run_id`) the function calls `StartRun` before its first
batch and every score is stored under that run and the trainer's step (`rewardctl
history --run ID`). `callback()` gives a `TrainerCallback` that sends TRL's logged
metrics with `LogStep` and finishes the run when training ends. Without the callback the
run is still finished (FinishRun): by `close()` or the end of `with reward: ...` ("failed"
when the block raised), when the function is garbage-collected (e.g. `del trainer,
reward`), or at interpreter exit, as "failed" when an uncaught exception ends the process
and "finished" otherwise (weakref.finalize). Only the process that started the run (rank 0)
finishes it; unpickled copies never do. Under several processes
(accelerate, torchrun: $WORLD_SIZE > 1) every rank scores its own share of the batch:
pass the same `run_id` on all ranks (StartRun of an existing id resumes it), since each
rank would otherwise start a run of its own; sample ids are then "RANK:INDEX".
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewards_client import ENV_SPEC, SampleScore, build_spec, make_sample, resolve_address

from .client import ServiceClient

log = logging.getLogger(__name__)

Message = Mapping[str, Any]


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # multimodal parts: keep the text parts
        return "".join(p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content)
    return str(content)


def completion_text(completion: str | Sequence[Message]) -> str:
    """A completion as the text to score: the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    messages = list(completion)
    assistant = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "assistant"]
    if assistant:
        return _content_text(assistant[-1].get("content"))
    return "".join(_content_text(m.get("content")) if isinstance(m, Mapping) else str(m) for m in messages)


def prompt_text(prompt: str | Sequence[Message] | None) -> str:
    """A prompt as text: the last user message of a conversation (else the whole text)."""
    if prompt is None:
        return ""
    if isinstance(prompt, str):
        return prompt
    messages = [m for m in prompt if isinstance(m, Mapping)]
    users = [m for m in messages if m.get("role") == "user"]
    if users:
        return _content_text(users[-1].get("content"))
    return "\n\n".join(_content_text(m.get("content")) for m in messages)


def _uncaught_error() -> BaseException | None:
    """The exception ending the interpreter, if one does (set before atexit runs)."""
    return getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)


def _finish_left_open(client_args: dict[str, Any], run_id: str, name: str) -> None:
    """weakref.finalize callback of a RewardServiceFunc whose run nobody finished.

    Runs when the function is collected or at interpreter exit; a fresh channel (the
    function's own may be closed), few retries, so an exit does not hang on a dead service.
    """
    state = "failed" if _uncaught_error() is not None else "finished"
    try:
        with ServiceClient(**{**client_args, "max_retries": 2, "timeout_s": 10.0}) as client:
            client.finish_run(run_id, state)
        log.info("%s: run %s marked %s (the function was closed, collected or the process ended)",
                 name, run_id, state)
    except Exception as e:  # noqa: BLE001 - at exit: say it, never raise
        log.warning("%s: could not finish run %s (%s): %s", name, run_id, state, e)


class RewardServiceFunc:
    """A TRL reward function backed by the reward service (see the module docstring).

    Args:
        address: HOST:PORT (default $REWARD_SERVER_ADDRESS).
        spec: a stored spec name ("math-r1", "math-r1@2"), a list of components, a dict
            {components, routes, task_key} or a `RewardSpec` (default $REWARD_SPEC).
        api_key, tls_ca: credentials (default $REWARD_API_KEY, $REWARD_TLS_CA).
        reference_column: dataset column holding the reference; None for no reference.
        metadata_columns: dataset columns sent as sample metadata when present.
        run_name, run_id, run_config: start (or resume) a run and store scores under it.
        name: the function's `__name__`, used by TRL for its logs ("rewards/<name>/mean").
        timeout_s: deadline of one Score call; max_retries, backoff_s: retry policy.
    """

    def __init__(self, address: str | None = None, spec: Any = None, *, api_key: str | None = None,
                 tls_ca: str | None = None, reference_column: str | None = "answer",
                 metadata_columns: Sequence[str] = ("task",), run_name: str | None = None,
                 run_id: str | None = None, run_config: Mapping[str, Any] | None = None,
                 name: str = "reward_service", timeout_s: float = 300.0, max_retries: int = 5,
                 backoff_s: float = 0.5):
        spec = spec if spec is not None else os.environ.get(ENV_SPEC)
        if spec is None:
            raise ValueError(f"spec: required (a stored spec name such as 'math-r1', or components), "
                             f"or set ${ENV_SPEC}")
        self.spec = build_spec(spec)
        self.reference_column = reference_column
        self.metadata_columns = tuple(metadata_columns)
        self.run_name = run_name
        self.run_config = dict(run_config or {})
        self.__name__ = name
        self.rank = int(os.environ.get("RANK", "0"))
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if run_name and not run_id and self.world_size > 1:
            raise ValueError(f"run_name={run_name!r} under {self.world_size} processes: pass the same run_id "
                             f"on every rank, or each rank would start a separate run")
        self._run_id = run_id or ""
        self._run_started = False
        self._finalizer: weakref.finalize | None = None   # FinishRun if left open (rank 0)
        self._owner = True                                # False in unpickled copies
        self._client_args = dict(address=address, api_key=api_key, tls_ca=tls_ca, timeout_s=timeout_s,
                                 max_retries=max_retries, backoff_s=backoff_s)
        self._client: ServiceClient | None = None
        self._lock = threading.Lock()
        self.calls = 0
        self.status_counts: Counter[str] = Counter()
        self.last_results: list[SampleScore] = []  # the last call's scores
        # Resolve the address now so a missing one fails at construction, not mid-training.
        self.address = resolve_address(address)

    # -- connection and run ----------------------------------------------------------
    @property
    def client(self) -> ServiceClient:
        with self._lock:
            if self._client is None:
                self._client = ServiceClient(**{**self._client_args, "address": self.address})
            return self._client

    @property
    def run_id(self) -> str:
        """The run the scores go to ("" when none); started on first use."""
        return self._run_id

    def start_run(self) -> str:
        """StartRun now (it is otherwise done before the first batch); returns the run id."""
        if not self._run_started and (self.run_name or self._run_id):
            config = {"trainer": "trl", "reward_function": self.__name__, **self.run_config}
            self._run_id = self.client.start_run(self.run_name or self._run_id, config, self._run_id)
            self._run_started = True
            if self._owner and self.rank == 0:
                self._finalizer = weakref.finalize(self, _finish_left_open,
                                                   {**self._client_args, "address": self.address},
                                                   self._run_id, self.__name__)
            log.info("reward service %s: scores go to run %s", self.address, self._run_id)
        return self._run_id

    def log_step(self, step: int, metrics: Mapping[str, float]) -> None:
        if self._run_id:
            self.client.log_step(self.start_run(), step, metrics)

    def finish_run(self, state: str = "finished", summary: Mapping[str, float] | None = None) -> None:
        if self._run_started:
            self.client.finish_run(self._run_id, state, summary)
            self._run_started = False
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None

    def callback(self) -> Any:
        """A `transformers.TrainerCallback`: LogStep of TRL's metrics, FinishRun at the end."""
        from transformers import TrainerCallback

        func = self

        class RewardServiceCallback(TrainerCallback):
            def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
                       **kwargs: Any) -> None:
                if func.run_id and state.is_world_process_zero and logs:
                    metrics = {k: float(v) for k, v in logs.items()
                               if isinstance(v, (int, float)) and not isinstance(v, bool)}
                    if metrics:
                        # TRL logs after the optimizer step has advanced global_step, while
                        # the scores these metrics summarise were stored at the step they
                        # were generated in: one less (issue #20).
                        func.log_step(max(0, state.global_step - 1), metrics)

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.is_world_process_zero:
                    func.finish_run("finished")

        return RewardServiceCallback()

    def close(self) -> None:
        """Finish the run if this process started it and it is still open, then close the channel."""
        if self._finalizer is not None and self._finalizer.alive:
            self.finish_run("finished")
        self._close_channel()

    def _close_channel(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> RewardServiceFunc:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if self._finalizer is not None and self._finalizer.alive:
                self.finish_run("failed" if exc_type is not None else "finished")
        except Exception as e:
            if exc_type is None:
                raise
            log.warning("%s: could not mark run %s failed: %s", self.__name__, self._run_id, e)
        finally:
            self._close_channel()

    def __getstate__(self) -> dict[str, Any]:  # picklable: the channel is re-created on use
        state = self.__dict__.copy()
        # a copy (a dataloader worker, another process) never finishes the owner's run
        state.update(_client=None, _lock=None, _finalizer=None, _owner=False)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        spec = self.spec.name or f"{len(self.spec.components)} components"
        return f"RewardServiceFunc({self.__name__!r}, address={self.address!r}, spec={spec!r})"

    # -- the reward function -------------------------------------------------------------
    def __call__(self, prompts: Sequence[Any] | None, completions: Sequence[Any], completion_ids: Any = None,
                 *, trainer_state: Any = None, log_metric: Callable[[str, float], None] | None = None,
                 log_extra: Callable[[str, list], None] | None = None, **columns: Any) -> list[float | None]:
        n = len(completions)
        if prompts is not None and len(prompts) != n:
            raise ValueError(f"{self.__name__}: {len(prompts)} prompts for {n} completions")
        references: Sequence[Any] = [None] * n
        if self.reference_column is not None:
            if self.reference_column not in columns:
                raise KeyError(f"{self.__name__}: no dataset column {self.reference_column!r} for the reference "
                               f"(columns: {sorted(columns)}); set reference_column=..., or None for a spec "
                               f"that needs no reference")
            references = columns[self.reference_column]
        meta_cols = {c: columns[c] for c in self.metadata_columns if c in columns}
        step = getattr(trainer_state, "global_step", None)
        if step is None:  # called outside TRL's trainer: number the calls
            step = self.calls
        prefix = f"{self.rank}:" if self.world_size > 1 else ""
        samples = [make_sample(f"{prefix}{i}", completion_text(completions[i]),
                               prompt=prompt_text(prompts[i]) if prompts is not None else "",
                               reference=references[i],
                               metadata={c: v[i] for c, v in meta_cols.items()} or None)
                   for i in range(n)]
        run_id = self.start_run()
        results = self.client.score(samples, self.spec, run_id=run_id, step=int(step)) if samples else []
        rewards = [r.reward for r in results]            # None unless "OK": never a silent 0
        statuses = [r.status for r in results]
        self.calls += 1
        self.status_counts.update(statuses)
        self.last_results = results
        not_ok = n - statuses.count("OK")
        if not_ok:
            reasons = Counter(f"{s}: {r.reason}"[:160] for s, r in zip(statuses, results, strict=True) if s != "OK")
            log.warning("%s: %d of %d completions not scored at step %s (reward None): %s", self.__name__,
                        not_ok, n, step, "; ".join(f"{k} (x{v})" for k, v in reasons.most_common(3)))
        if callable(log_metric) and n:
            log_metric(f"rewards/{self.__name__}/ok_frac", (n - not_ok) / n)
        if callable(log_extra) and n:
            log_extra(f"{self.__name__}_status", statuses)
        return rewards

