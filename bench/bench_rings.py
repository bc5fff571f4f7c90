"""Link events per second through the ring detector (and visits per second through the entity state).

Run: python bench/bench_rings.py [--links N] [--repeat R] [--hours H]

A seeded synthetic link stream over ``--hours`` of event time (so the default 24-hour horizon expires links):
groups of customers sharing entities, mostly pairs (families), 30% chains and cliques of 3..30 (a ring-dense
stress case), plus refreshes of live links as the entity state sends them. Candidates run on the same stream,
interleaved, median of ``--repeat`` runs, against a baseline in the same run: a plain union-find (path halving,
union by size) that only adds links, with no expiry, ids or entity bookkeeping, the floor of "connected
components over links". Also timed: the ring detector with ring alerts drained every 1,000 links (as a
micro-batching agent would), the detector with 60-minute sweeps, and ``entity_state.observe`` per visit (a
realistic mix, and the worst case: a public address with a full memory).

Times are the process's CPU time (``time.process_time``), so on a shared machine the time spent waiting for a
core is not charged to the code. Output: a table and one JSON line with the command and machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from detectors.entities.config import EntityConfig, RingConfig
from detectors.entities.entity_state import EntityState, observe
from detectors.entities.events import LinkEvent
from detectors.entities.keys import EntityKey, EntityKind
from detectors.entities.rings import RingDetector

MIN = 60_000
T0 = 1_767_603_600_000
KINDS: tuple[EntityKind, ...] = ("device", "ip", "net24", "bank_card", "phone")


def link_stream(n: int, hours: float, seed: int = 7) -> list[LinkEvent]:
    """``n`` links in event-time order over ``hours``: new groups arrive steadily, live links get refreshed."""
    rng = random.Random(seed)
    span = int(hours * 60 * MIN)
    links: list[LinkEvent] = []
    live: list[LinkEvent] = []
    customer = 0
    while len(links) < n:
        t = T0 + len(links) * span // n
        if live and rng.random() < 0.25:  # a refresh of a recent link (last_seen moves on)
            old = live[rng.randrange(len(live))]
            links.append(LinkEvent(old.customer_a, old.customer_b, old.entity, old.first_seen_ms, t, refresh=True))
            continue
        size = 2 if rng.random() < 0.7 else rng.randint(3, 30)
        members = [f"c_{customer + i:07d}" for i in range(size)]
        customer += size
        kind = rng.choice(KINDS)
        for i in range(1, size):  # a chain, with some extra edges: a few cliques and bridges
            other = members[i - 1] if rng.random() < 0.8 else members[rng.randrange(i)]
            entity = EntityKey(kind, f"{kind}_{customer}_{i}")
            links.append(LinkEvent.between(members[i], other, entity, t, t))
        live = (live + links[-(size - 1) :])[-5000:]
    return links[:n]


class UnionFind:
    """The baseline: components over links that are only ever added."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.size: dict[str, int] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        if x not in parent:
            parent[x] = x
            self.size[x] = 1
            return x
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def learn_one(self, link: LinkEvent) -> None:
        a, b = self.find(link.customer_a), self.find(link.customer_b)
        if a != b:
            if self.size[a] < self.size[b]:
                a, b = b, a
            self.parent[b] = a
            self.size[a] += self.size[b]


def run_links(make: Callable[[], Any], links: list[LinkEvent], drain_every: int = 0) -> tuple[float, dict[str, int]]:
    """µs per link, and the detector's stats with its checkpoint size; the detector is dropped before returning,
    and the previous run's garbage collected before timing, so runs do not slow each other's collector."""
    gc.collect()
    detector = make()
    started = time.process_time()
    for i, link in enumerate(links):
        detector.learn_one(link)
        if drain_every and i % drain_every == 0:
            detector.emit_alerts()
    us = (time.process_time() - started) / len(links) * 1e6
    stats: dict[str, int] = {}
    if isinstance(detector, RingDetector):
        stats = detector.stats() | {"checkpoint_json_bytes": len(json.dumps(detector.to_dict()).encode())}
    return us, stats


