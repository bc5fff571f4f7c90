"""Rules as data: allow-list entries, the engine's allow-list semantics, the live config a worker applies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from detectors.engine import CustomerState, Engine, EngineConfig
from schemas import serde
from schemas.allowlist import AllowListEntry, allowlist_key
from schemas.behavior import Drawdown, LoanApplication, ProfileChange
from schemas.common import to_ms
from schemas.outputs import Alert
from streams.config_feed import RULES_KEY, ConfigFeed, LiveConfig
from streams.rules_file import RulesFileError, load_allowlist, rules_from_record
from streams.settings import Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HEAD = {"customer_id": "c_1", "device_id": "d_1", "ip": "10.0.0.1", "channel": "h5"}


def apply(eid: str, minute: float) -> LoanApplication:
    return LoanApplication(
        event_id=eid, ts=T0 + timedelta(minutes=minute), product="cash_loan", application_id=f"a_{eid}",
        amount=5000, term_months=12, **HEAD,
    )


def takeover(offset: float = 0) -> list[ProfileChange | Drawdown]:
    """Phone change, bank-card change, then a drawdown of 90 % of the limit: the takeover chain, a warning."""
    def t(m: float) -> datetime:
        return T0 + timedelta(minutes=offset + m)

    return [
        ProfileChange(event_id=f"p{offset}", ts=t(0), field="phone", new_value_hash="h1", **HEAD),
        ProfileChange(event_id=f"b{offset}", ts=t(5), field="bank_card", new_value_hash="h2", **HEAD),
        Drawdown(event_id=f"d{offset}", ts=t(9), product="cash_loan", loan_id="l1", amount=9000,
                 available_limit_before=10000, term_months=6, **HEAD),
    ]


def entry(**overrides: object) -> AllowListEntry:
    data: dict[str, object] = {"kind": "customer", "value": "c_1", "reason": "staff test account", "added_by": "ops"}
    return AllowListEntry.model_validate(data | overrides)


# --- the allow-list contract ---


def test_entry_needs_a_reason_and_an_owner_and_refuses_raw_phone_numbers() -> None:
    with pytest.raises(ValidationError) as exc:
        AllowListEntry.model_validate({"kind": "customer", "value": "c_1"})
    assert {e["loc"][0] for e in exc.value.errors()} == {"reason", "added_by"}
    with pytest.raises(ValidationError):
        entry(kind="phone", value="13812345678")
    with pytest.raises(ValidationError, match="kind"):
        entry(kind="household")


def test_ip_entries_are_canonical_like_the_events_they_match() -> None:
    assert entry(kind="ip", value="2001:DB8:0:0::1").value == "2001:db8::1"
    with pytest.raises(ValidationError, match="not a valid IPv4 or IPv6"):
        entry(kind="ip", value="10.0.0.999")


def test_expiry_is_judged_in_event_time() -> None:
    until = T0 + timedelta(days=1)
    e = entry(expires_at=until)
    assert e.active_at(to_ms(until) - 1) and not e.active_at(to_ms(until))
    assert entry().active_at(to_ms(until) * 10)


def test_allowlist_key_refuses_unknown_kinds() -> None:
    assert allowlist_key("device", "d_9") == "device:d_9"
    with pytest.raises(ValueError, match="unknown allow-list kind"):
        allowlist_key("household", "x")


# --- the engine with an allow-listed customer ---


def test_allowlisted_customer_raises_nothing_but_its_profile_still_counts() -> None:
    engine = Engine()
    state = CustomerState.empty("c_1")
    outputs = []
    for i in range(10):
        step = engine.process(state, apply(f"a{i}", i), allowlisted=True)
        outputs += [*step.alerts, *step.actions]
        state = step.state
    for event in takeover(20):
        step = engine.process(state, event, allowlisted=True)
        outputs += [*step.alerts, *step.actions]
        state = step.state
    assert outputs == []
    assert len(state.burst.applications) == 10 and state.burst.episode_tier is None
    assert state.decision.episode_tier is None
    assert step.snapshot is not None or state.last_snapshot_ms is not None


def test_the_same_events_alert_without_the_allowlist_and_after_removal() -> None:
    engine = Engine()
    free = CustomerState.empty("c_1")
    listed = CustomerState.empty("c_1")
    free_alerts: list[Alert] = []
    for i in range(10):
        step = engine.process(free, apply(f"a{i}", i))
        free, free_alerts = step.state, free_alerts + list(step.alerts)
        listed = engine.process(listed, apply(f"a{i}", i), allowlisted=True).state
    assert {a.tier for a in free_alerts} == {"notice", "attention", "warning"}
    # Removed from the list: the next application is judged afresh, with the whole window counted.
    after = engine.process(listed, apply("a10", 10))
    assert [a.tier for a in after.alerts] == ["warning"]
    assert after.alerts[0].evidence_event_ids[-1] == "a10"


def test_fused_alerts_record_the_rule_set_version_and_burst_alerts_their_rule_version() -> None:
    config = EngineConfig.model_validate({"version": 7, "burst": {"version": 3}})
    engine = Engine(config)
    state = CustomerState.empty("c_1")
    alerts: list[Alert] = []
    for event in [*[apply(f"a{i}", i) for i in range(3)], *takeover(5)]:
        step = engine.process(state, event)
        state, alerts = step.state, alerts + list(step.alerts)
    versions = {(a.rule_id, a.rule_version) for a in alerts}
    assert ("multi_application_burst", 3) in versions and ("fused_risk", 7) in versions


# --- the live config a worker applies ---


def test_live_config_applies_the_latest_valid_rule_set_and_keeps_it_on_a_bad_one() -> None:
    live = LiveConfig(fallback=EngineConfig(version=1))
    assert live.current.version == 1
    live.apply_rules(RULES_KEY, serde.dumps(EngineConfig(version=4).model_dump(mode="json")), "t[0]@0")
    assert live.current.version == 4
    live.apply_rules(RULES_KEY, b'{"version": 5, "burst": {"window_minutes": 0}}', "t[0]@1")
    live.apply_rules(RULES_KEY, b"not json", "t[0]@2")
    live.apply_rules(b"other", serde.dumps(EngineConfig(version=9).model_dump(mode="json")), "t[0]@3")
    assert live.current.version == 4 and live.rejected == 2
    live.apply_rules(RULES_KEY, None, "t[0]@4")  # tombstone: back to the fallback
    assert live.current.version == 1


def test_live_allowlist_adds_replaces_expires_and_removes() -> None:
    live = LiveConfig(fallback=EngineConfig())
    key = b"customer:c_1"
    live.apply_allowlist(key, serde.dumps(entry()), "a[0]@0")
    assert live.customer_allowlisted("c_1", to_ms(T0)) and not live.customer_allowlisted("c_2", to_ms(T0))
    live.apply_allowlist(key, serde.dumps(entry(expires_at=T0)), "a[0]@1")
    assert not live.customer_allowlisted("c_1", to_ms(T0))
    live.apply_allowlist(b"customer:c_2", serde.dumps(entry()), "a[0]@2")  # key names another customer
    live.apply_allowlist(b"customer:c_3", b"{}", "a[0]@3")
    assert live.rejected == 2 and set(live.allowlist) == {"customer:c_1"}
    live.apply_allowlist(key, None, "a[0]@4")
    assert live.allowlist == {}


def test_config_feed_rebuilds_the_engine_only_when_the_rule_set_changes() -> None:
    feed = ConfigFeed(Settings(kafka_bootstrap="127.0.0.1:1"), EngineConfig(version=1))
    first = feed.engine()
    assert feed.engine() is first
    feed.live.apply_rules(RULES_KEY, serde.dumps(EngineConfig(version=2).model_dump(mode="json")), "t[0]@0")
    assert feed.engine() is not first and feed.engine().config.version == 2


# --- files ---


def test_rules_record_errors_name_the_source_and_field() -> None:
    with pytest.raises(RulesFileError, match=r"rules\[0\]@5: burst.thresholds.warning: warning \(4\)"):
        rules_from_record(b'{"burst": {"thresholds": {"notice": 2, "attention": 6, "warning": 4}}}', "rules[0]@5")


def test_allowlist_file(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text(
        "entries:\n"
        "  - {kind: customer, value: c_1, reason: staff test account, added_by: ops}\n"
        "  - {kind: ip, value: '10.1.2.3', reason: head office NAT, added_by: ops,\n"
        "     expires_at: '2027-01-01T00:00:00Z'}\n"
    )
    assert [e.kind for e in load_allowlist(path)] == ["customer", "ip"]
    path.write_text("- {kind: customer, value: c_1, reason: x, added_by: ops}\n")
    with pytest.raises(RulesFileError, match="entry 1: reason: String should have at least 3 characters"):
        load_allowlist(path)
    path.write_text("- {kind: customer, value: c_1, reason: one, added_by: ops}\n" * 2)
    with pytest.raises(RulesFileError, match="listed twice: customer:c_1"):
        load_allowlist(path)


def test_every_yaml_example_in_the_readme_validates() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        data = yaml.safe_load(block)
        if isinstance(data, list):
            assert all(AllowListEntry.model_validate(item) for item in data)
        else:
            EngineConfig.model_validate(data)


def test_rules_check_command_accepts_a_good_file_and_names_the_field_of_a_bad_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from streams.cli import app

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("version: 3\nburst: {thresholds: {notice: 4}}\n")
    bad.write_text("version: 3\nburst: {thresholds: {notice: 9}}\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["rules", "check", str(good)])
    assert ok.exit_code == 0 and "valid rule set, version 3" in " ".join(ok.output.split())  # rich wraps lines
    refused = runner.invoke(app, ["rules", "check", str(bad)])
    assert refused.exit_code == 2
    message = "".join(refused.output.split())
    assert "burst.thresholds.attention:attention(5)mustbegreaterthannotice(9)" in message
