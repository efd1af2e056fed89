"""A real OpenAI-compatible chat endpoint on 127.0.0.1:0 that misbehaves on request.

    with OpenAIStub(behaviour="score", score=7, delay_s=0.2) as stub:
        ...  # point a judge at stub.base_url (ends in /v1)
        stub.requests, stub.max_in_flight

`POST /v1/chat/completions` answers after `delay_s` per the current behaviour; queued
behaviours (`stub.script("500", "500", "score")`) are used first, one per request, then
`behaviour`:

    score         200, "…\\nScore: {score}" (the verdict alone on the last line)
    text          200, `text` as the answer
    refusal       200, "I'm sorry, but I can't help with that."
    refusal_field 200, message.refusal set (OpenAI structured refusal), content null
    logprobs      200, "Yes" with top_logprobs P(Yes) = p_yes, P(No) = 1 - p_yes (first token)
    no_logprobs   200, `text` (default "Yes") and no logprobs
    slow          200 after `slow_s` (past a judge's deadline)
    429           429 with Retry-After: `retry_after`
    500           500 with an error body
    garbage       200 with a body that is not JSON
    drop          closes the connection without answering

It counts requests, the requests in flight and the most ever in flight (also served as
JSON at `GET /v1/stats`), and keeps each request's JSON body and Authorization header.
stdlib only (ThreadingHTTPServer).

Run alone, in a process of its own (benchmarks: the judge then does not share the
server's GIL, as a real endpoint would not):

    python -m tests.helpers.openai_stub --delay-ms 200 [--behaviour score]   # prints its base URL
"""
from __future__ import annotations

import collections
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BEHAVIOURS = ("score", "text", "refusal", "refusal_field", "logprobs", "no_logprobs", "slow", "429", "500",
              "garbage", "drop")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True


class OpenAIStub:
    def __init__(self, behaviour: str = "score", *, delay_s: float = 0.0, score: float = 7, text: str = "Yes",
                 p_yes: float = 0.8, retry_after: str | None = "0.05", slow_s: float = 5.0,
                 finish_reason: str = "stop"):
        assert behaviour in BEHAVIOURS, behaviour
        self.behaviour = behaviour
        self.delay_s, self.score, self.text, self.p_yes = delay_s, score, text, p_yes
        self.retry_after, self.slow_s, self.finish_reason = retry_after, slow_s, finish_reason
        self._queue: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_behaviour: collections.Counter[str] = collections.Counter()
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-stub", daemon=True)

    # -- control ----------------------------------------------------------------------
    def start(self) -> "OpenAIStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def script(self, *behaviours: str) -> None:
        """Answer the next requests with these behaviours, in order, then `behaviour`."""
        assert all(b in BEHAVIOURS for b in behaviours), behaviours
        with self._lock:
            self._queue.extend(behaviours)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.max_in_flight = 0
            self.by_behaviour.clear()
            self.bodies.clear()
            self.auth_headers.clear()

    # -- answers ------------------------------------------------------------------------
    def _next(self, body: dict[str, Any], auth: str | None) -> str:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.bodies.append(body)
            self.auth_headers.append(auth)
            b = self._queue.popleft() if self._queue else self.behaviour
            self.by_behaviour[b] += 1
            return b

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def completion(self, content: str | None, *, refusal: str | None = None, logprobs: Any = None,
                   model: str = "stub") -> dict[str, Any]:
        return {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "finish_reason": self.finish_reason, "logprobs": logprobs,
                             "message": {"role": "assistant", "content": content, "refusal": refusal}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}

    def yes_no_logprobs(self) -> dict[str, Any]:
        lp_yes, lp_no = math.log(self.p_yes), math.log(1 - self.p_yes)
        top = sorted([{"token": "Yes", "logprob": lp_yes}, {"token": "No", "logprob": lp_no}],
                     key=lambda c: -c["logprob"])
        chosen = top[0]
        return {"content": [{"token": chosen["token"], "logprob": chosen["logprob"], "top_logprobs": top}]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms Nagle/delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") != "/v1/stats":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                with stub._lock:
                    stats = {"requests": stub.requests, "in_flight": stub.in_flight,
                             "max_in_flight": stub.max_in_flight, "by_behaviour": dict(stub.by_behaviour)}
                self._send(200, json.dumps(stats).encode())

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                behaviour = stub._next(body, self.headers.get("Authorization"))
                try:
                    if stub.delay_s:
                        stub._stopping.wait(stub.delay_s)
                    self._answer(behaviour, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (deadline): fine
                finally:
                    stub._done()

            def _answer(self, behaviour: str, body: dict[str, Any]) -> None:
                model = body.get("model", "stub")
                if behaviour == "slow":
                    stub._stopping.wait(stub.slow_s)
                    behaviour = "score"
                if behaviour == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if behaviour == "429":
                    self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                               {"Retry-After": stub.retry_after} if stub.retry_after is not None else None)
                    return
                if behaviour == "500":
                    self._send(500, b'{"error": {"message": "internal error: CUDA out of memory"}}')
                    return
                if behaviour == "garbage":
                    self._send(200, b"<html>upstream proxy error {not json")
                    return
                if behaviour == "score":
                    msg = stub.completion(f"The response solves the task.\nScore: {stub.score:g}", model=model)
                elif behaviour == "text":
                    msg = stub.completion(stub.text, model=model)
                elif behaviour == "refusal":
                    msg = stub.completion("I'm sorry, but I can't help with that.", model=model)
                elif behaviour == "refusal_field":
                    msg = stub.completion(None, refusal="I can't assist with grading this content.", model=model)
                elif behaviour == "logprobs":
                    lp = stub.yes_no_logprobs()
                    msg = stub.completion(lp["content"][0]["token"], logprobs=lp, model=model)
                else:  # no_logprobs
                    msg = stub.completion(stub.text, model=model)
                self._send(200, json.dumps(msg).encode())

        return Handler


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="A loopback OpenAI-compatible chat endpoint for tests and benchmarks.")
    ap.add_argument("--behaviour", default="score", choices=BEHAVIOURS)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--score", type=float, default=7)
    args = ap.parse_args()
    stub = OpenAIStub(args.behaviour, delay_s=args.delay_ms / 1000, score=args.score).start()
    print(stub.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stub.stop()


if __name__ == "__main__":
    main()

__all__ = ["OpenAIStub", "BEHAVIOURS"]
