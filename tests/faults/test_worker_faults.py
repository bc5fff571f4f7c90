"""Workers killed with SIGKILL, and a second worker joining and the first leaving, while traffic flows.

Real broker (the suite's own), workers as real processes, the ClickHouse writer running throughout. Ground truth:
the simulated records (their burst episodes), the burst alerts the offline oracle derives from them, and the
state the engine reaches on the same events without any fault. Each test checks:

- every expected burst alert is on ``risk.alerts.v1``, equal to the oracle's (same id, tier, count), and no
  other burst alert id (a replay may re-send an id; a second id for the same episode is a doubled alert);
- fused alerts are there, each id exactly once in ClickHouse after ``FINAL``, links point at sent alerts;
- nothing reaches the dead-letter topic (every record is valid);
- each sampled customer's durable state (the last changelog record) equals the uninterrupted replay's;
- every partition's models are checkpointed, have learned, and never restart from scratch.

Size: ``LOANWATCH_FAULT_EVENTS`` events (default 60,000 so the suite fits CI;
``LOANWATCH_FAULT_EVENTS=200000 pytest tests/faults -k kill`` is the full-size run). The join/leave test sends
half as many.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial

import pytest

from schemas.outputs import Alert
from streams.settings import Settings
from streams.simulate.traffic import SimConfig, SimRecord, Traffic
from tests.faults.recovery import (
    behavior_owners,
    committed_total,
    difference,
    history,
    input_records,
    latest_states,
    learned_part,
    miscounted,
    model_checkpoints,
    replayed_states,
    wait_consumed,
)
from tests.integration.expected import expected_alerts
from tests.integration.harness import Pipeline, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
BURST = "multi_application_burst"
EVENTS = int(os.environ.get("LOANWATCH_FAULT_EVENTS", "60000"))
HOURS = 48.0
# Events per customer the simulator gives over 48 and 6 hours of event time (about 23 and 5.2), with a margin.
EVENTS_PER_CUSTOMER = {HOURS: 20.0, 6.0: 4.6}
RATE = 2000.0  # events/s produced: the producer runs for EVENTS / RATE seconds
KILLS = 3
CHECKPOINT_SECONDS = 3.0
SAMPLE = 300  # customers whose state is compared with the offline replay, besides every burst customer


@pytest.fixture(autouse=True)
def _frequent_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    # Before the pipeline's Settings are built: to_env() then hands the interval to every worker.
    monkeypatch.setenv("LOANWATCH_MODEL_CHECKPOINT_SECONDS", str(CHECKPOINT_SECONDS))


@pytest.fixture
def fast_eviction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's own settings from the environment: a killed member leaves the group after 10 s instead of 60 s.

    So each restart resumes within seconds (workers inherit this process's environment). Not for live members
    under rebalance: a busy worker can take longer than 10 s to hand its partitions over, and is then dropped.
    """
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "10")
    monkeypatch.setenv("BROKER_HEARTBEAT_INTERVAL", "1")


def simulated(pipeline: Pipeline, events: int, seed: int, hours: float = HOURS) -> list[SimRecord]:
    """At least ``events`` simulated records over ``hours`` of event time (48 or 6)."""
    topics = pipeline.settings.topics
    config = SimConfig(
        customers=math.ceil(events / EVENTS_PER_CUSTOMER[hours]),
        seed=seed,
        start=T0,
        hours=hours,
        burst_share=0.05,
        behavior_topic=topics.behavior,
        repayment_topic=topics.repayment,
        inquiry_topic=topics.inquiry,
    )
    records = list(Traffic(config).records())
    assert len(records) >= events
    return records


class Feed:
    """Produces records at a steady rate in a thread, noting when each one was handed to the producer."""

    def __init__(self, pipeline: Pipeline, records: list[SimRecord], rate: float) -> None:
        self.records = records
        self.sent_at: list[float] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(pipeline, rate), daemon=True)
        self._thread.start()

    def _messages(self) -> Iterator[tuple[str, bytes | None, bytes]]:
        for record in self.records:
            self.sent_at.append(time.monotonic())
            yield record.topic, record.key, record.value

    def _run(self, pipeline: Pipeline, rate: float) -> None:
        try:
            pipeline.produce(self._messages(), rate=rate)
        except BaseException as exc:  # noqa: BLE001 — re-raised in the test's thread by join()
            self._error = exc

    def progress(self) -> float:
        return len(self.sent_at) / len(self.records)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the producer did not finish"
        if self._error is not None:
            raise self._error


