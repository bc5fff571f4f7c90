"""Models travel with partitions: a restarted worker restores each partition's ModelSet from its checkpoint.

Real Kafka broker, the worker as its own process. Phase 1 runs the worker on simulated traffic until every input
partition has a checkpoint in ``{app_id}-model-checkpoints-changelog``, lets it finish the input and stops it
gracefully; the last checkpoint of each partition is read straight from the changelog and rebuilt with
``ModelSet.from_bytes``. Phase 2 starts the worker again and sends, for every customer, the last event it
already processed: a replay, which the customer's profile (restored from its own changelog) recognises, so the
engine never scores or learns it (``Engine.process_batch`` returns before the models when nothing is fresh).
The worker still loads the partition's models to process the event, and checkpoints them again after the
checkpoint interval. That new checkpoint is therefore exactly what the restarted worker restored: it must
score a fixed set of feature vectors ``==`` to the pre-restart checkpoint and carry the same counters. A worker
that ignored the checkpoint would write a fresh model set, whose scores and counters the test also checks differ.

Pickle bytes are not compared: unpickling and pickling the same ModelSet again does not reproduce its bytes
(pickle's memo differs), so equality is established on what the models do, not on their encoding.

The test sets ``LOANWATCH_MODEL_CHECKPOINT_SECONDS`` to 2 s and waits for checkpoints rather than for a fixed
time.

The rule set lowers the models' warm-ups (anomaly 50 vectors, delinquency 1 outcome), so both models score the
fixed vectors with real, non-zero scores after a few seconds of traffic instead of the 0 of a warming-up model.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from detectors.base import DetectorScore, Features
from detectors.engine import Engine, EngineConfig
from detectors.models.anomaly import AnomalyConfig
from detectors.models.checkpoint import ModelSet
from detectors.models.delinquency import DelinquencyConfig
from detectors.profile_features import FEATURE_NAMES
from streams.clickhouse.backend import open_backend
from streams.clickhouse.embedded import chdb_path_in_use
from streams.rules_file import load_rules
from streams.settings import Settings
from streams.simulate.traffic import SimConfig, SimRecord, Traffic
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
CHECKPOINT_SECONDS = 2.0
RATE = 500.0  # events per second sent to the worker, in both phases
# Long enough after the 30 s default interval for another checkpoint, should the first one come too early.
CHECKPOINT_TIMEOUT = 100.0


def _rules() -> EngineConfig:
    base = EngineConfig()
    anomaly = AnomalyConfig.model_validate({**base.anomaly.model_dump(), "warm_up": 50, "window_size": 50})
    delinquency = DelinquencyConfig.model_validate({**base.delinquency.model_dump(), "warm_up": 1})
    return EngineConfig.model_validate({**base.model_dump(), "anomaly": anomaly, "delinquency": delinquency})


RULES = _rules()


def _fixed_vectors(n: int = 16) -> list[Features]:
    """Seeded profile vectors: every profile feature, the anomaly features spread over their whole range."""
    vectors: list[Features] = []
    for i in range(n):
        rng = random.Random(i)
        x = {name: rng.choice((0.0, 0.0, 1.0, 2.0, 5.0)) for name in FEATURE_NAMES}
        x.update({f.name: f.unscale(rng.random()) for f in RULES.anomaly.features})
        vectors.append(x)
    return vectors


VECTORS = _fixed_vectors()


@dataclass(frozen=True)
class Fingerprint:
    """What a model set does on the fixed vectors, and how much it has learned."""

    scores: tuple[tuple[DetectorScore, DetectorScore], ...]
    probabilities: tuple[float, ...]
    counters: dict[str, int]


def fingerprint(models: ModelSet) -> Fingerprint:
    return Fingerprint(
        scores=tuple(models.score_one(x) for x in VECTORS),
        probabilities=tuple(models.delinquency.predict_proba(x) for x in VECTORS),
        counters={
            "anomaly.n_learned": models.anomaly.n_learned,
            "anomaly.n_protected": models.anomaly.n_protected,
            "delinquency.n_learned": models.delinquency.n_learned,
            "delinquency.n_positive": models.delinquency.n_positive,
            "delinquency.pending": len(models.delinquency.pending),
            "delinquency.evicted": models.delinquency.pending.evicted,
        },
    )


@dataclass(frozen=True)
class Checkpoint:
    partition: int
    offset: int
    key: bytes
    value: bytes

    def models(self) -> ModelSet:
        return ModelSet.from_bytes(self.value)


class Changelog:
    """Every record of the model-checkpoint changelog, read with confluent-kafka from the beginning."""

    def __init__(self, settings: Settings) -> None:
        self.topic = f"{settings.app_id}-model-checkpoints-changelog"
        self.partitions = settings.partitions
        self.records: list[Checkpoint] = []
        self._consumer = Consumer(
            {
                **settings.confluent_config(),
                "group.id": f"lwtest-checkpoints-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            }
        )
        self._tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        wait_for(self._exists, 60, f"the worker to create {self.topic}")
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)])

    def _exists(self) -> bool:
        meta = self._consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
        return meta is not None and meta.error is None and len(meta.partitions) == self.partitions

    def read(self) -> list[Checkpoint]:
        """Everything written so far (up to each partition's current end); all records read until now."""
        ends = {tp.partition: self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._tps}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = {tp.partition: tp.offset for tp in self._consumer.position(self._tps)}
            if all(positions[p] >= end for p, end in ends.items() if end > 0):
                return self.records
            message = self._consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            self.records.append(
                Checkpoint(
                    message.partition() or 0, message.offset() or 0, message.key() or b"", message.value() or b""
                )
            )
        raise AssertionError(f"could not read {self.topic} up to offsets {ends}")

    def after(self, offsets: dict[int, int]) -> dict[int, list[Checkpoint]]:
        """Records of each partition at or after ``offsets[partition]``."""
        out: dict[int, list[Checkpoint]] = {p: [] for p in range(self.partitions)}
        for record in self.read():
            if record.offset >= offsets.get(record.partition, 0):
                out[record.partition].append(record)
        return out

    def close(self) -> None:
        self._consumer.close()


def input_consumed(settings: Settings) -> bool:
    """True when the worker's consumer group has committed every input record."""
    topics = settings.topics
    tps = [
        TopicPartition(t, p)
        for t in (topics.behavior, topics.repayment, topics.inquiry)
        for p in range(settings.partitions)
    ]
    consumer = Consumer({**settings.confluent_config(), "group.id": settings.app_id, "enable.auto.commit": False})
    try:
        for tp in consumer.committed(tps, timeout=10):
            end = consumer.get_watermark_offsets(tp, timeout=10)[1]
            if end > 0 and tp.offset < end:
                return False
        return True
    finally:
        consumer.close()


class Sender:
    """Produces ``records`` at RATE in a thread until stopped, remembering what it sent."""

    def __init__(self, pipeline: Pipeline, records: Iterable[SimRecord]) -> None:
        self.sent: list[SimRecord] = []
        self._stop = threading.Event()
        self._records = records
        self._thread = threading.Thread(target=pipeline.produce, args=(self._messages(),), kwargs={"rate": RATE})
        self._thread.start()

    def _messages(self) -> Iterator[tuple[str, bytes | None, bytes]]:
        for record in self._records:
            if self._stop.is_set():
                return
            self.sent.append(record)
            yield record.topic, record.key, record.value

    def stop(self) -> list[SimRecord]:
        self._stop.set()
        self._thread.join(90)
        assert not self._thread.is_alive(), "the producer did not stop"
        return self.sent


def cycle(records: list[SimRecord]) -> Iterator[SimRecord]:
    while True:
        yield from records


def _mismatch(partition: int, got: Fingerprint, saved: Fingerprint) -> str:
    learned, before = got.counters["anomaly.n_learned"], saved.counters["anomaly.n_learned"]
    why = (
        "it started from fresh models, not from the checkpoint"
        if learned < before
        else "it learned from replayed events (was the customer state restored?)"
    )
    return (
        f"partition {partition}: the restarted worker's models are not the checkpointed ones ({why}): "
        f"{got.counters} after the restart, {saved.counters} checkpointed before it"
    )


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, chdb_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    # Before Settings is built: once Settings has the field, to_env() passes it on to the worker.
    monkeypatch.setenv("LOANWATCH_MODEL_CHECKPOINT_SECONDS", str(CHECKPOINT_SECONDS))
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(RULES.model_dump(mode="json")), encoding="utf-8")
    assert load_rules(rules_file) == RULES
    # The worker does not touch ClickHouse; Pipeline only needs a backend to initialise (embedded chdb).
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    backend = open_backend(None, database, chdb_path_in_use() or chdb_dir)
    settings = unique_settings(kafka_bootstrap, tmp_path / "home", None, database, rules_file=rules_file)
    p = Pipeline(settings, backend)
    yield p
    p.close()
    backend.close()


