"""The pure half of the benchmark suite: ratios, targets, the JSON document and the table, on made-up runs."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench import report
from bench.bench_writer import steady_rate

MACHINE = {"cpus": 2, "cpu_model": "Test CPU", "ram_gib": 7.8, "platform": "Linux-test"}
VERSIONS = {"python": "3.11.9", "faust-streaming": "0.11", "kafka_broker": "4.3.1", "river": "0.23"}


def header(**changes: Any) -> dict[str, Any]:
    base = {
        "command": "python -m bench.run_all --quick",
        "mode": "quick",
        "started_at": "2026-01-05T00:00:00+00:00",
        "machine": MACHINE,
        "versions": VERSIONS,
        "loadavg_start": [1.0, 1.5, 2.0],
        "loadavg_end": [2.0, 1.8, 1.9],
        "elapsed_s": 123.4,
    }
    base.update(changes)
    return base


def run(rate: float, per_cpu: float | None = None) -> dict[str, Any]:
    return {"events_per_s": rate, "events_per_worker_cpu_s": per_cpu}


def pipeline(lw: float, pt: float, nw: float, p99_at_half: float = 180.0) -> dict[str, Any]:
    return {
        "runs": {"loanwatch": run(lw, 3000.0), "passthrough": run(pt, 6000.0), "naive_windowed": run(nw)},
        "event_mix": {
            "events": 1000,
            "customers_with_events": 100,
            "event_time_span_hours": 2.5,
            "by_topic": {"behavior": 900, "repayment": 80, "inquiry": 20},
        },
        "latency": {
            "phases": [
                {"phase": "25%", "achieved_rate": 500, "p50_ms": 40.0, "p99_ms": 90.0, "alerts": 12},
                {"phase": "50%", "achieved_rate": 1000, "p50_ms": 60.0, "p99_ms": p99_at_half, "alerts": 20},
                {"phase": "80%", "achieved_rate": 1600, "p50_ms": 300.0, "p99_ms": 900.0, "alerts": 31},
            ]
        },
    }


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in doc["figures"]}


def test_ratio_rounds_and_refuses_missing_or_zero() -> None:
    assert report.ratio(1, 3) == 0.333
    assert report.ratio(3000, 4000) == 0.75
    assert report.ratio(None, 3) is None
    assert report.ratio(3, None) is None
    assert report.ratio(3, 0) is None
    assert report.ratio(math.nan, 3) is None


def test_targets_missed_and_met_are_judged_from_the_runs() -> None:
    missed = by_name(report.assemble(header(), {"pipeline": pipeline(2000, 4000, 8000, p99_at_half=400.0)}))
    assert missed["loanwatch worker, all detectors"]["status"] == "MISSED"
    assert missed["loanwatch / pass-through"]["value"] == 0.5
    assert missed["loanwatch / pass-through"]["status"] == "MISSED"
    assert missed["loanwatch / naive windowed"]["value"] == 0.25
    assert missed["latency p50 / p99 at 50% of max (1,000/s)"]["status"] == "MISSED"

    met = by_name(report.assemble(header(), {"pipeline": pipeline(12000, 13000, 6000)}))
    assert met["loanwatch worker, all detectors"]["status"] == "MET"
    assert met["loanwatch / pass-through"]["status"] == "MET"
    assert met["latency p50 / p99 at 50% of max (1,000/s)"]["status"] == "MET"
    # Only the 50 % rate carries the p99 target.
    assert met["latency p50 / p99 at 80% of max (1,600/s)"]["target"] == ""
    assert met["loanwatch per worker CPU-second"]["versus"] == "x0.50 of pass-through"


def test_json_document_has_every_key_and_part_and_survives_a_round_trip() -> None:
    doc = report.assemble(header(), {"pipeline": pipeline(2000, 4000, 8000)})
    assert tuple(doc) == report.RESULT_KEYS
    assert tuple(doc["parts"]) == report.PARTS
    assert doc["parts"]["writer"] is None
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    for row in doc["figures"]:
        assert set(row) == {"name", "value", "unit", "versus", "target", "status"}


def test_nan_latency_becomes_null_and_not_measured() -> None:
    doc = report.assemble(header(), {"pipeline": pipeline(2000, 4000, 8000, p99_at_half=math.nan)})
    row = by_name(doc)["latency p50 / p99 at 50% of max (1,000/s)"]
    assert row["value"] is None
    assert row["status"] == "not measured"
    json.dumps(doc, allow_nan=False)


def test_assemble_refuses_an_incomplete_header_and_unknown_parts() -> None:
    incomplete = header()
    del incomplete["machine"]
    with pytest.raises(ValueError, match="machine"):
        report.assemble(incomplete, {})
    with pytest.raises(ValueError, match="unknown parts"):
        report.assemble(header(), {"speed": {}})


def test_memory_writer_and_scaling_figures() -> None:
    parts = {
        "profile_memory": {"customers_with_events": 50, "serialised_bytes_mean": 700, "in_memory_bytes_loaded": 1500},
        "worker_memory": {
            "customers_added": 20_000,
            "rss_growth_bytes": 100 * report.MIB,
            "rss_end_bytes": 400 * report.MIB,
            "all_tables_bytes": 30 * report.MIB,
            "tables": {"customer-state": {"keys": 25_000, "value_bytes": 25 * report.MIB}},
        },
        "writer": {
            "clickhouse-server": {
                "engine_version": "18.16.1",
                "rows_per_s": 30_000,
                "rows": 9,
                "consumed": 9,
                "records": 12,
            },
            "shipped_seconds": 120.0,
            "chdb": {"error": "boom"},
            "part_elapsed_s": 12.0,
        },
        "scaling": {
            "runs": [
                {"partitions": 4, "workers": 1, "events_per_s": 2000},
                {"partitions": 4, "workers": 2, "events_per_s": 3000},
            ]
        },
    }
    rows = by_name(report.assemble(header(), parts))
    # 100 MiB over 20,000 customers is 500 MiB per 100,000; 25 MiB over 25,000 keys is 100 MiB per 100,000.
    assert rows["worker RSS growth per 100k customers"]["value"] == 500 * report.MIB
    assert rows["Faust customer-state table per 100k customers"]["value"] == 100 * report.MIB
    assert rows["profile, serialised (pure, per 100k)"]["value"] == 70_000_000
    assert rows["profile, serialised (pure, per 100k)"]["status"] == "MET"
    assert rows["writer into clickhouse-server (18.16.1)"]["value"] == 30_000
    assert rows["writer into clickhouse-server (18.16.1)"]["versus"] == "9 rows from 9 of 12 records"
    assert rows["writer into chdb: failed"]["status"] == "error"
    assert rows["2 workers, 4 partitions"]["versus"] == "x1.50 of 1 worker, 4 partitions"


def test_a_failed_part_is_one_error_row() -> None:
    doc = report.assemble(header(), {"scaling": {"error": "RuntimeError: broker gone"}})
    assert doc["figures"] == [
        {
            "name": "scaling: failed",
            "value": None,
            "unit": "",
            "versus": "RuntimeError: broker gone",
            "target": "",
            "status": "error",
        }
    ]


def test_a_multi_line_error_stays_on_its_row_of_the_table() -> None:
    error = "RuntimeError: memory: 10/20 after 900s\n2026-01-05 00:00:00 WARNING worker log tail"
    doc = report.assemble(header(), {"worker_memory": {"error": error}})
    assert doc["parts"]["worker_memory"]["error"] == error
    table = report.table(doc["figures"])
    assert len(table) == 3
    assert table[2].startswith("worker_memory: failed") and "RuntimeError: memory: 10/20 after 900s" in table[2]


def test_render_states_where_and_how_and_aligns_the_table() -> None:
    doc = report.assemble(header(), {"pipeline": pipeline(2000, 4000, 8000)})
    text = report.render(doc)
    lines = text.splitlines()
    assert lines[0] == "command: python -m bench.run_all --quick"
    assert lines[1] == "machine: 2 cpu Test CPU, 7.8 GiB RAM, Linux-test"
    assert "Kafka 4.3.1" in lines[2]
    assert "start [1.0, 1.5, 2.0], end [2.0, 1.8, 1.9]" in lines[3]
    assert "1,000 events of 100 customers over 2.5 h; behavior 900, repayment 80, inquiry 20" in lines[4]
    table = lines[lines.index("") + 1 :]
    assert table[0].split() == ["figure", "value", "versus", "target", "status"]
    assert set(table[1].replace(" ", "")) == {"-"}
    assert len(table) == 2 + len(doc["figures"])
    row = next(line for line in table if line.startswith("loanwatch worker, all detectors"))
    assert "2,000 events/s" in row and ">= 10,000" in row and row.endswith("MISSED")
    # The value column is right-aligned: every value ends where the header's "value" ends.
    end = table[0].index("value") + len("value")
    assert row[:end].endswith("2,000 events/s")


def test_writer_rate_is_measured_between_first_and_last_flush() -> None:
    assert steady_rate([]) is None
    assert steady_rate([(10.0, 5000)]) is None
    assert steady_rate([(10.0, 5000), (11.0, 10000), (12.0, 25000)]) == 10000


def test_batch_stages_sum_to_the_time_per_batch_and_name_each_stage() -> None:
    part = pipeline(2000, 4000, 8000)
    part["runs"]["loanwatch"]["stage_seconds_per_batch"] = {
        "engine": 0.120, "outputs": 0.030, "state": 0.050, "batches": 40.0
    }
    row = by_name(report.assemble(header(), {"pipeline": part}))["loanwatch time per micro-batch"]
    assert row["value"] == pytest.approx(200.0)
    assert row["versus"] == "engine 120 ms, outputs 30 ms, state 50 ms"
    without = by_name(report.assemble(header(), {"pipeline": pipeline(2000, 4000, 8000)}))
    assert "loanwatch time per micro-batch" not in without
