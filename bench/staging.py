"""Input topics filled once before any consumer starts, and the settings of the consumers that read them.

Shared by the suite's parts (``bench/bench_memory.py``, ``bench/bench_scaling.py``); the topic, produce and
settings code itself is ``bench/bench_pipeline.py``'s.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.bench_pipeline import (
    SimTraffic,
    create_input_topics,
    high_watermarks,
    input_topics,
    produce,
    say,
    variant_settings,
)
from streams.admin import create_topics
from streams.settings import Settings, TopicNames


def run_args(
    partitions: int = 4,
    batch_size: int = 500,
    commit_interval: float = 1.0,
    timeout: float = 900.0,
    stall_seconds: float = 60.0,
) -> argparse.Namespace:
    """The options ``bench_pipeline``'s settings and run helpers read, for callers that are not its CLI."""
    return argparse.Namespace(
        partitions=partitions,
        batch_size=batch_size,
        commit_interval=commit_interval,
        timeout=timeout,
        stall_seconds=stall_seconds,
        window_step_seconds=60.0,
    )


@dataclass(frozen=True)
class StagedInputs:
    """Input topics holding ``records`` events, and what every consumer of them shares."""

    bootstrap: str
    tag: str
    inputs: TopicNames
    args: argparse.Namespace
    records: int
    produce_s: float

    def consumer(self, name: str, home: Path) -> Settings:
        """A consumer of these inputs with its own group (app id), home folder and topics, which this creates."""
        settings = variant_settings(self.bootstrap, home, self.inputs, self.tag, name, self.args)
        create_topics(settings)
        return settings


def stage(
    bootstrap: str, traffic: SimTraffic, args: argparse.Namespace, home: Path, first: int | None = None
) -> StagedInputs:
    """Create fresh input topics and produce ``traffic`` (or its first ``first`` events) into them."""
    tag = uuid.uuid4().hex[:6]
    inputs = TopicNames(**{k: f"lwbench.{tag}.{v}" for k, v in TopicNames().model_dump().items()})
    settings = variant_settings(bootstrap, home, inputs, tag, "inputs", args)
    create_input_topics(settings)
    create_topics(settings)
    count = len(traffic.values) if first is None else first
    took = produce(settings, traffic, range(count)) if count else 0.0
    held = sum(high_watermarks(settings, input_topics(settings)).values())
    if held != count:
        raise RuntimeError(f"the input topics hold {held:,} records, expected {count:,}")
    say(f"staged {count:,} events on {args.partitions} partitions in {took:.1f}s ({tag})")
    return StagedInputs(bootstrap, tag, inputs, args, count, round(took, 1))
