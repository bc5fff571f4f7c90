"""ClickHouse stopped and the Kafka broker restarted while simulated traffic flows at a steady rate.

The worker and the writer (``loanwatch writer``) run as real processes against a dedicated ClickHouse 18.16
server; the fault is a real signal to the real service, which then starts again on the same port and data.
Ground truth: every record the broker acknowledged to the test's producer, where it put it, the malformed ones
among them, and the burst alerts the offline oracle derives from the valid behaviour events.

Durations (seconds) come from the environment, so the same tests run the long variants:
``LOANWATCH_FAULT_CH_OUTAGE_SECONDS`` (default 90), ``LOANWATCH_FAULT_BROKER_OUTAGE_SECONDS`` (default 30) and
``LOANWATCH_FAULT_RATE`` (events per second, default 300).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import serde
from schemas.outputs import Alert, DeadLetter
from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.clickhouse.errors import ClickHouseError
from streams.clickhouse.writer import routes
from streams.local.clickhouse_server import ClickHouseServerError, LocalClickHouseServer
from streams.local.kafka_broker import KafkaBrokerError, LocalKafka
from streams.settings import Settings
from tests.faults.load import (
    Delivered,
    Offsets,
    SteadyProducer,
    TopicWatch,
    Where,
    WriterProcess,
    env_seconds,
    free_port,
    longest_gap,
    simulated_load,
    tail,
)
from tests.integration.conftest import say
from tests.integration.expected import expected_alerts
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
BURST = "multi_application_burst"
RATE = env_seconds("LOANWATCH_FAULT_RATE", 300.0)
CH_OUTAGE = env_seconds("LOANWATCH_FAULT_CH_OUTAGE_SECONDS", 90.0)
BROKER_OUTAGE = env_seconds("LOANWATCH_FAULT_BROKER_OUTAGE_SECONDS", 30.0)
LEAD = 20.0  # seconds of load with every service up before the fault
AFTER = 30.0  # seconds of load after the service is back
STALL = 45.0  # a worker that sends no alert for this long while bursts keep coming has stalled
GRACE = 5.0  # an insert that finished as the server stopped may still be committed just after
SAMPLE = 2.0
STARTUP = 120.0  # headroom in the generated traffic for the processes to start
MALFORMED_SHARE = 0.002
SIGNALS = [pytest.param(signal.SIGTERM, id="sigterm"), pytest.param(signal.SIGKILL, id="sigkill")]
# Start-up, load before and after the fault, catching up and the checks take well under this beyond the outage.
SETTLE = 480


@pytest.fixture
def outage_clickhouse(tmp_path: Path) -> Iterator[LocalClickHouseServer]:
    """A ClickHouse server for one test only, on a fixed port so that a restart keeps its address."""
    server = LocalClickHouseServer(tmp_path / "clickhouse-server", port=free_port(), progress=say)
    try:
        server.start(timeout=90)
    except ClickHouseServerError as exc:
        pytest.fail(f"clickhouse-server did not start: {exc}", pytrace=False)
    yield server
    server.stop()


@dataclass
class Watch:
    """What the test saw of the two consumer groups, sample by sample."""

    worker_lag: list[tuple[float, int]] = field(default_factory=list)
    writer_committed: list[tuple[float, dict[Where, int]]] = field(default_factory=list)
    # (writer's committed offsets, distinct event offsets below them in ClickHouse), read in that order
    coverage: list[tuple[dict[Where, int], dict[Where, int]]] = field(default_factory=list)


class Run:
    """One pipeline under load: the worker, the writer process, the producer and the watchers."""

    def __init__(self, settings: Settings, backend: ClickHouseBackend, seed: int) -> None:
        self.pipeline = Pipeline(settings, backend)
        self.settings = settings
        topics = settings.topics
        self.inputs = [topics.behavior, topics.repayment, topics.inquiry]
        total = int(RATE * (STARTUP + LEAD + max(CH_OUTAGE, BROKER_OUTAGE) + AFTER))
        self.records = simulated_load(settings, total, seed, T0, MALFORMED_SHARE)
        self.worker_offsets = Offsets(settings, settings.app_id, self.inputs)
        self.writer_offsets = Offsets(settings, settings.writer_group, self.inputs)
        self.watch = Watch()
        self.writer: WriterProcess | None = None
        self.producer = SteadyProducer(settings, self.records, RATE)
        self.alerts = TopicWatch(settings, topics.alerts)

    def start(self) -> tuple[int, int]:
        """Start the worker, the writer and the load; wait until both groups commit; return their pids."""
        self.pipeline.start_worker()
        self.writer = WriterProcess(self.settings)
        self.alerts.start()
        self.producer.start()

        def both_committing() -> bool:
            worker, writer = self.worker_offsets.committed(), self.writer_offsets.committed()
            return bool(worker and any(worker.values()) and writer and any(writer.values()))

        wait_for(both_committing, 180, "the worker and the writer to commit", self.pipeline.worker_log)
        assert self.pipeline.worker is not None
        return self.pipeline.worker.pid, self.writer.pid

    def observe(self, seconds: float, clickhouse_up: bool) -> None:
        """Sample both groups (and, with ClickHouse up, what the writer committed against what it stored)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.monotonic()
            lag = self.worker_offsets.lag()
            if lag is not None:
                self.watch.worker_lag.append((now, lag))
            committed = self.writer_offsets.committed()
            if committed is not None:
                self.watch.writer_committed.append((now, committed))
                if clickhouse_up:
                    self._sample_coverage(committed)
            self.pipeline.assert_worker_alive()
            assert self.writer is not None
            self.writer.assert_alive()
            time.sleep(max(0.0, SAMPLE - (time.monotonic() - now)))

    def _sample_coverage(self, committed: dict[Where, int]) -> None:
        below = [w for w, offset in committed.items() if offset > 0]
        if not below:
            return
        where = " OR ".join(
            f"(source_topic = '{t}' AND `partition` = {p} AND `offset` < {committed[(t, p)]})" for t, p in below
        )
        select = "SELECT source_topic, `partition`, uniqExact(`offset`) FROM {db}.events"
        sql = f"{select} WHERE {where} GROUP BY source_topic, `partition`"  # noqa: S608 — our topics, integers
        try:
            rows = self.pipeline.rows(sql)
        except ClickHouseError:
            return  # the server went away between the two reads
        self.watch.coverage.append(({w: committed[w] for w in below}, {(t, int(p)): int(n) for t, p, n in rows}))

    def wind_down(self, timeout: float) -> list[Delivered]:
        """Stop the load (it must not have run dry) and wait until the worker and the writer are through it."""
        assert self.producer.sent < len(self.records), "the load ran out before the test was over"
        delivered = self.producer.finish(timeout=300)
        worker_log = self.pipeline.worker_log
        wait_for(lambda: self.worker_offsets.lag() == 0, timeout, "the worker's lag to reach 0", worker_log)
        assert self.writer is not None
        wait_for(lambda: self.writer_lag() == 0, timeout, "the writer's lag to reach 0", self.writer.log)
        return delivered

    def writer_lag(self) -> int | None:
        """The writer's lag over every topic it reads (inputs and outputs)."""
        offsets = Offsets(self.settings, self.settings.writer_group, list(routes(self.settings)))
        try:
            return offsets.lag()
        finally:
            offsets.close()

    def close(self) -> None:
        """Stop everything this run started, the load first."""
        if self.producer.is_alive():
            self.producer.finish(timeout=300)
        if self.writer is not None:
            self.writer.stop()
        self.pipeline.close()
        self.alerts.stop()
        self.worker_offsets.close()
        self.writer_offsets.close()


