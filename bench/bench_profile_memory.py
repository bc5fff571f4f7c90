"""Bytes per customer of the rolling profile, serialised and in memory, plus update/features speed.

Run: python bench/bench_profile_memory.py [--customers N] [--hours H]

Simulated traffic is decoded once, then replayed into ``Profile`` values:

- serialised: mean and max ``len(profile.to_bytes())`` over the customers that had events;
- in memory (live): tracemalloc of the profiles as the updates left them (arrays keep their over-allocation);
- in memory (loaded): tracemalloc of ``Profile.from_bytes`` of every serialised profile (what a worker holds
  after restoring a table);
- speed: events/s of ``update`` alone and of ``update`` + ``features`` per event (no decode, no Kafka).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from detectors.profile import InputEvent, Profile, features, update
from schemas import topics
from schemas.common import to_ms
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from streams.simulate.traffic import SimConfig, Traffic

_DECODERS = {topics.BEHAVIOR: decode_behavior, topics.REPAYMENT: decode_repayment, topics.INQUIRY: decode_inquiry}


def decoded_events(customers: int, hours: float) -> list[InputEvent]:
    traffic = Traffic(SimConfig(customers=customers, start=datetime(2026, 1, 5, tzinfo=UTC), hours=hours))
    return [_DECODERS[r.topic](r.value) for r in traffic.records() if r.label != "malformed"]


def build(events: list[InputEvent]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for event in events:
        p = profiles.get(event.customer_id)
        if p is None:
            p = profiles[event.customer_id] = Profile.empty(event.customer_id)
        update(p, event)
    return profiles


def traced(fn: Any, *args: Any) -> tuple[Any, int]:
    """Run ``fn`` under tracemalloc; the result and the bytes it still holds (minus the container it returns)."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = fn(*args)
    held = tracemalloc.get_traced_memory()[0] - base - sys.getsizeof(result)
    tracemalloc.stop()
    return result, held


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args(argv)

    events = decoded_events(args.customers, args.hours)
    profiles, live_bytes = traced(build, events)
    n = len(profiles)
    blobs = [p.to_bytes() for p in profiles.values()]
    loaded, loaded_bytes = traced(lambda: [Profile.from_bytes(b) for b in blobs])
    assert loaded == list(profiles.values())

    started = time.perf_counter()
    build(events)
    update_rate = len(events) / (time.perf_counter() - started)
    started = time.perf_counter()
    fresh: dict[str, Profile] = {}
    for event in events:
        p = fresh.get(event.customer_id)
        if p is None:
            p = fresh[event.customer_id] = Profile.empty(event.customer_id)
        features(update(p, event), to_ms(event.ts))
    full_rate = len(events) / (time.perf_counter() - started)

    result = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "events": len(events),
        "customers_with_events": n,
        "serialised_bytes_mean": round(sum(map(len, blobs)) / n),
        "serialised_bytes_max": max(map(len, blobs)),
        "in_memory_bytes_live": round(live_bytes / n),
        "in_memory_bytes_loaded": round(loaded_bytes / n),
        "update_events_per_s": round(update_rate),
        "update_and_features_events_per_s": round(full_rate),
    }
    for key, value in result.items():
        print(f"{key:<36}{value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
