"""MicroBatcher: batches form under concurrency, the wait is bounded, errors reach every caller."""
from __future__ import annotations

import concurrent.futures as cf
import threading
import time

import pytest

from verifiers.judges.batching import BatcherClosedError, MicroBatcher


def test_batches_form_under_concurrency_and_results_keep_order():
    calls: list[list[int]] = []

    def square(xs: list[int]) -> list[int]:
        calls.append(list(xs))
        time.sleep(0.01)                          # a forward pass: later arrivals queue meanwhile
        return [x * x for x in xs]

    b = MicroBatcher(square, max_batch_size=8, max_wait_ms=20)
    with cf.ThreadPoolExecutor(32) as ex:
        results = list(ex.map(lambda x: b(x, timeout_s=5), range(64)))
    b.close()
    assert results == [x * x for x in range(64)]
    assert sum(b.batch_sizes) == 64 and max(b.batch_sizes) > 1 and max(b.batch_sizes) <= 8
    assert len(calls) < 64                         # fewer passes than items
    assert sorted(x for c in calls for x in c) == list(range(64))


def test_max_wait_is_honoured_for_a_lone_request():
    b = MicroBatcher(lambda xs: xs, max_batch_size=64, max_wait_ms=50)
    t0 = time.perf_counter()
    assert b(1, timeout_s=5) == 1
    waited = time.perf_counter() - t0
    b.close()
    assert 0.045 <= waited < 0.5                  # waited for company ~50 ms, then ran alone
    assert list(b.batch_sizes) == [1]


def test_a_full_batch_does_not_wait():
    b = MicroBatcher(lambda xs: xs, max_batch_size=4, max_wait_ms=5_000)
    t0 = time.perf_counter()
    futs = [b.submit(i) for i in range(4)]
    assert [f.result(timeout=2) for f in futs] == [0, 1, 2, 3]
    assert time.perf_counter() - t0 < 1.0          # full at 4: ran without the 5 s wait
    b.close()


def test_batch_error_reaches_every_caller_of_the_batch():
    gate = threading.Event()

    def boom(xs):
        gate.wait(2)
        raise RuntimeError(f"CUDA out of memory on a batch of {len(xs)}")

    b = MicroBatcher(boom, max_batch_size=8, max_wait_ms=100)
    futs = [b.submit(i) for i in range(5)]
    gate.set()
    for f in futs:
        with pytest.raises(RuntimeError, match="batch of 5"):
            f.result(timeout=5)
    # The batcher survives a failed batch.
    b.fn = lambda xs: [x + 1 for x in xs]
    assert b(41, timeout_s=5) == 42
    b.close()


def test_per_item_exception_and_wrong_result_count():
    b = MicroBatcher(lambda xs: [ValueError(f"bad {x}") if x < 0 else x for x in xs], max_batch_size=4,
                     max_wait_ms=20)
    good, bad = b.submit(1), b.submit(-1)
    assert good.result(timeout=5) == 1
    with pytest.raises(ValueError, match="bad -1"):
        bad.result(timeout=5)
    b.close()
    b2 = MicroBatcher(lambda xs: xs[:-1], max_batch_size=4, max_wait_ms=1)
    with pytest.raises(ValueError, match="returned 0 results for 1 items"):
        b2(1, timeout_s=5)
    b2.close()
    with pytest.raises(BatcherClosedError):
        b2.submit(1)