def visits_of(n: int, seed: int = 11) -> list[tuple[EntityKey, str, int]]:
    """``n`` visits in event-time order over 24 hours by 50k customers: 90% to the customer's own entity, 10% to
    one of 2,000 shared ones per kind (so some link, some go public)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choice(KINDS)
        c = rng.randrange(50_000)
        value = f"{kind}_own_{c}" if rng.random() < 0.9 else f"{kind}_shared_{rng.randrange(2_000)}"
        out.append((EntityKey(kind, value), f"c_{c:06d}", T0 + i * (24 * 60 * MIN) // n))
    return out


def run_observe(visits: list[tuple[EntityKey, str, int]]) -> tuple[float, int]:
    """µs per ``observe`` call, and the links it emitted."""
    gc.collect()
    config = EntityConfig()
    states: dict[EntityKey, EntityState] = {}
    emitted = 0
    started = time.process_time()
    for entity, customer, ts in visits:
        state, out = observe(states.get(entity) or EntityState(entity), customer, ts, config)
        states[entity] = state
        emitted += len(out)
    return (time.process_time() - started) / len(visits) * 1e6, emitted


def run_observe_hot(n: int) -> float:
    """µs per ``observe`` on one public address with 64 customers remembered (the worst case per visit)."""
    config = EntityConfig()
    state = EntityState(EntityKey("ip", "203.0.113.1"))
    started = time.process_time()
    for i in range(n):
        state, _ = observe(state, f"c_{i % 500:06d}", T0 + i * 1000, config)
    return (time.process_time() - started) / n * 1e6


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--links", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hours", type=float, default=48.0, help="event time the links span")
    args = parser.parse_args(argv)

    links = link_stream(args.links, args.hours)
    # The input list is an artifact of the benchmark (a worker decodes and drops links): keep it out of the
    # garbage collector's way, so the figures include the collector's work on the detector's own state only.
    gc.collect()
    gc.freeze()
    candidates: dict[str, Callable[[], tuple[float, dict[str, int]]]] = {
        "baseline_union_find": lambda: run_links(UnionFind, links),
        "ring_detector": lambda: run_links(RingDetector, links),
        "ring_detector+alerts/1k": lambda: run_links(RingDetector, links, drain_every=1000),
        "ring_detector_sweep_60m": lambda: run_links(lambda: RingDetector(RingConfig(sweep_minutes=60)), links),
    }
    runs: dict[str, list[float]] = {name: [] for name in candidates}
    final: dict[str, dict[str, int]] = {}
    for _ in range(args.repeat):  # interleaved, so a noisy machine moves every candidate alike
        for name, run in candidates.items():
            us, final[name] = run()
            runs[name].append(us)
    visits = visits_of(args.links)
    gc.collect()
    gc.freeze()
    observed = [run_observe(visits) for _ in range(args.repeat)]
    observe_us, observe_links = statistics.median(us for us, _ in observed), observed[0][1]
    hot_us = statistics.median(run_observe_hot(args.links // 10) for _ in range(args.repeat))
    medians = {name: statistics.median(v) for name, v in runs.items()}
    base = medians["baseline_union_find"]
    print(f"{'candidate':28} {'µs/link':>9} {'links/s':>10} {'× baseline':>10}")
    for name, us in medians.items():
        print(f"{name:28} {us:9.2f} {1e6 / us:10.0f} {us / base:10.1f}")
    print(f"{'entity_state.observe':28} {observe_us:9.2f} {1e6 / observe_us:10.0f}   per visit ({observe_links} links)")
    print(f"{'observe, public hot entity':28} {hot_us:9.2f} {1e6 / hot_us:10.0f}   per visit (64 remembered)")
    stats = final["ring_detector"]
    print("ring detector after the stream:", stats)
    result = {
        "command": " ".join(["python", "bench/bench_rings.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "links": args.links,
        "event_hours": args.hours,
        "median_us_per_link": {k: round(v, 3) for k, v in medians.items()},
        "links_per_s": {k: round(1e6 / v) for k, v in medians.items()},
        "ratio_vs_baseline": {k: round(v / base, 2) for k, v in medians.items()},
        "observe_us_per_visit": round(observe_us, 3),
        "observe_links_emitted": observe_links,
        "observe_hot_public_us_per_visit": round(hot_us, 3),
        "final_stats": stats,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