def event_id(value: bytes) -> str:
    """The event id of a valid simulated record."""
    return str(serde.loads(value)["event_id"])


def check_everything_arrived_once(run: Run, delivered: list[Delivered]) -> None:
    """Every valid event, alert and dead letter is in ClickHouse exactly once (after dedup); none is missing."""
    valid = [d for d in delivered if d.record.label != "malformed"]
    malformed = {(d.record.topic, d.partition, d.offset) for d in delivered if d.record.label == "malformed"}
    sent_ids = [event_id(d.record.value) for d in valid]
    assert len(set(sent_ids)) == len(sent_ids), "the simulated event ids are unique"
    assert malformed, "the load should carry malformed records"

    stored = Counter(row[0] for row in run.pipeline.rows("SELECT event_id FROM {db}.events FINAL"))
    assert not [i for i, n in stored.items() if n > 1], "an event is doubled after dedup"
    assert set(stored) == set(sent_ids), f"{len(set(sent_ids) - set(stored))} events missing in ClickHouse"

    alerts = [Alert.model_validate_json(v) for v in run.alerts.stop()]
    stored_alerts = Counter(row[0] for row in run.pipeline.rows("SELECT alert_id FROM {db}.alerts FINAL"))
    assert not [i for i, n in stored_alerts.items() if n > 1], "an alert is doubled after dedup"
    assert set(stored_alerts) == {a.alert_id for a in alerts}, "alerts on the topic and in ClickHouse differ"
    behavior = [d.record.value for d in valid if d.record.topic == run.settings.topics.behavior]
    expected = expected_alerts(behavior)
    assert len(expected) >= 50, "the load should contain bursts"
    assert {a.alert_id for a in alerts if a.rule_id == BURST} == set(expected), "burst alerts differ from the oracle"

    raw = run.pipeline.consume_all(run.settings.topics.deadletter, expected=len(malformed), timeout=120)
    letters = [DeadLetter.model_validate_json(value) for _, value in raw]
    assert {(d.source_topic, d.partition, d.offset) for d in letters} == malformed, "dead letters ≠ malformed sent"
    stored_letters = {row[0] for row in run.pipeline.rows("SELECT dead_letter_id FROM {db}.dead_letters FINAL")}
    assert stored_letters == {d.dead_letter_id for d in letters}
    raw_rows = run.pipeline.scalar("SELECT count() FROM {db}.events")
    say(
        f"{len(valid):,} events ({raw_rows:,} rows before dedup), {len(alerts):,} alerts "
        f"({len(stored_alerts):,} distinct), {len(letters)} dead letters"
    )


