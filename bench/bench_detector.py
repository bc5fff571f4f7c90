"""Per-event cost of the burst path without a broker: decode alone vs decode + burst state update + encode.

Run: python bench/bench_detector.py [--customers N] [--hours H] [--repeat R]

Both are measured in this one process on the same simulated events, interleaved, so the ratio holds on a noisy
shared machine even when the absolute rates move. Output: a table and one JSON line with machine and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from detectors.burst import Application, BurstState, update
from detectors.engine import EngineConfig
from schemas import serde
from schemas.behavior import LoanApplication
from schemas.common import to_ms
from schemas.decode import decode_behavior
from schemas.topics import BEHAVIOR
from streams.simulate.traffic import SimConfig, Traffic


def decode_only(values: list[bytes]) -> None:
    for raw in values:
        decode_behavior(raw)


def decode_and_detect(values: list[bytes]) -> None:
    # What the profile agent does per event, minus Kafka: decode, load state, update, store state.
    rule = EngineConfig().burst
    table: dict[str, bytes] = {}
    for raw in values:
        event = decode_behavior(raw)
        if isinstance(event, LoanApplication):
            stored = table.get(event.customer_id)
            state = BurstState() if stored is None else BurstState.from_dict(serde.loads(stored))
            app = Application(event.event_id, to_ms(event.ts), event.product, event.channel)
            result = update(state, event.customer_id, app, rule)
            table[event.customer_id] = serde.dumps(result.state.to_dict())


def timed(fn: Callable[[list[bytes]], None], values: list[bytes]) -> float:
    started = time.perf_counter()
    fn(values)
    return len(values) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--burst-share", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    traffic = Traffic(
        SimConfig(
            customers=args.customers,
            hours=args.hours,
            burst_share=args.burst_share,
            start=datetime(2026, 1, 5, tzinfo=UTC),
        )
    )
    values = [r.value for r in traffic.records() if r.topic == BEHAVIOR]
    applications = sum(1 for v in values if b'"loan_application"' in v)
    base: list[float] = []
    full: list[float] = []
    for _ in range(args.repeat):
        base.append(timed(decode_only, values))
        full.append(timed(decode_and_detect, values))
    result = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "events": len(values),
        "loan_applications": applications,
        "decode_only_events_per_s": round(statistics.median(base)),
        "decode_and_burst_events_per_s": round(statistics.median(full)),
        "ratio_full_to_decode_only": round(statistics.median(full) / statistics.median(base), 3),
    }
    print(f"{'path':<28}{'events/s (median of ' + str(args.repeat) + ')':>30}")
    print(f"{'decode only':<28}{result['decode_only_events_per_s']:>30,}")
    print(f"{'decode + burst + state':<28}{result['decode_and_burst_events_per_s']:>30,}")
    print(f"ratio {result['ratio_full_to_decode_only']}  ({len(values):,} events, {applications:,} applications)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
