"""A worker whose agent crashes exits with the watchdog's code instead of staying up and consuming nothing.

The fault is real and comes from outside the worker: the customer-state table's changelog topic is created
beforehand with fewer partitions than the input topics, so Faust raises ``PartitionsMismatch`` at the profile
agent's first table write, as it did after a broker restart before the table check was fixed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.admin import create_topics
from streams.agent_watchdog import EXIT_AGENT_CRASHED
from tests.integration.harness import unique_settings
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

    producer = Producer(settings.confluent_config())
    producer.produce(settings.topics.behavior, key=b"c_000001", value=application("c_000001", 0, 0))
    assert producer.flush(30) == 0

    log_path = tmp_path / "worker.log"
    env = {**os.environ, **settings.to_env(), "LOANWATCH_LOG_LEVEL": "INFO"}
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
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


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-60:])
