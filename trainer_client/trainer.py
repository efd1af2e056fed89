"""The GRPO loop (DESIGN.md §4), flat and commented.

One step:
  1. sample G completions for each of B prompts (chunk by chunk); each group is sent to
     the reward service the moment it is sampled, and results stream back meanwhile;
  2. rewards -> group-relative advantages; non-OK samples follow grpo.non_ok_policy
     (default: left out, valid=False);
  3. π_old log-probs (once per batch, only when μ > 1) and π_ref log-probs (β > 0);
  4. μ optimiser passes of the clipped surrogate + β·KL, in micro-batches;
  5. metrics to the console and to the service (LogStep); checkpoints every N steps.
Metrics per step: reward_mean/std, reward/<component> means, zero_spread_frac, kl (k3
against the reference; only when β > 0, since β = 0 loads no reference model),
clip_frac, entropy, completion_len_mean, truncated_frac, non_ok_samples (and
non_ok/<STATUS>, groups_dropped_non_ok), loss, grad_norm, lr, generate/score-wait/step
times, and reward/task/<task> when the data's rows carry tasks (routed specs).
Prompts come from cfg.data (a team's files, trainer_client/datafiles.py, or reasoning-gym),
checked before the service is contacted or the model loaded.
The trainer never imports reward_server: it speaks only the contract, through rewards_client.
Under torchrun / accelerate launch it is data-parallel, DDP or FSDP2
(trainer_client/distributed.py: sharding, lockstep padding passes, normalisers).
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .advantages import apply_non_ok_policy, group_advantages, zero_spread_fraction
from . import distributed
from .checkpoint import (CountingIterator, capture_rng, load_checkpoint, restore_rng,
                         save_checkpoint as save_resumable)
from .monitors import check as check_monitors
from .passk import evaluate_pass_at_k
from .config import TrainConfig
from .data import Problem, batches, format_prompt
from .datafiles import DataError, DataStats, check_routes, fingerprint, load_data
from .evaluation import EvalResult, evaluate
from .losses import clipped_surrogate, grpo_loss, k3_kl
from .lora import Reference, apply_lora, save_model
from .variants import (dynamic_fill, format_bytes, importance_log_ratio,
                       memory_estimate_bytes, soft_overlong_penalty)
from rewards_client import RewardClient, RewardServiceError, make_sample, make_spec, stored_spec_ref
from .rollout import SamplingParams, cat_rollouts, generate, token_logprobs


@dataclass
class TrainResult:
    run_id: str
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    evals: dict[int, EvalResult] = field(default_factory=dict)   # step -> held-out result
    final_dir: str = ""
    scores_returned: int = 0
    components_returned: int = 0
    data: dict[str, float] = field(default_factory=dict)   # prompts used / dropped


# Step metrics that count this rank's own samples: summed over ranks, never averaged.
# (dynamic sampling's groups_kept/dropped and extra_draws are global already, the same on
# every rank, so their mean is the count.)
RANK_COUNTS = frozenset({"non_ok_samples", "non_ok/ABSTAIN", "non_ok/TIMEOUT", "non_ok/ERROR",
                         "groups_dropped_non_ok"})
NON_OK_STATUSES = ("ABSTAIN", "TIMEOUT", "ERROR")


HUB_ID = re.compile(r"[A-Za-z0-9_][\w.-]*(/[\w.-]+)?")   # "gpt2", "Qwen/Qwen2.5-0.5B-Instruct"


class ModelPathError(ValueError):
    """cfg.model is neither an existing local model folder nor a loadable hub id."""


def check_model_path(model_id: str) -> None:
    """ModelPathError, before anything slow, when `model_id` names a local path that does
    not exist or is not a model folder. A bare "org/name" that is not a local path is left
    to transformers (a hub id; load_policy says clearly if it cannot be loaded)."""
    p = Path(os.path.expanduser(model_id))
    if p.exists():
        if p.is_dir() and not (p / "config.json").exists():
            raise ModelPathError(f"model folder {model_id} has no config.json: give the folder "
                                 f"that save_pretrained wrote (grpo-train tiny-model OUT builds one)")
        if not p.is_dir():
            raise ModelPathError(f"model {model_id} is a file; give the model's folder")
        return
    if not HUB_ID.fullmatch(model_id):      # "/abs", "./rel", "a/b/c": a path, not a hub id
        raise ModelPathError(f"model path {model_id} does not exist")


def resolve_device(name: str) -> torch.device:
    """"auto" = cuda when available, else cpu; `accelerate launch --cpu` (which sets
    ACCELERATE_USE_CPU) makes "auto" cpu. Under a launcher a bare "cuda" becomes
    cuda:LOCAL_RANK later (distributed.init)."""
    if name == "auto":
        if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
            return torch.device("cpu")
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_policy(model_id: str, device: torch.device, dtype: str = "auto"):
    """Any local HF causal-LM directory or hub id -> (model, tokenizer) on `device`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # "auto" = float32: the optimiser updates these weights in place, and lr ~1e-6 steps
    # vanish in bfloat16 (no separate fp32 master copy here).
    torch_dtype = torch.float32 if dtype == "auto" else getattr(torch, dtype)
    check_model_path(model_id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_id, dtype=torch_dtype).to(device)
    except (OSError, ValueError) as e:   # no such hub repo, offline, unknown architecture
        first = str(e).strip().split("\n")[0][:300]
        raise ModelPathError(f"model {model_id} could not be loaded: it is not a local folder, "
                             f"and transformers said: {first}") from None
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def prompt_fn_for(cfg: TrainConfig, tokenizer) -> Callable[[Problem], str]:
    template = cfg.data.prompt_template
    if template == "auto":
        template = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    return lambda p: format_prompt(p, tokenizer, template, cfg.data.system_prompt)


