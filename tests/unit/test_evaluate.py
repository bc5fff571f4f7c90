"""loanwatch evaluate: metrics on hand-made and simulated labelled files, against counts worked out independently."""

from __future__ import annotations

import doctest
import json
import statistics
import zlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from schemas import serde, topics
from schemas.behavior import Drawdown, LoanApplication, Login, ProfileChange
from schemas.common import to_ms
from schemas.inquiry import CreditInquiry
from streams import evaluate as evaluate_module
from streams.cli import app
from streams.evaluate import Episode, evaluate, load_episodes, write_labels
from streams.simulate.model import DECOY_SCENARIO_NAMES, SimRecord
from streams.simulate.traffic import SimConfig, Traffic

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _head(cid: str) -> dict[str, Any]:
    # Each customer on its own phone and address: shared ones would (rightly) link them into a ring.
    n = zlib.crc32(cid.encode()) % 250
    return {"customer_id": cid, "device_id": f"d_{cid}", "ip": f"10.0.{n}.1", "channel": "h5"}


def _record(event: Any, topic: str, label: str = "normal", episode: str | None = None) -> SimRecord:
    return SimRecord(
        topic, event.customer_id.encode(), serde.dumps(event), to_ms(event.ts), label, episode, event.customer_id  # type: ignore[arg-type]
    )


def _hand_made() -> list[SimRecord]:
    out: list[SimRecord] = []
    # c_burst: 6 applications 1 minute apart, a labelled burst; the burst rule reaches attention at the 5th.
    for i in range(6):
        e = LoanApplication(
            event_id=f"b{i}", ts=T0 + timedelta(minutes=i), product="cash_loan", application_id=f"a{i}",
            amount=5000, term_months=12, **_head("c_burst"),
        )
        out.append(_record(e, topics.BEHAVIOR, "multi_application_burst", "ep_b"))
    # c_lend: a labelled multi-lending episode too small to alert (2 non-bank inquiries: weighted 4).
    for i in range(2):
        q = CreditInquiry(
            event_id=f"q{i}", customer_id="c_lend", ts=T0 + timedelta(minutes=10 + i), institution_kind="non_bank",
            institution_id=f"nbfi_{i}", purpose="loan_application",
        )
        out.append(_record(q, topics.INQUIRY, "multi_lending", "ep_l"))
    # c_fp: labelled normal, but a full takeover chain: fused warning, a false positive.
    out.append(_record(ProfileChange(event_id="f1", ts=T0 + timedelta(minutes=20), field="phone", **_head("c_fp")),
                       topics.BEHAVIOR))
    out.append(_record(ProfileChange(event_id="f2", ts=T0 + timedelta(minutes=21), field="bank_card",
                                     **_head("c_fp")), topics.BEHAVIOR))
    out.append(_record(Drawdown(event_id="f3", ts=T0 + timedelta(minutes=22), product="cash_loan", loan_id="l1",
                                amount=9500, available_limit_before=10000, term_months=6, **_head("c_fp")),
                       topics.BEHAVIOR))
    # c_ok: an ordinary login.
    out.append(_record(Login(event_id="o1", ts=T0 + timedelta(minutes=30), method="sms", success=True,
                             **_head("c_ok")), topics.BEHAVIOR))
    out.append(SimRecord(topics.BEHAVIOR, b"c_ok", b"{not json", to_ms(T0) + 1, "malformed", None, "c_ok"))
    return sorted(out, key=lambda r: r.ts_ms)


def test_metrics_on_a_hand_made_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    write_labels(_hand_made(), path)
    report = evaluate(path)
    assert (report.events, report.malformed) == (12, 1)  # 6 + 2 + 3 + 1 valid
    assert (report.customers, report.labelled_customers, report.normal_customers) == (4, 2, 2)
    burst = report.scenarios["multi_application_burst"]
    assert (burst.episodes, burst.detected, burst.recall, burst.median_delay_minutes) == (1, 1, 1.0, 4.0)
    lending = report.scenarios["multi_lending"]
    assert (lending.episodes, lending.detected, lending.recall, lending.median_delay_minutes) == (1, 0, 0.0, None)
    # alerted ≥ attention: c_burst (burst attention) and c_fp (fused warning); one of them labelled
    assert report.alerted_attention == 2 and report.precision_attention == 0.5
    assert report.precision_by_tier == {"notice": None, "attention": 1.0, "warning": 0.0}
    assert report.normal_attention_share == 0.5 and report.normal_warning_share == 0.5
    assert report.normal_alert_drivers == {"behavior_sequence": 1}
    assert report.limit_actions == {"freeze": 1}


