"""A cancelled agent finishes its batch before the cancellation goes through, or ends the process uncommitted."""

from __future__ import annotations

import asyncio

import pytest

from streams.agent_watchdog import EXIT_AGENT_CRASHED
from streams.batch_guard import run_to_end


class Batch:
    """A batch handler that takes ``seconds`` and then records that it ended (or raises ``error``)."""

    def __init__(self, seconds: float, error: Exception | None = None) -> None:
        self.seconds = seconds
        self.error = error
        self.ended = False

    async def run(self) -> None:
        await asyncio.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        self.ended = True


async def cancelled_midway(batch: Batch, exits: list[int], finish_seconds: float = 5.0) -> bool:
    """Run ``batch`` in an agent-like task, cancel that task mid-batch; True if the cancellation came through."""
    agent = asyncio.ensure_future(run_to_end(batch.run(), 10, "profile", exits.append, finish_seconds))
    await asyncio.sleep(0.05)
    agent.cancel()
    try:
        await agent
    except asyncio.CancelledError:
        return True
    return False


def test_a_batch_cut_off_by_cancellation_runs_to_its_end_first() -> None:
    batch, exits = Batch(0.3), list[int]()

    async def scenario() -> bool:
        return await cancelled_midway(batch, exits)

    assert asyncio.run(scenario()), "the cancellation still ends the agent"
    assert batch.ended and exits == []


def test_a_batch_that_fails_after_the_cancellation_ends_the_process() -> None:
    batch, exits = Batch(0.2, RuntimeError("broker refused the record")), list[int]()
    assert asyncio.run(cancelled_midway(batch, exits))
    assert exits == [EXIT_AGENT_CRASHED] and not batch.ended


def test_a_batch_that_does_not_end_in_time_ends_the_process() -> None:
    batch, exits = Batch(5.0), list[int]()
    assert asyncio.run(cancelled_midway(batch, exits, finish_seconds=0.2))
    assert exits == [EXIT_AGENT_CRASHED] and not batch.ended


def test_without_cancellation_a_batch_ends_or_raises_as_it_would_alone() -> None:
    exits: list[int] = []
    ok = Batch(0.01)
    asyncio.run(run_to_end(ok.run(), 1, "profile", exits.append))
    assert ok.ended
    with pytest.raises(ValueError, match="bad"):
        asyncio.run(run_to_end(Batch(0.01, ValueError("bad")).run(), 1, "profile", exits.append))
    assert exits == [], "an ordinary failure is the agent's crash, for the watchdog, not a forced exit"