class ExtraWorker:
    """Another worker process of the same app (so the same consumer group), with a home and a log of its own."""

    def __init__(self, pipeline: Pipeline, name: str) -> None:
        home = pipeline.settings.home / name
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "worker.log"
        env = {
            **os.environ,
            **pipeline.settings.to_env(),
            "LOANWATCH_HOME": str(home),
            "LOANWATCH_LOG_LEVEL": "INFO",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def assert_alive(self) -> None:
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])
        assert self.process.poll() is None, f"the second worker exited\n{tail}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def check_alerts(pipeline: Pipeline, expected: dict[str, Alert]) -> None:
    """Burst alerts equal the oracle's, fused ones are there; each id once in ClickHouse; no dead letter."""
    topics = pipeline.settings.topics
    on_topic = [Alert.model_validate_json(v) for _, v in pipeline.consume_all(topics.alerts, len(expected), 240)]
    burst = [a for a in on_topic if a.rule_id == BURST]
    ids = {a.alert_id for a in burst}
    missing = sorted(set(expected) - ids, key=lambda i: expected[i].customer_id)
    assert ids == set(expected), f"missing {len(missing)}, unexpected {len(ids - set(expected))}\n" + "\n".join(
        explain_missing(pipeline, expected[i], on_topic) for i in missing[:3]
    )
    wrong = [a.alert_id for a in burst if a != expected[a.alert_id]]
    assert not wrong, f"{len(wrong)} burst alerts differ from the oracle's (count, tier or evidence), e.g. {wrong[0]}"
    all_ids = {a.alert_id for a in on_topic}
    assert len(all_ids) > len(ids), "the other scenarios raise fused alerts too"
    dangling = {a.previous_alert_id for a in on_topic} - all_ids - {None}
    assert not dangling, f"escalations link {len(dangling)} alerts that were never sent"

    wait_for(
        lambda: pipeline.scalar("SELECT uniqExact(alert_id) FROM {db}.alerts") >= len(all_ids),
        180,
        "every alert in ClickHouse",
        pipeline.worker_log,
    )
    rows = pipeline.rows("SELECT alert_id, count() FROM {db}.alerts FINAL GROUP BY alert_id")
    assert {r[0] for r in rows} == all_ids
    assert all(r[1] == 1 for r in rows), "an alert is doubled after FINAL"
    assert pipeline.consume_all(topics.deadletter, expected=0, timeout=30) == [], "a valid event was dead-lettered"
    assert pipeline.scalar("SELECT count() FROM {db}.dead_letters") == 0


def explain_missing(pipeline: Pipeline, alert: Alert, on_topic: list[Alert]) -> str:
    """What the topic and the changelog hold for the customer of an expected alert that never came."""
    sent = [f"{a.alert_id[:8]} {a.rule_id} {a.tier}" for a in on_topic if a.customer_id == alert.customer_id]
    return (
        f"{alert.alert_id[:8]} ({alert.customer_id} {alert.tier}, last evidence {alert.evidence_event_ids[-1]}) "
        f"missing; the customer's alerts on the topic: {sent}\nchangelog of {alert.customer_id}:\n"
        + history(pipeline.settings, alert.customer_id.encode())
    )


