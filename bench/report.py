"""The pure half of ``bench/run_all.py``: the suite's JSON document, its headline figures, targets and table.

Nothing here measures or touches a service: every function takes the dictionaries the measuring parts return,
so the unit tests can check rendering, ratios and the JSON shape on made-up numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TARGET_EVENTS_PER_S = 10_000
TARGET_RATIO_TO_PASSTHROUGH = 0.8
TARGET_P99_MS = 250.0
TARGET_P99_PHASE = "50%"
PER_CUSTOMERS = 100_000
MIB = 1024 * 1024

#: Top-level keys of the suite's JSON, in order; ``parts`` holds one entry per measuring part.
RESULT_KEYS = (
    "command",
    "mode",
    "started_at",
    "machine",
    "versions",
    "loadavg_start",
    "loadavg_end",
    "elapsed_s",
    "parts",
    "figures",
)
PARTS = ("pipeline", "profile_memory", "worker_memory", "writer", "scaling")


@dataclass(frozen=True)
class Figure:
    """One row of the table: a measured value, what it is compared with, and the target it must meet."""

    name: str
    value: float | None
    unit: str
    versus: str = ""
    target: str = ""
    status: str = ""  # "MET", "MISSED" or "" (no target)

    def as_dict(self) -> dict[str, Any]:
        """The row as plain JSON values (NaN becomes None)."""
        value = None if self.value is None or math.isnan(self.value) else self.value
        return {
            "name": self.name,
            "value": value,
            "unit": self.unit,
            "versus": self.versus,
            "target": self.target,
            "status": self.status,
        }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to 3 places, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, 3)


def status(met: bool | None) -> str:
    """``MET`` / ``MISSED``, or ``not measured`` when the figure is missing."""
    return "not measured" if met is None else ("MET" if met else "MISSED")


def per_customers(total_bytes: float | None, customers: int | None, per: int = PER_CUSTOMERS) -> float | None:
    """Bytes for ``per`` customers, scaled from ``total_bytes`` measured over ``customers``."""
    if total_bytes is None or not customers:
        return None
    return total_bytes / customers * per


def assemble(header: Mapping[str, Any], parts: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's JSON document: the header fields, every part (``None`` if not run) and the figures."""
    missing = [k for k in RESULT_KEYS if k not in ("parts", "figures") and k not in header]
    if missing:
        raise ValueError(f"header lacks {missing}")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}")
    full_parts = {name: parts.get(name) for name in PARTS}
    doc: dict[str, Any] = {key: header[key] for key in RESULT_KEYS if key not in ("parts", "figures")}
    doc["parts"] = json_safe(full_parts)
    doc["figures"] = [f.as_dict() for f in figures(full_parts)]
    return doc


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def figures(parts: Mapping[str, Any]) -> list[Figure]:
    """Headline figures of every part that ran (a part with an ``error`` gives one row saying so)."""
    rows: list[Figure] = []
    for name, build in (
        ("pipeline", _pipeline_figures),
        ("profile_memory", _profile_memory_figures),
        ("worker_memory", _worker_memory_figures),
        ("writer", _writer_figures),
        ("scaling", _scaling_figures),
    ):
        part = parts.get(name)
        if part is None:
            continue
        if "error" in part:
            rows.append(Figure(f"{name}: failed", None, "", versus=first_line(part["error"]), status="error"))
            continue
        rows.extend(build(part))
    return rows


def _rate(runs: Mapping[str, Any], variant: str) -> float | None:
    run = runs.get(variant)
    return None if run is None else float(run["events_per_s"])


def _pipeline_figures(part: Mapping[str, Any]) -> list[Figure]:
    runs = part.get("runs", {})
    lw, pt, nw = _rate(runs, "loanwatch"), _rate(runs, "passthrough"), _rate(runs, "naive_windowed")
    to_pt, to_nw = ratio(lw, pt), ratio(lw, nw)
    rows = [
        Figure(
            "loanwatch worker, all detectors",
            lw,
            "events/s",
            target=f">= {TARGET_EVENTS_PER_S:,}",
            status=status(None if lw is None else lw >= TARGET_EVENTS_PER_S),
        ),
        Figure("Faust pass-through (decode, forward)", pt, "events/s"),
        Figure("naive Faust windowed burst rule", nw, "events/s"),
        Figure(
            "loanwatch / pass-through",
            to_pt,
            "ratio",
            target=f">= {TARGET_RATIO_TO_PASSTHROUGH}",
            status=status(None if to_pt is None else to_pt >= TARGET_RATIO_TO_PASSTHROUGH),
        ),
        Figure("loanwatch / naive windowed", to_nw, "ratio"),
    ]
    lw_run = runs.get("loanwatch") or {}
    if lw_run.get("events_per_worker_cpu_s") is not None:
        per_cpu_pt = (runs.get("passthrough") or {}).get("events_per_worker_cpu_s")
        rows.append(
            Figure(
                "loanwatch per worker CPU-second",
                float(lw_run["events_per_worker_cpu_s"]),
                "events/CPU-s",
                versus=_versus("pass-through", ratio(lw_run["events_per_worker_cpu_s"], per_cpu_pt)),
            )
        )
    stages = lw_run.get("stage_seconds_per_batch") or {}
    if stages.get("batches"):
        busy = {k: v for k, v in stages.items() if k != "batches"}
        rows.append(
            Figure(
                "loanwatch time per micro-batch",
                sum(busy.values()) * 1000,
                "ms",
                versus=", ".join(f"{k} {v * 1000:.0f} ms" for k, v in busy.items()),
            )
        )
    for phase in (part.get("latency") or {}).get("phases", []):
        judged = phase["phase"] == TARGET_P99_PHASE
        p99 = phase.get("p99_ms")
        rows.append(
            Figure(
                f"latency p50 / p99 at {phase['phase']} of max ({phase['achieved_rate']:,}/s)",
                p99,
                "ms p99",
                versus=f"p50 {_num(phase.get('p50_ms'), '.0f')} ms, {phase.get('alerts', 0)} alerts",
                target=f"p99 <= {TARGET_P99_MS:.0f}" if judged else "",
                status=status(None if p99 is None or math.isnan(p99) else p99 <= TARGET_P99_MS) if judged else "",
            )
        )
    return rows


