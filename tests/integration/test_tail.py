"""`loanwatch tail` on the real broker, as a real process: replay with filters, and new alerts only."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from confluent_kafka import Producer

from schemas import serde
from schemas.outputs import Alert, Tier, alert_id_for
from streams.admin import create_topics
from streams.settings import Settings
from tests.integration.harness import unique_settings

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def _alert(customer: str, tier: Tier, minute: int) -> Alert:
    start = T0 + timedelta(minutes=minute)
    return Alert(
        alert_id=alert_id_for(customer, "multi_application_burst", tier, start),
        customer_id=customer,
        rule_id="multi_application_burst",
        rule_version=1,
        tier=tier,
        score={"notice": 0.4, "attention": 0.6, "warning": 0.9}[tier],
        reasons=[{"code": "apps", "message": f"{minute} applications", "feature": "apps_30m", "value": 5,
                  "threshold": 5}],
        evidence_event_ids=[],
        first_seen=start,
        last_seen=start + timedelta(minutes=1),
    )


def _produce(settings: Settings, records: list[tuple[str, bytes]]) -> None:
    producer = Producer(settings.confluent_config())
    for key, value in records:
        producer.produce(settings.topics.alerts, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def _settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    settings = unique_settings(kafka_bootstrap, tmp_path, None, f"lwtest_{uuid.uuid4().hex[:10]}")
    create_topics(settings)
    return settings


def _tail(settings: Settings, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **settings.to_env(), "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "tail", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, errors = proc.communicate()
        raise AssertionError(f"tail did not exit\nstdout: {out}\nstderr: {errors}") from None


def test_replay_min_tier_with_limit(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    # The matching alerts share one key (one partition, so their order is defined); other customers on other
    # partitions only raise notices, which --tier attention hides. A broken record comes first: it is skipped.
    focus = "c_focus_01"
    a1, w1, a2 = _alert(focus, "attention", 10), _alert(focus, "warning", 12), _alert(focus, "attention", 30)
    others = [_alert(f"c_other_{i:02d}", "notice", i) for i in range(12)]
    records = [(focus, b"{not an alert"), (focus, serde.dumps(_alert(focus, "notice", 5)))]
    records += [(focus, serde.dumps(a)) for a in (a1, w1, a2)]
    records += [(a.customer_id, serde.dumps(a)) for a in others]
    _produce(settings, records)

    out, errors = _finish(_tail(settings, "--from-beginning", "--tier", "attention", "--limit", "2", "--json"))

    lines = out.splitlines()
    assert [Alert.model_validate_json(line).alert_id for line in lines] == [a1.alert_id, w1.alert_id], errors
    assert "not an alert" in errors and "2 alerts shown" in errors


def _read_until(stream: IO[str], needle: str, seen: list[str]) -> threading.Thread:
    def read() -> None:
        for line in stream:
            seen.append(line)
            if needle in line:
                return

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_default_starts_at_the_end_and_shows_the_table(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    old = _alert("c_old_01", "warning", 1)
    _produce(settings, [(old.customer_id, serde.dumps(old))])

    proc = _tail(settings, "--limit", "1", "--customer", "c_new_01")
    assert proc.stderr is not None
    seen: list[str] = []
    reader = _read_until(proc.stderr, "tailing", seen)
    reader.join(30)
    assert not reader.is_alive(), f"tail never became ready: {seen}"
    new_other, new = _alert("c_new_02", "warning", 2), _alert("c_new_01", "notice", 3)
    _produce(settings, [(a.customer_id, serde.dumps(a)) for a in (new_other, new)])

    out, errors = _finish(proc)
    assert proc.returncode == 0, errors
    assert "event time (UTC+8)" in out
    assert "c_new_01" in out and "提示 notice" in out and "2026-01-05 10:04:00" in out
    assert "c_old_01" not in out and "c_new_02" not in out
    assert "1 alert shown" in errors