def prepare_prompts(problems: list[Problem], prompt_fn: Callable[[Problem], str], tokenizer,
                    max_prompt_tokens: int, what: str) -> tuple[list[Problem], int]:
    """Format every prompt once (a template error names the row) and drop those longer than
    `max_prompt_tokens` tokens (0 = keep all). Returns (kept, number dropped)."""
    kept, dropped = [], 0
    for p in problems:
        try:
            text = prompt_fn(p)
        except Exception as e:  # noqa: BLE001 - jinja / template errors: name the row
            raise DataError(f"{p.source or what}: the prompt template failed: "
                            f"{type(e).__name__}: {e}") from None
        if max_prompt_tokens and len(tokenizer(text, add_special_tokens=False)["input_ids"]) \
                > max_prompt_tokens:
            dropped += 1
            continue
        kept.append(p)
    return kept, dropped


def save_checkpoint(model, tokenizer, path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    m = mask.to(x.dtype)
    return float((x * m).sum() / m.sum().clamp(min=1.0))


def train(cfg: TrainConfig, *, client: RewardClient | None = None,
          problems: tuple[list[Problem], list[Problem]] | None = None,
          progress: bool = True, log: Callable[[str], None] | None = None,
          resume: str | None = None,
          on_step: Callable[[int, torch.nn.Module], None] | None = None) -> TrainResult:
    """Run GRPO as configured. Returns the history, the held-out evals and the run id.

    `client` defaults to a RewardClient on cfg.reward.address (checked ready first); its
    outage notices (waiting for the service, back after N s; OutageNotices) go to `log`;
    `problems` = (train, heldout) defaults to cfg.data: its files (trainer_client/datafiles.py)
    or its reasoning-gym split, loaded and checked before the service or the model
    (DataError names the file, row and column; ModelPathError a bad cfg.model).
    `resume`: a checkpoint-N directory (or an output dir: its latest) to continue from,
    bit-for-bit on CPU, under the same run id (trainer_client/checkpoint.py). If the
    service stays unreachable past the deadlines, a resumable checkpoint of the last
    completed step is written and RewardServiceError names it.
    Under `torchrun` / `accelerate launch` the run is data-parallel, DDP or FSDP2 as
    cfg.dist_strategy says (trainer_client/distributed.py); ValueError when the prompt
    batch cannot be split (fewer prompts than ranks; under FSDP, not a multiple of W).
    sampling.backend "vllm" needs CUDA and the vllm package: VllmUnavailable (a
    RuntimeError naming `pip install '.[vllm]'`) is raised before anything else starts.
    Data parallel, rank 0 alone prints (banner, step lines, progress bar); step counts
    (non_ok_samples) are summed over ranks, means averaged.
    `on_step(step, model)` is called after each step's update (tests, tools); under FSDP
    `model` is sharded and on_step runs on every rank (collectives allowed).
    """
    from tqdm import tqdm

    say = log or (lambda s: tqdm.write(s, file=sys.stderr))
    g, s_cfg = cfg.grpo, cfg.sampling
    # --- data and model path first: a bad file or path fails before anything slow --------
    if problems is None:
        train_set, heldout, data_stats = load_data(cfg.data, cfg.seed)
    else:
        train_set, heldout = problems
        data_stats = DataStats(len(train_set), len(heldout), "given")
    if not train_set:
        raise DataError("no training prompts")
    check_model_path(cfg.model)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    if s_cfg.backend == "vllm":   # fail before anything slow, naming the install command
        from .vllm_backend import require_vllm
        require_vllm(device)

    # --- the reward service: fail fast and clearly if it is not there -----------------
    own_client = client is None
    if client is None:
        client = RewardClient(cfg.reward.address, api_key=cfg.reward.api_key,
                              rpc_timeout_s=cfg.reward.rpc_timeout_s,
                              stream_timeout_s=cfg.reward.stream_timeout_s,
                              max_retries=cfg.reward.max_retries,
                              outage_timeout_s=cfg.reward.outage_timeout_s,
                              tls_ca=cfg.reward.tls_ca)
        client.wait_ready(cfg.reward.connect_timeout_s)
    if cfg.reward.spec:  # a stored spec: the server owns its parts; learn their names for the metrics
        stored = client.get_spec(cfg.reward.spec)
        spec = stored_spec_ref(stored.name, stored.version)   # pinned: a new version mid-run changes nothing
        parts = list(stored.spec.components) + [c for lst in stored.spec.routes.values() for c in lst.components]
        comp_names = list(dict.fromkeys(c.name for c in parts))
        routes = list(stored.spec.routes)
    else:
        spec = make_spec(cfg.reward.components, cfg.reward.routes)
        comp_names = list(dict.fromkeys(
            [c.name for c in cfg.reward.components]
            + [c.name for lst in cfg.reward.routes.values() for c in lst]))
        routes = list(cfg.reward.routes)
    check_routes(train_set + heldout, routes, cfg.data.task)    # an unrouted task would fail mid-run
    accuracy = [a.strip() for a in cfg.reward.accuracy_component.split(",")]

    # --- policy, optional frozen reference, optimiser ----------------------------------
    # torchrun / accelerate: rank, world size and this rank's GPU; otherwise rank 0 of 1
    dd, device = distributed.init(device, cfg.dist_strategy)
    # Rank 0 alone speaks (the ranks' lines would repeat it W times); each rank still says
    # when its own connection to the service is down or back, tagged with its rank.
    client.outages.log = say if dd.is_main else (lambda m, _say=say: _say(f"rank {dd.rank}: {m}"))
    if not dd.is_main:
        say = lambda m: None  # noqa: E731
    if dd.enabled and g.prompts_per_step < dd.world_size:
        raise ValueError(f"grpo.prompts_per_step {g.prompts_per_step} < {dd.world_size} ranks: "
                         f"every rank needs at least one prompt per step")
    if dd.fsdp and g.prompts_per_step % dd.world_size:
        raise ValueError(f"dist_strategy fsdp needs grpo.prompts_per_step ({g.prompts_per_step}) "
                         f"to be a multiple of the {dd.world_size} ranks: every rank must make "
                         f"as many generate() calls (each forward is a collective)")
    # FSDP: load on the CPU and shard (only 1/W of the weights then reaches each GPU)
    model, tokenizer = load_policy(cfg.model, torch.device("cpu") if dd.fsdp else device,
                                   cfg.dtype)
    if g.gradient_checkpointing:
        getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    if g.lora_r > 0:  # only the adapters train; π_ref = the base with adapters disabled
        model = apply_lora(model, r=g.lora_r, alpha=g.lora_alpha, dropout=g.lora_dropout,
                           target_modules=g.lora_target_modules)
    model.train()
    # β = 0 loads no reference model; LoRA's reference shares the base weights.
    ref_model = Reference(model) if g.beta > 0 else None
    mem = memory_estimate_bytes(model, reference=ref_model.kind if ref_model else "none")
    per_rank = dd.world_size if dd.fsdp else 1           # FSDP shards all four over W ranks
    say(f"memory estimate (weights, no activations{', per rank' if dd.fsdp else ''}): "
        + ", ".join(f"{k} {format_bytes(v // per_rank)}" for k, v in mem.items()))
    # bf16 autocast of the forward passes on CUDA only; the CPU path is unchanged.
    amp = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16))
           if g.bf16_autocast and device.type == "cuda" else contextlib.nullcontext)
    prompt_fn = prompt_fn_for(cfg, tokenizer)
    data_id = fingerprint(train_set)      # before the length filter: what the files held
    data_tasks = sorted({p.task for p in train_set if p.task is not None})
    train_set, dropped_train = prepare_prompts(train_set, prompt_fn, tokenizer,
                                               cfg.data.max_prompt_tokens, "train prompt")
    heldout, dropped_heldout = prepare_prompts(heldout, prompt_fn, tokenizer,
                                               cfg.data.max_prompt_tokens, "held-out prompt")
    if dropped_train or dropped_heldout:
        say(f"dropped {dropped_train} of {data_stats.train_rows} train and {dropped_heldout} of "
            f"{data_stats.heldout_rows} held-out prompts longer than data.max_prompt_tokens="
            f"{cfg.data.max_prompt_tokens} tokens")
    if data_stats.heldout_in_train:   # said, not silently fixed: the files are the team's
        say(f"WARNING: {data_stats.heldout_in_train} of {data_stats.heldout_rows} held-out prompts "
            f"also appear in the train files; held-out accuracy on them is not held out")
    if data_stats.heldout_capped:
        say(f"held-out set capped at data.heldout_size={cfg.data.heldout_size} "
            f"({data_stats.heldout_capped} more rows not used)")
    if not train_set:
        raise DataError(f"every train prompt is longer than data.max_prompt_tokens="
                        f"{cfg.data.max_prompt_tokens} tokens")
    prompt_batches = CountingIterator(
        batches(train_set, min(g.prompts_per_step, len(train_set)), cfg.seed))
    sampling = SamplingParams(max_new_tokens=s_cfg.max_new_tokens, temperature=s_cfg.temperature,
                              top_k=s_cfg.top_k, top_p=s_cfg.top_p,
                              repetition_penalty=s_cfg.repetition_penalty)
    G = g.group_size
    out_dir = Path(cfg.output_dir)

    # Resume, part 1: weights (policy, and the reference if it was refreshed) into the
    # unsharded modules, before DDP broadcasts or FSDP shards them.
    st = load_checkpoint(resume, model) if resume else None
    if st is not None and st.extra.get("data_fingerprint", data_id) != data_id:
        raise DataError(f"{resume} was written for other training data (fingerprint "
                        f"{st.extra['data_fingerprint']}, now {data_id}): its data position "
                        f"would not continue where that run left off; resume with the same "
                        f"files, or start a new run")
    if st is not None and ref_model is not None:
        if st.reference is not None:
            ref_model.load_state_dict(st.reference)
        elif g.ref_refresh_every and st.step >= g.ref_refresh_every:
            say(f"WARNING: {resume} holds no reference weights (an older checkpoint); the "
                f"reference restarts from the starting model, not the step-"
                f"{st.step - st.step % g.ref_refresh_every} policy")

    fwd = distributed.wrap(model, dd, device)   # DDP for the gradient passes, or FSDP2 in place
    if dd.fsdp and ref_model is not None:       # the reference is sharded like the policy
        distributed.fully_shard_model(ref_model.copy, device)
    # Right after wrapping and before any forward: FSDP2 replaces the parameters by
    # sharded DTensors, and after a no-grad forward (generation) the root's registered
    # parameters are the unsharded ones until the next backward.
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=g.learning_rate,
                                  weight_decay=g.weight_decay, betas=(0.9, g.adam_beta2))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / (g.warmup_steps + 1)))

    start_step, resumed_run_id = 0, ""
    mon_history: list[dict[str, float]] = []     # the monitors' view, kept across resumes
    if st is not None:  # part 2, after every random init above; the RNG states come back last
        if st.optimizer_format == "name":
            distributed.load_optimizer_state(model, optimizer, st.optimizer)
        elif dd.fsdp:
            raise ValueError(f"{resume} keeps its optimizer state by index (an older checkpoint); "
                             f"resume it with dist_strategy ddp")
        else:
            optimizer.load_state_dict(st.optimizer)
        if st.scheduler is not None:
            scheduler.load_state_dict(st.scheduler)
        prompt_batches.skip(st.batches_consumed)
        restore_rng(st.rng)
        start_step, resumed_run_id = st.step, st.run_id
        mon_history = list(st.extra.get("history", []))
        say(f"resumed from {resume} at step {start_step} (run {resumed_run_id})")
    # the state after the last completed step: what a checkpoint on failure holds
    done = {"step": start_step, "rng": capture_rng(), "batches": prompt_batches.consumed}

    vllm_gen = None
    if s_cfg.backend == "vllm":  # a colocated engine per rank; weights pushed after each update
        from .vllm_backend import VllmGenerator
        vllm_gen = VllmGenerator(cfg.model, device=device, seed=cfg.seed + dd.rank,
                                 gpu_memory_utilization=s_cfg.vllm_gpu_memory_utilization)
        if st is not None:
            vllm_gen.load_weights(distributed.full_state_dict(model, dd, all_ranks=True))

    def checkpoint(step: int, rng=None, batches_consumed: int | None = None) -> str:
        """Rank 0 writes. Under FSDP every rank must come here (the gathers are
        collective); under DDP rank 0 needs no other rank."""
        path = out_dir / f"checkpoint-{step}"
        if not (dd.is_main or dd.fsdp):
            return str(path)
        weights = distributed.full_state_dict(model, dd) if dd.fsdp else None
        opt_state = distributed.optimizer_state(model, optimizer, dd)
        ref_state = None
        if ref_model is not None and g.ref_refresh_every:   # the reference moved: keep it
            ref_state = (distributed.full_state_dict(ref_model.copy, dd) if dd.fsdp
                         else ref_model.state_dict())
        if not dd.is_main:
            return str(path)
        return save_resumable(path, model, tokenizer, opt_state, scheduler, step=step,
                              run_id=run_id, rng=rng, model_state=weights,
                              reference_state=ref_state,
                              extra={"history": [h for h in mon_history if h["step"] <= step],
                                     "data_fingerprint": data_id},
                              batches_consumed=(prompt_batches.consumed
                                                if batches_consumed is None else batches_consumed))

    run_config = cfg.model_dump(mode="json", exclude={"reward": {"api_key"}})
    run_id = distributed.broadcast_object(
        client.start_run(cfg.reward.run_name, config=run_config, run_id=resumed_run_id)
        if dd.is_main else None, dd)
    result = TrainResult(run_id=run_id, steps=0, data={
        "train_prompts": float(len(train_set)), "heldout_prompts": float(len(heldout)),
        "prompts_dropped_too_long": float(dropped_train + dropped_heldout)})
    say(f"run {run_id}: model {cfg.model} on {device}, {len(train_set)} train / "
        f"{len(heldout)} held-out prompts ({data_stats.source}), B={g.prompts_per_step} G={G} loss={g.loss_type} "
        f"β={g.beta} μ={g.num_iterations}")

    def run_eval(step: int) -> None:
        """Rank 0 evaluates and logs; under FSDP the other ranks generate the same
        completions unscored (client None), joining rank 0's all-gathers."""
        if not (dd.is_main or dd.fsdp):
            return
        scorer = client if dd.is_main else None
        ev = evaluate(model, tokenizer, heldout, scorer, spec, run_id=run_id, step=step,
                      accuracy_component=accuracy, prompt_fn=prompt_fn,
                      max_new_tokens=s_cfg.max_new_tokens, temperature=s_cfg.eval_temperature,
                      seed=cfg.seed, synced=dd.fsdp, default_task=cfg.data.task)
        pk = None
        if cfg.eval.num_samples > 1:  # sampled pass@k (unbiased estimator) replaces greedy pass@1
            pk = evaluate_pass_at_k(
                model, tokenizer, heldout, scorer, spec, run_id=run_id, step=step,
                accuracy_component=accuracy, prompt_fn=prompt_fn,
                max_new_tokens=s_cfg.max_new_tokens, num_samples=cfg.eval.num_samples,
                ks=cfg.eval.ks, temperature=cfg.eval.temperature, seed=cfg.seed + 17,
                synced=dd.fsdp, default_task=cfg.data.task)
        if not dd.is_main:
            return
        result.evals[step] = ev
        ev_metrics = {"heldout_accuracy": ev.accuracy, "heldout_non_ok": float(ev.non_ok),
                      "eval/pass@1": ev.accuracy}
        if pk is not None:
            ev_metrics.update(pk.metrics())
            say(f"step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in pk.metrics().items()))
        client.log_step(run_id, step, ev_metrics)
        say(f"step {step}: held-out accuracy {ev.accuracy:.3f} ({ev.correct}/{ev.total}, "
            f"non-OK {ev.non_ok}); e.g. {ev.examples[0][0]!r} -> {ev.examples[0][1]!r}"
            if ev.examples else f"step {step}: no held-out set")

    state = "failed"
    try:
        if heldout and start_step == 0:
            run_eval(0)
        bar = tqdm(range(start_step + 1, cfg.steps + 1), desc="grpo", file=sys.stderr,
                   disable=not (progress and dd.is_main))
        for step in bar:
            t0 = time.monotonic()
            t_gen = t_scored = 0.0

            def draw(d: int):
                """Sample and score one prompt batch (d > 0: DAPO's extra draws)."""
                nonlocal t_gen, t_scored
                batch = distributed.shard(next(prompt_batches), dd)      # B (this rank's) problems
                B = len(batch)
                tag = f"s{step}" if d == 0 else f"s{step}-x{d}"
                if dd.enabled:                  # a group never straddles ranks
                    tag = f"r{dd.rank}-{tag}"
                # 1. Sample G completions per prompt; stream each group as soon as it exists.
                model.eval()
                stream = client.open_group_stream(run_id, step, spec)
                parts = []
                for c0 in range(0, B, g.generation_chunk_prompts):
                    chunk = batch[c0:c0 + g.generation_chunk_prompts]
                    seed = (cfg.seed * 1_000_003 + step * 1_009 + c0 + d * 7_919
                            + dd.rank * 104_729)
                    prompts = [prompt_fn(p) for p in chunk]
                    r = (vllm_gen.generate(tokenizer, prompts, G, sampling, seed=seed)
                         if vllm_gen is not None else
                         generate(model, tokenizer, prompts, G, sampling, seed=seed,
                                  synced=dd.fsdp))
                    for j, p in enumerate(chunk):
                        gid = f"{tag}-g{c0 + j}"
                        md = p.sample_metadata(cfg.data.task)
                        stream.submit(gid, [make_sample(f"{gid}-{k}", r.texts[j * G + k],
                                                        prompt=p.question, reference=p.answer,
                                                        metadata=md)
                                            for k in range(G)])
                    parts.append(r)
                ro = cat_rollouts(parts, tokenizer.pad_token_id)           # N = B*G rows
                t1 = time.monotonic()
                scores = stream.collect()                                  # {group_id: [G]}
                t_gen += t1 - t0 if d == 0 else 0.0
                t_scored += time.monotonic() - t1
                model.train()
                # 2. Rewards. Non-OK samples: grpo.non_ok_policy (default: valid=False, out
                #    of the group's statistics and the loss).
                flat = [s for j in range(B) for s in scores[f"{tag}-g{j}"]]  # (B*G,) prompt-major
                for j, p in enumerate(batch):     # each returned score's row task
                    task_of.update((id(sc), p.task) for sc in scores[f"{tag}-g{j}"])
                valid = torch.tensor([s.ok for s in flat])                 # (B*G,)
                rewards = torch.tensor([s.reward if s.ok else float("nan") for s in flat])
                rewards, valid, n_dropped = apply_non_ok_policy(rewards, valid, G, g.non_ok_policy)
                non_ok_stats["groups_dropped_non_ok"] += n_dropped
                if g.overlong_cache_len:  # DAPO eq. 13, added to the reward
                    rewards = rewards + soft_overlong_penalty(
                        ro.completion_mask.sum(dim=1).cpu(), s_cfg.max_new_tokens,
                        g.overlong_cache_len, g.overlong_penalty_factor)
                return ro, flat, rewards, valid

            ds_stats: dict[str, float] = {}
            task_of: dict[int, str | None] = {}          # id(SampleScore) -> its row's task
            non_ok_stats = {"groups_dropped_non_ok": 0}
            if g.dynamic_sampling:  # data parallel: global counts, every rank draws as often
                kept, ds_stats = dynamic_fill(
                    draw, g.prompts_per_step, G, g.max_extra_draws, rank=dd.rank,
                    gather=lambda keep: distributed.all_gather_object(keep, dd))
                ro = cat_rollouts([k[0] for k in kept], tokenizer.pad_token_id)
                flat = [s for k in kept for s in k[1]]
                rewards = torch.cat([k[2] for k in kept])
                valid = torch.cat([k[3] for k in kept])
            else:
                ro, flat, rewards, valid = draw(0)
            B = len(flat) // G
            t_gen, t_scored = t0 + t_gen, t0 + t_gen + t_scored

            # "batch" scale under data parallelism: the std of every rank's rewards
            batch_std = (distributed.global_std(rewards[valid], dd)
                         if g.scale == "batch" and dd.enabled else None)
            adv = group_advantages(rewards, G, g.scale, valid=valid, eps=g.adv_eps,
                                   batch_std=batch_std)
            mask = ro.completion_mask * valid.long().unsqueeze(1).to(ro.completion_mask.device)
            if g.mask_truncated_completions:  # DAPO overlong filtering: no loss when cut off
                mask = mask * (~ro.truncated).long().unsqueeze(1).to(mask.device)
            adv = adv.to(device)
            N = B * G                    # this rank's sequences (ranks may differ, even 0)
            # Gradients are averaged over ranks: each rank divides by the global counts / W
            # (distributed.loss_normalisers), so the update is the whole batch's.
            num_seqs, num_tokens = distributed.loss_normalisers(N, float(mask.sum()), dd)

            # Every rank runs as many passes as the busiest one, or the collectives inside
            # them (DDP's all-reduce, FSDP's all-gathers) pair up wrongly: the extra ones
            # are padding passes (None) on a 1-token batch whose loss is multiplied by 0.
            micro: list[slice | None] = [slice(i, min(i + g.micro_batch_size, N))
                                         for i in range(0, N, g.micro_batch_size)]
            micro += [None] * (distributed.all_reduce_max(len(micro), dd) - len(micro))
            padding = distributed.padding_batch(tokenizer.pad_token_id, device)

            def batch(mb: slice | None):
                return padding if mb is None else (ro.prompt_ids[mb], ro.prompt_mask[mb],
                                                   ro.completion_ids[mb], ro.completion_mask[mb])

            # 3. π_old (only needed when μ > 1: with μ = 1 it equals π_θ.detach()) and π_ref.
            old_logp = torch.zeros(mask.shape, device=device) if g.num_iterations > 1 else None
            ref_logp = torch.zeros(mask.shape, device=device) if ref_model is not None else None
            with torch.no_grad(), amp():
                for mb in micro:
                    if old_logp is not None:
                        lp = token_logprobs(model, *batch(mb), temperature=s_cfg.temperature)[0]
                        if mb is not None:
                            old_logp[mb] = lp
                    if ref_logp is not None:
                        with ref_model.context():   # LoRA: adapters disabled = the base
                            lp = token_logprobs(ref_model.module(), *batch(mb),
                                                temperature=s_cfg.temperature)[0]
                        if mb is not None:
                            ref_logp[mb] = lp

            # 4. μ passes over the batch; each pass accumulates micro-batch gradients and
            #    takes one optimiser step. Normalisers are the whole batch's (num_seqs, num_tokens).
            ent_sum = kl_sum = clip_sum = loss_sum = 0.0
            grad_norm = 0.0
            for it in range(g.num_iterations):
                clip_sum = 0.0
                for mb in micro:
                    with amp():
                        logp, ent = token_logprobs(fwd, *batch(mb), temperature=s_cfg.temperature,
                                                   with_entropy=(it == 0 and mb is not None))
                    if mb is None:      # padding pass: zero gradient, the same collectives
                        (logp.sum() * 0.0).backward()
                        continue
                    old = old_logp[mb] if old_logp is not None else logp.detach()
                    ref = ref_logp[mb] if ref_logp is not None else None
                    loss = grpo_loss(logp, old, adv[mb], mask[mb], eps_low=g.clip_eps_low,
                                     eps_high=g.clip_eps_high, beta=g.beta, ref_logp=ref,
                                     loss_type=g.loss_type,
                                     max_completion_length=s_cfg.max_new_tokens,
                                     num_sequences=num_seqs, num_tokens=num_tokens,
                                     importance_sampling_level=g.importance_sampling_level)
                    if g.loss_type == "bnpo":  # bnpo is a per-micro-batch token mean
                        loss = loss * ((mb.stop - mb.start) / num_seqs)
                    loss.backward()
                    with torch.no_grad():  # statistics, summed as token counts
                        m = mask[mb].float()
                        log_w = importance_log_ratio(logp, old, mask[mb],
                                                     g.importance_sampling_level)
                        _, clipped = clipped_surrogate(log_w, torch.zeros_like(log_w), adv[mb],
                                                       g.clip_eps_low, g.clip_eps_high)
                        clip_sum += float((clipped.float() * m).sum())
                        if it == 0:
                            ent_sum += float((ent * m).sum())
                            loss_sum += float(loss)
                            if ref is not None:
                                kl_sum += float((k3_kl(logp, ref) * m).sum())
                grad_norm = distributed.grad_norm_value(
                    torch.nn.utils.clip_grad_norm_(model.parameters(), g.max_grad_norm))
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            if ref_model is not None and g.ref_refresh_every and step % g.ref_refresh_every == 0:
                ref_model.refresh()                      # the policy becomes the new π_ref
            if vllm_gen is not None:                     # the engine samples with the new weights
                vllm_gen.load_weights(distributed.full_state_dict(model, dd, all_ranks=True))
            done = {"step": step, "rng": capture_rng(), "batches": prompt_batches.consumed}
            if on_step is not None:
                on_step(step, model)

            # 5. Metrics: console + LogStep.
            ok_rewards = rewards[valid]
            metrics: dict[str, float] = {
                "reward_mean": float(ok_rewards.mean()) if ok_rewards.numel() else math.nan,
                "reward_std": (float(ok_rewards.std()) if ok_rewards.numel() > 1
                               else 0.0 if ok_rewards.numel() else math.nan),
                "zero_spread_frac": zero_spread_fraction(rewards, G, valid=valid) if B else math.nan,
                "clip_frac": clip_sum / max(num_tokens, 1.0),
                "entropy": ent_sum / max(num_tokens, 1.0),
                "completion_len_mean": float(ro.completion_mask.sum(dim=1).float().mean()),
                "truncated_frac": float(ro.truncated.float().mean()),
                "non_ok_samples": float(sum(not s.ok for s in flat)),
                **{f"non_ok/{st_}": float(sum(s.status == st_ for s in flat))
                   for st_ in NON_OK_STATUSES},
                "groups_dropped_non_ok": float(non_ok_stats["groups_dropped_non_ok"]),
                "loss": loss_sum,
                "grad_norm": grad_norm,
                "lr": scheduler.get_last_lr()[0],
                **ds_stats,
            }
            if ref_logp is not None:
                metrics["kl"] = kl_sum / max(num_tokens, 1.0)
            for name in comp_names:
                vals = [c.reward for s in flat if (c := s.component(name)) and c.status == "OK"]
                metrics[f"reward/{name}"] = sum(vals) / len(vals) if vals else math.nan
            tasks = [task_of[id(sc)] for sc in flat]     # (B*G,) the kept samples' tasks
            for task in data_tasks:   # the data's tasks (the same keys on every rank): per task
                vals = [float(r) for r, v, t in zip(rewards.tolist(), valid.tolist(), tasks)
                        if v and t == task]
                metrics[f"reward/task/{task}"] = sum(vals) / len(vals) if vals else math.nan
            metrics["generate_time_s"] = t_gen - t0
            metrics["score_wait_time_s"] = t_scored - t_gen     # scoring not hidden by generation
            metrics["step_time_s"] = time.monotonic() - t0
            # over ranks (no-op alone): means averaged, this rank's counts summed
            metrics = distributed.mean_metrics(metrics, dd, sums=RANK_COUNTS)
            if cfg.monitors:  # trainer_client/monitors.py: warn + monitor/<name> = 1
                for ev in check_monitors(mon_history + [{"step": step, **metrics}]):
                    metrics[ev.metric] = 1.0
                    say(f"WARNING step {step}: monitor {ev.name}: {ev.message}")
            if dd.is_main:
                client.log_step(run_id, step, {k: v for k, v in metrics.items()
                                               if not math.isnan(v)})
            result.history.append({"step": step, **metrics})
            mon_history.append({"step": step, **metrics})
            result.steps = step
            bar.set_postfix(r=f"{metrics['reward_mean']:.3f}", kl=f"{metrics.get('kl', 0):.4f}",
                            len=f"{metrics['completion_len_mean']:.1f}")
            say(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

            if cfg.save_every and step % cfg.save_every == 0:
                checkpoint(step, done["rng"], done["batches"])
            if heldout and cfg.eval_every and step % cfg.eval_every == 0 and step != cfg.steps:
                run_eval(step)
        if heldout:
            run_eval(cfg.steps)
        result.final_dir = str(out_dir / "final")
        final_weights = distributed.full_state_dict(model, dd) if dd.fsdp else None  # collective
        if dd.is_main:
            result.final_dir = save_model(model, tokenizer, out_dir / "final",
                                          merged=g.lora_save_merged, state_dict=final_weights)
        state = "finished"
    except RewardServiceError as e:  # leave a resumable checkpoint of the last completed step
        path = checkpoint(done["step"], done["rng"], done["batches"])
        raise RewardServiceError(
            f"{e}\nthe run stopped after step {done['step']}; a resumable checkpoint is at "
            f"{path}: continue with `grpo-train train --resume {path}` (same config)") from e
    finally:
        summary = {"steps": float(result.steps)}
        if data_stats.source == "files" or dropped_train or dropped_heldout:
            summary.update(result.data)
        if result.evals:
            first, last = min(result.evals), max(result.evals)
            summary.update(heldout_accuracy_before=result.evals[first].accuracy,
                           heldout_accuracy_after=result.evals[last].accuracy)
        try:
            if dd.is_main:
                client.finish_run(run_id, state, summary)
        except RewardServiceError:
            if state == "finished":
                raise            # otherwise keep the original error, not this one
        finally:
            result.scores_returned = client.scores_returned
            result.components_returned = client.components_returned
            if own_client:
                client.close()
    return result
