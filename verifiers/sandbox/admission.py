"""Which sandboxed run starts next: by what runs use, in turns per tenant.

A fixed number of slots let two sleeping programs hold a 2-core host's whole sandbox
for their wall-clock backstop while using no CPU (issue 21: 6x slower than the CPU
allows; issue 17.6: another team's correct program waited 20 s). Here a run is
admitted when

- fewer than `cpu_slots` admitted runs are *busy* (a run counts as busy from its
  admission until its CPU watch sees it idle: a sleeper gives its slot back within
  ~0.1 s and takes it again when it computes, without preemption), or its tenant has
  no run in flight (a team's turn never waits for another team's CPU-bound runs);
- fewer than `max_in_flight` runs are in the sandbox (each costs processes, a thread
  and, on the zygote path, an interpreter);
- the memory the runs in flight may take stays within `memory_budget_bytes` (the
  backends reserve a run's memory limit plus its output cap, which the server holds while
  it compares; one run is always admitted when none is in flight, whatever it reserves).

Waiting runs are admitted in turns per tenant (the team the server scores for, set with
`tenant(name)` around the call), oldest first within a tenant, and one tenant holds at
most `per_tenant_share` of the runs in flight, so that another's run always finds room.
CPU time stays the limit a program is judged by; admission only decides when it starts.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_tenant: ContextVar[str] = ContextVar("rlvr_sandbox_tenant", default="")

# The CPU watch: a busy run whose CPU use over a window of WINDOW_S falls below IDLE_SHARE
# of one core is idle (sleeping, blocked); an idle one above BUSY_SHARE is busy again.
WINDOW_S = 0.1
IDLE_SHARE = 0.2
BUSY_SHARE = 0.5


@contextmanager
def tenant(name: str) -> Iterator[None]:
    """Runs started in this context (this thread, or a context copied from it) are
    `name`'s turn at the sandbox."""
    token = _tenant.set(name)
    try:
        yield
    finally:
        _tenant.reset(token)


def current_tenant() -> str:
    return _tenant.get()


# Runs in flight per CPU slot: sleeping and blocked runs hold no CPU, so several per core
# keep the CPUs fed while some wait (each costs a process tree, a thread and, on the
# zygote path, an interpreter of ~15 MiB).
IN_FLIGHT_PER_CPU_SLOT = 8


def default_sandbox_threads() -> int:
    """Threads a scorer should give sandboxed verifiers: one per run the sandbox admits in
    flight by default (IN_FLIGHT_PER_CPU_SLOT per core), so that sleeping runs never leave
    the CPUs short of work. (More threads bought nothing on HumanEval's short runs: every
    thread's Python work between runs competes for the GIL.)"""
    return IN_FLIGHT_PER_CPU_SLOT * max(1, os.cpu_count() or 1)


