"""The HTTP/JSON face (`http_port`) and the Prometheus endpoint (`metrics_port`) of a server.

Both run in the server's own process and event loop, on Starlette apps served by uvicorn.

The HTTP face owns no scoring, auth, quota or store code: each request is transcoded to
the protobuf request (google.protobuf.json_format) and sent to this very process's gRPC
service over a private Unix socket (a 0700 folder of its own), with the caller's key as
the gRPC `authorization` metadata. Auth, quotas, validation and the store are therefore
exactly those of gRPC; the gRPC status comes back as an HTTP code (`HTTP_STATUS`) and a
JSON body `{"error": {"code": "NOT_FOUND", "message": "..."}}` whose message says what to fix.

Routes:
    POST /v1/score          the protobuf JSON mapping of ScoreRequest -> ScoreResponse
    POST /openrlhf/SPEC     OpenRLHF's remote reward contract, scored with the stored spec
                            SPEC ("math-r1", or "math-r1@3" for a version); see `openrlhf`
    GET  /healthz           the gRPC health status of the service (200 SERVING, else 503)

Auth: `Authorization: Bearer KEY`, or HTTP Basic with the key as the password (so that a
client that can only be given a URL, like OpenRLHF's `--remote_rm_url`, can carry it as
`http://team:KEY@host:port/openrlhf/SPEC`). The key, and whether the team's quota refuses
it now (429), are checked before the body is read.

Bounds against hostile or broken callers: a request's head and then its body must each
arrive within `http_read_timeout_s`; bodies held at once are capped (`BodyBudget`, 503; a
team holds half at most); JSON transcoding runs on two threads of its own (teams take
turns, one thread each at most), never on the event loop that serves gRPC; numbers
outside a double are refused. A sample without a reward is never a silent 0 on the
OpenRLHF route: see `openrlhf_response` and `?failed_reward=`.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import re
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from google.protobuf import json_format, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc

from .errors import AuthError, QuotaExceededError
from .fairness import FairGate
from .metrics import NO_METRICS, NoMetrics, ServiceMetrics

if TYPE_CHECKING:
    from .config import ServerConfig

log = logging.getLogger("reward_server.http")

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,  # 413 when no retry-after trailer: a size limit, not a rate
    grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
OPENRLHF_FIELDS = ("query", "prompts", "labels", "metas")
_SPECIAL_SUFFIXES = ("</s>", "<eos>", "<pad>", "<end_of_turn>")


class HttpError(Exception):
    """A request the HTTP face refuses before (or instead of) calling the service."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def grpc_metadata(authorization: str) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata for an HTTP `Authorization` header: `Bearer KEY`, or Basic with the
    key as the password (or as the user when the password is empty). Raises HttpError 401."""
    scheme, _, cred = authorization.strip().partition(" ")
    cred = cred.strip()
    if not scheme or (scheme.lower() == "bearer" and not cred):  # `Bearer $UNSET_VARIABLE`: no key
        return ()
    if scheme.lower() == "bearer":
        key = cred
    elif scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise HttpError(401, "UNAUTHENTICATED", "Authorization: Basic credentials are not base64 of "
                            "'user:KEY'") from None
        key = password or user
    else:
        raise HttpError(401, "UNAUTHENTICATED", "Authorization must be 'Bearer KEY' (or Basic auth with the key "
                        "as the password)", {"WWW-Authenticate": "Bearer"})
    if not key or not key.isascii() or not key.isprintable() or " " in key:
        raise HttpError(401, "UNAUTHENTICATED", "malformed API key in Authorization: expected rk_<prefix>_<secret>",
                        {"WWW-Authenticate": "Bearer"})
    return (("authorization", f"Bearer {key}"),)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON text, an infinity once read
        raise ValueError(f"the number {text[:40]} is out of the range of a double")
    return value


def _double_int(text: str) -> int:
    value = int(text)
    if len(text) > 300:  # 10**309 and beyond cannot become a protobuf number (OverflowError, a 500)
        try:
            float(value)
        except OverflowError:
            raise ValueError(f"the number {text[:40]}... is out of the range of a double") from None
    return value


def parse_json(body: bytes) -> Any:
    """The JSON document in `body`. Raises HttpError 400 saying where it is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HttpError(400, "INVALID_ARGUMENT", f"body: not UTF-8 (byte {e.start}); send JSON text") from None
    if not text.strip():
        raise HttpError(400, "INVALID_ARGUMENT", "body: empty; send a JSON object")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_double_int)
    except json.JSONDecodeError as e:
        raise HttpError(400, "INVALID_ARGUMENT", f"body: not valid JSON: {e.msg} at line {e.lineno} column "
                        f"{e.colno} (character {e.pos})") from None
    except (ValueError, RecursionError) as e:
        raise HttpError(400, "INVALID_ARGUMENT", f"body: not valid JSON: {e}") from None


