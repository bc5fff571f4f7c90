"""Metric helpers: what each counter counts, lag arithmetic, the HTTP exporter, and docs/metrics.md staying complete."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import get_args

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from schemas.outputs import ErrorKind
from streams.metrics import WorkerMetrics, WriterMetrics, consumer_lag, start_exporter

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.mark.parametrize(
    ("high", "committed", "low", "lag"),
    [
        (100, 60, 0, 40),
        (100, 100, 0, 0),
        (100, None, 0, 100),  # never committed: everything from the start is still to do
        (100, -1001, 30, 70),  # librdkafka's "no offset": from the earliest kept record
        (100, 120, 0, 0),  # a commit ahead of a stale watermark is not negative lag
        (-1001, 5, 0, None),  # no watermark known yet
    ],
)
def test_consumer_lag(high: int, committed: int | None, low: int, lag: int | None) -> None:
    assert consumer_lag(high, committed, low) == lag


def test_worker_counts_by_topic_reason_tier_rule_and_action() -> None:
    metrics = WorkerMetrics("lw", CollectorRegistry())
    r = metrics.registry
    metrics.events("loan.behavior.v1", 3)
    metrics.events("loan.behavior.v1", 2)
    metrics.events("loan.inquiry.v1", 1)
    metrics.dead_letter("not_json")
    metrics.alert("notice", "multi_application_burst")
    metrics.alert("notice", "multi_application_burst")
    metrics.alert("warning", "fraud_ring")
    metrics.limit_action("freeze")
    assert value(r, "loanwatch_events_consumed_total", topic="loan.behavior.v1") == 5
    assert value(r, "loanwatch_events_consumed_total", topic="loan.inquiry.v1") == 1
    assert value(r, "loanwatch_dead_letters_total", reason="not_json") == 1
    assert value(r, "loanwatch_alerts_total", tier="notice", rule="multi_application_burst") == 2
    assert value(r, "loanwatch_alerts_total", tier="warning", rule="fraud_ring") == 1
    assert value(r, "loanwatch_limit_actions_total", action="freeze") == 1
    assert value(r, "loanwatch_limit_actions_total", action="restore") == 0


def test_every_dead_letter_kind_is_a_series_from_the_start() -> None:
    registry = WorkerMetrics("lw", CollectorRegistry()).registry
    for kind in get_args(ErrorKind):
        assert value(registry, "loanwatch_dead_letters_total", reason=kind) == 0


def test_checkpoint_age_is_read_at_scrape_time_and_dropped_with_the_partition() -> None:
    metrics = WorkerMetrics("lw", CollectorRegistry())
    age = [1.5]
    metrics.track_checkpoint_age(2, lambda: age[0])
    assert value(metrics.registry, "loanwatch_model_checkpoint_age_seconds", partition="2") == 1.5
    age[0] = 31.0
    assert value(metrics.registry, "loanwatch_model_checkpoint_age_seconds", partition="2") == 31.0
    metrics.forget_checkpoint(2)
    metrics.forget_checkpoint(2)  # twice, or never tracked: no error
    assert value(metrics.registry, "loanwatch_model_checkpoint_age_seconds", partition="2") is None


def test_lag_keeps_only_the_partitions_of_the_last_sample() -> None:
    metrics = WriterMetrics("writers", CollectorRegistry())
    metrics.lag.update([("t", 0, 5), ("t", 1, 7)])
    metrics.lag.update([("t", 1, 2)])
    r = metrics.registry
    assert value(r, "loanwatch_consumer_lag_messages", group="writers", topic="t", partition="0") is None
    assert value(r, "loanwatch_consumer_lag_messages", group="writers", topic="t", partition="1") == 2


def test_writer_insert_metrics() -> None:
    metrics = WriterMetrics("writers", CollectorRegistry())
    metrics.inserted("events", 40, 0.02)
    metrics.inserted("events", 2, 0.3)
    metrics.insert_failed("alerts")
    r = metrics.registry
    assert value(r, "loanwatch_writer_rows_inserted_total", table="events") == 42
    assert value(r, "loanwatch_writer_insert_seconds_count", table="events") == 2
    assert value(r, "loanwatch_writer_insert_seconds_sum", table="events") == pytest.approx(0.32)
    assert value(r, "loanwatch_writer_insert_seconds_bucket", table="events", le="0.025") == 1
    assert value(r, "loanwatch_writer_insert_failures_total", table="alerts") == 1


def test_exporter_serves_the_registry_over_http() -> None:
    metrics = WriterMetrics("writers")
    metrics.consumed("loan.behavior.v1")
    exporter = start_exporter(metrics.registry, 0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=10) as response:  # noqa: S310
            text = response.read().decode()
    finally:
        exporter.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = families["loanwatch_writer_records_consumed"].samples
    assert [(s.labels, s.value) for s in samples if s.name.endswith("_total")] == [({"topic": "loan.behavior.v1"}, 1)]
    assert "process_cpu_seconds" in families, "the standard process metrics are served too"


def _defined_metrics() -> dict[str, str]:
    """Name → type of every loanwatch_ metric the worker and the writer define."""
    out: dict[str, str] = {}
    registries = (WorkerMetrics("g", CollectorRegistry()).registry, WriterMetrics("g", CollectorRegistry()).registry)
    for registry in registries:
        for family in registry.collect():
            if family.name.startswith("loanwatch_"):
                name = family.name + ("_total" if family.type == "counter" else "")
                out[name] = family.type
    return out


def test_metric_names_follow_prometheus_conventions() -> None:
    for name, kind in _defined_metrics().items():
        assert re.fullmatch(r"loanwatch_[a-z_]+", name), name
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "histogram":
            assert name.endswith(("_seconds", "_rows", "_events")), name


def test_docs_list_every_metric_with_its_type() -> None:
    documented = dict(re.findall(r"^\| `(loanwatch_[a-z_]+)` \| (counter|gauge|histogram) \|", DOC.read_text(), re.M))
    assert documented == _defined_metrics()


def test_worker_lag_skips_unknown_highwaters_revoked_partitions_and_other_topics() -> None:
    from faust.types import TP

    from streams.worker_lag import worker_lags

    def highwater(tp: TP) -> int | None:
        if tp.partition == 3:
            raise AssertionError("Partition is not assigned")  # what aiokafka says during a revocation
        return {0: 50, 1: None, 2: 9}[tp.partition]

    assignment = [TP("in", 0), TP("in", 1), TP("in", 2), TP("in", 3), TP("app-state-changelog", 0)]
    committed = {TP("in", 0): 20, TP("in", 2): None}
    assert worker_lags(assignment, highwater, committed, {"in"}) == [("in", 0, 30), ("in", 2, 9)]
