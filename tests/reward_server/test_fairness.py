"""FairGate: teams take turns at the worker pool, whatever one team's backlog."""
from __future__ import annotations

import asyncio

import pytest

from reward_server.fairness import FairGate


def test_a_small_team_is_not_stuck_behind_a_large_backlog():
    async def main() -> list[str]:
        gate, order = FairGate(2), []
        release = asyncio.Event()

        async def call(team: str) -> None:
            async with gate.slot(team):
                order.append(team)
                await release.wait()

        tasks = [asyncio.create_task(call("a")) for _ in range(10)]
        await asyncio.sleep(0)
        tasks += [asyncio.create_task(call("b")) for _ in range(2)]
        await asyncio.sleep(0)
        assert gate.active == 2 and gate.waiting == {"a": 8, "b": 2}
        release.set()
        await asyncio.gather(*tasks)
        assert gate.active == 0 and gate.waiting == {}
        return order

    order = asyncio.run(main())
    # The first two "a" held the slots; then the turns alternate while both have work.
    assert order[:6] == ["a", "a", "a", "b", "a", "b"], order
    assert order.count("a") == 10 and order.count("b") == 2


def test_cancelled_waiters_give_their_turn_away():
    async def main() -> None:
        gate = FairGate(1)
        hold = asyncio.Event()

        async def call(team: str, done: list) -> None:
            async with gate.slot(team):
                done.append(team)
                await hold.wait()

        done: list[str] = []
        first = asyncio.create_task(call("a", done))
        await asyncio.sleep(0)
        waiting = asyncio.create_task(call("b", done))
        later = asyncio.create_task(call("c", done))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.sleep(0)
        assert gate.waiting == {"c": 1}
        hold.set()
        await asyncio.gather(first, later)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert done == ["a", "c"] and gate.active == 0

    asyncio.run(main())


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        FairGate(0)


def test_a_team_at_its_cap_leaves_free_slots_to_the_others():
    # The sandbox's threads (issue 17.6): one team's sleeping programs must not hold them all.
    async def main() -> None:
        gate = FairGate(4, per_team=3)
        release = asyncio.Event()
        entered: list[str] = []

        async def call(team: str) -> None:
            async with gate.slot(team):
                entered.append(team)
                await release.wait()

        tasks = [asyncio.create_task(call("a")) for _ in range(10)]
        await asyncio.sleep(0)
        assert gate.active == 3 and gate.waiting == {"a": 7}  # the fourth slot stays free
        tasks.append(asyncio.create_task(call("b")))
        await asyncio.sleep(0)
        assert entered == ["a", "a", "a", "b"] and gate.active == 4
        release.set()
        await asyncio.gather(*tasks)
        assert gate.active == 0 and gate.waiting == {} and entered.count("a") == 10

    asyncio.run(main())