class BodyBudget:
    """The bytes of request bodies the face holds at once (being received, or waiting to be
    transcoded), bounded: `take` raises HttpError 503 past `limit_bytes`, or past
    `team_limit_bytes` for one team's bodies (else one team's slow uploads held the whole
    budget and every other team got 503 until they ended)."""

    def __init__(self, limit_bytes: int, team_limit_bytes: int | None = None):
        self.limit_bytes, self.held = limit_bytes, 0
        self.team_limit_bytes = team_limit_bytes or limit_bytes
        self.held_by_team: dict[str, int] = {}

    def take(self, n: int, team: str | None = None) -> None:
        """Hold `n` more bytes (for `team`, when known). Raises HttpError 503."""
        mine = self.held_by_team.get(team, 0) if team is not None else 0
        if team is not None and mine + n > self.team_limit_bytes:
            raise HttpError(503, "UNAVAILABLE", f"team {team} has {mine} bytes of request bodies being received "
                            f"(limit {self.team_limit_bytes} per team); retry shortly", {"Retry-After": "1"})
        if self.held + n > self.limit_bytes:
            raise HttpError(503, "UNAVAILABLE", f"the server holds {self.held} bytes of request bodies being "
                            f"received (limit {self.limit_bytes}); retry shortly", {"Retry-After": "1"})
        self.held += n
        if team is not None:
            self.held_by_team[team] = mine + n

    def give_back(self, n: int, team: str | None = None) -> None:
        self.held -= n
        if team is not None and n:
            left = self.held_by_team.get(team, 0) - n
            if left > 0:
                self.held_by_team[team] = left
            else:
                self.held_by_team.pop(team, None)


