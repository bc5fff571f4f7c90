"""/metrics of a real worker and a real writer process agree with what went through the pipeline.

Real broker, Debian's ClickHouse server (the writer runs as its own process, so it cannot share the test's chdb),
``loanwatch worker`` and ``loanwatch writer`` with their metrics ports and JSON logs on, scraped over HTTP.
Expected numbers come from what the test produced and from what it reads back from the output topics and
ClickHouse, never from the code under test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import serde
from schemas.outputs import Alert, DeadLetter
from streams.clickhouse.backend import open_backend
from streams.local.clickhouse_server import LocalClickHouseServer
from tests.integration.harness import Pipeline, unique_settings, wait_for
from tests.integration.test_pipeline import application, page_view

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> Samples:
    """Every sample of http://127.0.0.1:port/metrics; an empty dict while the endpoint is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name`` over the series whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {ls: v for (n, ls), v in samples.items() if n == name}


def caught_up(port: int, group: str, topic: str, partitions: int) -> bool:
    """The group's lag is reported for every partition of ``topic``, and is 0 on every partition it reports."""
    lags = {
        dict(ls)["topic"] + ":" + dict(ls)["partition"]: v
        for ls, v in series(scrape(port), "loanwatch_consumer_lag_messages").items()
        if dict(ls)["group"] == group
    }
    return sum(key.startswith(topic + ":") for key in lags) == partitions and not any(lags.values())


@pytest.fixture
def pipeline_on_server(
    kafka_bootstrap: str, clickhouse_server: LocalClickHouseServer, tmp_path: Path
) -> Iterator[Pipeline]:
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    backend = open_backend(clickhouse_server.url, database, tmp_path / "unused-chdb")
    settings = unique_settings(
        kafka_bootstrap, tmp_path, clickhouse_server.url, database,
        worker_metrics_port=free_port(), writer_metrics_port=free_port(), metrics_addr="127.0.0.1",
        log_format="json",
    )
    pipeline = Pipeline(settings, backend)
    try:
        yield pipeline
    finally:
        pipeline.close()
        backend.close()


def start_writer_process(pipeline: Pipeline, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **pipeline.settings.to_env(), "LOANWATCH_LOG_LEVEL": "INFO"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "writer"], env=env, stdout=out, stderr=out)


