"""`loanwatch demo`: the whole pipeline on embedded defaults, alerts shown as they arrive.

Local broker (or LOANWATCH_KAFKA_BOOTSTRAP), topics and tables, a worker process, the ClickHouse writer, and the
simulator; it stops when the traffic is processed, after ``duration`` or on Ctrl-C, and returns the summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from rich.console import Console

from schemas import serde
from schemas.common import to_ms
from schemas.outputs import Alert
from streams.bootstrap import initialise
from streams.clickhouse.connect import open_for_settings
from streams.clickhouse.writer import ClickHouseWriter, WriterStats
from streams.local.kafka_broker import KAFKA_VERSION, LocalKafka
from streams.settings import Settings
from streams.simulate.produce import ProduceStats, produce
from streams.simulate.traffic import InjectedBurst, SimConfig, Traffic

_TIER_STYLE = {"notice": "cyan", "attention": "yellow", "warning": "bold red"}
# Event time of the simulated day: a fixed date keeps runs comparable; 00:00 UTC is 08:00 in China, so the
# default ten hours cover the busy part of a borrower's day.
_SIM_START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoOptions:
    """What the demo simulates and for how long at most."""

    duration: float
    customers: int
    hours: float
    rate: float
    seed: int
    malformed_share: float = 0.005


class AlertTail:
    """Consumes the alert topic from the start, prints each new alert, keeps them by id (deduplicated)."""

    def __init__(self, settings: Settings, console: Console) -> None:
        self._settings = settings
        self._console = console
        self.alerts: dict[str, Alert] = {}

    def run(self, stop: threading.Event) -> None:
        """Print alerts until ``stop`` is set."""
        consumer = Consumer(
            {
                **self._settings.confluent_config(),
                "group.id": f"loanwatch-demo-tail-{os.getpid()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self._settings.topics.alerts])
        try:
            while not stop.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                alert = Alert.model_validate_json(message.value() or b"")
                if alert.alert_id not in self.alerts:
                    self.alerts[alert.alert_id] = alert
                    self._show(alert)
        finally:
            consumer.close()

    def _show(self, alert: Alert) -> None:
        style = _TIER_STYLE[alert.tier]
        self._console.print(
            f"[{style}]{alert.tier_label} {alert.tier:<9}[/{style}] {alert.customer_id} {alert.rule_id} "
            f"score {alert.score:.2f}  {alert.reasons[0].message}  (event time {alert.last_seen:%H:%M})",
            highlight=False,
        )


def _start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.to_env(), "LOANWATCH_LOG_LEVEL": "INFO"}
    log = log_path.open("ab")
    return subprocess.Popen(  # noqa: S603 — our own interpreter and module
        [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _detected(bursts: list[InjectedBurst], alerts: dict[str, Alert]) -> int:
    """Injected bursts with a burst alert for that customer whose evidence overlaps the burst in event time."""
    by_customer: dict[str, list[Alert]] = {}
    for alert in alerts.values():
        if alert.rule_id == "multi_application_burst":
            by_customer.setdefault(alert.customer_id, []).append(alert)
    found = 0
    for burst in bursts:
        if any(
            to_ms(a.first_seen) <= burst.end_ms and to_ms(a.last_seen) >= burst.start_ms
            for a in by_customer.get(burst.customer_id, [])
        ):
            found += 1
    return found


def run_demo(base: Settings, options: DemoOptions, stop: threading.Event) -> str:
    """Run the demo and return the one-line JSON summary."""
    console = Console(highlight=False, soft_wrap=True)
    deadline = time.monotonic() + options.duration
    run_home = base.home / "demo"
    # Each run starts from nothing (broker data, tables, Faust state) so its counts are its own; the jar
    # cache under home/kafka is kept. The data stays after the run for anyone who wants to query it.
    shutil.rmtree(run_home, ignore_errors=True)
    run_home.mkdir(parents=True)

    with ExitStack() as stack:
        bootstrap = base.kafka_bootstrap
        if bootstrap is None:
            kafka = LocalKafka(
                run_home / "kafka",
                progress=console.print,
                jars_dir=base.home / "kafka" / "jars" / KAFKA_VERSION,
            )
            console.print("starting the local Kafka broker…")
            bootstrap = kafka.start()
            stack.callback(kafka.stop)
            console.print(f"Kafka ready at {bootstrap}")
        settings = base.model_copy(update={"kafka_bootstrap": bootstrap, "home": run_home})
        backend = open_for_settings(settings)
        stack.callback(backend.close)
        initialise(settings, progress=console.print, backend=backend)

        worker = _start_worker(settings, run_home / "worker.log")
        stack.callback(_stop_process, worker)
        console.print(f"worker started (pid {worker.pid}, log {run_home / 'worker.log'})")

        threads_stop = threading.Event()
        writer_stop = threading.Event()
        writer = ClickHouseWriter(settings, backend)
        writer_thread = threading.Thread(target=writer.run, args=(writer_stop,), name="writer", daemon=True)
        tail = AlertTail(settings, console)
        tail_thread = threading.Thread(target=tail.run, args=(threads_stop,), name="tail", daemon=True)
        writer_thread.start()
        tail_thread.start()

        traffic = Traffic(
            SimConfig(
                customers=options.customers,
                seed=options.seed,
                start=_SIM_START,
                hours=options.hours,
                malformed_share=options.malformed_share,
                behavior_topic=settings.topics.behavior,
                repayment_topic=settings.topics.repayment,
                inquiry_topic=settings.topics.inquiry,
            )
        )
        produced: list[ProduceStats] = []
        sim_thread = threading.Thread(
            target=lambda: produced.append(
                produce(
                    settings.confluent_config(),
                    traffic.records(),
                    rate=options.rate,
                    stop=threads_stop,
                    progress=None,
                    labels_path=run_home / "labels.jsonl",
                    episodes=traffic.episodes,
                )
            ),
            name="simulator",
            daemon=True,
        )
        sim_thread.start()
        console.print(
            f"simulating {options.customers:,} customers over {options.hours:g} h of event time at "
            f"{options.rate:,.0f} events/s; {len(traffic.bursts)} bursts injected — alerts follow"
        )

        last_report = time.monotonic()
        while time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.5)
            if worker.poll() is not None:
                console.print(f"[red]worker exited with {worker.returncode}; see {run_home / 'worker.log'}[/red]")
                break
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                _report_progress(console, produced, writer.stats, tail)
            if not sim_thread.is_alive() and _caught_up(traffic.bursts, tail, writer.stats, produced):
                console.print("all traffic processed")
                break

        threads_stop.set()
        sim_thread.join(30)
        # Give the worker a moment to publish what is in flight, then stop it before the writer's last batch.
        time.sleep(2.0)
        _stop_process(worker)
        time.sleep(1.0)
        writer_stop.set()
        writer_thread.join(120)
        tail_thread.join(10)
        summary = _summary(settings, backend, traffic, produced, tail)
    return serde.dumps(summary).decode("utf-8")


def _caught_up(bursts: list[InjectedBurst], tail: AlertTail, stats: WriterStats, produced: list[ProduceStats]) -> bool:
    if not produced:
        return False
    sent = produced[0]
    malformed = sent.by_label.get("malformed", 0)
    return (
        _detected(bursts, tail.alerts) == len(bursts)
        and stats.rows.get("events", 0) + stats.skipped_invalid_events >= sent.delivered
        and stats.rows.get("dead_letters", 0) >= malformed
        and stats.rows.get("alerts", 0) >= len(tail.alerts)
    )


def _report_progress(console: Console, produced: list[ProduceStats], stats: WriterStats, tail: AlertTail) -> None:
    console.print(
        f"[dim]… writer consumed {stats.consumed:,} records, rows {stats.rows}; {len(tail.alerts)} alerts so far[/dim]"
    )


def _summary(
    settings: Settings,
    backend: Any,
    traffic: Traffic,
    produced: list[ProduceStats],
    tail: AlertTail,
) -> dict[str, Any]:
    db = settings.clickhouse_database

    def count(table: str) -> int:
        # db is a validated identifier (Settings), table one of ours: nothing user-typed reaches the SQL.
        return int(backend.query(f"SELECT count() FROM {db}.{table} FINAL")[0][0])  # noqa: S608

    by_tier = {tier: 0 for tier in ("notice", "attention", "warning")}
    for alert in tail.alerts.values():
        by_tier[alert.tier] += 1
    sent = produced[0] if produced else None
    valid_events = (sent.delivered - sent.by_label.get("malformed", 0)) if sent else 0
    return {
        "events": valid_events,
        "dead_letters": count("dead_letters"),
        "alerts": by_tier,
        "clickhouse_rows": {
            "events": count("events"),
            "alerts": count("alerts"),
            "limit_actions": count("limit_actions"),
            "profile_snapshots": count("profile_snapshots"),
            "links": count("links"),
            "rings": count("rings"),
        },
        "ring_alerts": sum(1 for a in tail.alerts.values() if a.ring is not None),
        "injected_bursts": len(traffic.bursts),
        "bursts_detected": _detected(traffic.bursts, tail.alerts),
    }
