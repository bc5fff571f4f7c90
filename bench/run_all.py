"""The whole benchmark suite of issue 6 in one command: one table on stdout, one JSON file.

Run: python -m bench.run_all [--quick] [--parts pipeline,profile_memory,worker_memory,writer,scaling]
                             [--out FILE.json]

One local Kafka broker (KRaft) serves every part; each part states its sizes in the JSON:

- ``pipeline``: ``bench/bench_pipeline.py`` — loanwatch worker vs Faust pass-through vs naive windowed burst
  rule on the same records, ratios, targets, the py-spy profile when a target is missed, and produce-to-alert
  latency at 25 %, 50 % and 80 % of the loanwatch rate just measured;
- ``profile_memory``: ``bench/bench_profile_memory.py`` — the rolling profile's bytes per customer, pure;
- ``worker_memory``: ``bench/bench_memory.py`` — the real worker's RSS growth and Faust table size for N active
  customers (100,000; scaled to 100k when fewer);
- ``writer``: ``bench/bench_writer.py`` — the real ClickHouse writer's rows/s into clickhouse-server 18.16 and
  chdb, from the worker-memory run's topics (inputs and outputs);
- ``scaling``: ``bench/bench_scaling.py`` — 1 vs 2 workers on 4 vs 8 partitions.

Full (the issue's sizes): about 30-60 minutes on 2 busy cores. ``--quick``: small sizes, a smoke run of a few
minutes whose figures are not for quoting. Progress goes to stderr; a part that fails is recorded with its
error and the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import bench_pipeline, bench_profile_memory, report
from bench.bench_memory import measure_worker_memory
from bench.bench_scaling import measure_scaling
from bench.bench_writer import measure_both
from streams.settings import Settings

SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "pipeline_events": 200_000,
        "latency_seconds": 30,
        "profile_seconds": 20,
        "profile_customers": 20_000,
        "memory_customers": 100_000,
        "scaling_events": 100_000,
        "writer_shipped_seconds": 120,
    },
    "quick": {
        "pipeline_events": 15_000,
        "latency_seconds": 6,
        "profile_seconds": 6,
        "profile_customers": 2_000,
        "memory_customers": 3_000,
        "scaling_events": 8_000,
        "writer_shipped_seconds": 20,
    },
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures to quote")
    parser.add_argument(
        "--parts",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=list(report.PARTS),
        help=f"comma-separated, from {', '.join(report.PARTS)}",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="JSON result (default .loanwatch/bench/...)")
    args = parser.parse_args(argv)
    unknown = set(args.parts) - set(report.PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(report.PARTS)}")
    if "writer" in args.parts and "worker_memory" not in args.parts:
        parser.error("the writer part writes the worker_memory part's topics: name both")
    return args


def attempt(name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one part; a failure becomes ``{"error": ...}`` so the other parts still report."""
    started = time.monotonic()
    bench_pipeline.say(f"== {name} ==")
    try:
        out = body()
    except Exception as exc:  # noqa: BLE001 — recorded in the JSON and the table
        bench_pipeline.say(f"{name} FAILED: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"[:4000]}
    out["part_elapsed_s"] = round(time.monotonic() - started, 1)
    bench_pipeline.say(f"{name} done in {out['part_elapsed_s']}s")
    return out


def pipeline_part(bootstrap: str, broker_pid: int | None, sizes: dict[str, Any], seed: int, run_dir: Path) -> Any:
    argv = [
        "--events",
        str(sizes["pipeline_events"]),
        "--latency",
        "--latency-fractions",
        "0.25,0.5,0.8",
        "--latency-seconds",
        str(sizes["latency_seconds"]),
        "--profile",
        "auto",
        "--profile-seconds",
        str(sizes["profile_seconds"]),
        "--seed",
        str(seed),
        "--bootstrap",
        bootstrap,
        "--out",
        str(run_dir / "pipeline.json"),
    ]
    if broker_pid is not None:
        argv += ["--broker-pid", str(broker_pid)]
    with contextlib.redirect_stdout(sys.stderr):  # its own table is progress here; the suite prints one
        return bench_pipeline.main(argv)


def profile_memory_part(sizes: dict[str, Any]) -> dict[str, Any]:
    argv = ["--customers", str(sizes["profile_customers"])]
    out = bench_profile_memory.main(argv)
    out["command"] = " ".join(["python bench/bench_profile_memory.py", *argv])
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    run_dir = bench_pipeline.BENCH_HOME / f"suite-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    out_path = args.out if args.out is not None else bench_pipeline.BENCH_HOME / f"suite-{stamp}.json"
    raw = argv if argv is not None else sys.argv[1:]
    header: dict[str, Any] = {
        "command": " ".join(["python -m bench.run_all", *raw]),
        "mode": mode,
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": bench_pipeline.machine_info(),
        "versions": bench_pipeline.versions(),
        "loadavg_start": bench_pipeline.loadavg(),
    }
    bench_pipeline.say(f"suite ({mode}) in {run_dir}; load average {header['loadavg_start']}")
    parts: dict[str, Any] = {}
    writer_source: list[Settings] = []
    broker_args = argparse.Namespace(bootstrap=None, broker_pid=None, keep_data=False)
    with bench_pipeline.broker(broker_args, run_dir) as (bootstrap, broker_pid):
        if "pipeline" in args.parts:
            parts["pipeline"] = attempt(
                "pipeline", lambda: pipeline_part(bootstrap, broker_pid, sizes, args.seed, run_dir)
            )
        if "profile_memory" in args.parts:
            with contextlib.redirect_stdout(sys.stderr):
                parts["profile_memory"] = attempt("profile_memory", lambda: profile_memory_part(sizes))
        if "worker_memory" in args.parts:

            def worker_memory() -> dict[str, Any]:
                figures, settings = measure_worker_memory(
                    bootstrap, broker_pid, run_dir, sizes["memory_customers"], args.seed
                )
                writer_source.append(settings)
                return figures

            parts["worker_memory"] = attempt("worker_memory", worker_memory)
        if "writer" in args.parts:
            if writer_source:
                parts["writer"] = attempt(
                    "writer", lambda: measure_both(writer_source[0], run_dir, sizes["writer_shipped_seconds"])
                )
            else:
                parts["writer"] = {"error": "the worker_memory part failed: no topics to write from"}
        if "scaling" in args.parts:

            def scaling() -> dict[str, Any]:
                traffic = bench_pipeline.simulate(sizes["scaling_events"], args.seed)
                return measure_scaling(bootstrap, broker_pid, traffic, run_dir)

            parts["scaling"] = attempt("scaling", scaling)
    header["loadavg_end"] = bench_pipeline.loadavg()
    header["elapsed_s"] = round(time.monotonic() - bench_pipeline._STARTED, 1)
    doc = report.assemble(header, parts)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(report.render(doc))
    print(f"JSON: {out_path}  (run folder {run_dir}, {header['elapsed_s']}s)")
    return doc


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM too stops the workers, servers and broker this run started


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        main()
