"""Ends the worker process when one of its agents has crashed, so the process supervisor restarts it.

An exception that escapes an agent's loop crashes that agent ("Crashed reason=..." in the log), and Faust keeps
the process up: restarting an actor on the same stream, or stopping the app after a crash, can leave a worker
that holds its partitions and consumes nothing (robinhood/faust#301, faust-streaming/faust#324). A silent stall
is the worst outcome for a risk pipeline, so the worker gives up loudly instead: crashed actors are not
restarted in place (``ForfeitOneForOneSupervisor``), a timer looks for a crash every few seconds, and the first
one found is logged and ends the process with :data:`EXIT_AGENT_CRASHED`.

Exiting at once is safe: Faust commits an offset only for events the agent has acked, after flushing the
producer, so the restarted worker re-reads from the last commit (at-least-once) and the idempotent outputs
absorb the replay. A graceful stop is not attempted, because that is the path that hangs after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import faust
from mode import ForfeitOneForOneSupervisor

__all__ = [
    "EXIT_AGENT_CRASHED",
    "AgentCrash",
    "ServiceState",
    "agent_states",
    "end_if_crashed",
    "exit_now",
    "first_crash",
    "install_agent_watchdog",
]

log = logging.getLogger("loanwatch.watchdog")

#: EX_SOFTWARE in sysexits.h: an internal software error, here an agent that died.
EXIT_AGENT_CRASHED: Final = 70
#: Seconds between checks: a dead worker is gone within this, and the check costs a walk over a few agents.
CHECK_EVERY_SECONDS: Final = 2.0


@dataclass(frozen=True)
class ServiceState:
    """One agent, or one actor (running instance) of it, as the watchdog sees it."""

    agent: str
    crashed: bool
    reason: BaseException | None


@dataclass(frozen=True)
class AgentCrash:
    """The crash the watchdog acts on: which agent, and why it died."""

    agent: str
    reason: str


def first_crash(states: Iterable[ServiceState]) -> AgentCrash | None:
    """The first crashed agent or actor among ``states``, or None when every one of them is alive.

    A crash whose reason is a cancellation is not a fault: Faust cancels every actor before stopping the agents
    (and marks each one crashed with ``CancelledError``) on an ordinary shutdown.
    """
    for state in states:
        if state.crashed and not isinstance(state.reason, asyncio.CancelledError):
            reason = repr(state.reason) if state.reason is not None else "no reason recorded"
            return AgentCrash(agent=state.agent, reason=reason)
    return None


def agent_states(app: faust.App) -> list[ServiceState]:
    """Every agent of ``app`` and every actor it started, with their crash flags (reads Faust's internals)."""
    states: list[ServiceState] = []
    for name, agent in app.agents.items():
        states.append(ServiceState(name, bool(agent.crashed), agent.crash_reason))
        # Faust keeps the actors only in this private set; there is no public accessor.
        actors: Iterable[Any] = getattr(agent, "_actors", ())
        states.extend(ServiceState(name, bool(actor.crashed), actor.crash_reason) for actor in list(actors))
    return states


def exit_now(code: int) -> None:
    """End the process at once with ``code``, after flushing the log, without running Faust's shutdown."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def end_if_crashed(states: Iterable[ServiceState], exit_process: Callable[[int], None]) -> AgentCrash | None:
    """On the first crash among ``states``: log one ERROR naming the agent and the reason, call ``exit_process``."""
    crash = first_crash(states)
    if crash is not None:
        log.error(
            "agent %s crashed: %s; ending the worker with exit code %d so that its supervisor restarts it "
            "(processing resumes from the last committed offsets)",
            crash.agent,
            crash.reason,
            EXIT_AGENT_CRASHED,
        )
        exit_process(EXIT_AGENT_CRASHED)
    return crash


def install_agent_watchdog(
    app: faust.App,
    exit_process: Callable[[int], None] = exit_now,
    interval: float = CHECK_EVERY_SECONDS,
) -> None:
    """Make ``app`` give up on crashed actors and end the process (via ``exit_process``) on the first crash."""
    # Faust types its settings through a descriptor mypy reads as a special form; the value is a supervisor class.
    app.conf.agent_supervisor = ForfeitOneForOneSupervisor  # type: ignore[assignment]

    @app.timer(interval=interval)  # type: ignore[untyped-decorator]
    async def watch_agents() -> None:
        if not app.should_stop:  # a worker on its way out is stopping its agents on purpose
            end_if_crashed(agent_states(app), exit_process)