def test_restarted_worker_restores_every_partitions_models_and_scores_exactly_as_before(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    topics = settings.topics
    partitions = range(settings.partitions)
    engine = Engine(RULES)
    traffic = Traffic(
        SimConfig(
            # Few customers over a week: repayment outcomes (delinquency learning) reach every partition within the
            # first ~3,000 events, and there are ~38,000 events, enough for two default 30 s checkpoint intervals.
            customers=500,
            start=T0,
            hours=168.0,
            behavior_topic=topics.behavior,
            repayment_topic=topics.repayment,
            inquiry_topic=topics.inquiry,
        )
    )

    # -- phase 1: learn until every partition has a checkpoint whose models have learned both kinds of thing ---
    pipeline.start_worker()
    changelog = Changelog(settings)
    try:
        sender = Sender(pipeline, traffic.records())

        def learned_checkpoints() -> bool:
            pipeline.assert_worker_alive()
            latest = {c.partition: c for c in changelog.read()}
            return all(
                p in latest and (m := latest[p].models()).anomaly.warmed_up and m.delinquency.n_learned > 0
                for p in partitions
            )

        wait_for(
            learned_checkpoints, CHECKPOINT_TIMEOUT, "a learned checkpoint of every partition", pipeline.worker_log
        )
        sent = sender.stop()
        # Everything sent is processed (and its customer state written) before the worker stops, so that
        # nothing sent in phase 1 is new to the restarted worker.
        wait_for(lambda: input_consumed(settings), 60, "the worker to commit all phase-1 input", pipeline.worker_log)
        pipeline.assert_worker_alive()
        pipeline.stop_worker()

        saved = changelog.read()
        before = {c.partition: c for c in saved}  # the last checkpoint of each partition: what a restart restores
        assert sorted(before) == list(partitions)
        assert all(c.key == str(c.partition).encode() for c in saved), "a checkpoint is not in its own partition"
        ends = {p: c.offset + 1 for p, c in before.items()}
        expected: dict[int, Fingerprint] = {}
        for p, checkpoint in before.items():
            models = checkpoint.models()
            assert models.partition == p
            saved_fp = fingerprint(models)
            assert fingerprint(models) == saved_fp, f"partition {p}: scoring the fixed vectors changed the models"
            fresh = fingerprint(engine.new_models(p))
            assert saved_fp.counters["anomaly.n_learned"] >= RULES.anomaly.warm_up
            assert saved_fp.counters["delinquency.n_learned"] > 0
            assert any(s[0].score > 0 for s in saved_fp.scores), f"partition {p}: the anomaly model does not score"
            assert saved_fp.scores != fresh.scores and saved_fp.probabilities != fresh.probabilities
            assert saved_fp.counters != fresh.counters
            expected[p] = saved_fp
        # Partitions learned different traffic: their models are their own.
        assert len({f.scores for f in expected.values()}) == len(expected)

        # -- phase 2: restart, replay already-processed events (learning nothing), wait for new checkpoints ----
        last_of_customer = {r.key: r for r in sent}
        replay = sorted(last_of_customer.values(), key=lambda r: r.ts_ms)
        pipeline.start_worker()
        sender = Sender(pipeline, cycle(replay))

        def new_checkpoints() -> bool:
            pipeline.assert_worker_alive()
            return all(changelog.after(ends)[p] for p in partitions)

        wait_for(new_checkpoints, CHECKPOINT_TIMEOUT, "the restarted worker's checkpoints", pipeline.worker_log)
        sender.stop()
        pipeline.assert_worker_alive()

        restored = changelog.after(ends)
        for p in partitions:
            for checkpoint in restored[p]:
                assert checkpoint.key == str(p).encode()
                got = fingerprint(checkpoint.models())
                assert got.counters == expected[p].counters, _mismatch(p, got, expected[p])
                assert got.scores == expected[p].scores, f"partition {p}: restored models score differently"
                assert got.probabilities == expected[p].probabilities, f"partition {p}: restored p differs"
    finally:
        changelog.close()
