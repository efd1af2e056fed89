"""Dynamic micro-batching: many threads each submit one item, one worker runs them in batches.

    batcher = MicroBatcher(score_texts, max_batch_size=32, max_wait_ms=5)
    reward = batcher.submit("some text").result(timeout=30)   # from any thread

The worker takes the first waiting item, then keeps collecting until the batch holds
`max_batch_size` items or `max_wait_ms` have passed since that first item, and calls
`fn(items) -> results` once (same length, same order). An exception raised by `fn`
is set on every future of the batch; a result that is itself an exception instance is
set on that item's future only. Pure threading: no asyncio, no torch.

Why: a model forward pass on 32 sequences costs little more than on one, so requests
that arrive together on the server's "model" thread pool share one pass.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosedError(RuntimeError):
    """`submit` on a MicroBatcher that was closed."""


class MicroBatcher(Generic[T, R]):
    """Collects items submitted from many threads into batches for `fn`.

    `batch_sizes` keeps the size of each batch run (the last `history` batches), for
    tests and metrics.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch_size: int = 32,
                 max_wait_ms: float = 5.0, name: str = "micro-batcher", history: int = 10_000):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.name = name
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=history)
        self._queue: collections.deque[tuple[T, cf.Future]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, item: T) -> "cf.Future[R]":
        """Queue one item; the future resolves to its result (or its batch's exception)."""
        fut: cf.Future = cf.Future()
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"{self.name} is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._queue.append((item, fut))
            self._cond.notify()
        return fut

    def __call__(self, item: T, timeout_s: float | None = None) -> R:
        """Submit and wait: `fn`'s result for `item` (raises cf.TimeoutError past `timeout_s`)."""
        return self.submit(item).result(timeout=timeout_s)

    def close(self, wait: bool = True) -> None:
        """Stop accepting items; items already queued still run."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _take_batch(self) -> list[tuple[T, cf.Future]] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            # The first item fixes the batch's deadline; wait for more until it or a full batch.
            deadline = time.monotonic() + self.max_wait_s
            while len(self._queue) < self.max_batch_size and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            live = [(item, fut) for item, fut in batch if fut.set_running_or_notify_cancel()]
            if not live:
                continue
            self.batch_sizes.append(len(live))
            try:
                results = list(self.fn([item for item, _ in live]))
                if len(results) != len(live):
                    raise ValueError(f"{self.name}: batch function returned {len(results)} results "
                                     f"for {len(live)} items")
            except BaseException as e:  # every caller of the batch sees the failure
                for _, fut in live:
                    fut.set_exception(e)
                continue
            for (_, fut), res in zip(live, results):
                if isinstance(res, BaseException):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)


__all__ = ["MicroBatcher", "BatcherClosedError"]