def check_states(pipeline: Pipeline, records: list[SimRecord], customers: set[bytes]) -> None:
    """The durable state of ``customers`` against the fault-free replay, in everything learning does not touch.

    Strict: the burst state (its late counter too) and the profile's watermark are equal, every profile count
    equals the replay's (none below it: an event lost; none above it: a redelivered event counted twice — the
    worker passes each event's input offset and the state recognises what it has applied), and so does every
    other profile feature.
    """
    stored = latest_states(pipeline.settings, customers)
    assert set(stored) == customers, f"{len(customers - set(stored))} customers have no state in the changelog"
    truth = replayed_states(pipeline.settings, records, customers)
    bursts = sorted(k for k in customers if stored[k][1].burst != truth[k].burst)
    assert not bursts, f"{len(bursts)} burst states differ: " + difference(stored[bursts[0]][1], truth[bursts[0]])
    moved = sorted(k for k in customers if stored[k][1].profile.watermark_ms != truth[k].profile.watermark_ms)
    assert not moved, f"{len(moved)} customers' event-time watermark differs, e.g. {moved[:3]}"
    for which, label in ((0, "lost events"), (1, "counted events twice")):
        wrong = {k: miscounted(stored[k][1], truth[k])[which] for k in customers}
        wrong = {k: names for k, names in wrong.items() if names}
        assert not wrong, f"{len(wrong)} customers {label}: " + "; ".join(
            f"{k.decode()}: {names[:5]}" for k, names in sorted(wrong.items())[:3]
        ) + f"\nchangelog of {min(wrong)!r}:\n{history(pipeline.settings, min(wrong))}"
    unequal = sorted(k for k in customers if learned_part(stored[k][1]) != learned_part(truth[k]))
    assert not unequal, f"{len(unequal)} profiles differ: " + difference(stored[unequal[0]][1], truth[unequal[0]])
    replays = sum(stored[k][1].profile.duplicate_events for k in customers)
    print(
        f"state of {len(customers)} customers: burst state and every profile feature equal to the fault-free "
        f"replay; {replays:,} redelivered events reached the engine (the input progress skips the others)"
    )


def check_models(pipeline: Pipeline, faults_at_ms: list[int], outcomes: bool = True) -> None:
    """Every partition checkpoints learned models after the last fault, and never falls back to fresh ones.

    ``outcomes``: the traffic spans days, so the delinquency model has learned repayment outcomes too.
    """
    checkpoints = model_checkpoints(pipeline.settings)
    for partition, saved in checkpoints.items():
        assert saved, f"partition {partition} has no model checkpoint"
        last = saved[-1]
        assert last.anomaly_learned > 0 and (last.delinquency_learned > 0 or not outcomes), f"{partition}: {last}"
        assert last.timestamp_ms >= faults_at_ms[-1] - CHECKPOINT_SECONDS * 1000, f"partition {partition}: {last}"
        # A restarted or new owner starts from the last checkpoint, so the counters never go back.
        learned = [(c.anomaly_learned, c.delinquency_learned) for c in saved]
        back = [(a, b) for a, b in zip(learned, learned[1:], strict=False) if b[0] < a[0] or b[1] < a[1]]
        assert not back, f"partition {partition}: models restarted from less than their checkpoint: {back[:3]}"
        after_fault = [c for c in saved if c.timestamp_ms > faults_at_ms[0]]
        assert after_fault, f"partition {partition}: no checkpoint after the first fault"
        print(f"partition {partition}: {len(saved)} checkpoints, last learned {last.anomaly_learned} vectors")


def sample_customers(records: list[SimRecord], seed: int) -> set[bytes]:
    """Every customer with a burst, and a seeded sample of the others."""
    bursty = {r.key for r in records if r.label == BURST and r.key is not None}
    others = sorted({r.key for r in records if r.key is not None} - bursty)
    return bursty | set(random.Random(seed).sample(others, min(SAMPLE, len(others))))


def progressed(settings: Settings, committed: int) -> bool:
    return committed_total(settings) >= committed


