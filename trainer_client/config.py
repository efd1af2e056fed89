"""The trainer's configuration: typed pydantic models, validated at start.

Load order: defaults < a JSON/TOML file (`--config`) < command-line overrides. The
reward service's API key may also come from the environment (`REWARD_API_KEY`).
A bad value raises `ConfigError` whose message names the field, e.g.
``grpo.group_size: Input should be greater than or equal to 2 (got 1)``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A configuration value is invalid; the message names each bad field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SamplingConfig(_Model):
    """HF `generate` knobs for the training rollouts (evaluation is greedy by default)."""

    temperature: float = Field(1.0, gt=0.0, description="sampling temperature of the rollouts")
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="1.0 = off")
    repetition_penalty: float = Field(1.0, gt=0.0)
    max_new_tokens: int = Field(64, ge=1)
    eval_temperature: float = Field(0.0, ge=0.0, description="0 = greedy held-out evaluation")
    backend: Literal["hf", "vllm"] = Field(
        "hf", description="training rollouts: hf = transformers generate; vllm = a colocated "
                          "vllm.LLM on CUDA (pip install '.[vllm]'; trainer_client/vllm_backend.py)")
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0.0, lt=1.0, description="fraction of the GPU vLLM may take (it shares the GPU "
                                         "with training)")


NON_OK_POLICIES = ("exclude", "zero", "drop_group")


class GRPOConfig(_Model):
    """The optimisation: DESIGN.md §4."""

    group_size: int = Field(8, ge=2, description="G: completions per prompt")
    prompts_per_step: int = Field(8, ge=1, description="B: prompts per step")
    scale: Literal["group", "batch", "none"] = "group"
    adv_eps: float = Field(1e-4, gt=0.0, description="ε added to the std")
    clip_eps_low: float = Field(0.2, ge=0.0, lt=1.0)
    clip_eps_high: float = Field(0.28, ge=0.0)
    beta: float = Field(0.0, ge=0.0, description="KL weight; 0 loads no reference model")
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    num_iterations: int = Field(1, ge=1, description="μ: optimiser passes over each batch")
    learning_rate: float = Field(1e-6, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    adam_beta2: float = Field(0.99, gt=0.0, lt=1.0)
    warmup_steps: int = Field(0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    micro_batch_size: int = Field(64, ge=1, description="sequences per forward/backward")
    non_ok_policy: Literal["exclude", "zero", "drop_group"] = Field(
        "exclude", description="samples scored TIMEOUT, ERROR or ABSTAIN: exclude = left out of "
                               "their group's statistics and the loss; zero = reward 0, trained "
                               "on like a wrong answer; drop_group = the whole group left out. "
                               "Counted in the step metrics either way "
                               "(trainer_client/advantages.apply_non_ok_policy)")
    generation_chunk_prompts: int = Field(
        4, ge=1, description="prompts per generate() call; each chunk's groups are streamed "
                             "to the reward service while the next chunk is generated")
    # --- variants (trainer_client/variants.py; DAPO arXiv:2503.14476, GSPO arXiv:2507.18071)
    importance_sampling_level: Literal["token", "sequence"] = Field(
        "token", description="sequence = GSPO's length-normalised sequence ratio; pair it "
                             "with clip_eps_low=3e-4, clip_eps_high=4e-4 and loss_type=grpo")
    dynamic_sampling: bool = Field(False, description="DAPO: drop groups whose rewards are all "
                                                      "equal and draw more prompts")
    max_extra_draws: int = Field(3, ge=0, description="cap on extra prompt batches per step")
    mask_truncated_completions: bool = Field(False, description="DAPO overlong filtering: "
                                                                "no loss on truncated completions")
    overlong_cache_len: int = Field(0, ge=0, description="DAPO L_cache; 0 = no soft punishment")
    overlong_penalty_factor: float = Field(1.0, ge=0.0)
    ref_refresh_every: int = Field(0, ge=0, description="copy policy into reference every N "
                                                        "steps; 0 = never")
    gradient_checkpointing: bool = False
    bf16_autocast: bool = Field(False, description="bf16 autocast of forward passes on CUDA; "
                                                   "ignored on CPU")
    lora_r: int = Field(0, ge=0, description="LoRA rank; 0 = full fine-tuning")
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    lora_target_modules: list[str] | str = Field("all-linear")
    lora_save_merged: bool = Field(False, description="save merged weights instead of adapters")


class RewardComponent(_Model):
    """One verifier of the reward spec: reward = Σ weight · component; a `gate` makes the
    whole reward 0 unless this component passes (status OK and reward >= gate_min)."""

    name: str = Field(min_length=1)
    version: str = Field("", description="pin a registered version (\"2.0.0\"); empty = the "
                                         "server's newest")
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)
    gate: bool = Field(False, description="the total reward is 0 unless this component passes")
    gate_min: float | None = Field(None, description="a gate passes when OK and reward >= gate_min "
                                                     "(server default 1.0); needs gate = true")

    @model_validator(mode="after")
    def _gate_min_needs_gate(self) -> "RewardComponent":
        if self.gate_min is not None and not self.gate:
            raise ValueError("gate_min is set but gate is false; set gate = true or drop gate_min")
        return self


class RewardConfig(_Model):
    """Where the reward service is and how to talk to it."""

    address: str = Field("127.0.0.1:50051", min_length=3, description="host:port")
    components: list[RewardComponent] = Field(
        default_factory=lambda: [RewardComponent(name="math", weight=1.0)])
    routes: dict[str, list[RewardComponent]] = Field(
        default_factory=dict, description="task -> extra components for samples whose "
                                          "metadata.task is that task (\"*\" = fallback); the "
                                          "data's `task` column picks the route")
    spec: str | None = Field(None, description="a reward spec stored on the server (\"math-r1\" or "
                             "\"math-r1@3\"), used instead of `components`")
    accuracy_component: str = Field(
        "math", description="component whose reward 1 = correct; comma-separated for a routed "
                            "spec (\"math,code\"): a sample's first one present counts")
    api_key: str | None = Field(default_factory=lambda: os.environ.get("REWARD_API_KEY") or None,
                                repr=False)
    connect_timeout_s: float = Field(15.0, gt=0.0)
    rpc_timeout_s: float = Field(30.0, gt=0.0)
    stream_timeout_s: float = Field(300.0, gt=0.0, description="deadline of one step's stream")
    max_retries: int = Field(3, ge=0, description="retries on UNAVAILABLE")
    outage_timeout_s: float = Field(
        120.0, ge=0.0, description="keep retrying UNAVAILABLE (backoff capped at 5 s) this long "
                                   "before failing; a step's stream also stops at its deadline")
    tls_ca: str | None = Field(default_factory=lambda: os.environ.get("REWARD_TLS_CA") or None,
                               description="PEM CA file: TLS channel (api_key as call "
                                           "credentials); None = insecure channel")
    run_name: str = "grpo"

    @field_validator("address")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"must be host:port, got {v!r}")
        return v


class ColumnMapping(_Model):
    """Which column of a data file holds what (trainer_client/datafiles.py).

    Every other column travels as sample metadata. A column named here but absent from
    a file is an error, except `task` and `system_prompt`, which are optional."""

    prompt: str = Field("prompt", min_length=1, description="a string, or a list of chat "
                                                          "messages {role, content}")
    reference: str = Field("reference", min_length=1,
                           description="gold answer (string or number) or an object (code tests)")
    task: str = Field("task", min_length=1, description="optional: routes the row to the reward "
                                                       "spec's route of that name")
    system_prompt: str = Field("system_prompt", min_length=1,
                               description="optional: this row's system prompt")


    @model_validator(mode="after")
    def _distinct(self) -> "ColumnMapping":
        names = [self.prompt, self.reference, self.task, self.system_prompt]
        if len(set(names)) < len(names):
            raise ValueError(f"data.columns must name four different columns, got prompt="
                             f"{self.prompt!r}, reference={self.reference!r}, task={self.task!r}, "
                             f"system_prompt={self.system_prompt!r}")
        return self


class DataFile(_Model):
    """One data file with options of its own (a bare path string means all defaults)."""

    path: str = Field(min_length=1)
    task: str | None = Field(None, min_length=1, description="task of rows without a task column "
                                                            "or value")
    split: str | None = Field(None, description="split of a save_to_disk DatasetDict folder")


class DataConfig(_Model):
    """Prompts: a team's own files (train_files), else a reasoning-gym task.

    The held-out split never reaches training."""

    task: str = Field("basic_arithmetic", description="reasoning-gym dataset (when no train_files)")
    task_config: dict[str, Any] = Field(default_factory=lambda: dict(
        min_terms=2, max_terms=2, min_digits=2, max_digits=2, operators=["+"],
        allow_parentheses=False, allow_negation=False))
    train_size: int = Field(3000, ge=1, description="reasoning-gym only; files use every row")
    heldout_size: int = Field(200, ge=0, description="at most this many held-out prompts")
    train_files: list[DataFile | str] = Field(
        default_factory=list, description="local JSONL/JSON/Parquet/CSV files or save_to_disk "
                                          "folders (datasets library; no hub access)")
    eval_files: list[DataFile | str] = Field(default_factory=list,
                                             description="held-out prompts from their own files")
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0,
                                 description="held-out = this seeded fraction of the train rows")
    columns: ColumnMapping = Field(default_factory=ColumnMapping)
    prompt_template: Literal["plain", "chat", "auto"] = Field(
        "auto", description="auto = chat when the tokenizer has a chat template")
    system_prompt: str | None = Field(
        None, description="None = the R1 think/answer instruction with chat, none with plain; "
                          "\"\" = no system prompt; a row's system_prompt column wins")
    max_prompt_tokens: int = Field(0, ge=0, description="drop prompts longer than this (counted "
                                                        "and reported); 0 = keep all")

    @field_validator("train_files", "eval_files", mode="before")
    @classmethod
    def _one_file(cls, v: Any) -> Any:
        return [v] if isinstance(v, (str, dict)) else v

    @field_validator("train_files", "eval_files")
    @classmethod
    def _files(cls, v: list[DataFile | str]) -> list[DataFile]:
        return [DataFile(path=f) if isinstance(f, str) else f for f in v]

    @model_validator(mode="after")
    def _sources(self) -> "DataConfig":
        if self.eval_files and not self.train_files:
            raise ValueError("data.eval_files needs data.train_files (reasoning-gym makes its "
                             "own held-out split)")
        if self.eval_files and self.eval_fraction:
            raise ValueError("data.eval_files and data.eval_fraction both set: choose one "
                             "held-out source")
        return self


class EvalConfig(_Model):
    """Held-out pass@k (trainer_client/passk.py): n samples per prompt, unbiased estimator."""

    num_samples: int = Field(1, ge=1, description="n completions per held-out prompt")
    ks: list[int] = Field(default_factory=lambda: [1], min_length=1, description="k of pass@k")
    temperature: float = Field(1.0, gt=0.0, description="sampling temperature when n > 1")

    @model_validator(mode="after")
    def _ks(self) -> "EvalConfig":
        bad = [k for k in self.ks if not 1 <= k <= self.num_samples]
        if bad:
            raise ValueError(f"eval.ks {bad} must lie in 1..eval.num_samples ({self.num_samples})")
        return self


class TrainConfig(_Model):
    """Everything `grpo-train train` needs."""

    model: str = Field(min_length=1, description="local HF causal-LM directory or hub id")
    output_dir: str = "runs/grpo"
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    steps: int = Field(20, ge=1)
    seed: int = 0
    save_every: int = Field(0, ge=0, description="checkpoint every N steps; 0 = only at the end")
    eval_every: int = Field(0, ge=0, description="held-out eval every N steps; 0 = start and end")
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    monitors: bool = Field(True, description="run-health monitors (trainer_client/monitors.py)")
    dist_strategy: Literal["ddp", "fsdp"] = Field(
        "ddp", description="under torchrun/accelerate: ddp = whole model per rank; fsdp = FSDP2 "
                           "sharding of policy and reference (trainer_client/distributed.py)")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {v!r}")

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.grpo.overlong_cache_len > self.sampling.max_new_tokens:
            raise ValueError(f"grpo.overlong_cache_len {self.grpo.overlong_cache_len} exceeds "
                             f"sampling.max_new_tokens {self.sampling.max_new_tokens}")
        if self.grpo.lora_r > 0 and self.dist_strategy == "fsdp":
            raise ValueError("dist_strategy fsdp does not take LoRA (grpo.lora_r > 0): use ddp, "
                             "whose per-rank memory LoRA already cuts")
        if self.grpo.lora_r > 0 and self.sampling.backend == "vllm":
            raise ValueError("sampling.backend vllm does not take LoRA (grpo.lora_r > 0) yet: "
                             "its weight sync sends full weights; use backend hf")
        if self.reward.spec is not None and self.reward.routes:
            raise ValueError("reward.spec names a stored spec, which brings its own routes: "
                             "reward.routes would be ignored; set one of them")
        if self.reward.spec is None and not (self.reward.components or self.reward.routes):
            raise ValueError("reward.components and reward.routes are both empty: the reward "
                             "spec needs at least one verifier")
        names = [c.name for c in self.reward.components] + [
            c.name for lst in self.reward.routes.values() for c in lst]
        wanted = [a.strip() for a in self.reward.accuracy_component.split(",")]
        if self.reward.spec is None and not any(a in names for a in wanted):
            raise ValueError(f"reward.accuracy_component {self.reward.accuracy_component!r} "
                             f"is not one of reward.components {names}")
        return self


def format_validation_error(e: ValidationError) -> str:
    """One line per bad field: ``grpo.group_size: <message> (got <value>)``."""
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "config"
        got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
        lines.append(f"{loc}: {err['msg']}{got}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _toml_where(message: str, text: str) -> str:
    """tomllib's message with the line it names quoted; "(at end of document)" becomes
    the file's last line number."""
    lines = text.splitlines() or [""]
    m = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if m is None and "end of document" in message:
        return message.replace("(at end of document)",
                               f"(at the end of the file, line {len(lines)}: {lines[-1].strip()!r})")
    if m is not None and 1 <= int(m.group(1)) <= len(lines):
        return f"{message}: {lines[int(m.group(1)) - 1].strip()!r}"
    return message


def _read_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    if p.is_dir():
        raise ConfigError(f"config file {p} is a directory")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {p} cannot be read: {e}") from None
    if p.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: TOML syntax error: {_toml_where(str(e), text)}") from None
    if p.suffix not in (".json", ""):
        raise ConfigError(f"config file {p}: unknown suffix {p.suffix!r}; use .toml or .json")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: JSON syntax error at line {e.lineno}, column {e.colno}: "
                          f"{e.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be an object of config fields, "
                          f"got {type(raw).__name__}")
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                model_cls: type[BaseModel] = TrainConfig) -> Any:
    """Build and validate a config from an optional file and nested overrides.

    Raises ConfigError naming each bad field.
    """
    raw = _read_file(path) if path else {}
    raw = _merge(raw, overrides or {})
    try:
        return model_cls.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None
