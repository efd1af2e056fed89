"""Stored score records as plain data, and the samples they make up. Pure (no I/O).

A stored score is one *component* of one sample: a sample scored with a spec of k
components is k rows sharing (request_id, sample_index), and every one of them repeats
the sample's combined outcome (`total_status`, `total_reward`) and its texts.

Texts. A row's texts are in one of four states (`TextState`):
    present      fetched and stored
    dropped      the retention policy removed them; the SHA-256 hashes remain
    not_stored   the server runs with store_texts=false (hash of a non-empty text, no text)
    not_fetched  the query did not ask for them (include_texts=False)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from rewards_client import STATUS_NAMES
NON_OK = ("ABSTAIN", "TIMEOUT", "ERROR")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def sha256(text: str) -> str:
    """The server's text hash (scoring.sha256): SHA-256 of the UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode()).hexdigest()


class TextState(str, Enum):
    PRESENT = "present"
    DROPPED = "dropped"
    NOT_STORED = "not_stored"
    NOT_FETCHED = "not_fetched"


@dataclass(frozen=True)
class Row:
    """One stored score component (a `ScoreRecord` without the protobuf)."""

    score_id: int
    run_id: str
    step: int
    group_id: str
    request_id: str
    sample_index: int
    verifier: str
    status: str                        # OK | ABSTAIN | TIMEOUT | ERROR
    reward: float | None
    total_status: str
    total_reward: float | None
    weight: float = 1.0
    gate: bool = False
    component_index: int = 0
    verifier_version: str = ""
    params_hash: str = ""
    params_json: str = "{}"
    sample_id: str = ""
    reason: str = ""
    latency_ms: float = 0.0
    cached: bool = False
    worker: str = ""
    team: str = ""
    created_at: str = ""
    prompt_sha256: str = EMPTY_SHA256
    completion_sha256: str = EMPTY_SHA256
    reference_sha256: str = EMPTY_SHA256
    text_state: TextState = TextState.NOT_FETCHED
    prompt: str | None = None          # set only when text_state is PRESENT
    completion: str | None = None
    reference_json: str | None = None
    completion_chars: int | None = None  # len(completion) when it was present, even if not kept

    def __post_init__(self) -> None:
        if self.completion is not None and self.completion_chars is None:
            object.__setattr__(self, "completion_chars", len(self.completion))

    @property
    def sample_key(self) -> tuple[str, int]:
        return (self.request_id, self.sample_index)


def text_state(rec: Any, fetched: bool) -> TextState:
    """Whether `rec`'s texts are there, and if not, why (see the module docstring)."""
    if rec.texts_dropped:
        return TextState.DROPPED
    if not fetched:
        return TextState.NOT_FETCHED
    # The server stores None and sends "" when store_texts is off; a genuinely empty
    # completion hashes to EMPTY_SHA256.
    if not rec.completion and rec.completion_sha256 != EMPTY_SHA256:
        return TextState.NOT_STORED
    return TextState.PRESENT


def row_from_pb(rec: Any, texts_fetched: bool = False, keep_texts: bool = True) -> Row:
    """keep_texts=False keeps only the completion's length (what a report needs)."""
    state = text_state(rec, texts_fetched)
    present = state is TextState.PRESENT
    chars = len(rec.completion) if present else None
    present = present and keep_texts
    return Row(score_id=rec.score_id, run_id=rec.run_id, step=rec.step, group_id=rec.group_id,
               request_id=rec.request_id, sample_index=rec.sample_index, verifier=rec.verifier,
               status=STATUS_NAMES[rec.status], reward=rec.reward if rec.HasField("reward") else None,
               total_status=STATUS_NAMES[rec.total_status],
               total_reward=rec.total_reward if rec.HasField("total_reward") else None,
               weight=rec.weight, gate=rec.gate, component_index=rec.component_index,
               verifier_version=rec.verifier_version, params_hash=rec.params_hash,
               params_json=rec.params_json or "{}", sample_id=rec.sample_id, reason=rec.reason,
               latency_ms=rec.latency_ms, cached=rec.cached, worker=rec.worker, team=rec.team,
               created_at=rec.created_at, prompt_sha256=rec.prompt_sha256,
               completion_sha256=rec.completion_sha256, reference_sha256=rec.reference_sha256,
               text_state=state, prompt=rec.prompt if present else None,
               completion=rec.completion if present else None,
               reference_json=rec.reference_json if present else None, completion_chars=chars)


@dataclass
class Sample:
    """One scored sample: its component rows (in component order) and combined outcome."""

    rows: list[Row] = field(default_factory=list)

    @property
    def first(self) -> Row:
        return self.rows[0]

    @property
    def key(self) -> tuple[str, int]:
        return self.first.sample_key

    @property
    def step(self) -> int:
        return self.first.step

    @property
    def group_id(self) -> str:
        return self.first.group_id

    @property
    def total_status(self) -> str:
        return self.first.total_status

    @property
    def total_reward(self) -> float | None:
        return self.first.total_reward

    @property
    def text_state(self) -> TextState:
        return self.first.text_state

    def component(self, verifier: str) -> Row | None:
        """The first component row scored by `verifier` (by component order), if any."""
        return next((r for r in sorted(self.rows, key=lambda r: r.component_index) if r.verifier == verifier), None)


def group_samples(rows: Iterable[Row]) -> list[Sample]:
    """Rows -> samples, in order of first appearance; no assumption on row order."""
    samples: dict[tuple[str, int], Sample] = {}
    for r in rows:
        samples.setdefault(r.sample_key, Sample()).rows.append(r)
    return list(samples.values())


def iter_request_chunks(rows: Iterable[Row], max_samples: int) -> Iterator[list[Sample]]:
    """Stream rows (in score-id order) as lists of whole requests of about `max_samples`
    samples, holding at most one chunk in memory.

    A request's rows are written by one store call, so their ids are consecutive: a chunk
    is closed only at a change of request_id. Rows of a sample already handed out (which
    the store does not produce) are ignored rather than replayed twice.
    """
    chunk: dict[tuple[str, int], Sample] = {}
    done: set[tuple[str, int]] = set()
    last_request = None
    for r in rows:
        if r.request_id != last_request and len(chunk) >= max_samples:
            done.update(chunk)
            yield list(chunk.values())
            chunk = {}
        last_request = r.request_id
        if r.sample_key in done:
            continue
        chunk.setdefault(r.sample_key, Sample()).rows.append(r)
    if chunk:
        yield list(chunk.values())


def recover_reference(text: str | None, reference_sha256: str) -> Any:
    """The reference value a sample was scored with, from its stored text.

    The store keeps a string reference verbatim and an object (tests, rubric) as
    sorted-key JSON. Text that parses to a JSON object or list is taken as that object,
    anything else as the string; an empty reference with the empty hash was None.
    """
    if text is None or (text == "" and reference_sha256 == EMPTY_SHA256):
        return None
    if text[:1] in "{[":
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, (dict, list)):
            return value
    return text


def parse_time(text: str, flag: str) -> str:
    """An RFC 3339 time from the command line -> normalised RFC 3339 (UTC); naive = UTC.

    Raises ValueError naming the flag.
    """
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not an RFC 3339 time (e.g. 2026-11-22T08:00:00Z)") from None
    dt = dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat()