@pytest.mark.usefixtures("fast_eviction")
@pytest.mark.timeout(max(600, EVENTS // 150))  # 200,000 events take longer than the suite's 600 s default
def test_worker_killed_repeatedly_under_load_loses_no_alert_state_or_model(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    records = simulated(pipeline, EVENTS, seed=61)
    expected = expected_alerts(r.value for r in records if r.topic == settings.topics.behavior)
    assert len(expected) >= EVENTS // 400, "the traffic should contain bursts"

    pipeline.start_writer()
    pipeline.start_worker()
    feed = Feed(pipeline, records, RATE)
    rng = random.Random(606)
    # One kill in each of KILLS equal stretches of the production, at a random point of it, once the (restarted)
    # worker has committed something new: every kill lands while the worker is busy and input is still coming.
    # (Points measured by what the worker committed let a restarted worker, which skips what it had applied and
    # catches up fast, finish the input before the last kill.)
    kill_points = [(k + rng.uniform(0.2, 0.8)) * 0.9 / KILLS for k in range(KILLS)]
    kills_ms: list[int] = []
    for point in kill_points:
        started_at = committed_total(settings)
        wait_for(lambda: feed.progress() >= point, 600, "production")  # noqa: B023 — used within the iteration
        wait_for(partial(progressed, settings, started_at + 500), 600, "the worker at work", pipeline.worker_log)
        pipeline.kill_worker()
        kills_ms.append(time.time_ns() // 1_000_000)
        consumed = committed_total(settings)
        assert consumed < len(records), "the worker was idle, not mid-stream"
        print(f"killed with {consumed:,} of {len(records):,} consumed, {feed.progress():.0%} produced")
        time.sleep(rng.uniform(0.5, 3.0))
        pipeline.start_worker()
    feed.join(900)
    wait_consumed(settings, len(records), 600, pipeline.assert_worker_alive)
    assert input_records(settings) == len(records), "the input topics hold another number of records than sent"

    check_alerts(pipeline, expected)
    check_models(pipeline, kills_ms)
    check_states(pipeline, records, sample_customers(records, seed=7))
    pipeline.assert_worker_alive()


def test_a_second_worker_joins_and_the_first_leaves_under_load_and_state_moves_with_the_partitions(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.settings
    # Six hours of event time: a burst's half hour lasts seconds of produce time, long enough to span a move.
    records = simulated(pipeline, EVENTS // 2, seed=62, hours=6.0)
    expected = expected_alerts(r.value for r in records if r.topic == settings.topics.behavior)
    rate = RATE / 2  # two workers share two cores with the producer and the writer: stay below their pace

    pipeline.start_writer()
    pipeline.start_worker()
    wait_for(lambda: len(behavior_owners(settings)) == 1, 120, "the first worker in the group", pipeline.worker_log)
    (first_member,) = behavior_owners(settings)
    feed = Feed(pipeline, records, rate)
    wait_for(lambda: feed.progress() >= 0.25, 600, "a quarter of the traffic")

    second = ExtraWorker(pipeline, "second")
    try:
        join_started = time.monotonic()
        wait_for(
            lambda: sorted(len(p) for p in behavior_owners(settings).values()) == [2, 2],
            180,
            "the partitions shared by two workers",
            second.log,
        )
        join_done = time.monotonic()
        owners = behavior_owners(settings)
        assert first_member in owners, "the first worker lost its membership instead of sharing"
        moved_at_join = set().union(*(parts for member, parts in owners.items() if member != first_member))
        moved_at_leave = owners[first_member]
        print(f"partitions {sorted(moved_at_join)} moved to the second worker in {join_done - join_started:.1f}s")
        wait_for(lambda: feed.progress() >= 0.6, 600, "60 % of the traffic")

        leave_started = time.monotonic()
        pipeline.stop_worker()  # SIGTERM: the first worker leaves cleanly
        wait_for(
            lambda: list(behavior_owners(settings).values()) == [set(range(settings.partitions))],
            180,
            "every partition on the second worker",
            second.log,
        )
        leave_done = time.monotonic()
        left_ms = time.time_ns() // 1_000_000
        print(f"partitions {sorted(moved_at_leave)} moved to the second worker in {leave_done - leave_started:.1f}s")
        feed.join(900)
        wait_consumed(settings, len(records), 600, second.assert_alive)
        assert input_records(settings) == len(records), "the input topics hold another number of records than sent"

        check_alerts(pipeline, expected)
        # Bursts whose applications were produced before and after a migration of their customer's partition.
        customers = sample_customers(records, seed=8)
        stored = latest_states(settings, customers)
        partition_of = {key: part for key, (part, _) in stored.items()}
        sent: dict[bytes, list[float]] = defaultdict(list)
        for record, at in zip(records, feed.sent_at, strict=True):
            if record.label == BURST and record.key is not None:
                sent[record.key].append(at)
        # Sent before the move began (the old owner keeps up, so it processed them) and after (the new owner did).
        spanning = {
            key
            for key, times in sent.items()
            if (partition_of.get(key) in moved_at_join and min(times) < join_started < max(times))
            or (partition_of.get(key) in moved_at_leave and min(times) < leave_started < max(times))
        }
        print(f"{len(spanning)} bursts span a migration of their partition")
        assert spanning, "no burst spans a migration: the test proves nothing about state continuity"
        check_states(pipeline, records, customers)
        check_models(pipeline, [left_ms], outcomes=False)  # six hours: few installments fall due
        second.assert_alive()
    finally:
        second.stop()
