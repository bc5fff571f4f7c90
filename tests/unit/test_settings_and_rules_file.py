"""Bad configuration is rejected before anything starts, naming the field and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.rules_file import RulesFileError, load_rules
from streams.settings import Settings


def test_env_builds_settings_with_nested_topic_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOANWATCH_KAFKA_BOOTSTRAP", "k1:9092, k2:9093")
    monkeypatch.setenv("LOANWATCH_TOPICS__ALERTS", "custom.alerts")
    monkeypatch.setenv("LOANWATCH_PARTITIONS", "8")
    settings = Settings()
    assert settings.kafka_bootstrap == "k1:9092,k2:9093"
    assert settings.topics.alerts == "custom.alerts"
    assert settings.topics.behavior == "loan.behavior.v1"
    assert settings.partitions == 8


def test_to_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        kafka_bootstrap="k:1", clickhouse_url="clickhouse://u:secret@h:9000/db", partitions=6, home=Path("/x")
    )
    for name, value in original.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kafka_bootstrap", "localhost", "is not host:port"),
        ("partitions", 0, "greater than or equal to 1"),
        ("clickhouse_url", "http://h:8123", "clickhouse://"),
        ("clickhouse_database", "bad-name;drop", "pattern"),
    ],
)
def test_bad_values_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**{field: value})  # type: ignore[arg-type]
    error = info.value.errors()[0]
    assert error["loc"][0] == field
    assert message in str(info.value)


def test_sasl_needs_credentials() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username, kafka_sasl_password"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512")


def test_secret_is_not_in_repr() -> None:
    settings = Settings(clickhouse_url="clickhouse://u:hunter2@h:9000/db")
    assert "hunter2" not in repr(settings)


def test_rules_file_defaults_and_valid_file(tmp_path: Path) -> None:
    assert load_rules(None).burst.thresholds.warning == 8
    path = tmp_path / "rules.yaml"
    path.write_text("version: 2\nburst:\n  version: 4\n  thresholds: {notice: 2, attention: 4, warning: 6}\n")
    rules = load_rules(path)
    assert (rules.version, rules.burst.version, rules.burst.thresholds.notice) == (2, 4, 2)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("burst:\n  thresholds: {notice: 5, attention: 4, warning: 9}\n", "burst.thresholds.attention"),
        ("burst:\n  window_minutes: 0\n", "burst.window_minutes"),
        ("burst:\n  colour: red\n", "burst.colour"),
        ("burst: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_rules_file_names_field_and_reason(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesFileError, match=r"rules\.yaml") as info:
        load_rules(path)
    assert fragment in str(info.value)


def test_cli_refuses_bad_config_before_starting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "init"],
        env={"LOANWATCH_PARTITIONS": "zero", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LOANWATCH_PARTITIONS" in result.stderr
    assert "integer" in result.stderr


def test_threshold_order_is_checked_against_defaults_too() -> None:
    from schemas.rules import TierThresholds

    with pytest.raises(ValidationError, match="attention"):
        TierThresholds(notice=6)  # default attention is 5
    with pytest.raises(ValidationError, match="warning"):
        TierThresholds(attention=9)  # default warning is 8
