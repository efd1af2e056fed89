"""Round-robin admission across teams to a shared, bounded resource (the worker pool, the
sandbox's threads).

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
    """At most `limit` holders at once, at most `per_team` of them one team's (default:
    no cap of its own); waiters admitted round-robin by team. Use from one event loop:
    `async with gate.slot(team): ...`."""

    def __init__(self, limit: int, per_team: int | None = None):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.per_team = min(limit, per_team) if per_team else limit
        self.active = 0
        self._held: dict[str, int] = {}  # team -> slots held
        self._waiting: OrderedDict[str, deque[asyncio.Future]] = OrderedDict()  # team -> waiters, in turn order

    @asynccontextmanager
    async def slot(self, team: str) -> AsyncIterator[None]:
        await self._acquire(team)
        try:
            yield
        finally:
            self._release(team)

    async def _acquire(self, team: str) -> None:
        if self.active < self.limit and not self._waiting and self._held.get(team, 0) < self.per_team:
            self._take(team)
            return
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(team, deque()).append(fut)
        self._dispatch()  # the waiters ahead may all be teams at their cap
        try:
            await fut  # set by _dispatch, which took the slot for this waiter
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release(team)  # admitted and cancelled at once: pass the slot on
            else:
                self._forget(team, fut)
            raise

    def _take(self, team: str) -> None:
        self.active += 1
        self._held[team] = self._held.get(team, 0) + 1

    def _release(self, team: str) -> None:
        self.active -= 1
        left = self._held.get(team, 1) - 1
        if left > 0:
            self._held[team] = left
        else:
            self._held.pop(team, None)
        self._dispatch()

    def _dispatch(self) -> None:
        """Admit waiters in turn order while slots are free (a team at its cap waits)."""
        while self.active < self.limit:
            team = next((t for t in self._waiting if self._held.get(t, 0) < self.per_team), None)
            if team is None:
                return
            queue = self._waiting.pop(team)
            fut = queue.popleft()
            if queue:
                self._waiting[team] = queue  # this team goes to the back of the turn order
            if not fut.done():
                self._take(team)
                fut.set_result(None)

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