async def read_body(request: Request, limit_bytes: int, timeout_s: float = 30.0,
                    budget: BodyBudget | None = None, team: str | None = None) -> bytes:
    """The request body, refused with 413 past `limit_bytes` (before reading it when the
    Content-Length says so, else as soon as the stream passes the limit), and with 408 when
    it is not all received within `timeout_s` (a slow sender would hold a connection and
    its buffer for as long as it likes)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_body(request, limit_bytes, budget, team)
    except TimeoutError:
        raise HttpError(408, "DEADLINE_EXCEEDED", f"body: not received within {timeout_s:g} s of the headers "
                        f"(http_read_timeout_s); send the whole body at once", {"Connection": "close"}) from None


async def _read_body(request: Request, limit_bytes: int, budget: BodyBudget | None, team: str | None) -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = HttpError(413, "RESOURCE_EXHAUSTED", f"body: larger than the limit of {limit_bytes} bytes "
                          f"(max_message_bytes); split the batch")
    if declared.isdigit() and int(declared) > limit_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise too_large
        if budget is not None:  # given back by the caller once the request is answered
            budget.take(len(chunk), team)
            request.state.body_team = team
            request.state.body_bytes_held = getattr(request.state, "body_bytes_held", 0) + len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


# The special tokens that may end a decoded query, spelt backwards, each after any whitespace:
# matched from the start of the reversed query, so that the cut is one linear scan (a slice
# per token was quadratic: a 4 MB query of `</s>` held a transcoding thread for minutes).
# `<|...|>` and `<｜...｜>` hold 1 to 66 characters without whitespace or angle brackets.
_TRAILING_SPECIALS_REVERSED = re.compile(
    r"(?:\s*(?:>\|[^\s<>]{1,66}\|<|>｜[^\s<>]{1,66}｜<|"
    + "|".join(re.escape(s[::-1]) for s in _SPECIAL_SUFFIXES) + "))*")
_WHITESPACE = re.compile(r"\s*")
_STRIP_CHUNK = 1 << 15  # characters per regex call: the regex engine holds the GIL (and so the event loop)


def strip_special_tokens(text: str) -> str:
    """`text` without the special tokens (and the whitespace around them) that end it:
    `<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, `<｜end▁of▁sentence｜>`, `</s>`, `<eos>`,
    `<pad>`, `<end_of_turn>`, repeated (right padding). Whitespace before the first of them
    is kept. Linear in the length."""
    if not text.rstrip().endswith(">"):
        return text
    rev, pos = text[::-1], 0
    while True:
        end = _TRAILING_SPECIALS_REVERSED.match(rev, pos, pos + _STRIP_CHUNK).end()
        if end == pos:  # none at pos, or a run of whitespace longer than a chunk before one
            ws = _WHITESPACE.match(rev, pos).end()
            end = _TRAILING_SPECIALS_REVERSED.match(rev, ws, ws + _STRIP_CHUNK).end() if ws > pos else ws
            if end == ws:
                break
        pos = end
    return text[:len(text) - pos] if pos else text


def _after_truncated_prompt(query: str, prompt: str) -> int:
    """Where the response starts in a query whose prompt was cut from the left (OpenRLHF
    keeps the last tokens of a prompt longer than its budget), or -1: the query starts with
    a tail of `prompt` (up to 3 characters of a split multi-byte character may precede it)."""
    for skip in range(4):
        probe = query[skip:skip + 64]
        if len(probe) < 16:
            return -1
        at, tries = prompt.find(probe), 0
        while at >= 0 and tries < 100:  # bounded on repetitive prompts
            if query.startswith(prompt[at:], skip):
                return skip + len(prompt) - at
            at, tries = prompt.find(probe, at + 1), tries + 1
    return -1


# What may precede the prompt in a decoded query: left padding, BOS and other special tokens
# (`<pad>`, `<|endoftext|>`, `<s>`, `[PAD]`, `[CLS]`), and whitespace. Linear: each
# alternative starts with its own character.
_LEADING_SPECIALS = re.compile(r"(?:\s|<[^\s<>]{1,64}>|\[[A-Z_]{2,16}\])*")


def completion_from_query(query: str, prompt: str | None, where: str) -> str:
    """The response in OpenRLHF's `query` (the decoded prompt + response sequence, special
    tokens kept): what follows `prompt` (or the tail of it that a left-truncated prompt
    keeps) at the start of the query, after left padding and other special tokens only,
    without the special tokens that end it. With an empty prompt the whole query is the
    response. Raises HttpError 400 when the query does not start with the prompt: a prompt
    found later is inside the response, and cutting there would let the response choose
    which part of itself is scored."""
    if prompt:
        at = query.find(prompt)
        if at >= 0 and _LEADING_SPECIALS.fullmatch(query, 0, at):
            start = at + len(prompt)
        else:
            start = _after_truncated_prompt(query, prompt)
        if start < 0:
            raise HttpError(400, "INVALID_ARGUMENT", f"query[{where}]: does not start with prompts[{where}] "
                            f"({prompt[:60]!r}...) after its padding; the response is cut out of the query after "
                            f"its prompt, so send the prompt exactly as decoded in the query")
        query = query[start:]
    return strip_special_tokens(query)


def _list_field(body: dict[str, Any], name: str, n: int | None) -> list[Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise HttpError(400, "INVALID_ARGUMENT", f"{name}: must be a JSON array, got {type(value).__name__}")
    if n is not None and len(value) != n:
        raise HttpError(400, "INVALID_ARGUMENT", f"{name}: {len(value)} items for {n} queries; give one per query")
    return value


def openrlhf_request(spec: str, body: Any, run_id: str, step: int) -> pb.ScoreRequest:
    """The ScoreRequest for an OpenRLHF remote reward body `{"query": [...], "prompts": [...],
    "labels": [...]}` (labels and `metas` optional; labels are the references, metas the
    samples' metadata). Raises HttpError 400 naming the field."""
    if not isinstance(body, dict):
        raise HttpError(400, "INVALID_ARGUMENT", f"body: must be a JSON object with 'query', 'prompts' and 'labels', "
                        f"got {type(body).__name__}")
    unknown = sorted(set(body) - set(OPENRLHF_FIELDS))
    if unknown:
        raise HttpError(400, "INVALID_ARGUMENT", f"body: unknown field(s) {', '.join(unknown)}; known: "
                        f"{', '.join(OPENRLHF_FIELDS)}")
    if "query" not in body:
        raise HttpError(400, "INVALID_ARGUMENT", "query: required (the decoded prompt + response of each sample)")
    if body.get("prompts") is None:  # else the prompt (its examples, its hints) would be scored as the response
        raise HttpError(400, "INVALID_ARGUMENT", "prompts: required (the prompt of each query, cut off before "
                        "scoring; \"\" for a query that is all response)")
    queries = _list_field(body, "query", None) or []
    prompts = _list_field(body, "prompts", len(queries))
    labels = _list_field(body, "labels", len(queries))
    metas = _list_field(body, "metas", len(queries))
    samples = []
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise HttpError(400, "INVALID_ARGUMENT", f"query[{i}]: must be a string, got {type(query).__name__}")
        prompt = prompts[i]
        if not isinstance(prompt, str):
            raise HttpError(400, "INVALID_ARGUMENT", f"prompts[{i}]: must be a string, got {type(prompt).__name__}")
        sample = pb.Sample(id=str(i), prompt=prompt or "", completion=completion_from_query(query, prompt, str(i)))
        try:
            if labels is not None and labels[i] is not None:
                json_format.ParseDict(labels[i], sample.reference)
        except json_format.ParseError as e:
            raise HttpError(400, "INVALID_ARGUMENT", f"labels[{i}]: {e}") from None
        if metas is not None and metas[i] is not None:
            if not isinstance(metas[i], dict):
                raise HttpError(400, "INVALID_ARGUMENT", f"metas[{i}]: must be an object (the sample's metadata)")
            try:
                json_format.ParseDict(metas[i], sample.metadata)
            except json_format.ParseError as e:
                raise HttpError(400, "INVALID_ARGUMENT", f"metas[{i}]: {e}") from None
        samples.append(sample)
    return pb.ScoreRequest(run_id=run_id, step=step, samples=samples, spec=pb.RewardSpec(name=spec))


def _has_reward(r: pb.SampleResult) -> bool:
    return r.status == pb.STATUS_OK and r.HasField("reward") and math.isfinite(r.reward)


def openrlhf_response(response: pb.ScoreResponse, failed_reward: float | None) -> dict[str, Any]:
    """OpenRLHF's answer: `rewards` (advantages), `scores` (dynamic filtering) and `extra_logs`
    (logged per sample), plus our `statuses`/`reasons`. A sample that has no reward (ERROR,
    TIMEOUT, ABSTAIN, or a non-finite total) gets `failed_reward`, and
    `extra_logs.reward_service_ok` is 0 for it. With `failed_reward` None such a batch is
    refused (HttpError 503 with Retry-After when one is a TIMEOUT or ERROR, the service's own
    failure that a retry may cure, else 422): a trainer that reads only `rewards` could not
    tell a stand-in 0 from a real one."""
    missing = [(i, r) for i, r in enumerate(response.results) if not _has_reward(r)]
    if missing and failed_reward is None:
        listed = "; ".join(f"query[{i}]: {pb.Status.Name(r.status).removeprefix('STATUS_')}"
                           + (" with a non-finite reward" if r.status == pb.STATUS_OK else "")
                           + (f" ({r.reason[:200]})" if r.reason else "") for i, r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        transient = any(r.status in (pb.STATUS_TIMEOUT, pb.STATUS_ERROR) for _, r in missing)
        raise HttpError(503 if transient else 422, "UNAVAILABLE" if transient else "FAILED_PRECONDITION",
                        f"{len(missing)} sample(s) have no reward: {listed}{more}. Retry, or add "
                        f"?failed_reward=X to the URL to give such samples X (the answer then marks them with "
                        f"extra_logs.reward_service_ok 0)", {"Retry-After": "1"} if transient else None)
    rewards = [r.reward if _has_reward(r) else failed_reward for r in response.results]
    ok = [1.0 if _has_reward(r) else 0.0 for r in response.results]
    return {"rewards": rewards, "scores": list(rewards), "extra_logs": {"reward_service_ok": ok},
            "statuses": [pb.Status.Name(r.status).removeprefix("STATUS_") for r in response.results],
            "reasons": [r.reason for r in response.results]}


def _query_params(request: Request) -> tuple[str, int, float | None]:
    q = request.query_params
    unknown = sorted(set(q) - {"run_id", "step", "failed_reward"})
    if unknown:
        raise HttpError(400, "INVALID_ARGUMENT", f"query string: unknown parameter(s) {', '.join(unknown)}; known: "
                        "run_id, step, failed_reward")
    raw_step = q.get("step", "0")
    try:
        step = int(raw_step) if len(raw_step) <= 20 else None
    except ValueError:
        step = None
    if step is None or not -(1 << 63) <= step < (1 << 63):  # protobuf's int64 would raise (a 500)
        raise HttpError(400, "INVALID_ARGUMENT", f"step: {raw_step[:40]!r} is not a 64-bit integer")
    if "failed_reward" not in q:
        return q.get("run_id", ""), step, None
    try:
        failed = float(q["failed_reward"])
    except ValueError:
        failed = math.nan
    if not math.isfinite(failed):
        raise HttpError(400, "INVALID_ARGUMENT", f"failed_reward: {q['failed_reward'][:40]!r} is not a finite number")
    return q.get("run_id", ""), step, failed


def score_request(body: bytes) -> pb.ScoreRequest:
    """The ScoreRequest in a `/v1/score` body (the protobuf JSON mapping). Raises HttpError 400."""
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise HttpError(400, "INVALID_ARGUMENT", f"body: must be a JSON object (a ScoreRequest), got "
                        f"{type(doc).__name__}")
    try:
        return json_format.ParseDict(doc, pb.ScoreRequest())
    except json_format.ParseError as e:
        raise HttpError(400, "INVALID_ARGUMENT", f"body: not a ScoreRequest in the protobuf JSON mapping: {e}"
                        ) from None


async def _disconnected(http: Request) -> None:
    """Returns when the client of `http` (whose body was read) disconnects."""
    while (await http.receive())["type"] != "http.disconnect":
        pass


class HttpFace:
    """The Starlette app of the HTTP face; calls the service at `target` (a gRPC address)."""

    def __init__(self, target: str, max_body_bytes: int, metrics: ServiceMetrics | NoMetrics = NO_METRICS,
                 auth_enabled: bool = True, body_timeout_s: float = 30.0,
                 verify_key: Callable[[str], Awaitable[Any]] | None = None,
                 precheck: Callable[[str], None] | None = None):
        self.max_body_bytes, self.metrics, self.auth_enabled = max_body_bytes, metrics, auth_enabled
        # A team that gRPC refuses for its quota right now is refused before its body is read
        # and transcoded (else an over-quota team still took the transcoding threads' time).
        self.precheck = precheck
        self.body_timeout_s = body_timeout_s
        # The key is checked before the body is read (`_authenticate`): without it, a caller
        # with no key made the face buffer and transcode up to max_message_bytes per
        # connection before gRPC refused it. gRPC still checks it again (the same
        # Authenticator: one cache of verified keys, one revocation delay).
        self.verify_key = verify_key
        # Bodies held at once: each connection may hold up to max_body_bytes while it arrives
        # and waits for the transcoding threads; many connections must not grow memory freely.
        # A team holds at most half of it, so that the other half is always there for the others.
        self.budget = BodyBudget(4 * max_body_bytes, 2 * max_body_bytes)
        # JSON <-> protobuf transcoding is pure-Python work of about 2 us per JSON value: on the
        # event loop a 12 MB body froze every team's gRPC calls for 30 s. It runs here instead
        # (two threads: at most two bodies are expanded into Python objects at once).
        self._transcoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="http-transcode")
        # Teams take turns for the threads, one each at most: a 16 MB body of tiny JSON values
        # takes ~40 s to transcode, and two of one team's held both threads, FIFO, from everyone.
        self._transcode_gate = FairGate(2, per_team=1)
        self.channel = grpc.aio.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        self.stub = pb_grpc.RewardServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.app = Starlette(routes=[
            Route("/v1/score", self._route("/v1/score", self.score), methods=["POST"]),
            Route("/openrlhf/{spec}", self._route("/openrlhf", self.openrlhf), methods=["POST"]),
            Route("/healthz", self._route("/healthz", self.healthz), methods=["GET"]),
        ], exception_handlers={HTTPException: self._http_exception})

    async def _http_exception(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        self.metrics.http_request("other", exc.status_code)
        hint = {404: f"no route {request.url.path}; routes: POST /v1/score, POST /openrlhf/SPEC, GET /healthz",
                405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, "NOT_FOUND" if exc.status_code == 404 else "INVALID_ARGUMENT", hint,
                              dict(exc.headers or {}))

    def _route(self, name: str, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request)
            except HttpError as e:
                response = error_response(e.status, e.code, str(e), e.headers)
            except ClientDisconnect:  # gone while sending its body: nothing to answer, nothing to log
                response = Response(status_code=499)
            except grpc.aio.AioRpcError as e:
                response = self._from_grpc(e)
            except Exception as e:
                log.exception("HTTP %s failed", name)
                response = error_response(500, "INTERNAL", f"internal error: {type(e).__name__}: {e}")
            finally:
                self.budget.give_back(getattr(request.state, "body_bytes_held", 0),
                                      getattr(request.state, "body_team", None))
                request.state.body_bytes_held = 0
            self.metrics.http_request(name, response.status_code)
            return response

        return endpoint

    @staticmethod
    def _from_grpc(e: grpc.aio.AioRpcError) -> JSONResponse:
        code = e.code()
        status = HTTP_STATUS.get(code, 500)
        headers: dict[str, str] = {}
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            retry = dict(e.trailing_metadata() or ()).get("retry-after-s")
            if retry is None:
                status = 413  # a size limit: retrying the same request will not help
            else:
                headers["Retry-After"] = str(max(1, math.ceil(float(retry))))
        elif code == grpc.StatusCode.UNAUTHENTICATED:
            headers["WWW-Authenticate"] = "Bearer"
        message = e.details() or code.name
        if code == grpc.StatusCode.UNAUTHENTICATED and "metadata" in message:
            message += "; over HTTP send the header 'Authorization: Bearer KEY'"
        return error_response(status, code.name, message, headers)

    async def _off_loop(self, request: Request, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on a transcoding thread, in the turn of the request's team (with auth off
        each request is its own: one user may use both threads)."""
        team = getattr(request.state, "team", None)
        async with self._transcode_gate.slot(team if team is not None else f"(request {id(request)})"):
            job = asyncio.get_running_loop().run_in_executor(self._transcoder, fn, *args)
            try:
                return await asyncio.shield(job)
            except asyncio.CancelledError:
                await asyncio.wait({job})  # the thread stays busy until the job ends: so does the slot
                raise

    async def _body(self, request: Request) -> bytes:
        team = request.state.team = await self._authenticate(request)
        if team is not None and self.precheck is not None:
            try:
                self.precheck(team)
            except QuotaExceededError as e:
                raise HttpError(429, "RESOURCE_EXHAUSTED", str(e),
                                {"Retry-After": str(max(1, math.ceil(e.retry_after_s))), "Connection": "close"}
                                ) from None
        return await read_body(request, self.max_body_bytes, self.body_timeout_s, self.budget, team)

    async def _authenticate(self, request: Request) -> str | None:
        """The caller's team (None when auth is off or the key could not be checked here);
        HttpError 401 for a request without a valid key (auth on), before its body is read."""
        if not self.auth_enabled:
            return None
        metadata = grpc_metadata(request.headers.get("authorization", ""))
        if not metadata:
            raise HttpError(401, "UNAUTHENTICATED", "missing API key: send the header 'Authorization: Bearer KEY' "
                            "(or Basic auth with the key as the password)", {"WWW-Authenticate": "Bearer"})
        if self.verify_key is None:
            return None
        key = metadata[0][1].removeprefix("Bearer ")
        try:
            principal = await self.verify_key(key)
        except AuthError as e:
            raise HttpError(401, "UNAUTHENTICATED", str(e), {"WWW-Authenticate": "Bearer"}) from None
        except Exception:  # noqa: BLE001 - e.g. the database is down: the gRPC call says so, typed
            return None
        return getattr(principal, "team", None)

    async def _call(self, method: Any, request: Any, http: Request) -> Any:
        """The gRPC call, cancelled when the HTTP client disconnects first (a client that gave
        up, like OpenRLHF after its timeout, sends the request again: the abandoned copy must
        not go on being scored, stored and counted). Raises ClientDisconnect then."""
        # With auth off gRPC ignores keys, and so does this face (a stray header is no error).
        metadata = grpc_metadata(http.headers.get("authorization", "")) if self.auth_enabled else ()
        call = method(request, metadata=metadata)
        answer = asyncio.ensure_future(call)
        gone = asyncio.ensure_future(_disconnected(http))
        try:
            await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not answer.done():
            call.cancel()
            answer.cancel()
            with contextlib.suppress(BaseException):
                await answer
            raise ClientDisconnect()
        return answer.result()

    async def score(self, request: Request) -> Response:
        message = await self._off_loop(request, score_request, await self._body(request))
        response = await self._call(self.stub.Score, message, request)
        return await self._off_loop(request, lambda: JSONResponse(json_format.MessageToDict(response)))

    async def openrlhf(self, request: Request) -> Response:
        run_id, step, failed_reward = _query_params(request)
        raw = await self._body(request)
        message = await self._off_loop(request, lambda: openrlhf_request(request.path_params["spec"],
                                                                         parse_json(raw), run_id, step))
        if not message.samples:  # OpenRLHF splits a batch over its URLs: one may get none
            return JSONResponse(openrlhf_response(pb.ScoreResponse(), failed_reward))
        response = await self._call(self.stub.Score, message, request)
        return await self._off_loop(request, lambda: JSONResponse(openrlhf_response(response, failed_reward)))

    async def healthz(self, request: Request) -> Response:
        r = await self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        return JSONResponse({"status": name}, status_code=200 if r.status == r.SERVING else 503)

    async def close(self) -> None:
        await self.channel.close()
        self._transcoder.shutdown(wait=False)


def metrics_app(metrics: ServiceMetrics) -> Starlette:
    """`GET /metrics`: the Prometheus text format of `metrics.registry`."""

    async def scrape(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])


class _HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request's line and headers: uvicorn
    itself waits forever for them on a new connection (its keep-alive timeout starts only
    after a response, and any byte cancels it), so idle or trickling connections would pile
    up until the process has no file descriptor left, for gRPC either. The body has its own
    deadline (`read_body`)."""

    read_timeout_s = 30.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._head_deadline = self.loop.call_later(self.read_timeout_s, self._head_late)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _head_late(self) -> None:
        self._head_deadline = None
        if not self._in_request():  # else the next response re-arms it
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self._head_deadline is not None and self._in_request():
            self._head_deadline.cancel()
            self._head_deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_deadline is None and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the reward server's loop: the server's own SIGTERM handling stays in charge."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int, field: str) -> socket.socket:
    """A listening TCP socket on host:port (no SO_REUSEPORT: a port in use is an error).
    Raises OSError naming the config field."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise OSError(e.errno, f"{field}: could not bind {host}:{port}: {e.strerror}") from None


class _Served:
    """One ASGI app served by uvicorn on a bound socket, until `stop`."""

    def __init__(self, app: Any, sock: socket.socket, config: "ServerConfig"):
        self.sock, self.port = sock, sock.getsockname()[1]
        tls = {"ssl_certfile": str(config.tls_cert_file), "ssl_keyfile": str(config.tls_key_file)} \
            if config.tls_cert_file else {}
        protocol = type("HeadDeadlineH11", (_HeadDeadlineH11,), {"read_timeout_s": config.http_read_timeout_s})
        self.server = _EmbeddedServer(uvicorn.Config(
            app, http=protocol, lifespan="off", log_config=None, access_log=False, server_header=False,
            timeout_graceful_shutdown=max(1, math.ceil(config.grace_s)), **tls))
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises the start-up error
                raise RuntimeError("HTTP server exited during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.task is not None:
            self.server.should_exit = True
            await self.task
        self.sock.close()


class WebFaces:
    """The HTTP face and the metrics endpoint of one server (either may be off).

    `prepare` (before the gRPC server starts) binds their ports, so that a port in use
    fails the start, and adds the private Unix socket the HTTP face calls; `start` serves
    them; `stop` (before the gRPC server stops) lets in-flight HTTP requests finish.
    """

    def __init__(self) -> None:
        self.http: _Served | None = None
        self.metrics_served: _Served | None = None
        self.face: HttpFace | None = None
        self._socket_dir: Path | None = None
        self._http_sock: socket.socket | None = None
        self._metrics_sock: socket.socket | None = None

    @classmethod
    def prepare(cls, config: "ServerConfig", grpc_server: grpc.aio.Server) -> "WebFaces":
        faces = cls()
        try:
            if config.http_port:
                faces._http_sock = bind(config.host, config.http_port, "http_port")
                faces._socket_dir = Path(tempfile.mkdtemp(prefix="reward-server-"))  # mode 0700
                if not grpc_server.add_insecure_port(f"unix:{faces._socket_dir / 'grpc.sock'}"):
                    raise OSError(f"could not listen on {faces._socket_dir / 'grpc.sock'}")
            if config.metrics_port:
                faces._metrics_sock = bind(config.host, config.metrics_port, "metrics_port")
        except BaseException:
            faces._release()
            raise
        return faces

    async def start(self, config: "ServerConfig", metrics: ServiceMetrics | None,
                    verify_key: Callable[[str], Awaitable[Any]] | None = None,
                    precheck: Callable[[str], None] | None = None) -> None:
        """`verify_key`: the gRPC Authenticator's check of a bare key (raises AuthError), awaited
        before a body is read; `precheck`: the quotas' look at whether a team is refused now
        (QuotaManager.precheck), also before a body is read."""
        if self._http_sock is not None:
            assert self._socket_dir is not None
            self.face = HttpFace(f"unix:{self._socket_dir / 'grpc.sock'}", config.max_message_bytes,
                                 metrics or NO_METRICS, config.auth_enabled, config.http_read_timeout_s,
                                 verify_key, precheck)
            self.http = _Served(self.face.app, self._http_sock, config)
            await self.http.start()
            log.info("HTTP/JSON face on %s:%d (POST /v1/score, POST /openrlhf/SPEC, GET /healthz)", config.host,
                     self.http.port)
        if self._metrics_sock is not None and metrics is not None:
            self.metrics_served = _Served(metrics_app(metrics), self._metrics_sock, config)
            await self.metrics_served.start()
            log.info("Prometheus metrics on %s:%d/metrics", config.host, self.metrics_served.port)

    @property
    def http_port(self) -> int:
        return self.http.port if self.http else 0

    @property
    def metrics_port(self) -> int:
        return self.metrics_served.port if self.metrics_served else 0

    async def stop(self) -> None:
        for served in (self.http, self.metrics_served):
            if served is not None:
                await served.stop()
        if self.face is not None:
            await self.face.close()
        self._release()

    def _release(self) -> None:
        for sock in (self._http_sock, self._metrics_sock):
            if sock is not None:
                sock.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
