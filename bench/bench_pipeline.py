"""End-to-end consumption throughput of the loanwatch worker on a real local Kafka broker, against two baselines.

Run: python bench/bench_pipeline.py [--events N] [--partitions P] [--batch-size B] [--skip-baselines]
                                    [--variants loanwatch,passthrough,naive_windowed,decode_only] [--repeat R]
                                    [--latency] [--profile auto|always|never] [--out FILE.json]

Default (200,000 events, three variants, py-spy when a target is missed): about 5 minutes on 2 busy cores.

1. Starts Apache Kafka (KRaft, ``streams.local.kafka_broker.LocalKafka``) in a folder of its own under
   ``.loanwatch/bench/`` (or uses ``--bootstrap``), simulates N events (``streams.simulate.traffic``, all
   labelled scenarios) and produces them ONCE into fresh input topics, with the event time as message
   timestamp. Only then does any consumer start: what is measured is consumption, not producer speed.
2. Runs, one after the other, each as its own process with its own consumer group (app id) and output topics,
   on those same input records, with the same Settings (partitions, batch size, commit interval, memory store):

   - ``loanwatch``: ``python -m streams.cli worker``, every detector on (the built-in rule set);
   - ``passthrough``: ``bench/pipeline_apps.py passthrough``: decode each event, forward its bytes;
   - ``naive_windowed``: ``bench/pipeline_apps.py windowed``: the 30-minute burst rule as a Faust hopping
     windowed table (30 min, 1 min step) counting loan applications per customer, alert at 3 or more;
   - ``decode_only`` (only with ``--variants``): consume, batch, decode, write nothing: Faust's own floor.

   Progress is read from the group's committed offsets (AdminClient.list_consumer_group_offsets, every 0.2 s).
   events/s = the committed offsets' growth between the first and the last commit strictly inside the run:
   the first batch (start-up) and the final idle stretch before the last commit are left out, which a rate
   "from first to last processed event" has to do when commits come every ``worker_commit_interval``. The
   worker's CPU time over the same interval (/proc/PID/stat) gives events per CPU-second, which moves much
   less than events/s when other work shares the machine. A run whose commits stop moving for
   ``--stall-seconds`` is reported as STALLED (with the worker's own event count) instead of waiting forever.
3. Reports the ratios loanwatch / passthrough and loanwatch / naive_windowed, checks the targets (10,000
   events/s per worker, ratio to pass-through >= 0.8) and, where one is missed (``--profile auto``), runs
   loanwatch again on the same input under ``py-spy record`` for up to 20 s and lists the top functions by
   self and total time (the speedscope file is kept next to the JSON).
4. ``--latency``: a fresh loanwatch worker on fresh topics, fed at 25 %, 50 % and 80 % of the rate just measured;
   latency = CreateTime of the alert on the alerts topic minus CreateTime (set by our producer at send) of the
   newest input event the alert lists in evidence_event_ids (its trigger). p50/p90/p99 per rate.

Output: progress on stderr, a table on stdout, the whole result as JSON (``--out``, default
``.loanwatch/bench/pipeline-<UTC time>.json``) with the command, machine, versions, load averages, event mix.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import libversion as librdkafka_version
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from schemas import serde
from streams.admin import create_topics
from streams.local.kafka_broker import KAFKA_VERSION, LocalKafka
from streams.settings import Settings, TopicNames
from streams.simulate.traffic import SimConfig, Traffic

ROOT = Path(__file__).resolve().parents[1]
BENCH_HOME = ROOT / ".loanwatch" / "bench"
TARGET_EVENTS_PER_S = 10_000
TARGET_RATIO_TO_PASSTHROUGH = 0.8
POLL_S = 0.2
VARIANTS = ("loanwatch", "passthrough", "naive_windowed")
#: Optional extra baseline (``--variants``): Faust consuming and decoding, writing nothing.
EXTRA_VARIANTS = ("decode_only",)
_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# -- machine ------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024**2, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": mem_gib,
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "kafka_broker": KAFKA_VERSION, "librdkafka": librdkafka_version()[0]}
    for dist in ("faust-streaming", "mode-streaming", "aiokafka", "confluent-kafka", "pydantic", "orjson", "river"):
        with contextlib.suppress(Exception):
            out[dist] = version(dist)
    java = shutil.which("java")
    if java is not None:
        with contextlib.suppress(Exception):
            done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
            out["java"] = (done.stderr or done.stdout).splitlines()[0].strip()
    return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of ``pid`` (all its threads), or None when it is gone."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


def group_cpu_s(procs: Sequence[subprocess.Popen[bytes]]) -> float | None:
    """CPU seconds of all ``procs`` together, or None when one of them is gone."""
    times = [process_cpu_s(p.pid) for p in procs]
    return None if any(t is None for t in times) else sum(t for t in times if t is not None)


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, /proc/stat)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / _TICK


# -- traffic --------------------------------------------------------------------------------------------------


@dataclass
class SimTraffic:
    topics: list[str]  # "behavior" | "repayment" | "inquiry", per record
    keys: list[bytes | None]
    values: list[bytes]
    ts_ms: list[int]
    event_ids: list[str]
    mix: dict[str, Any]


def simulate(events: int, seed: int, customers: int | None = None, hours: float = 24.0) -> SimTraffic:
    """The first ``events`` simulated events (in event time) of ``customers`` over ``hours`` of event time."""
    # ~0.7 events per customer-hour: 10 events per customer come within ~15 h of a 24 h span (nights included).
    customers = customers if customers is not None else max(100, events // 10)
    config = SimConfig(customers=customers, seed=seed, hours=hours, start=datetime(2026, 1, 5, tzinfo=UTC))
    traffic = Traffic(config)
    kinds = {config.behavior_topic: "behavior", config.repayment_topic: "repayment", config.inquiry_topic: "inquiry"}
    out = SimTraffic([], [], [], [], [], {})
    by_type: Counter[str] = Counter()
    by_label: Counter[str] = Counter()
    for record in itertools.islice(traffic.records(), events):
        body = serde.loads(record.value)
        kind = kinds[record.topic]
        out.topics.append(kind)
        out.keys.append(record.key)
        out.values.append(record.value)
        out.ts_ms.append(record.ts_ms)
        out.event_ids.append(str(body.get("event_id")))
        by_type[f"{kind}/{body.get('event_type')}"] += 1
        by_label[record.label] += 1
        if len(out.values) % 50_000 == 0:
            say(f"simulated {len(out.values):,} events")
    span_h = (out.ts_ms[-1] - out.ts_ms[0]) / 3.6e6 if out.ts_ms else 0.0
    out.mix = {
        "events": len(out.values),
        "customers_simulated": config.customers,
        "customers_with_events": len(set(out.keys)),
        "event_time_span_hours": round(span_h, 2),
        "mean_value_bytes": round(sum(map(len, out.values)) / max(1, len(out.values))),
        "by_topic": dict(Counter(out.topics).most_common()),
        "by_event_type": dict(by_type.most_common()),
        "by_label": dict(by_label.most_common()),
        "seed": seed,
    }
    return out


# -- Kafka helpers --------------------------------------------------------------------------------------------


def variant_settings(bootstrap: str, home: Path, inputs: TopicNames, tag: str, name: str, args: Any) -> Settings:
    """Settings of one consumer under test: the shared input topics, its own group, outputs and rules topics."""
    own = {k: f"lwbench.{tag}.{name}.{v}" for k, v in TopicNames().model_dump().items()}
    own.update(behavior=inputs.behavior, repayment=inputs.repayment, inquiry=inputs.inquiry)
    return Settings(
        home=home,
        app_id=f"lwbench-{tag}-{name}",
        kafka_bootstrap=bootstrap,
        partitions=args.partitions,
        worker_batch_size=args.batch_size,
        worker_commit_interval=args.commit_interval,
        log_level="INFO",
        topics=TopicNames(**own),
        # The loanwatch worker's /metrics gives the time per batch stage (the baselines have none).
        worker_metrics_port=free_port() if name == "loanwatch" else 0,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def create_input_topics(settings: Settings) -> None:
    """The input topics, kept forever: their records carry simulated event times (January 2026) as timestamps,
    which the default 4-week retention of ``loanwatch init`` would delete within a minute of producing them."""
    admin = AdminClient(settings.confluent_config())
    keep = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
    futures = admin.create_topics(
        [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=1, config=keep)
            for name in input_topics(settings)
        ],
        request_timeout=30,
    )
    for future in futures.values():
        future.result(timeout=30)


def input_topics(settings: Settings) -> list[str]:
    return [settings.topics.behavior, settings.topics.repayment, settings.topics.inquiry]


def high_watermarks(settings: Settings, topics: Sequence[str]) -> dict[str, int]:
    consumer = Consumer({**settings.confluent_config(), "group.id": f"lwbench-wm-{uuid.uuid4().hex[:8]}"})
    try:
        metadata = consumer.list_topics(timeout=10)
        out: dict[str, int] = {}
        for topic in topics:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            out[topic] = sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions
            )
        return out
    finally:
        consumer.close()


def produce(
    settings: Settings,
    traffic: SimTraffic,
    indices: range,
    *,
    rate: float | None = None,
    now_timestamps: dict[str, int] | None = None,
) -> float:
    """Produce ``traffic[indices]``; event time as timestamp, or (``now_timestamps``) the wall clock at send.

    Returns the seconds it took (flush included). With ``rate``, paced to that many events per second.
    """
    names = {
        "behavior": settings.topics.behavior,
        "repayment": settings.topics.repayment,
        "inquiry": settings.topics.inquiry,
    }
    producer = Producer(
        {
            **settings.confluent_config(),
            # As the simulator and the other clients: murmur2 keeps a customer on its table's partition.
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "compression.type": "lz4",
            "linger.ms": 5 if rate is not None else 20,
            "batch.size": 256 * 1024,
            "queue.buffering.max.messages": 500_000,
        }
    )
    failures: list[str] = []

    def on_delivery(error: Any, _msg: Any) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.monotonic()
    last_note = started
    for count, i in enumerate(indices):
        if rate is not None:
            ahead = count / rate - (time.monotonic() - started)
            if ahead > 0:
                producer.poll(ahead)
        if now_timestamps is not None:
            ts = int(time.time() * 1000)
            now_timestamps[traffic.event_ids[i]] = ts
        else:
            ts = traffic.ts_ms[i]
        while True:
            try:
                producer.produce(
                    names[traffic.topics[i]],
                    value=traffic.values[i],
                    key=traffic.keys[i],
                    timestamp=ts,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if time.monotonic() - last_note >= 5:
            last_note = time.monotonic()
            say(f"  produced {count + 1:,} / {len(indices):,}")
    remaining = producer.flush(120)
    if remaining or failures:
        raise RuntimeError(f"produce failed: {remaining} undelivered, {failures[:3]}")
    return time.monotonic() - started


class GroupOffsets:
    """Sum of a consumer group's committed offsets over the input topics' partitions.

    Read with ``Consumer.committed`` on a consumer that carries the group id but never subscribes (so it never
    joins the group). Not AdminClient.list_consumer_group_offsets: librdkafka 2.x dereferences the admin
    handle's (absent) consumer group on a NOT_COORDINATOR answer and segfaults, which a fresh broker gives
    while it loads ``__consumer_offsets``.
    """

    def __init__(self, settings: Settings, group: str) -> None:
        self.consumer = Consumer(
            {**settings.confluent_config(), "group.id": group, "enable.auto.commit": False, "log_level": 3}
        )
        metadata = self.consumer.list_topics(timeout=10)
        self.partitions = [
            TopicPartition(topic, p) for topic in input_topics(settings) for p in metadata.topics[topic].partitions
        ]

    def committed(self) -> int:
        return sum(max(0, tp.offset) for tp in self.consumer.committed(self.partitions, timeout=10))

    def close(self) -> None:
        self.consumer.close()


# -- running one consumer under test ----------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the worker was started
    committed: int
    worker_cpu_s: float | None
    broker_cpu_s: float | None
    machine_busy_s: float


@dataclass
class RunResult:
    variant: str
    app_id: str
    events: int
    events_per_s: float = 0.0
    events_per_s_to_last_commit: float = 0.0
    startup_s: float = 0.0
    measured_window_s: float = 0.0
    measured_events: int = 0
    worker_cores: float | None = None
    events_per_worker_cpu_s: float | None = None
    broker_cores: float | None = None
    machine_busy_cores: float = 0.0
    output_records: dict[str, int] = field(default_factory=dict)
    worker_log: str = ""
    last_counters_line: str = ""
    commits_seen: int = 0
    stop: str = ""
    stalled_at: int | None = None  # committed offsets stopped short of the end here
    # loanwatch only: mean seconds per micro-batch in each stage of the engine agent, from its /metrics
    stage_seconds_per_batch: dict[str, float] = field(default_factory=dict)


#: How each worker process ended, by app id (SIGTERM honoured or not), for the report.
STOP_NOTES: dict[str, str] = {}


@contextlib.contextmanager
def running(cmd: list[str], settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    settings.home.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)  # noqa: S603
    try:
        yield proc
    finally:
        STOP_NOTES[settings.app_id] = stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 8.0) -> str:
    """SIGTERM, then SIGKILL after ``grace`` seconds; say which ended it and how long it took."""
    if proc.poll() is not None:
        return f"had exited (code {proc.returncode})"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        return f"ignored SIGTERM for {grace:.0f}s: killed"
    return f"exited (code {code}) {time.monotonic() - started:.1f}s after SIGTERM"


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def last_counters_line(path: Path) -> str:
    if not path.exists():
        return ""
    found = [line for line in path.read_text(errors="replace").splitlines() if "events=" in line]
    return found[-1].split(": ", 1)[-1] if found else ""


def command_for(variant: str, args: Any) -> list[str]:
    if variant == "loanwatch":
        return [sys.executable, "-m", "streams.cli", "worker"]
    apps = {
        "passthrough": ["passthrough"],
        "decode_only": ["decode_only"],
        "naive_windowed": ["windowed", "--window-minutes", "30", "--step-seconds", str(args.window_step_seconds)],
    }
    return [sys.executable, "-m", "bench.pipeline_apps", *apps[variant]]


def wait_progress(
    proc: subprocess.Popen[bytes] | Sequence[subprocess.Popen[bytes]],
    offsets: GroupOffsets,
    total: int,
    log_path: Path,
    broker_pid: int | None,
    timeout: float,
    label: str,
    until: Callable[[Sample], bool] | None = None,
    stall_after: float | None = None,
) -> list[Sample]:
    """Sample the group's committed offsets until they reach ``total`` (or ``until`` holds).

    With ``stall_after``, also return once commits have begun and then not moved for that many seconds (the
    last sample then says where they stopped); a worker that never commits at all fails after ``timeout``.
    Several processes (workers of one group) are watched together: their CPU times add up, any exit fails.
    """
    procs = [proc] if isinstance(proc, subprocess.Popen) else list(proc)
    started = time.monotonic()
    samples: list[Sample] = []
    last_note = started
    last_move = started
    while True:
        for each in procs:
            if each.poll() is not None:
                raise RuntimeError(f"{label}: a worker exited with code {each.returncode}\n{log_tail(log_path)}")
        try:
            committed = offsets.committed()
        except Exception as exc:  # noqa: BLE001 — a slow admin request: try again at the next tick
            say(f"{label}: offset request failed ({exc}); retrying")
            committed = samples[-1].committed if samples else 0
        now = time.monotonic()
        sample = Sample(now - started, committed, group_cpu_s(procs), process_cpu_s(broker_pid), machine_busy_s())
        if not samples or committed != samples[-1].committed:
            last_move = now
        samples.append(sample)
        if committed >= total or (until is not None and until(sample)):
            return samples
        if stall_after is not None and committed > 0 and now - last_move > stall_after:
            say(f"{label}: STALLED at {committed:,} / {total:,}: no commit moved for {stall_after:.0f}s")
            return samples
        if now - started > timeout:
            raise RuntimeError(f"{label}: {committed:,}/{total:,} after {timeout:.0f}s\n{log_tail(log_path)}")
        if now - last_note >= 5:
            last_note = now
            say(f"{label}: committed {committed:,} / {total:,} ({100 * committed / total:.0f} %)")
        time.sleep(max(0.0, POLL_S - (time.monotonic() - now)))


def rate_from(samples: list[Sample], total: int, result: RunResult) -> None:
    """events/s between the first and the last commit strictly inside the run (see the module doc)."""
    changes: list[Sample] = []  # first observation of each new committed value
    for s in samples:
        if s.committed > 0 and (not changes or s.committed != changes[-1].committed):
            changes.append(s)
    result.commits_seen = len(changes)
    if not changes:
        return
    first, end = changes[0], changes[-1]
    result.startup_s = round(first.t, 2)
    if end.t > first.t:
        result.events_per_s_to_last_commit = round((end.committed - first.committed) / (end.t - first.t))
    interior = [s for s in changes if s.committed < total]
    last = interior[-1] if len(interior) >= 2 else end
    window = last.t - first.t
    if window <= 0:
        return
    result.measured_window_s = round(window, 2)
    result.measured_events = last.committed - first.committed
    result.events_per_s = round(result.measured_events / window)
    result.machine_busy_cores = round((last.machine_busy_s - first.machine_busy_s) / window, 2)
    if first.worker_cpu_s is not None and last.worker_cpu_s is not None:
        cpu = last.worker_cpu_s - first.worker_cpu_s
        result.worker_cores = round(cpu / window, 2)
        result.events_per_worker_cpu_s = round(result.measured_events / cpu) if cpu > 0 else None
    if first.broker_cpu_s is not None and last.broker_cpu_s is not None:
        result.broker_cores = round((last.broker_cpu_s - first.broker_cpu_s) / window, 2)


def output_counts(settings: Settings) -> dict[str, int]:
    """Records the variant wrote: its output topics and its Faust internal (changelog) topics."""
    admin = AdminClient(settings.confluent_config())
    names = list(admin.list_topics(timeout=10).topics)
    t = settings.topics
    outputs = {"alerts": t.alerts, "limit_actions": t.limit_actions, "profiles": t.profiles, "deadletter": t.deadletter}
    marks = high_watermarks(settings, [*outputs.values(), *(n for n in names if n.startswith(settings.app_id))])
    counts = {k: marks.get(v, 0) for k, v in outputs.items()}
    counts["changelog"] = sum(v for k, v in marks.items() if k.startswith(settings.app_id) and "changelog" in k)
    return counts


def run_variant(
    variant: str, settings: Settings, total: int, args: Any, run_dir: Path, broker_pid: int | None
) -> RunResult:
    create_topics(settings)
    log_path = run_dir / f"{settings.app_id}.log"
    result = RunResult(variant, settings.app_id, total, worker_log=str(log_path))
    say(f"{variant}: starting the worker ({settings.app_id}); log {log_path}")
    with (
        contextlib.closing(GroupOffsets(settings, settings.app_id)) as offsets,
        running(command_for(variant, args), settings, log_path) as proc,
    ):
        samples = wait_progress(
            proc, offsets, total, log_path, broker_pid, args.timeout, variant, stall_after=args.stall_seconds
        )
        time.sleep(0.5)
        if settings.worker_metrics_port:
            result.stage_seconds_per_batch = batch_stages(settings.worker_metrics_port)
    rate_from(samples, total, result)
    if samples[-1].committed < total:
        result.stalled_at = samples[-1].committed
    result.output_records = output_counts(settings)
    result.last_counters_line = last_counters_line(log_path)
    result.stop = STOP_NOTES.get(settings.app_id, "")
    say(
        f"{variant}: {result.events_per_s:,.0f} events/s over {result.measured_window_s:.1f}s "
        f"(start-up {result.startup_s:.1f}s, worker {result.worker_cores} cores)"
    )
    if result.stage_seconds_per_batch:
        per_batch = result.stage_seconds_per_batch
        stages = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in per_batch.items() if k != "batches")
        say(f"{variant}: per micro-batch ({result.stage_seconds_per_batch['batches']:.0f} batches): {stages}")
    return result


def batch_stages(port: int) -> dict[str, float]:
    """Mean seconds per micro-batch in each engine-agent stage, from the worker's own histogram."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()  # noqa: S310
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "loanwatch_engine_batch_seconds":
            continue
        for sample in family.samples:
            stage = sample.labels.get("stage", "")
            if sample.name.endswith("_sum"):
                sums[stage] = sample.value
            elif sample.name.endswith("_count"):
                counts[stage] = sample.value
    batches = counts.get("engine", 0.0)
    if not batches:
        return {}
    return {**{stage: sums[stage] / batches for stage in sums}, "batches": batches}