def host_memory_bytes() -> int:
    """Physical memory of this host (or of the cgroup this process is confined to)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(f).read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


class Ticket:
    """One admitted run. `set_busy(False)` gives its CPU slot back; `release()` (or the
    end of `with`) leaves the sandbox. `queued_s`: how long it waited to be admitted."""

    __slots__ = ("_adm", "tenant", "memory_bytes", "busy", "queued_s", "_event", "_released", "_t0")

    def __init__(self, adm: Admission, tenant: str, memory_bytes: int) -> None:
        self._adm, self.tenant, self.memory_bytes = adm, tenant, memory_bytes
        self.busy, self.queued_s, self._released = True, 0.0, False
        self._event = threading.Event()
        self._t0 = time.monotonic()

    def set_busy(self, busy: bool) -> None:
        self._adm._set_busy(self, busy)

    def release(self) -> None:
        self._adm._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Admission:
    """Thread-safe admission of sandboxed runs; see the module docstring."""

    def __init__(self, cpu_slots: int, max_in_flight: int, memory_budget_bytes: int,
                 per_tenant_share: float = 0.75) -> None:
        if cpu_slots < 1 or max_in_flight < 1:
            raise ValueError(f"cpu_slots and max_in_flight must be at least 1, got {cpu_slots}, {max_in_flight}")
        if memory_budget_bytes < 1:
            raise ValueError(f"the memory budget must be positive, got {memory_budget_bytes}")
        self.cpu_slots, self.max_in_flight, self.memory_budget_bytes = cpu_slots, max_in_flight, memory_budget_bytes
        self.per_tenant = max(1, int(max_in_flight * per_tenant_share))
        self._lock = threading.Lock()
        self._busy = self._in_flight = self._memory = 0
        self._by_tenant: dict[str, int] = {}
        self._waiting: OrderedDict[str, deque[Ticket]] = OrderedDict()  # tenant -> waiters, in turn order

    def admit(self, memory_bytes: int) -> Ticket:
        """Block until this run may start (the caller's tenant: `current_tenant()`)."""
        t = Ticket(self, current_tenant(), memory_bytes)
        with self._lock:
            self._waiting.setdefault(t.tenant, deque()).append(t)
            self._dispatch()
        try:
            t._event.wait()
        except BaseException:  # (KeyboardInterrupt in the waiting thread) never leak a slot
            with self._lock:
                queue = self._waiting.get(t.tenant)
                if queue is not None and t in queue:
                    queue.remove(t)
                    if not queue:
                        del self._waiting[t.tenant]
                    t._released = True
            self._release(t)
            raise
        t.queued_s = time.monotonic() - t._t0
        return t

    def stats(self) -> dict:
        with self._lock:
            return {"busy": self._busy, "in_flight": self._in_flight, "memory_bytes": self._memory,
                    "waiting": {k: len(q) for k, q in self._waiting.items()}}

    # -- under the lock ---------------------------------------------------------------

    def _fits(self, t: Ticket) -> bool:
        held = self._by_tenant.get(t.tenant, 0)
        # A tenant with no run in flight may start one even when the CPU slots are busy:
        # its turn must not wait for another tenant's CPU-bound runs to end (they are not
        # preempted); the CPUs are then shared by the kernel, one more run per such tenant.
        return ((self._busy < self.cpu_slots or held == 0) and self._in_flight < self.max_in_flight
                and held < self.per_tenant
                and (self._in_flight == 0 or self._memory + t.memory_bytes <= self.memory_budget_bytes))

    def _dispatch(self) -> None:
        """Admit waiting runs in turn order while they fit."""
        while self._waiting and self._in_flight < self.max_in_flight:
            for name, queue in self._waiting.items():
                if self._fits(queue[0]):
                    break
            else:
                return  # nobody's next run fits now
            t = queue.popleft()
            del self._waiting[name]
            if queue:
                self._waiting[name] = queue  # this tenant goes to the back of the turn order
            self._busy += 1
            self._in_flight += 1
            self._memory += t.memory_bytes
            self._by_tenant[name] = self._by_tenant.get(name, 0) + 1
            t._event.set()

    def _set_busy(self, t: Ticket, busy: bool) -> None:
        with self._lock:
            if t._released or t.busy == busy:
                return
            t.busy = busy
            self._busy += 1 if busy else -1
            if not busy:
                self._dispatch()

    def _release(self, t: Ticket) -> None:
        with self._lock:
            if t._released:
                return
            t._released = True
            if t.busy:
                self._busy -= 1
            self._in_flight -= 1
            self._memory -= t.memory_bytes
            left = self._by_tenant[t.tenant] - 1
            if left:
                self._by_tenant[t.tenant] = left
            else:
                del self._by_tenant[t.tenant]
            self._dispatch()


class CpuWatch:
    """Tells a ticket whether its run is busy, from the run's CPU time (`cpu_time_s()`,
    None when unknown: then the run stays busy). Call `tick()` often (the drain loop
    does, every ~50 ms); it reads the CPU time once per WINDOW_S."""

    def __init__(self, ticket: Ticket | None, cpu_time_s: Callable[[], float | None]) -> None:
        self.ticket, self._read = ticket, cpu_time_s
        self._t = time.monotonic()
        self._cpu = cpu_time_s() if ticket is not None else None

    def tick(self) -> None:
        if self.ticket is None or self._cpu is None:
            return
        now = time.monotonic()
        if now - self._t < WINDOW_S:
            return
        cpu = self._read()
        if cpu is None:
            return
        share = (cpu - self._cpu) / (now - self._t)
        self._t, self._cpu = now, cpu
        if self.ticket.busy and share < IDLE_SHARE:
            self.ticket.set_busy(False)
        elif not self.ticket.busy and share > BUSY_SHARE:
            self.ticket.set_busy(True)