def json_lines(log: Path) -> list[dict[str, object]]:
    """The log's lines, each parsed as one JSON object (a line that is not one fails the test)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.strip():
            parsed = serde.loads(line)
            assert isinstance(parsed, dict), line
            assert {"ts", "level", "logger", "message"} <= set(parsed), line
            out.append(parsed)
    return out


def test_worker_and_writer_metrics_count_what_was_produced(pipeline_on_server: Pipeline) -> None:
    pipeline = pipeline_on_server
    settings = pipeline.settings
    topic = settings.topics.behavior
    valid = [application("c_000001", i, i * 2) for i in range(6)]  # a burst: notice, then attention
    valid += [page_view("c_000002", i, i) for i in range(30)]
    valid += [application("c_000003", i, i * 25) for i in range(3)]  # spread out: no alert
    malformed = [b"not json", b"{\"truncated\": ", b"\xff\xfe\xfd", b"[]", b'{"event_type": "teleport"}']
    produced = [(topic, serde.loads(v)["customer_id"].encode(), v) for v in valid]
    produced += [(topic, b"c_000009", raw) for raw in malformed]

    writer_log = settings.home / "writer.log"
    writer = start_writer_process(pipeline, writer_log)
    try:
        pipeline.start_worker()
        worker_port, writer_port = settings.worker_metrics_port, settings.writer_metrics_port
        wait_for(lambda: scrape(worker_port) != {}, 120, "the worker's /metrics", pipeline.worker_log)
        wait_for(lambda: scrape(writer_port) != {}, 60, "the writer's /metrics", writer_log)
        pipeline.produce(produced)

        on_deadletter = pipeline.consume_all(settings.topics.deadletter, len(malformed))
        letters = [DeadLetter.model_validate_json(v) for _, v in on_deadletter]
        assert len(letters) == len(malformed)
        alerts = [Alert.model_validate_json(v) for _, v in pipeline.consume_all(settings.topics.alerts, 2)]
        assert alerts, "the burst raised alerts"

        def writer_caught_up() -> bool:
            s = scrape(writer_port)
            return (
                total(s, "loanwatch_writer_rows_inserted_total", table="events") >= len(valid)
                and total(s, "loanwatch_writer_rows_inserted_total", table="alerts") >= len(alerts)
                and total(s, "loanwatch_writer_rows_inserted_total", table="dead_letters") >= len(letters)
            )

        wait_for(writer_caught_up, 90, "the writer's rows", writer_log)
        worker_group, writer_group, n = settings.app_id, settings.writer_group, settings.partitions
        wait_for(lambda: caught_up(worker_port, worker_group, topic, n), 60, "worker lag 0", pipeline.worker_log)
        wait_for(lambda: caught_up(writer_port, writer_group, topic, n), 60, "writer lag 0", writer_log)
        worker, writer_samples = scrape(worker_port), scrape(writer_port)
        # Read while both run (the CLI prints a plain summary line when the writer stops).
        writer_json, worker_json = json_lines(writer_log), json_lines(pipeline.worker_log)
    finally:
        writer.send_signal(signal.SIGTERM)
        writer.wait(60)

    # Worker: every record produced was taken, dead letters by the kind their letters carry, alerts as published.
    assert total(worker, "loanwatch_events_consumed_total", topic=topic) == len(produced)
    assert total(worker, "loanwatch_engine_batch_events_sum") == len(produced)
    assert total(worker, "loanwatch_engine_batch_seconds_count", stage="engine") >= 1
    dead = {dict(ls)["reason"]: v for ls, v in series(worker, "loanwatch_dead_letters_total").items()}
    assert {k: v for k, v in dead.items() if v} == Counter(letter.error_kind for letter in letters)
    by_tier_rule = {
        (dict(ls)["tier"], dict(ls)["rule"]): v for ls, v in series(worker, "loanwatch_alerts_total").items()
    }
    assert by_tier_rule == Counter((a.tier, a.rule_id) for a in alerts)
    lag_groups = {dict(ls)["group"] for ls in series(worker, "loanwatch_consumer_lag_messages")}
    assert lag_groups == {worker_group}
    # The models of every partition that carried a valid event are tracked; nothing else is.
    valid_partitions = {str(p) for p, _, v in pipeline.consume_with_partitions(topic, len(produced)) if v in valid}
    ages = series(worker, "loanwatch_model_checkpoint_age_seconds")
    assert {dict(ls)["partition"] for ls in ages} == valid_partitions
    assert all(age >= 0 for age in ages.values())

    # Writer: rows by table equal what ClickHouse holds and what was produced; nothing failed.
    rows = {dict(ls)["table"]: v for ls, v in series(writer_samples, "loanwatch_writer_rows_inserted_total").items()}
    assert rows["events"] == len(valid) == pipeline.scalar("SELECT count() FROM {db}.events")
    assert rows["dead_letters"] == len(malformed) == pipeline.scalar("SELECT count() FROM {db}.dead_letters")
    assert rows["alerts"] == len(alerts) == pipeline.scalar("SELECT count() FROM {db}.alerts")
    assert total(writer_samples, "loanwatch_writer_batch_rows_sum") == sum(rows.values())
    assert total(writer_samples, "loanwatch_writer_records_consumed_total", topic=topic) == len(produced)
    assert total(writer_samples, "loanwatch_writer_skipped_events_total") == len(malformed)
    assert total(writer_samples, "loanwatch_writer_insert_failures_total") == 0
    assert total(writer_samples, "loanwatch_writer_paused") == 0
    assert total(writer_samples, "loanwatch_writer_commits_total") >= 1

    # JSON logs: every line either process wrote is one object; each logged where its metrics are.
    for lines in (writer_json, worker_json):
        assert any(str(line["message"]).startswith("Prometheus metrics at") for line in lines)