# -- py-spy ---------------------------------------------------------------------------------------------------


def profile_loanwatch(settings: Settings, total: int, expected_rate: float, args: Any, run_dir: Path) -> dict[str, Any]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed (pip install py-spy)"}
    create_topics(settings)
    log_path = run_dir / f"{settings.app_id}.log"
    out_path = run_dir / "loanwatch-profile.speedscope.json"
    # Profile while there is input left: at the measured rate the input lasts total / rate seconds.
    duration = int(max(5, min(args.profile_seconds, 0.8 * total / max(expected_rate, 1.0))))
    with (
        contextlib.closing(GroupOffsets(settings, settings.app_id)) as offsets,
        running(command_for("loanwatch", args), settings, log_path) as proc,
    ):
        wait_progress(proc, offsets, total, log_path, None, args.timeout, "profile", until=lambda s: s.committed > 0)
        say(f"profile: py-spy record for {duration}s on pid {proc.pid}")
        cmd = [
            py_spy,
            "record",
            "-p",
            str(proc.pid),
            "-d",
            str(duration),
            "-r",
            "100",
            "-F",
            "-f",
            "speedscope",
            "-o",
            str(out_path),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)  # noqa: S603
        committed = offsets.committed()
    if done.returncode != 0 or not out_path.exists():
        return {"error": f"py-spy exited with {done.returncode}: {(done.stderr or done.stdout)[-2000:]}"}
    summary = summarise_speedscope(out_path, args.profile_top)
    summary.update(file=str(out_path), seconds=duration, command=" ".join(cmd), committed_at_end=committed)
    return summary


