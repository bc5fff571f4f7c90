"""``loanwatch evaluate``: replay a labelled stream through the engine offline and measure it against the truth.

The input is the JSONL ground truth ``loanwatch simulate --labels`` writes (one line per produced record: topic,
key, ts_ms, label, episode_id, customer_id, and the event itself or ``raw_b64`` for malformed records). Records
are replayed in file order, which is produced order, so each customer's events arrive as a worker sees them.
Models: one :class:`~detectors.models.checkpoint.ModelSet` per simulated partition (``partitions``, customers
spread by CRC-32 of their id; default 1, i.e. one model set for the whole replay).

Ground-truth episodes come from ``<labels>.episodes.json`` if present, else ``<labels>.bursts.json``, else from
the records (label + episode_id → first and last event time). An episode is detected when its customer gets an
alert at attention or above whose ``last_seen`` lies in ``[start, end + grace]``; its delay is that time minus
the start. Precision counts customers alerted at or above attention that carry any scenario label.

Example:
    >>> import tempfile
    >>> from datetime import UTC, datetime
    >>> from streams.simulate.traffic import SimConfig, Traffic
    >>> path = Path(tempfile.mkdtemp()) / "day.jsonl"
    >>> traffic = Traffic(SimConfig(customers=40, start=datetime(2026, 1, 5, tzinfo=UTC), hours=3, burst_share=0.05))
    >>> write_labels(traffic.records(), path)
    >>> report = evaluate(path)
    >>> report.scenarios["multi_application_burst"].episodes
    2
"""

from __future__ import annotations

import statistics
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from detectors.engine import CustomerState, Engine, EngineConfig, EngineInput, StepResult
from detectors.entities.network import OfflineNetwork
from detectors.models.checkpoint import ModelSet
from detectors.profile import InputEvent
from schemas import serde
from schemas.behavior import BEHAVIOR_EVENT_TYPES, BehaviorBase
from schemas.decode import BEHAVIOR_ADAPTER, INQUIRY_ADAPTER, REPAYMENT_ADAPTER
from schemas.outputs import TIER_ORDER, TIERS, Alert
from schemas.repayment import REPAYMENT_EVENT_TYPES
from streams.simulate.model import DECOY_SCENARIO_NAMES, SimRecord

__all__ = ["Episode", "EvaluationReport", "ScenarioReport", "evaluate", "load_episodes", "write_labels"]

NON_SCENARIO_LABELS: Final = frozenset({"normal", "malformed"})
_ATTENTION: Final = TIER_ORDER["attention"]
_MINUTE_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class Episode:
    """One injected problem: which scenario, whose, and its event-time span."""

    episode_id: str
    customer_id: str
    scenario: str
    start_ms: int
    end_ms: int
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(slots=True)
class RingReport:
    """Fraud rings (团伙): rings found, member-level precision / recall / F1, delay, decoys alerted.

    A ring counts as found when one ring alert names at least half of its members. Members predicted are the
    customers named in any ring alert; decoys alerted are decoy customers (public Wi-Fi, families) named in a
    ring alert at attention or above.
    """

    rings: int = 0
    found: int = 0
    ring_recall: float = 0.0
    median_delay_minutes: float | None = None
    members: int = 0
    predicted_members: int = 0
    member_precision: float | None = None
    member_recall: float = 0.0
    member_f1: float = 0.0
    decoy_customers: int = 0
    decoys_alerted: int = 0
    ring_alerts: int = 0
    links: int = 0


@dataclass(slots=True)
class ScenarioReport:
    """Recall at ≥ attention and detection delay of one scenario."""

    episodes: int = 0
    detected: int = 0
    recall: float = 0.0
    median_delay_minutes: float | None = None


@dataclass(slots=True)
class EvaluationReport:
    """Everything ``loanwatch evaluate`` prints (``--json``: ``asdict`` of this)."""

    events: int = 0
    malformed: int = 0
    customers: int = 0
    labelled_customers: int = 0
    normal_customers: int = 0
    scenarios: dict[str, ScenarioReport] = field(default_factory=dict)
    rings: RingReport = field(default_factory=RingReport)
    alerted_attention: int = 0
    precision_attention: float | None = None
    precision_by_tier: dict[str, float | None] = field(default_factory=dict)
    normal_attention_share: float = 0.0
    normal_warning_share: float = 0.0
    alerts: dict[str, int] = field(default_factory=dict)
    limit_actions: dict[str, int] = field(default_factory=dict)
    normal_alert_drivers: dict[str, int] = field(default_factory=dict)
    engine_seconds: float = 0.0
    engine_events_per_s: float = 0.0
    batch_size: int = 0
    partitions: int = 1
    grace_minutes: int = 30

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class _NullProducer:
    """Delivers every message at once: lets :func:`write_labels` use produce()'s own label writer without Kafka."""

    def produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Callable[[Any, Any], None]) -> None:
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def write_labels(records: Iterable[SimRecord], path: Path, episodes: Iterable[Any] | None = None) -> None:
    """Write ``records`` as the labelled JSONL and its companions exactly as ``loanwatch simulate`` does.

    ``episodes``: the planned episodes (``Traffic.episodes``), written with their details when given.
    """
    from streams.simulate.produce import produce  # confluent-kafka loads only when labels are written

    extra: dict[str, Any] = {} if episodes is None else {"episodes": episodes}
    produce({}, records, labels_path=path, producer_factory=lambda settings: _NullProducer(), **extra)


