"""Undecodable request bytes are INVALID_ARGUMENT, on every RPC of the server.

grpc's asyncio server decodes a request before any handler runs; a DecodeError there
escapes as UNKNOWN "Unexpected <class 'DecodeError'>". `DecodeErrorInterceptor` swaps
each method's deserializer for one that returns a marker instead of raising, and wraps
the handler so that the marker ends the call with INVALID_ARGUMENT ("request: the bytes
could not be decoded as rewards.v1.ScoreRequest …"), through the one error map
(errors.status_code_for). For streaming requests the marker raises
UndecodableRequestError from the request iterator: a servicer that maps its own errors
(ScoreGroups) reports it, and any other handler's escape is caught here.

Only asyncio handlers are wrapped; a handler that reads with `context.read()` instead of
iterating sees the marker (none here does).
"""
from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from .errors import TooLargeError, UndecodableRequestError, status_code_for

# Map and Struct fields are what makes a message slow to decode (a few µs per entry, on the
# event loop, before any handler runs: 3 MiB of spec routes took a second). Before decoding a
# big message, its wire bytes are walked (top level and each sample) to add up the bytes of
# those fields: field numbers from rewards.proto. {message: {field: "spec" | "sample" | "map"}}.
_STRUCTURED = {
    "rewards.v1.ScoreRequest": {4: "spec", 3: "sample"},
    "rewards.v1.GroupRequest": {5: "spec", 4: "sample"},
    "rewards.v1.DryRunRequest": {2: "spec", 1: "sample"},
    "rewards.v1.PutSpecRequest": {2: "spec"},
    "rewards.v1.StartRunRequest": {2: "map"},
    "rewards.v1.LogStepRequest": {3: "map"},
    "rewards.v1.FinishRunRequest": {3: "map"},
}
_SAMPLE = {4: "value", 5: "spec", 6: "map"}   # Sample.reference, .spec, .metadata
_SCAN_ABOVE_BYTES = 64 << 10                  # smaller messages cannot be slow to decode
_MAX_TOP_FIELDS = 20_000                      # samples (4,096 by default) or map entries, and a few more
_MAX_SAMPLE_FIELDS = 64                       # a Sample has six


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> Any:
    """(field number, start, end) of every field in buf[start:end]: a length-delimited
    field's value range, or (-1, -1) for the other wire types."""
    i = start
    while i < end:
        key, i = _varint(buf, i)
        wire = key & 7
        if wire == 2:
            n, i = _varint(buf, i)
            yield key >> 3, i, i + n
            i += n
            continue
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
        yield key >> 3, -1, -1


def structured_bytes(raw: bytes, message: str, max_spec_bytes: int, max_structured_bytes: int) -> None:
    """Refuse (TooLargeError) a message whose spec fields or map/Struct fields are over the
    limits, from its wire bytes alone. Malformed bytes are left to the decoder."""
    plan = _STRUCTURED.get(message)
    if plan is None or len(raw) <= _SCAN_ABOVE_BYTES:
        return
    total = 0

    def count(kind: str, a: int, b: int, where: str) -> int:
        if kind == "spec" and b - a > max_spec_bytes:
            raise TooLargeError(f"{where}spec: {b - a} bytes, the limit is {max_spec_bytes} per spec")
        if kind == "value":  # a reference that is a plain string or number decodes fast
            first = next(_fields(raw, a, b), None)
            return (b - a) if first is not None and first[0] in (5, 6) and first[1] >= 0 else 0
        return b - a

    try:
        for n, (field, a, b) in enumerate(_fields(raw, 0, len(raw))):
            if n > _MAX_TOP_FIELDS:  # the walk itself must stay cheap: no message needs more
                raise TooLargeError(f"request: more than {_MAX_TOP_FIELDS} fields in one message")
            kind = plan.get(field) if a >= 0 else None
            if kind == "sample":
                for n2, (f2, a2, b2) in enumerate(_fields(raw, a, b)):
                    if n2 > _MAX_SAMPLE_FIELDS:
                        raise TooLargeError(f"request: a sample with more than {_MAX_SAMPLE_FIELDS} fields")
                    if f2 in _SAMPLE and a2 >= 0:
                        total += count(_SAMPLE[f2], a2, b2, "samples[].")
            elif kind is not None:
                total += count(kind, a, b, "")
            if total > max_structured_bytes:
                raise TooLargeError(f"request: more than {max_structured_bytes} bytes of specs, Structs and maps "
                                    f"in one message (they are slow to decode); send fewer or smaller ones")
    except TooLargeError:
        raise
    except (ValueError, IndexError):  # malformed: the decoder says what is wrong
        return


