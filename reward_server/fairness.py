"""Round-robin admission across teams to a shared, bounded resource (the worker pool).

The pool itself is FIFO: a team that submits a thousand calls puts them all ahead of
another team's next one. Calls therefore pass through a `FairGate` first: at most `limit`
are with the pool at once, and when one finishes the next admitted is the oldest waiting
call of the *next team in turn*, so each team with work waiting gets an equal share of the
pool's slots however long another team's queue is (deficit-free round robin over calls:
calls to the pool cost about the same).
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from typing import AsyncIterator


class FairGate:
    """At most `limit` holders at once; waiters admitted round-robin by team. Use from one
    event loop: `async with gate.slot(team): ...`."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.active = 0
        self._waiting: OrderedDict[str, deque[asyncio.Future]] = OrderedDict()  # team -> waiters, in turn order

    @asynccontextmanager
    async def slot(self, team: str) -> AsyncIterator[None]:
        await self._acquire(team)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, team: str) -> None:
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(team, deque()).append(fut)
        try:
            await fut  # set by _release, which hands its slot over (active unchanged)
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # admitted and cancelled at once: pass the slot on
            else:
                self._forget(team, fut)
            raise

    def _release(self) -> None:
        while self._waiting:
            team, queue = next(iter(self._waiting.items()))
            fut = queue.popleft()
            del self._waiting[team]
            if queue:
                self._waiting[team] = queue  # this team goes to the back of the turn order
            if not fut.done():
                fut.set_result(None)
                return
        self.active -= 1

    def _forget(self, team: str, fut: asyncio.Future) -> None:
        queue = self._waiting.get(team)
        if queue is not None and fut in queue:
            queue.remove(fut)
            if not queue:
                del self._waiting[team]

    @property
    def waiting(self) -> dict[str, int]:
        """Calls waiting per team."""
        return {team: len(q) for team, q in self._waiting.items()}
