"""A worker whose agent crashes exits with the watchdog's code instead of staying up and consuming nothing.

The fault is real and comes from outside the worker: the customer-state table's changelog topic is created
beforehand with fewer partitions than the input topics, so Faust raises ``PartitionsMismatch`` at the profile
agent's first table write, as it did after a broker restart before the table check was fixed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.admin import create_topics
from streams.agent_watchdog import CHECK_EVERY_SECONDS, EXIT_AGENT_CRASHED
from streams.settings import Settings
from tests.integration.harness import unique_settings, wait_for
from tests.integration.test_pipeline import application

pytestmark = pytest.mark.integration

# Start-up (rules, allow-list, table recovery) plus the first batch plus a few watchdog checks, on a busy machine.
EXIT_WITHIN_SECONDS = 180.0


def test_agent_crash_ends_the_worker_with_the_watchdog_exit_code(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = unique_settings(kafka_bootstrap, tmp_path, None, "unused")
    create_topics(settings)
    changelog = f"{settings.app_id}-customer-state-changelog"
    admin = AdminClient(settings.confluent_config())
    mismatched = settings.partitions - 2
    admin.create_topics([NewTopic(changelog, num_partitions=mismatched, replication_factor=1)])[changelog].result(30)

    _produce_one_application(settings)

    log_path = tmp_path / "worker.log"
    worker = _start_worker(settings.to_env(), log_path)
    started = time.monotonic()
    try:
        code = worker.wait(EXIT_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        pytest.fail(f"the worker was still up {EXIT_WITHIN_SECONDS:.0f}s after start:\n{_tail(log_path)}")
    text = log_path.read_text(errors="replace")
    assert code == EXIT_AGENT_CRASHED, f"exit code {code} after {time.monotonic() - started:.0f}s\n{_tail(log_path)}"
    watchdog_lines = [line for line in text.splitlines() if "ending the worker with exit code" in line]
    assert len(watchdog_lines) == 1, _tail(log_path)
    assert "agent profile crashed" in watchdog_lines[0]  # the name create_app gives the engine agent
    assert "PartitionsMismatch" in watchdog_lines[0]


def test_a_healthy_worker_stopped_with_sigterm_is_not_taken_for_a_crash(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Faust cancels every actor on shutdown and records each as crashed: the watchdog must not answer that.
    settings = unique_settings(kafka_bootstrap, tmp_path, None, "unused")
    create_topics(settings)
    _produce_one_application(settings)
    log_path = tmp_path / "worker.log"
    worker = _start_worker(settings.to_env(), log_path)
    try:
        # The agent has taken the event and written its table: it ran, and its actors are up.
        wait_for(lambda: "events=1 " in log_path.read_text(errors="replace"), 120, "the event processed", log_path)
        time.sleep(3 * CHECK_EVERY_SECONDS)  # let the watchdog look at running agents a few times
        assert worker.poll() is None, _tail(log_path)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert code == 0, _tail(log_path)
    assert "ending the worker with exit code" not in log_path.read_text(errors="replace")


def _produce_one_application(settings: Settings) -> None:
    producer = Producer(settings.confluent_config())
    producer.produce(settings.topics.behavior, key=b"c_000001", value=application("c_000001", 0, 0))
    assert producer.flush(30) == 0


def _start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env={**os.environ, **env, "LOANWATCH_LOG_LEVEL": "INFO"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-60:])
