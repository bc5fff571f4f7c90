"""Scaling of the loanwatch worker: 1 vs 2 worker processes in one consumer group, on 4 vs 8 partitions.

Used by ``python -m bench.run_all``. The same simulated events are produced once per partition count into
fresh input topics; then each worker count runs on them as its own group (``python -m streams.cli worker``
processes started together, each with its own home folder), measured as ``bench/bench_pipeline.py`` measures
one worker: committed offsets of the group over time (start-up and the final idle stretch left out) and the CPU
time of all its workers together.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.bench_pipeline import (
    STOP_NOTES,
    GroupOffsets,
    RunResult,
    SimTraffic,
    command_for,
    last_counters_line,
    rate_from,
    running,
    say,
    wait_progress,
)
from bench.staging import StagedInputs, run_args, stage


def run_group(staged: StagedInputs, workers: int, run_dir: Path, broker_pid: int | None) -> dict[str, Any]:
    """``workers`` loanwatch workers sharing one group on ``staged``'s inputs until every event is committed."""
    name = f"scale-p{staged.args.partitions}-w{workers}"
    settings = staged.consumer(name, run_dir / name)
    logs = [run_dir / f"{settings.app_id}-{i + 1}.log" for i in range(workers)]
    result = RunResult("loanwatch", settings.app_id, staged.records, worker_log=", ".join(map(str, logs)))
    say(f"scaling: {workers} worker(s) on {staged.args.partitions} partitions ({settings.app_id})")
    with contextlib.ExitStack() as stack:
        offsets = stack.enter_context(contextlib.closing(GroupOffsets(settings, settings.app_id)))
        procs = [
            stack.enter_context(
                running(
                    command_for("loanwatch", staged.args),
                    settings.model_copy(update={"home": run_dir / name / f"worker-{i + 1}"}),
                    log,
                )
            )
            for i, log in enumerate(logs)
        ]
        samples = wait_progress(
            procs,
            offsets,
            staged.records,
            logs[0],
            broker_pid,
            staged.args.timeout,
            name,
            stall_after=staged.args.stall_seconds,
        )
        time.sleep(0.5)
    rate_from(samples, staged.records, result)
    if samples[-1].committed < staged.records:
        result.stalled_at = samples[-1].committed
    result.last_counters_line = " | ".join(last_counters_line(log) for log in logs)
    result.stop = STOP_NOTES.get(settings.app_id, "")
    say(f"scaling: {name}: {result.events_per_s:,.0f} events/s (workers {result.worker_cores} cores)")
    return {"partitions": staged.args.partitions, "workers": workers, **asdict(result)}


def measure_scaling(
    bootstrap: str,
    broker_pid: int | None,
    traffic: SimTraffic,
    run_dir: Path,
    partitions: tuple[int, ...] = (4, 8),
    workers: tuple[int, ...] = (1, 2),
    base: argparse.Namespace | None = None,
) -> dict[str, Any]:
    """Every (partitions, workers) pair on the same events; partitions staged once each."""
    runs: list[dict[str, Any]] = []
    for count in partitions:
        args = argparse.Namespace(**{**vars(base or run_args()), "partitions": count})
        staged = stage(bootstrap, traffic, args, run_dir / f"scale-inputs-p{count}")
        runs.extend(run_group(staged, n, run_dir, broker_pid) for n in workers)
    return {"events": len(traffic.values), "event_mix": traffic.mix, "runs": runs}