def check_commits_follow_inserts(watch: Watch, delivered: list[Delivered]) -> None:
    """Whenever the writer had committed offset C of a partition, every valid event below C was in ClickHouse."""
    valid_offsets: dict[Where, list[int]] = {}
    for d in delivered:
        if d.record.label != "malformed":
            valid_offsets.setdefault((d.record.topic, d.partition), []).append(d.offset)
    assert watch.coverage, "no sample compared the writer's commits with ClickHouse"
    for committed, stored in watch.coverage:
        for where, offset in committed.items():
            due = sum(1 for o in valid_offsets.get(where, []) if o < offset)
            found = stored.get(where, 0)
            assert found == due, f"{where}: committed up to {offset} with {found} of {due} events stored"


@pytest.mark.timeout(int(CH_OUTAGE + SETTLE))
@pytest.mark.parametrize("sig", SIGNALS)
def test_clickhouse_stopped_under_load_loses_nothing_doubles_nothing_and_never_stalls_the_worker(
    sig: signal.Signals, faults_kafka: str, outage_clickhouse: LocalClickHouseServer, tmp_path: Path
) -> None:
    server = outage_clickhouse
    database = f"lwfault_{uuid.uuid4().hex[:10]}"
    backend = open_backend(server.url, database, tmp_path / "unused-chdb")
    run = Run(unique_settings(faults_kafka, tmp_path / "home", server.url, database), backend, seed=11)
    try:
        worker_pid, writer_pid = run.start()
        run.observe(LEAD, clickhouse_up=True)

        stopped = time.monotonic()
        if sig == signal.SIGKILL:
            os.kill(server.pid or 0, signal.SIGKILL)
            server.wait()
        server.stop()
        say(f"ClickHouse stopped ({sig.name}) for {CH_OUTAGE:.0f}s")
        run.observe(CH_OUTAGE, clickhouse_up=False)
        restarted = time.monotonic()
        port = server.port
        server.start(timeout=90)
        assert server.port == port

        run.observe(AFTER, clickhouse_up=True)
        delivered = run.wind_down(timeout=float(run.settings.writer_retry_max_seconds) + 180)
        say(f"writer through its backlog {time.monotonic() - restarted:.0f}s after ClickHouse restarted")

        # The worker never waited for ClickHouse: alerts kept coming and its lag stayed low during the outage.
        during = run.alerts.between(stopped, restarted)
        assert during, "no alert arrived while ClickHouse was down"
        assert longest_gap(during, stopped, restarted) < STALL, "the worker went quiet during the outage"
        lags = [lag for t, lag in run.watch.worker_lag if stopped <= t <= restarted]
        assert lags and max(lags) < RATE * STALL, f"the worker fell behind during the outage: {max(lags)}"
        say(f"{len(during)} alerts during the outage; worker lag at most {max(lags)} records")

        # The writer committed nothing while nothing could be inserted, then caught up.
        frozen = [c for t, c in run.watch.writer_committed if stopped + GRACE <= t <= restarted]
        assert len(frozen) >= 2 and all(c == frozen[0] for c in frozen), "the writer committed during the outage"
        check_commits_follow_inserts(run.watch, delivered)
        check_everything_arrived_once(run, delivered)

        assert run.pipeline.worker is not None and run.pipeline.worker.pid == worker_pid
        assert run.writer is not None and run.writer.pid == writer_pid
        run.writer.assert_alive()
        assert "ClickHouse unavailable" in run.writer.log.read_text(errors="replace"), "the writer saw no outage"
    finally:
        run.close()
        backend.close()


