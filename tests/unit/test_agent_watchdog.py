"""The agent watchdog: which crashes end the worker, the one log line, and what it reads from a Faust app."""

from __future__ import annotations

import asyncio
import logging

import faust
import pytest
from mode import ForfeitOneForOneSupervisor

from streams.agent_watchdog import (
    EXIT_AGENT_CRASHED,
    AgentCrash,
    ServiceState,
    agent_states,
    end_if_crashed,
    first_crash,
    install_agent_watchdog,
)


def alive(agent: str) -> ServiceState:
    return ServiceState(agent, crashed=False, reason=None)


def test_no_crash_when_every_agent_and_actor_is_alive() -> None:
    assert first_crash([alive("profile"), alive("profile"), alive("entities")]) is None
    assert first_crash([]) is None


def test_the_first_crashed_one_is_named_with_its_reason() -> None:
    states = [
        alive("profile"),
        ServiceState("entities", crashed=True, reason=KeyError("device")),
        ServiceState("rings", crashed=True, reason=ValueError("later")),
    ]
    assert first_crash(states) == AgentCrash(agent="entities", reason="KeyError('device')")


def test_an_actor_cancelled_by_a_shutdown_is_not_a_crash() -> None:
    assert first_crash([ServiceState("rings", crashed=True, reason=asyncio.CancelledError())]) is None


def test_a_crash_without_a_recorded_reason_still_counts() -> None:
    assert first_crash([ServiceState("rings", crashed=True, reason=None)]) == AgentCrash("rings", "no reason recorded")


def test_a_crash_logs_one_error_and_exits_with_the_watchdog_code(caplog: pytest.LogCaptureFixture) -> None:
    exits: list[int] = []
    with caplog.at_level(logging.INFO, logger="loanwatch.watchdog"):
        crash = end_if_crashed([alive("entities"), ServiceState("profile", True, RuntimeError("gone"))], exits.append)
    assert crash == AgentCrash("profile", "RuntimeError('gone')")
    assert exits == [EXIT_AGENT_CRASHED]
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "profile" in record.getMessage() and "RuntimeError('gone')" in record.getMessage()


def test_no_crash_neither_logs_nor_exits(caplog: pytest.LogCaptureFixture) -> None:
    exits: list[int] = []
    with caplog.at_level(logging.INFO, logger="loanwatch.watchdog"):
        assert end_if_crashed([alive("profile")], exits.append) is None
    assert exits == [] and caplog.records == []


def test_states_of_a_real_faust_app_follow_its_agents_crash_flags() -> None:
    app = faust.App("watchdog-test", broker="kafka://127.0.0.1:1")  # never started: no broker is contacted
    topic = app.topic("in", value_type=bytes, value_serializer="raw")

    @app.agent(topic, name="profile")
    async def profile(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            pass

    @app.agent(topic, name="entities")
    async def entities(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            pass

    assert sorted(s.agent for s in agent_states(app)) == ["entities", "profile"]
    assert first_crash(agent_states(app)) is None
    reason = RuntimeError("changelog gone")
    app.agents["entities"]._crash(reason)
    assert first_crash(agent_states(app)) == AgentCrash("entities", repr(reason))


def test_install_gives_up_on_crashed_actors_instead_of_restarting_them_in_place() -> None:
    app = faust.App("watchdog-install-test", broker="kafka://127.0.0.1:1")
    install_agent_watchdog(app, exit_process=lambda code: None)
    supervisor: object = app.conf.agent_supervisor
    assert supervisor is ForfeitOneForOneSupervisor