class _Undecodable:
    """Stands in for a request message whose bytes did not decode."""

    __slots__ = ("error",)

    def __init__(self, error: UndecodableRequestError):
        self.error = error


def _message_name(deserializer: Callable[[bytes], Any]) -> str:
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", "the RPC's request message")


def _tolerant(deserializer: Callable[[bytes], Any], limits: tuple[int, int] | None = None) -> Callable[[bytes], Any]:
    name = _message_name(deserializer)

    def parse(raw: bytes) -> Any:
        if limits is not None:
            try:
                structured_bytes(raw, name, *limits)
            except TooLargeError as e:
                return _Undecodable(e)
        try:
            return deserializer(raw)
        except Exception as e:
            return _Undecodable(UndecodableRequestError(
                f"request: the bytes could not be decoded as {name} ({type(e).__name__}: {e}); send a "
                f"serialized {name}"))
    return parse


async def _refuse(context: grpc.aio.ServicerContext, error: UndecodableRequestError) -> None:
    await context.abort(status_code_for(error), str(error))


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for message in requests:
        if isinstance(message, _Undecodable):
            raise message.error
        yield message


def _wrap_unary_request(behaviour: Callable) -> Callable | None:
    if inspect.isasyncgenfunction(behaviour):
        async def gen(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, _Undecodable):
                await _refuse(context, request.error)
            async for response in behaviour(request, context):
                yield response
        return gen
    if inspect.iscoroutinefunction(behaviour):
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, _Undecodable):
                await _refuse(context, request.error)
            return await behaviour(request, context)
        return call
    return None


def _wrap_stream_request(behaviour: Callable) -> Callable | None:
    if inspect.isasyncgenfunction(behaviour):
        async def gen(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for response in behaviour(_checked(requests), context):
                    yield response
            except UndecodableRequestError as e:
                await _refuse(context, e)
        return gen
    if inspect.iscoroutinefunction(behaviour):
        async def call(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behaviour(_checked(requests), context)
            except UndecodableRequestError as e:
                await _refuse(context, e)
        return call
    return None


_KINDS = {(False, False): "unary_unary", (False, True): "unary_stream", (True, False): "stream_unary",
          (True, True): "stream_stream"}


def wrap_handler(handler: grpc.RpcMethodHandler, limits: tuple[int, int] | None = None) -> grpc.RpcMethodHandler:
    """`handler` with a tolerant deserializer and the refusal around its behaviour
    (unchanged when it has no deserializer or is not an asyncio handler). `limits`:
    (max_spec_bytes, max_structured_bytes) checked on the wire bytes before decoding."""
    if handler is None or handler.request_deserializer is None:
        return handler
    kind = _KINDS[(handler.request_streaming, handler.response_streaming)]
    wrap = _wrap_stream_request if handler.request_streaming else _wrap_unary_request
    behaviour = wrap(getattr(handler, kind))
    if behaviour is None:
        return handler
    return handler._replace(request_deserializer=_tolerant(handler.request_deserializer, limits), **{kind: behaviour})


class DecodeErrorInterceptor(grpc.aio.ServerInterceptor):
    """Applies `wrap_handler` to every method; each method's wrapped handler is built once."""

    def __init__(self, limits: tuple[int, int] | None = None) -> None:
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._limits = limits

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED (and nothing is cached)
            return None
        hit = self._wrapped.get(handler_call_details.method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = wrap_handler(handler, self._limits)
        self._wrapped[handler_call_details.method] = (handler, wrapped)
        return wrapped


__all__ = ["DecodeErrorInterceptor", "wrap_handler"]