@pytest.mark.timeout(int(BROKER_OUTAGE + SETTLE))
@pytest.mark.parametrize("sig", SIGNALS)
def test_broker_restarted_under_load_the_worker_and_writer_resume_by_themselves_and_nothing_is_lost(
    sig: signal.Signals, jars_dir: Path, outage_clickhouse: LocalClickHouseServer, tmp_path: Path
) -> None:
    kafka = LocalKafka(tmp_path / "kafka", progress=say, jars_dir=jars_dir, heap="512m")
    try:
        bootstrap = kafka.start()
    except KafkaBrokerError as exc:
        pytest.fail(f"the local Kafka broker did not start: {exc}", pytrace=False)
    database = f"lwfault_{uuid.uuid4().hex[:10]}"
    backend = open_backend(outage_clickhouse.url, database, tmp_path / "unused-chdb")
    run = Run(unique_settings(bootstrap, tmp_path / "home", outage_clickhouse.url, database), backend, seed=23)
    try:
        worker_pid, writer_pid = run.start()
        run.observe(LEAD, clickhouse_up=True)

        if sig == signal.SIGKILL:
            os.kill(kafka.pid or 0, signal.SIGKILL)
            kafka.wait()
        kafka.stop()
        say(f"Kafka stopped ({sig.name}) for {BROKER_OUTAGE:.0f}s")
        time.sleep(BROKER_OUTAGE)
        assert kafka.start() == bootstrap, "the broker came back on another port"
        restarted = time.monotonic()

        run.observe(AFTER, clickhouse_up=True)
        delivered = run.wind_down(timeout=300)
        say(f"worker and writer through the backlog {time.monotonic() - restarted:.0f}s after the restart")

        # Nobody restarted them: the same processes carried on.
        run.pipeline.assert_worker_alive()
        assert run.pipeline.worker is not None and run.pipeline.worker.pid == worker_pid
        assert run.writer is not None and run.writer.pid == writer_pid
        run.writer.assert_alive()
        check_commits_follow_inserts(run.watch, delivered)
        check_everything_arrived_once(run, delivered)
        log = run.pipeline.worker_log.read_text(errors="replace")
        assert "Crashed reason" not in log, tail(run.pipeline.worker_log, "an agent crashed")
    finally:
        run.close()
        backend.close()
        kafka.stop()