def _decode(event: dict[str, Any]) -> InputEvent:
    kind = event.get("event_type")
    if kind in BEHAVIOR_EVENT_TYPES:
        return BEHAVIOR_ADAPTER.validate_python(event)
    if kind in REPAYMENT_EVENT_TYPES:
        return REPAYMENT_ADAPTER.validate_python(event)
    return INQUIRY_ADAPTER.validate_python(event)


def _companion(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def load_episodes(path: Path, derived: dict[tuple[str, str], Episode]) -> list[Episode]:
    """Ground truth for the labels file ``path``: episodes file, else bursts file, else ``derived`` from records."""
    labels_of = {e.episode_id: e.scenario for e in derived.values()}
    for suffix, default in ((".episodes.json", None), (".bursts.json", "multi_application_burst")):
        companion = _companion(path, suffix)
        if not companion.exists():
            continue
        episodes = [
            Episode(
                episode_id=str(r["episode_id"]),
                customer_id=str(r["customer_id"] or ""),  # "": a population-level episode (drift)
                scenario=str(r.get("scenario") or default or labels_of.get(r["episode_id"], "unknown")),
                start_ms=int(r["start_ms"]),
                end_ms=int(r["end_ms"]),
                details=dict(r.get("details") or {}),
            )
            for r in serde.loads(companion.read_bytes())
        ]
        if default is not None:  # the bursts file knows bursts only: other scenarios come from the records
            episodes += [e for e in derived.values() if e.scenario != default]
        return sorted(episodes, key=lambda e: (e.start_ms, e.episode_id))
    return sorted(derived.values(), key=lambda e: (e.start_ms, e.episode_id))


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield serde.loads(line)


class _Replay:
    """Feeds decoded events to the engine (per event or in micro-batches) and keeps what the evaluation needs."""

    def __init__(self, engine: Engine, partitions: int, batch_size: int) -> None:
        self.engine = engine
        self.partitions = partitions
        self.batch_size = batch_size
        self.states: dict[str, CustomerState] = {}
        self.models: dict[int, ModelSet] = {}
        self.pending: list[EngineInput] = []
        self.seen_ids: set[str] = set()
        self.hits: dict[str, list[tuple[int, int]]] = defaultdict(list)  # customer -> (tier rank, last_seen)
        self.max_tier: dict[str, int] = {}
        self.alerts: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.drivers: dict[str, Counter[str]] = defaultdict(Counter)
        self.drift_times: list[int] = []  # event time of every drift event (population-level episodes)
        self.seconds = 0.0
        self.events = 0
        self.network = OfflineNetwork(engine.config.entities, engine.config.rings)
        self.ring_alerts: list[Alert] = []

    def add(self, event: EngineInput) -> None:
        if self.batch_size <= 1:
            self._run(event.customer_id, [event])
            return
        self.pending.append(event)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        groups: dict[str, list[EngineInput]] = defaultdict(list)
        for event in self.pending:
            groups[event.customer_id].append(event)
        self.pending = []
        for customer_id, events in groups.items():
            self._run(customer_id, events)
        self._rings()

    def _rings(self) -> None:
        """As the entity and ring agents do after a batch: links to rings, ring scores back to the members."""
        changes = self.network.step()
        self.ring_alerts.extend(changes.alerts)
        for alert in changes.alerts:
            self.alerts[f"{alert.rule_id}:{alert.tier}"] += 1
        for update in changes.memberships:
            self._run(update.customer_id, [update], rings=False)

    def _run(self, customer_id: str, events: list[EngineInput], rings: bool = True) -> None:
        state = self.states.get(customer_id) or CustomerState.empty(customer_id)
        partition = zlib.crc32(customer_id.encode()) % self.partitions
        models = self.models.get(partition)
        if models is None:
            models = self.models[partition] = self.engine.new_models(partition)
        began = time.perf_counter()
        step = self.engine.process_batch(state, events, models)
        for event in events:
            if isinstance(event, BehaviorBase):
                self.network.observe(event)
        if step.own_tier_changed:
            self.network.tier(customer_id, step.state.own_tier)
        self.seconds += time.perf_counter() - began
        self.events += len(events)
        self.states[customer_id] = step.state
        self._collect(customer_id, step)
        if rings and self.batch_size <= 1:
            self._rings()

    def _collect(self, customer_id: str, step: StepResult) -> None:
        weight = self.engine.config.decision.fusion.weight_for
        if step.drift:
            self.drift_times.append(step.state.profile.watermark_ms)
        for alert in step.alerts:
            if alert.alert_id in self.seen_ids:
                continue  # a replay re-sent it
            self.seen_ids.add(alert.alert_id)
            rank = TIER_ORDER[alert.tier]
            self.alerts[f"{alert.rule_id}:{alert.tier}"] += 1
            self.max_tier[customer_id] = max(self.max_tier.get(customer_id, 0), rank)
            if rank >= _ATTENTION:
                self.hits[customer_id].append((rank, int(alert.last_seen.timestamp() * 1000)))
                top = max(step.scores, key=lambda s: weight(s.detector_id) * s.score, default=None)
                driver = top.detector_id if alert.rule_id == "fused_risk" and top is not None else alert.rule_id
                self.drivers[customer_id][driver] += 1
        for action in step.actions:
            if action.action_id not in self.seen_ids:
                self.seen_ids.add(action.action_id)
                self.actions[action.action] += 1


def evaluate(
    path: Path,
    config: EngineConfig | None = None,
    *,
    grace_minutes: int = 30,
    partitions: int = 1,
    batch_size: int = 0,
    progress: Callable[[int, float], None] | None = None,
    progress_every: int = 200_000,
) -> EvaluationReport:
    """Replay the labelled JSONL at ``path`` through the engine and score the outcome (see the module docstring).

    ``batch_size`` > 1 replays in micro-batches of that many records, grouped per customer, as the Faust agent
    does; ``progress(events, seconds)`` is called every ``progress_every`` records.
    """
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    replay = _Replay(Engine(config), partitions, batch_size)
    report = EvaluationReport(batch_size=batch_size, partitions=partitions, grace_minutes=grace_minutes)
    labelled: set[str] = set()
    decoys: set[str] = set()  # decoy scenarios are ordinary customers who share entities innocently
    customers: set[str] = set()
    derived: dict[tuple[str, str], Episode] = {}
    began = time.perf_counter()
    for n, row in enumerate(_lines(path), 1):
        if progress is not None and n % progress_every == 0:
            progress(n, time.perf_counter() - began)
        event = row.get("event")
        if event is None:
            report.malformed += 1
            continue
        decoded = _decode(event)
        customer_id, label, ts_ms = decoded.customer_id, str(row["label"]), int(row["ts_ms"])
        customers.add(customer_id)
        if label in DECOY_SCENARIO_NAMES:
            decoys.add(customer_id)
        elif label not in NON_SCENARIO_LABELS:
            labelled.add(customer_id)
            key = (label, str(row.get("episode_id") or customer_id))
            seen = derived.get(key)
            derived[key] = Episode(
                key[1],
                customer_id,
                label,
                ts_ms if seen is None else min(seen.start_ms, ts_ms),
                ts_ms if seen is None else max(seen.end_ms, ts_ms),
            )
        report.events += 1
        replay.add(decoded)
    replay.flush()
    episodes = load_episodes(path, derived)
    decoys |= {e.customer_id for e in episodes if e.scenario in DECOY_SCENARIO_NAMES}
    episodes = [e for e in episodes if e.scenario not in DECOY_SCENARIO_NAMES]
    labelled |= {e.customer_id for e in episodes if e.customer_id}
    _score(report, replay, episodes, customers, labelled, grace_minutes * _MINUTE_MS)
    _score_rings(report.rings, replay, episodes, decoys)
    return report


def _score(
    report: EvaluationReport,
    replay: _Replay,
    episodes: list[Episode],
    customers: set[str],
    labelled: set[str],
    grace_ms: int,
) -> None:
    delays: dict[str, list[float]] = defaultdict(list)
    for e in episodes:
        s = report.scenarios.setdefault(e.scenario, ScenarioReport())
        s.episodes += 1
        # A population-level episode (no customer) is detected by a drift event, a customer's by an alert.
        found = replay.drift_times if not e.customer_id else [t for _, t in replay.hits.get(e.customer_id, ())]
        times = [t for t in found if e.start_ms <= t <= e.end_ms + grace_ms]
        if times:
            s.detected += 1
            delays[e.scenario].append((min(times) - e.start_ms) / _MINUTE_MS)
    for name, s in report.scenarios.items():
        s.recall = s.detected / s.episodes if s.episodes else 0.0
        s.median_delay_minutes = round(statistics.median(delays[name]), 2) if delays[name] else None
        s.recall = round(s.recall, 4)
    normal = customers - labelled
    report.customers, report.labelled_customers, report.normal_customers = len(customers), len(labelled), len(normal)
    attention = {c for c, rank in replay.max_tier.items() if rank >= _ATTENTION}
    report.alerted_attention = len(attention)
    report.precision_attention = _share(len(attention & labelled), len(attention))
    for tier in TIERS:
        at_tier = {c for c, rank in replay.max_tier.items() if rank == TIER_ORDER[tier]}
        report.precision_by_tier[tier] = _share(len(at_tier & labelled), len(at_tier))
    warning = {c for c, rank in replay.max_tier.items() if rank == TIER_ORDER["warning"]}
    report.normal_attention_share = _share(len(attention & normal), len(normal)) or 0.0
    report.normal_warning_share = _share(len(warning & normal), len(normal)) or 0.0
    report.alerts = dict(sorted(replay.alerts.items()))
    report.limit_actions = dict(sorted(replay.actions.items()))
    drivers: Counter[str] = Counter()
    for customer in attention & normal:
        drivers[replay.drivers[customer].most_common(1)[0][0]] += 1
    report.normal_alert_drivers = dict(drivers.most_common())
    report.engine_seconds = round(replay.seconds, 3)
    report.engine_events_per_s = round(replay.events / replay.seconds, 1) if replay.seconds else 0.0


def _score_rings(report: RingReport, replay: _Replay, episodes: list[Episode], decoys: set[str]) -> None:
    rings: dict[str, tuple[frozenset[str], int]] = {}
    for e in episodes:
        if e.scenario == "fraud_ring" and e.details.get("members"):
            group = str(e.details.get("group_id") or e.episode_id)
            start = int(e.details.get("group_start_ms", e.start_ms))
            rings[group] = (frozenset(str(m) for m in e.details["members"]), start)
    alerted: set[str] = set()
    attention: set[str] = set()
    delays: list[float] = []
    found = 0
    for members, start in rings.values():
        hits = [a for a in replay.ring_alerts if a.ring and 2 * len(members & set(a.ring.members)) >= len(members)]
        if hits:
            found += 1
            delays.append((min(int(a.last_seen.timestamp() * 1000) for a in hits) - start) / _MINUTE_MS)
    for alert in replay.ring_alerts:
        if alert.ring is not None:
            alerted |= set(alert.ring.members)
            if TIER_ORDER[alert.tier] >= _ATTENTION:
                attention |= set(alert.ring.members)
    truth = frozenset().union(*(m for m, _ in rings.values())) if rings else frozenset()
    report.rings, report.found = len(rings), found
    report.ring_recall = round(found / len(rings), 4) if rings else 0.0
    report.median_delay_minutes = round(statistics.median(delays), 2) if delays else None
    report.members, report.predicted_members = len(truth), len(alerted)
    true_positive = len(alerted & truth)
    report.member_precision = _share(true_positive, len(alerted))
    report.member_recall = round(true_positive / len(truth), 4) if truth else 0.0
    p, r = report.member_precision or 0.0, report.member_recall
    report.member_f1 = round(2 * p * r / (p + r), 4) if p + r else 0.0
    report.decoy_customers, report.decoys_alerted = len(decoys), len(attention & decoys)
    report.ring_alerts = len(replay.ring_alerts)
    report.links = replay.network.links


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def render(report: EvaluationReport) -> str:
    """A plain-text summary for the terminal."""
    lines = [
        f"{report.events:,} events ({report.malformed:,} malformed skipped), {report.customers:,} customers "
        f"({report.labelled_customers:,} labelled, {report.normal_customers:,} normal)",
        "",
        f"{'scenario':<28}{'episodes':>9}{'detected':>9}{'recall':>8}{'median delay min':>18}",
    ]
    for name, s in sorted(report.scenarios.items()):
        delay = "-" if s.median_delay_minutes is None else f"{s.median_delay_minutes:.1f}"
        lines.append(f"{name:<28}{s.episodes:>9}{s.detected:>9}{s.recall:>8.3f}{delay:>18}")
    tiers = ", ".join(f"{t} {_fmt(p)}" for t, p in report.precision_by_tier.items())
    lines += [
        "",
        f"precision ≥ attention: {_fmt(report.precision_attention)} of {report.alerted_attention:,} customers; "
        f"by highest tier: {tiers}",
        f"normal customers ≥ attention: {report.normal_attention_share:.3%}, at warning: "
        f"{report.normal_warning_share:.3%}; drivers: {report.normal_alert_drivers}",
        f"alerts: {report.alerts}",
        f"limit actions: {report.limit_actions}",
        f"engine: {report.engine_events_per_s:,.0f} events/s ({report.engine_seconds:.1f} s, "
        f"batch {report.batch_size or 1}, {report.partitions} model set(s))",
    ]
    return "\n".join(lines)


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"