def _profile_memory_figures(part: Mapping[str, Any]) -> list[Figure]:
    n = int(part["customers_with_events"])
    return [
        Figure(
            "profile, serialised (pure, per 100k)",
            per_customers(part["serialised_bytes_mean"] * n, n),
            "bytes",
            versus=f"{part['serialised_bytes_mean']} B per customer",
            target="<= 2 KiB per customer",
            status=status(part["serialised_bytes_mean"] <= 2048),
        ),
        Figure(
            "profile, in memory after load (pure, per 100k)",
            per_customers(part["in_memory_bytes_loaded"] * n, n),
            "bytes",
            versus=f"{part['in_memory_bytes_loaded']} B per customer",
        ),
    ]


def _worker_memory_figures(part: Mapping[str, Any]) -> list[Figure]:
    grown = part["customers_added"]
    table = part["tables"].get("customer-state", {})
    return [
        Figure(
            "worker RSS growth per 100k customers",
            per_customers(part["rss_growth_bytes"], grown),
            "bytes",
            versus=f"{grown:,} customers added, RSS {part['rss_end_bytes'] / MIB:,.0f} MiB at the end",
        ),
        Figure(
            "Faust customer-state table per 100k customers",
            per_customers(table.get("value_bytes"), table.get("keys")),
            "bytes",
            versus=f"{table.get('keys', 0):,} keys, all tables {part['all_tables_bytes'] / MIB:,.1f} MiB",
        ),
    ]


def _writer_figures(part: Mapping[str, Any]) -> list[Figure]:
    rows = []
    for engine, run in part.items():
        if not isinstance(run, Mapping):
            continue
        if "error" in run:
            failed = Figure(f"writer into {engine}: failed", None, "", versus=first_line(run["error"]), status="error")
            rows.append(failed)
            continue
        rows.append(
            Figure(
                f"writer into {engine} ({run['engine_version']})",
                run["rows_per_s"],
                "rows/s",
                versus=f"{run['rows']:,} rows from {run['consumed']:,} of {run['records']:,} records",
            )
        )
    return rows


def _scaling_figures(part: Mapping[str, Any]) -> list[Figure]:
    runs = part["runs"]
    base = next((r["events_per_s"] for r in runs if r["partitions"] == 4 and r["workers"] == 1), None)
    return [
        Figure(
            f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}, {r['partitions']} partitions",
            r["events_per_s"],
            "events/s",
            versus=_versus("1 worker, 4 partitions", ratio(r["events_per_s"], base)),
        )
        for r in runs
    ]


def first_line(error: object, width: int = 80) -> str:
    """An error's first line, cut to ``width``: the JSON keeps the whole text (log tails included)."""
    lines = str(error).strip().splitlines()
    return lines[0][:width] if lines else ""


def _versus(what: str, value: float | None) -> str:
    return "" if value is None else f"x{value:.2f} of {what}"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def _value(figure: Mapping[str, Any]) -> str:
    value = figure["value"]
    if value is None:
        return "-"
    if figure["unit"] == "bytes":
        return f"{value / MIB:,.1f} MiB"
    if figure["unit"] == "ratio":
        return f"{value:.3f}"
    return f"{value:,.0f} {figure['unit']}"


def render(doc: Mapping[str, Any]) -> str:
    """The suite's one table, under the lines that say where and how it was measured."""
    m, v = doc["machine"], doc["versions"]
    lines = [
        f"command: {doc['command']}",
        f"machine: {m['cpus']} cpu {m['cpu_model']}, {m['ram_gib']} GiB RAM, {m['platform']}",
        f"versions: Python {v.get('python')}, faust-streaming {v.get('faust-streaming')}, aiokafka "
        f"{v.get('aiokafka')}, confluent-kafka {v.get('confluent-kafka')}, Kafka {v.get('kafka_broker')}, "
        f"river {v.get('river')}",
        f"load average (1/5/15 min): start {doc['loadavg_start']}, end {doc['loadavg_end']}",
    ]
    mix = (doc["parts"].get("pipeline") or {}).get("event_mix")
    if mix:
        lines.append(
            f"event mix: {mix['events']:,} events of {mix['customers_with_events']:,} customers over "
            f"{mix['event_time_span_hours']} h; " + ", ".join(f"{k} {n:,}" for k, n in mix["by_topic"].items())
        )
    lines.append("")
    lines.extend(table(doc["figures"]))
    return "\n".join(lines)


def table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fixed-width rows: figure, value, comparison, target, status."""
    cells = [("figure", "value", "versus", "target", "status")]
    cells += [(r["name"], _value(r), r["versus"], r["target"], r["status"]) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    out = []
    for i, row in enumerate(cells):
        out.append(
            "  ".join(cell.rjust(widths[j]) if j == 1 else cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip()
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
