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

from .errors import UndecodableRequestError, status_code_for


class _Undecodable:
    """Stands in for a request message whose bytes did not decode."""

    __slots__ = ("error",)

    def __init__(self, error: UndecodableRequestError):
        self.error = error


def _message_name(deserializer: Callable[[bytes], Any]) -> str:
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", "the RPC's request message")


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    name = _message_name(deserializer)

    def parse(raw: bytes) -> Any:
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


def wrap_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """`handler` with a tolerant deserializer and the refusal around its behaviour
    (unchanged when it has no deserializer or is not an asyncio handler)."""
    if handler is None or handler.request_deserializer is None:
        return handler
    kind = _KINDS[(handler.request_streaming, handler.response_streaming)]
    wrap = _wrap_stream_request if handler.request_streaming else _wrap_unary_request
    behaviour = wrap(getattr(handler, kind))
    if behaviour is None:
        return handler
    return handler._replace(request_deserializer=_tolerant(handler.request_deserializer), **{kind: behaviour})


class DecodeErrorInterceptor(grpc.aio.ServerInterceptor):
    """Applies `wrap_handler` to every method; each method's wrapped handler is built once."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: grpc answers UNIMPLEMENTED (and nothing is cached)
            return None
        hit = self._wrapped.get(handler_call_details.method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        wrapped = wrap_handler(handler)
        self._wrapped[handler_call_details.method] = (handler, wrapped)
        return wrapped


__all__ = ["DecodeErrorInterceptor", "wrap_handler"]
