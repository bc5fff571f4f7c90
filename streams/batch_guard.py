"""Run an agent's micro-batch to its end even when the agent is cancelled, because Faust commits it anyway.

Faust's ``take_events`` acknowledges a batch's events when the loop body over it ends, however it ends, and a
stopping worker cancels its agents and then commits what was acknowledged. A batch cut off half way would be
committed with some outputs unsent, or with state the next owner never sees: the fault suite's join/leave test
lost a burst alert that way, its application processed by the worker that was leaving. So the batch runs in a
task of its own that the cancellation does not reach; the agent waits for it before letting the cancellation
through. If it cannot finish (it fails, or takes longer than :data:`FINISH_SECONDS`), the process ends at once,
before any commit, and whoever owns the partitions next replays the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from streams.agent_watchdog import EXIT_AGENT_CRASHED, exit_now

log = logging.getLogger(__name__)

#: How long a cancelled agent waits for its batch in flight to finish.
FINISH_SECONDS = 60.0


async def run_to_end(
    batch: Coroutine[Any, Any, None],
    events: int,
    agent: str,
    exit_process: Callable[[int], None] = exit_now,
    finish_seconds: float = FINISH_SECONDS,
) -> None:
    """Await ``batch`` (the handling of ``events`` events); on cancellation finish it first, then re-raise."""
    work = asyncio.ensure_future(batch)
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        if not work.done():
            log.info("agent %s stopping: finishing its batch of %d events before it is acknowledged", agent, events)
            await _finish(work, finish_seconds)
        if not work.done() or work.cancelled() or work.exception() is not None:
            reason = "no end in time" if not work.done() else repr(None if work.cancelled() else work.exception())
            log.error("agent %s: the batch in flight could not finish (%s): ending the worker before any commit, "
                      "the batch will be replayed", agent, reason)
            exit_process(EXIT_AGENT_CRASHED)
        raise


async def _finish(work: asyncio.Future[None], seconds: float) -> None:
    """Wait up to ``seconds`` for ``work``, through further cancellations; its outcome stays on ``work``."""
    deadline = time.monotonic() + seconds
    while not work.done() and time.monotonic() < deadline:
        try:
            await asyncio.wait_for(asyncio.shield(work), timeout=max(0.0, deadline - time.monotonic()))
        except asyncio.CancelledError:
            continue  # cancelled again while waiting: keep finishing
        except Exception:  # noqa: BLE001 — the failure is read from ``work`` by the caller
            return
