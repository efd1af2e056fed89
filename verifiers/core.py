"""Types shared by every verifier: the status, the result and the verifier base class.

A verifier is a small object with a `name`, a `version`, a pydantic `Params` model and
one pure call::

    verify(completion: str, reference: Any, params: Params) -> VerifierResult

It never raises for a bad *completion* (that is a result: OK with reward 0, ABSTAIN,
ERROR); it raises `InvalidReferenceError` for a reference it cannot use.
"""
from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .errors import InvalidReferenceError


class Status(str, enum.Enum):
    """Outcome of one verifier call (mirrors `rewards.v1.Status`)."""

    OK = "OK"            # the verifier decided; `reward` is set
    ABSTAIN = "ABSTAIN"  # the verifier does not apply (no answer found, unsupported input)
    TIMEOUT = "TIMEOUT"  # ran past its wall-clock limit and was killed
    ERROR = "ERROR"      # the verifier failed (crash, memory limit, bad reference)


@dataclass(frozen=True)
class VerifierResult:
    """One verifier's verdict on one completion.

    `reward` is a float (usually in [0, 1]) when `status` is OK and None otherwise:
    a failure is never a reward of 0.
    """

    status: Status
    reward: float | None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.status is Status.OK) != (self.reward is not None):
            raise ValueError(f"status {self.status.value} with reward {self.reward!r}: "
                             "a reward is set exactly when the status is OK")

    @classmethod
    def ok(cls, reward: float, reason: str = "", **details: Any) -> "VerifierResult":
        return cls(Status.OK, float(reward), reason, details)

    @classmethod
    def abstain(cls, reason: str, **details: Any) -> "VerifierResult":
        return cls(Status.ABSTAIN, None, reason, details)

    @classmethod
    def error(cls, reason: str, **details: Any) -> "VerifierResult":
        return cls(Status.ERROR, None, reason, details)

    @classmethod
    def timeout(cls, reason: str, **details: Any) -> "VerifierResult":
        return cls(Status.TIMEOUT, None, reason, details)


class Params(BaseModel):
    """Base of every verifier's parameter model: frozen, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Verifier:
    """Base class. Subclasses set the class attributes and implement `verify`.

    `isolated = True` runs the call in the killable worker pool (CPU-heavy or
    adversarial work such as SymPy); `False` runs it on a thread pool of the server's
    named `thread_pool` ("inline" for cheap checks; "sandbox" for verifiers that wait on
    sandboxed subprocesses, so slow programs never starve the other verifiers; "judge" for
    remote model endpoints; "model" for local models behind a micro-batcher).
    `timeout_s` is the default wall-clock limit per call in the pool.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[Params]] = Params
    isolated: ClassVar[bool] = False
    thread_pool: ClassVar[str] = "inline"
    timeout_s: ClassVar[float] = 5.0
    requires_reference: ClassVar[bool] = True
    # True: `verify` also takes `prompt=` (judges and reward models score the completion
    # in the context of its prompt); the result then depends on the prompt too.
    uses_prompt: ClassVar[bool] = False

    def verify(self, completion: str, reference: Any, params: Any) -> VerifierResult:
        raise NotImplementedError

    @classmethod
    def check_reference(cls, reference: Any) -> None:
        """Cheap up-front check of the reference's presence and shape, run before any
        work is scheduled. Raises InvalidReferenceError saying what is wrong."""
        if cls.requires_reference and (reference is None or reference == ""):
            raise InvalidReferenceError(f"{cls.name} needs a reference (the gold answer or tests)")

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this host can run the verifier, and why not."""
        return True, ""


def params_hash(params: BaseModel | dict[str, Any]) -> str:
    """Stable short hash of a parameter set (sorted-key JSON, sha256, 16 hex chars)."""
    data = params.model_dump(mode="json") if isinstance(params, BaseModel) else params
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
