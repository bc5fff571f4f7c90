"""A pipeline under test: real broker, real ClickHouse, the worker as a real process, the writer in a thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from streams.bootstrap import initialise
from streams.clickhouse.backend import ClickHouseBackend
from streams.clickhouse.writer import ClickHouseWriter
from streams.settings import Settings, TopicNames


def unique_settings(
    bootstrap: str, home: Path, clickhouse_url: str | None, database: str, **overrides: Any
) -> Settings:
    """Settings whose topics, app id, consumer group and database belong to one test only."""
    tag = uuid.uuid4().hex[:10]
    topics = TopicNames(**{name: f"{default}.{tag}" for name, default in TopicNames().model_dump().items()})
    return Settings(
        home=home,
        app_id=f"lwtest-{tag}",
        kafka_bootstrap=bootstrap,
        clickhouse_url=clickhouse_url,
        clickhouse_database=database,
        partitions=4,
        writer_group=f"lwtest-writer-{tag}",
        writer_batch_seconds=0.5,
        worker_commit_interval=0.5,
        topics=topics,
        **overrides,
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    """Poll until ``predicate`` holds; fail with what was awaited (and the worker log tail) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- worker log tail ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


class Pipeline:
    """Start / stop / kill the parts of a pipeline for one test."""

    def __init__(self, settings: Settings, backend: ClickHouseBackend) -> None:
        self.settings = settings
        self.backend = backend
        self.db = settings.clickhouse_database
        self.worker_log = settings.home / "worker.log"
        self.worker: subprocess.Popen[bytes] | None = None
        self._writer_stop: threading.Event | None = None
        self._writer_thread: threading.Thread | None = None
        self.writer: ClickHouseWriter | None = None
        settings.home.mkdir(parents=True, exist_ok=True)
        initialise(settings, progress=lambda _: None, backend=backend)

    # -- worker -------------------------------------------------------------------------------------------
    def start_worker(self) -> None:
        env = {**os.environ, **self.settings.to_env(), "LOANWATCH_LOG_LEVEL": "INFO"}
        with self.worker_log.open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(30)
        self.worker = None

    def stop_worker(self) -> None:
        if self.worker is None:
            return
        self.worker.terminate()
        try:
            self.worker.wait(60)
        except subprocess.TimeoutExpired:
            self.worker.kill()
            self.worker.wait()
        self.worker = None

    def assert_worker_alive(self) -> None:
        assert self.worker is not None and self.worker.poll() is None, self._log_tail("worker exited")

    def _log_tail(self, what: str) -> str:
        text = self.worker_log.read_text(errors="replace") if self.worker_log.exists() else ""
        return what + "\n" + "\n".join(text.splitlines()[-60:])

    # -- writer -------------------------------------------------------------------------------------------
    def start_writer(self) -> None:
        self.writer = ClickHouseWriter(self.settings, self.backend)
        self._writer_stop = threading.Event()
        self._writer_thread = threading.Thread(target=self.writer.run, args=(self._writer_stop,), daemon=True)
        self._writer_thread.start()

    def stop_writer(self) -> None:
        if self._writer_stop is not None and self._writer_thread is not None:
            self._writer_stop.set()
            self._writer_thread.join(120)
            assert not self._writer_thread.is_alive(), "writer did not stop"
        self._writer_stop = None
        self._writer_thread = None

    def close(self) -> None:
        self.stop_worker()
        self.stop_writer()

    # -- Kafka --------------------------------------------------------------------------------------------
    def produce(self, messages: Iterable[tuple[str, bytes | None, bytes]], rate: float | None = None) -> int:
        producer = Producer(
            {
                **self.settings.confluent_config(),
                "partitioner": "murmur2_random",
                "linger.ms": 10,
                "enable.idempotence": True,
                # The worker must read compressed batches from any producer (the simulator uses lz4).
                "compression.type": "zstd",
            }
        )
        failures: list[str] = []

        def on_delivery(error: Any, _msg: Any) -> None:
            if error is not None:
                failures.append(str(error))

        count = 0
        started = time.monotonic()
        for topic, key, value in messages:
            if rate is not None:
                ahead = count / rate - (time.monotonic() - started)
                if ahead > 0:
                    producer.poll(ahead)
            while True:
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
            count += 1
            producer.poll(0)
        remaining = producer.flush(60)
        assert remaining == 0 and not failures, f"produce failed: {remaining} undelivered, {failures[:3]}"
        return count

    def consume_all(
        self, topic: str, expected: int, timeout: float = 90.0
    ) -> list[tuple[bytes | None, bytes]]:
        """Every message of ``topic`` from the start; waits until at least ``expected`` arrived, then drains."""
        return [(key, value) for _, key, value in self.consume_with_partitions(topic, expected, timeout)]

    def consume_with_partitions(
        self, topic: str, expected: int, timeout: float = 90.0
    ) -> list[tuple[int, bytes | None, bytes]]:
        """Like :meth:`consume_all`, with each message's partition."""
        consumer = Consumer(
            {
                **self.settings.confluent_config(),
                "group.id": f"lwtest-reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        out: list[tuple[int, bytes | None, bytes]] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        try:
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None:
                    # Keep reading a little past `expected`, so a surplus (a doubled message) is seen too.
                    if len(out) >= expected and time.monotonic() - quiet_since > 3.0:
                        break
                    continue
                if message.error() is not None:
                    continue
                out.append((message.partition() or 0, message.key(), message.value() or b""))
                quiet_since = time.monotonic()
        finally:
            consumer.close()
        return out

    # -- ClickHouse ---------------------------------------------------------------------------------------
    def scalar(self, sql: str) -> Any:
        return self.backend.query(sql.format(db=self.db))[0][0]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.backend.query(sql.format(db=self.db))