def _frame_name(frame: dict[str, Any]) -> str:
    file = str(frame.get("file") or "")
    short = "/".join(file.split("/")[-2:]) if file else "?"
    return f"{frame.get('name')} ({short}:{frame.get('line')})"


def _package(file: str) -> str:
    """Where a frame's code lives: a site-packages distribution, a repo package, or the standard library."""
    if "/site-packages/" in file:
        return file.split("/site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if file.startswith(str(ROOT) + "/"):
        parts = file[len(str(ROOT)) + 1 :].split("/")
        return "/".join(parts[:2]).removesuffix(".py") if len(parts) > 2 else parts[0].removesuffix(".py")
    if "/lib/python3" in file:
        rest = file.split("/lib/python3", 1)[1].split("/", 2)
        return "stdlib " + (rest[1].removesuffix(".py") if len(rest) > 1 else "?")
    return file or "?"


# Frames every sample of a thread passes through (event loop, CLI, threads): uninformative in a "total" list.
_PLUMBING = (
    "asyncio/base_events.py",
    "asyncio/events.py",
    "mode/worker.py",
    "mode/threads.py",
    "typer/",
    "_click/",
    "click/",
    "runpy",
    "threading.py",
    "streams/cli.py",
    "streams/worker.py",
)


def summarise_speedscope(path: Path, top: int) -> dict[str, Any]:
    """Top functions by self and by total share of the non-idle samples, all threads together.

    py-spy leaves idle threads out (a thread blocked in a system call); a thread waiting in C code that py-spy
    cannot see as blocked (librdkafka's poll, for one) still shows as busy.
    """
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    self_w: Counter[int] = Counter()
    total_w: Counter[int] = Counter()
    per_thread: dict[str, float] = {}
    by_package: Counter[str] = Counter()
    callers: defaultdict[int, Counter[int]] = defaultdict(Counter)
    grand = 0.0
    samples = 0
    for profile in data["profiles"]:
        weights = profile.get("weights") or [1] * len(profile["samples"])
        thread_total = 0.0
        for stack, weight in zip(profile["samples"], weights, strict=True):
            if not stack:
                continue
            samples += 1
            self_w[stack[-1]] += weight
            if len(stack) > 1:
                callers[stack[-1]][stack[-2]] += weight
            by_package[_package(str(frames[stack[-1]].get("file") or ""))] += weight
            for index in set(stack):
                total_w[index] += weight
            thread_total += weight
        per_thread[str(profile.get("name"))] = thread_total
        grand += thread_total
    grand = grand or 1.0

    def rows(counter: Counter[int], skip_plumbing: bool) -> list[dict[str, Any]]:
        out = []
        for i, w in counter.most_common():
            name = _frame_name(frames[i])
            if str(frames[i].get("file")) == "<string>" and callers[i]:  # generated code: say whose
                name += f" <- {_frame_name(frames[callers[i].most_common(1)[0][0]])}"
            if skip_plumbing and any(p in str(frames[i].get("file") or "") for p in _PLUMBING):
                continue
            out.append({"function": name, "share": round(w / grand, 4)})
            if len(out) == top:
                break
        return out

    return {
        "samples": samples,
        "threads": {name: round(w / grand, 3) for name, w in sorted(per_thread.items(), key=lambda kv: -kv[1])},
        "self_by_package": {k: round(w / grand, 3) for k, w in by_package.most_common(top)},
        "top_self": rows(self_w, skip_plumbing=False),
        "top_total": rows(total_w, skip_plumbing=True),
    }


# -- latency --------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def read_all(settings: Settings, topic: str) -> list[tuple[int, bytes]]:
    """(CreateTime ms, value) of every record of ``topic`` as of now."""
    expected = high_watermarks(settings, [topic]).get(topic, 0)
    consumer = Consumer(
        {
            **settings.confluent_config(),
            "group.id": f"lwbench-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            out.append((message.timestamp()[1], message.value() or b""))
    finally:
        consumer.close()
    return out


def measure_latency(
    bootstrap: str, traffic: SimTraffic, max_rate: float, args: Any, run_dir: Path, broker_pid: int | None
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    inputs = TopicNames(**{k: f"lwbench.{tag}.{v}" for k, v in TopicNames().model_dump().items()})
    settings = variant_settings(bootstrap, run_dir / "latency", inputs, tag, "latency", args)
    create_input_topics(settings)
    create_topics(settings)
    log_path = run_dir / f"{settings.app_id}.log"
    produced_at: dict[str, int] = {}
    phase_of: dict[str, str] = {}
    fractions = [float(f) for f in args.latency_fractions.split(",")]
    warm = min(2000, len(traffic.values) // 10)
    left = len(traffic.values) - warm
    rates = [f * max_rate for f in fractions]
    counts = [int(min(r * args.latency_seconds, left * r / sum(rates))) for r in rates]
    phases: list[dict[str, Any]] = []
    with (
        contextlib.closing(GroupOffsets(settings, settings.app_id)) as offsets,
        running(command_for("loanwatch", args), settings, log_path) as proc,
    ):
        say(f"latency: warm-up with {warm:,} events")
        produce(settings, traffic, range(warm), now_timestamps={})
        wait_progress(
            proc, offsets, warm, log_path, broker_pid, args.timeout, "latency warm-up", stall_after=args.stall_seconds
        )
        start = warm
        for fraction, rate, n in zip(fractions, rates, counts, strict=True):
            name = f"{round(fraction * 100)}%"
            say(f"latency: {n:,} events at {rate:,.0f}/s ({name} of the measured max)")
            stamps: dict[str, int] = {}
            took = produce(settings, traffic, range(start, start + n), rate=rate, now_timestamps=stamps)
            produced_at.update(stamps)
            phase_of.update(dict.fromkeys(stamps, name))
            start += n
            drain_started = time.monotonic()
            wait_progress(
                proc,
                offsets,
                start,
                log_path,
                broker_pid,
                args.timeout,
                f"latency {name}",
                stall_after=args.stall_seconds,
            )
            phases.append(
                {
                    "phase": name,
                    "target_rate": round(rate),
                    "events": n,
                    "produce_s": round(took, 1),
                    "achieved_rate": round(n / took),
                    "drain_after_produce_s": round(time.monotonic() - drain_started, 1),
                }
            )
        time.sleep(1.0)
    alerts = read_all(settings, settings.topics.alerts)
    latencies: dict[str, list[float]] = {p["phase"]: [] for p in phases}
    unmatched = 0
    for ts, value in alerts:
        evidence = [e for e in serde.loads(value).get("evidence_event_ids", []) if e in produced_at]
        if not evidence:
            unmatched += 1
            continue
        trigger = max(evidence, key=produced_at.__getitem__)
        latencies[phase_of[trigger]].append(ts - produced_at[trigger])
    for phase in phases:
        values = latencies[phase["phase"]]
        phase.update(
            alerts=len(values),
            p50_ms=round(percentile(values, 0.5), 1),
            p90_ms=round(percentile(values, 0.9), 1),
            p99_ms=round(percentile(values, 0.99), 1),
            max_ms=round(max(values), 1) if values else float("nan"),
        )
    return {
        "app_id": settings.app_id,
        "phases": phases,
        "alerts_total": len(alerts),
        "alerts_not_from_timed_phases": unmatched,
        "worker_log": str(log_path),
    }


# -- main -----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events produced before the consumers run")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--batch-size", type=int, default=500, help="take_events batch size (worker_batch_size)")
    parser.add_argument("--commit-interval", type=float, default=1.0, help="worker_commit_interval, seconds")
    parser.add_argument("--skip-baselines", action="store_true", help="measure the loanwatch worker only")
    parser.add_argument(
        "--variants",
        type=lambda text: [v.strip() for v in text.split(",") if v.strip()],
        default=list(VARIANTS),
        help=f"comma-separated, loanwatch first; from {', '.join(VARIANTS + EXTRA_VARIANTS)}",
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all variants (median reported)")
    parser.add_argument("--window-step-seconds", type=float, default=60.0, help="naive_windowed hopping step")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="py-spy the loanwatch worker: auto = when a target is missed",
    )
    parser.add_argument("--profile-seconds", type=float, default=20.0)
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--latency", action="store_true", help="also measure produce-to-alert latency")
    parser.add_argument("--latency-fractions", default="0.25,0.5,0.8", help="rates as fractions of the measured max")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="produce time per latency rate")
    parser.add_argument(
        "--stall-seconds", type=float, default=30.0, help="give up on a run whose commits stop moving this long"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0, help="longest wait for one consumer run, seconds")
    parser.add_argument("--bootstrap", default=None, help="use this broker instead of starting a local one")
    parser.add_argument("--broker-pid", type=int, default=None, help="with --bootstrap: its pid, for its CPU time")
    parser.add_argument("--keep-data", action="store_true", help="keep the bench broker's data folder")
    parser.add_argument("--out", type=Path, default=None, help="JSON result (default .loanwatch/bench/...)")
    args = parser.parse_args(argv)
    unknown = set(args.variants) - set(VARIANTS + EXTRA_VARIANTS)
    if unknown or "loanwatch" not in args.variants:
        parser.error(f"--variants must include loanwatch and name only {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    return args


@contextlib.contextmanager
def broker(args: argparse.Namespace, run_dir: Path) -> Iterator[tuple[str, int | None]]:
    if args.bootstrap:
        yield args.bootstrap, args.broker_pid
        return
    home = run_dir / "kafka"
    jars = ROOT / ".loanwatch" / "kafka" / "jars" / KAFKA_VERSION
    kafka = LocalKafka(home, progress=lambda m: say(f"kafka: {m}"), jars_dir=jars)
    try:
        kafka.start(fresh=True)
        yield kafka.bootstrap, kafka.pid
    finally:
        kafka.stop()
        if not args.keep_data:
            shutil.rmtree(home / "data", ignore_errors=True)


def median_result(results: list[RunResult]) -> RunResult:
    ordered = sorted(results, key=lambda r: r.events_per_s)
    return ordered[len(ordered) // 2]


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def render(result: dict[str, Any]) -> str:
    lines = [f"command: {result['command']}"]
    m = result["machine"]
    lines.append(f"machine: {m['cpus']} cpu {m['cpu_model']}, {m['ram_gib']} GiB RAM, {m['platform']}")
    v = result["versions"]
    lines.append(
        f"versions: Python {v['python']}, faust-streaming {v.get('faust-streaming')}, aiokafka {v.get('aiokafka')}, "
        f"confluent-kafka {v.get('confluent-kafka')} (librdkafka {v['librdkafka']}), Kafka {v['kafka_broker']}"
    )
    lines.append(f"load average (1/5/15 min): start {result['loadavg_start']}, end {result['loadavg_end']}")
    mix = result["event_mix"]
    top = ", ".join(f"{k} {n:,}" for k, n in list(mix["by_event_type"].items())[:6])
    lines.append(
        f"events: {mix['events']:,} ({mix['customers_with_events']:,} customers, {mix['event_time_span_hours']} h "
        f"of event time, {mix['mean_value_bytes']} B mean); {top}, ..."
    )
    lines.append(f"labels: {', '.join(f'{k} {n:,}' for k, n in mix['by_label'].items())}")
    s = result["settings"]
    lines.append(
        f"settings: {s['partitions']} partitions x 3 input topics, take_events({s['batch_size']}, "
        f"within={s['batch_seconds']}s), commit every {s['commit_interval']}s, store {s['store']}; "
        f"produced once in {result['produce_s']}s; rounds {s['repeat']}"
    )
    lines.append("")
    header = (
        f"{'variant':<16}{'events/s':>10}{'x passthr.':>11}{'window s':>9}{'start s':>8}"
        f"{'worker cores':>13}{'events/CPU-s':>13}{'broker cores':>13}{'busy cores':>11}  outputs"
    )
    lines.append(header)
    base = result["runs"].get("passthrough")
    for name, r in result["runs"].items():
        ratio = r["events_per_s"] / base["events_per_s"] if base and base["events_per_s"] else None
        outs = ", ".join(f"{k} {n:,}" for k, n in r["output_records"].items() if n)
        lines.append(
            f"{name:<16}{fmt(r['events_per_s']):>10}{fmt(ratio, '.2f'):>11}{r['measured_window_s']:>9.1f}"
            f"{r['startup_s']:>8.1f}{fmt(r['worker_cores'], '.2f'):>13}{fmt(r['events_per_worker_cpu_s']):>13}"
            f"{fmt(r['broker_cores'], '.2f'):>13}{r['machine_busy_cores']:>11.2f}  {outs}"
        )
    for name, r in result["runs"].items():
        if r.get("stalled_at") is not None:
            lines.append(
                f"STALLED: {name}: committed offsets stopped at {r['stalled_at']:,} of {r['events']:,} "
                f"(worker's own count: {r['last_counters_line'][:60] or '?'}); rate measured up to the stall"
            )
    lines.append("worker stop: " + "; ".join(f"{name} {r['stop']}" for name, r in result["runs"].items()))
    lines.append("")
    for key, value in result["ratios"].items():
        lines.append(f"ratio {key}: {fmt(value, '.3f')}")
    for key, value in result["targets"].items():
        lines.append(f"target {key}: {value}")
    prof = result.get("profile")
    if prof:
        lines.append("")
        if "error" in prof:
            lines.append(f"py-spy: {prof['error']}")
        else:
            lines.append(f"py-spy ({prof['seconds']}s, {prof['samples']:,} non-idle samples, file {prof['file']}):")
            lines.append("  threads: " + ", ".join(f"{k} {v:.0%}" for k, v in prof["threads"].items()))
            lines.append(
                "  self time by package: " + ", ".join(f"{k} {v:.0%}" for k, v in prof["self_by_package"].items())
            )
            lines.append("  top by self time:")
            lines.extend(f"    {row['share']:6.1%}  {row['function']}" for row in prof["top_self"])
            lines.append("  top by total time (event loop, CLI and thread frames left out):")
            lines.extend(f"    {row['share']:6.1%}  {row['function']}" for row in prof["top_total"])
    lat = result.get("latency")
    if lat:
        lines.append("")
        lines.append(f"produce-to-alert latency ({lat['app_id']}):")
        lines.append(
            f"  {'rate':<6}{'events/s':>10}{'achieved':>10}{'alerts':>8}{'p50 ms':>9}{'p90 ms':>9}"
            f"{'p99 ms':>9}{'max ms':>9}"
        )
        for p in lat["phases"]:
            lines.append(
                f"  {p['phase']:<6}{p['target_rate']:>10,}{p['achieved_rate']:>10,}{p['alerts']:>8}"
                f"{p['p50_ms']:>9.0f}{p['p90_ms']:>9.0f}{p['p99_ms']:>9.0f}{p['max_ms']:>9.0f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    raw_argv = argv if argv is not None else sys.argv[1:]
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    run_dir = BENCH_HOME / f"pipeline-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    out_path = args.out if args.out is not None else BENCH_HOME / f"pipeline-{stamp}.json"
    result: dict[str, Any] = {
        "command": " ".join(["python", "bench/bench_pipeline.py", *raw_argv]),
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "loadavg_start": loadavg(),
    }
    say(f"load average {result['loadavg_start']}; run folder {run_dir}")
    say(f"simulating {args.events:,} events")
    traffic = simulate(args.events, args.seed)
    total = len(traffic.values)
    result["event_mix"] = traffic.mix

    with broker(args, run_dir) as (bootstrap, broker_pid):
        tag = uuid.uuid4().hex[:6]
        inputs = TopicNames(**{k: f"lwbench.{tag}.{v}" for k, v in TopicNames().model_dump().items()})

        def settings_for(name: str) -> Settings:
            return variant_settings(bootstrap, run_dir / name, inputs, tag, name, args)

        first = settings_for("inputs")
        result["settings"] = {
            "partitions": args.partitions,
            "batch_size": first.worker_batch_size,
            "batch_seconds": first.worker_batch_seconds,
            "commit_interval": first.worker_commit_interval,
            "store": first.store,
            "repeat": args.repeat,
            "window_step_seconds": args.window_step_seconds,
            "input_topics": input_topics(first),
            "bootstrap": bootstrap,
        }
        create_input_topics(first)
        create_topics(first)
        say(f"producing {total:,} events into {', '.join(input_topics(first))}")
        result["produce_s"] = round(produce(first, traffic, range(total)), 1)
        produced = sum(high_watermarks(first, input_topics(first)).values())
        if produced != total:
            raise RuntimeError(f"the input topics hold {produced:,} records, expected {total:,}")
        say(f"produced {total:,} events in {result['produce_s']}s")

        variants = ["loanwatch"] if args.skip_baselines else args.variants
        rounds: dict[str, list[RunResult]] = {v: [] for v in variants}
        for round_no in range(args.repeat):
            for variant in variants:
                name = variant if args.repeat == 1 else f"{variant}-r{round_no + 1}"
                rounds[variant].append(run_variant(variant, settings_for(name), total, args, run_dir, broker_pid))
        runs = {v: median_result(rs) for v, rs in rounds.items()}
        result["runs"] = {v: asdict(r) for v, r in runs.items()}
        if args.repeat > 1:
            result["rounds_events_per_s"] = {v: [r.events_per_s for r in rs] for v, rs in rounds.items()}

        lw = runs["loanwatch"].events_per_s
        ratios: dict[str, float | None] = {}
        for other in ("passthrough", "naive_windowed", "decode_only"):
            if other in runs:
                ratios[f"loanwatch/{other}"] = (
                    round(lw / runs[other].events_per_s, 3) if runs[other].events_per_s else None
                )
        if (
            "passthrough" in runs
            and runs["passthrough"].events_per_worker_cpu_s
            and runs["loanwatch"].events_per_worker_cpu_s
        ):
            ratios["loanwatch/passthrough per worker CPU-s"] = round(
                runs["loanwatch"].events_per_worker_cpu_s / runs["passthrough"].events_per_worker_cpu_s, 3
            )
        result["ratios"] = ratios
        missed_rate = lw < TARGET_EVENTS_PER_S
        ratio_pt = ratios.get("loanwatch/passthrough")
        missed_ratio = ratio_pt is not None and ratio_pt < TARGET_RATIO_TO_PASSTHROUGH
        result["targets"] = {
            f">= {TARGET_EVENTS_PER_S:,} events/s per worker": f"{'MET' if not missed_rate else 'MISSED'} ({lw:,.0f})",
            f"loanwatch/passthrough >= {TARGET_RATIO_TO_PASSTHROUGH}": (
                "not measured" if ratio_pt is None else f"{'MISSED' if missed_ratio else 'MET'} ({ratio_pt:.3f})"
            ),
        }
        if args.profile == "always" or (args.profile == "auto" and (missed_rate or missed_ratio)):
            say("profiling the loanwatch worker with py-spy")
            result["profile"] = profile_loanwatch(settings_for("pyspy"), total, lw, args, run_dir)
        if args.latency:
            result["latency"] = measure_latency(bootstrap, traffic, lw, args, run_dir, broker_pid)

    result["loadavg_end"] = loadavg()
    result["elapsed_s"] = round(time.monotonic() - _STARTED, 1)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"JSON: {out_path}  (run folder {run_dir}, {result['elapsed_s']}s)")
    return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