def test_batching_gives_the_same_detections(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    write_labels(_hand_made(), path)
    per_event, batched = evaluate(path), evaluate(path, batch_size=64)
    assert {k: (s.episodes, s.detected) for k, s in batched.scenarios.items()} == {
        k: (s.episodes, s.detected) for k, s in per_event.scenarios.items()
    }
    assert batched.normal_attention_share == per_event.normal_attention_share


def test_grace_period_bounds_detection(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    write_labels(_hand_made(), path)
    # the truth says the burst ended 10 minutes before the alert at +4 min: outside a grace of 0, inside 30
    (tmp_path / "labels.jsonl.episodes.json").write_bytes(serde.dumps([
        {"scenario": "multi_application_burst", "episode_id": "ep_b", "customer_id": "c_burst",
         "start_ms": to_ms(T0) - 20 * 60_000, "end_ms": to_ms(T0) - 6 * 60_000},
    ]))
    assert evaluate(path, grace_minutes=0).scenarios["multi_application_burst"].detected == 0
    assert evaluate(path, grace_minutes=30).scenarios["multi_application_burst"].detected == 1


def test_episode_sources_in_order(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    derived = {("multi_lending", "e2"): Episode("e2", "c2", "multi_lending", 5, 6)}
    assert load_episodes(path, derived) == [Episode("e2", "c2", "multi_lending", 5, 6)]
    (tmp_path / "x.jsonl.bursts.json").write_text(json.dumps(
        [{"episode_id": "e1", "customer_id": "c1", "start_ms": 1, "end_ms": 2, "applications": 5, "products": []}]
    ))
    assert [e.scenario for e in load_episodes(path, derived)] == ["multi_application_burst", "multi_lending"]
    (tmp_path / "x.jsonl.episodes.json").write_text(json.dumps(
        [{"scenario": "population_drift", "episode_id": "e3", "customer_id": None, "start_ms": 3, "end_ms": 9}]
    ))
    assert load_episodes(path, derived) == [Episode("e3", "", "population_drift", 3, 9)]


def test_simulated_bursts_against_the_labelled_records(tmp_path: Path) -> None:
    traffic = Traffic(SimConfig(customers=300, seed=3, start=T0, hours=3, burst_share=0.05))
    path = tmp_path / "sim.jsonl"
    records = list(traffic.records())
    write_labels(records, path)
    report = evaluate(path)
    # independent of the engine: every burst has 5+ applications within 25 minutes, so the burst rule reaches
    # attention (5) at its fifth application: delay = fifth minus first application time.
    apps: dict[str, list[int]] = defaultdict(list)
    for r in records:
        if r.label == "multi_application_burst":
            apps[str(r.episode_id)].append(r.ts_ms)
    delays = [(sorted(t)[4] - min(t)) / 60_000 for t in apps.values()]
    burst = report.scenarios["multi_application_burst"]
    assert burst.episodes == len(apps) == 15 and burst.detected == 15
    assert burst.median_delay_minutes == pytest.approx(statistics.median(delays), abs=0.01)
    customers = {r.customer_id for r in records if r.label != "malformed"}
    # Decoys (a busy public Wi-Fi, families) are ordinary customers: not labelled as a problem.
    labelled = {r.customer_id for r in records if r.label not in ("normal", "malformed", *DECOY_SCENARIO_NAMES)}
    assert (report.customers, report.labelled_customers) == (len(customers), len(labelled))
    assert report.normal_customers == len(customers - labelled)


def test_cli_prints_json(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    write_labels(_hand_made(), path)
    result = CliRunner().invoke(app, ["evaluate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["scenarios"]["multi_application_burst"]["recall"] == 1.0 and data["normal_customers"] == 2
    text = CliRunner().invoke(app, ["evaluate", str(path)])
    assert text.exit_code == 0 and "multi_lending" in text.stdout


def test_module_doctests() -> None:
    assert doctest.testmod(evaluate_module).failed == 0
