"""Entity keys of behaviour events, entity configuration validation, and the doctests of detectors.entities."""

from __future__ import annotations

import doctest
import importlib
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from detectors.entities.config import EntityConfig, KindPolicy, RingConfig
from detectors.entities.keys import ENTITY_KINDS, EntityKey, entity_keys, network_of, routable
from schemas.behavior import BEHAVIOR_ADAPTER, BehaviorBase


def event(event_type: str = "login", ip: str = "203.0.113.7", **extra: Any) -> BehaviorBase:
    fields: dict[str, Any] = {
        "event_type": event_type, "event_id": "e1", "customer_id": "c_000001", "ts": 1767603600000,
        "device_id": "d_aa01", "ip": ip, "channel": "app_android",
    }
    if event_type == "login":
        fields |= {"method": "sms", "success": True}
    fields |= extra
    parsed = BEHAVIOR_ADAPTER.validate_python(fields)
    assert isinstance(parsed, BehaviorBase)
    return parsed


def test_every_event_carries_device_ip_and_network() -> None:
    assert entity_keys(event()) == (
        EntityKey("device", "d_aa01"), EntityKey("ip", "203.0.113.7"), EntityKey("net24", "203.0.113.0/24"),
    )


def test_keys_are_plain_tuples_too() -> None:
    key = entity_keys(event())[0]
    assert key == ("device", "d_aa01") and ("device", "d_aa01") in {key}
    assert str(key) == "device d_aa01"


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:0:0::1", "2001:db8::/64"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("10.1.2.3", "10.1.2.0/24"),  # private and carrier-NAT space is kept (the simulator uses it)
        ("100.64.9.9", "100.64.9.0/24"),
    ],
)
def test_networks(ip: str, network: str) -> None:
    assert network_of(ip) == network
    keys = entity_keys(event(ip=ip))
    assert keys[2] == ("net24", network)


def test_ipv4_mapped_address_is_keyed_as_ipv4() -> None:
    assert entity_keys(event(ip="::ffff:198.51.100.9"))[1] == ("ip", "198.51.100.9")


@pytest.mark.parametrize("ip", ["127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "169.254.1.1", "224.0.0.1"])  # noqa: S104
def test_meaningless_addresses_carry_no_ip_or_network(ip: str) -> None:
    assert not routable(ip)
    assert entity_keys(event(ip=ip)) == (EntityKey("device", "d_aa01"),)


def test_not_an_address() -> None:
    assert network_of("nonsense") is None and not routable("")


@pytest.mark.parametrize("field", ["phone", "bank_card"])
def test_profile_change_of_phone_or_card_carries_the_new_hash(field: str) -> None:
    keys = entity_keys(event("profile_change", field=field, new_value_hash="h_77aa"))
    assert keys[-1] == (field, "h_77aa") and len(keys) == 4


@pytest.mark.parametrize(("field", "value"), [("address", "h_1"), ("device", "h_2"), ("phone", None)])
def test_other_profile_changes_carry_no_extra_key(field: str, value: str | None) -> None:
    assert len(entity_keys(event("profile_change", field=field, new_value_hash=value))) == 3


def test_order_and_kinds_are_fixed() -> None:
    keys = entity_keys(event("profile_change", field="bank_card", new_value_hash="h_1"))
    assert [k.kind for k in keys] == ["device", "ip", "net24", "bank_card"]
    assert set(ENTITY_KINDS) == {"device", "ip", "net24", "bank_card", "phone", "contact_list"}


# ---- configuration ----------------------------------------------------------------------------------------------


def error_of(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[str | int, ...], str]:
    [error] = exc.value.errors()
    return tuple(error["loc"]), error["msg"]


def test_entity_config_defaults() -> None:
    config = EntityConfig()
    assert config.horizons_minutes == (30, 1440, 43200) and config.capacity == 64
    assert {k: (config.policy(k).min_customers, config.policy(k).max_customers) for k in ENTITY_KINDS} == {
        "device": (2, 30), "ip": (3, 20), "net24": (5, 40), "bank_card": (2, 20), "phone": (2, 20),
        "contact_list": (2, 30),
    }
    assert config.retention_ms == 30 * 86_400_000


def test_partial_kind_override_keeps_the_other_defaults() -> None:
    config = EntityConfig.model_validate({"ip": {"min_customers": 4}})
    assert config.ip == KindPolicy(min_customers=4)  # the model's defaults, not the ip defaults
    assert config.device.max_customers == 30


@pytest.mark.parametrize(
    ("data", "loc", "msg"),
    [
        ({"device": {"max_customers": 80}}, ("device",), "max_customers (80) must not exceed capacity (64)"),
        ({"capacity": 10}, ("device",), "max_customers (30) must not exceed capacity (10)"),
        (
            {"ip": {"min_customers": 5, "max_customers": 4}},
            ("ip", "max_customers"),
            "max_customers (4) must not be below min_customers (5)",
        ),
        ({"horizons_minutes": [30, 30]}, ("horizons_minutes",), "horizons must increase: 30 follows 30"),
        (
            {"horizons_minutes": [30, 60], "phone": {"link_horizon_minutes": 90}},
            ("phone",),
            "link_horizon_minutes (90) must not exceed the longest horizon (60)",
        ),
        ({"phone": {"min_customer": 2}}, ("phone", "min_customer"), "Extra inputs are not permitted"),
        ({"refresh_minutes": 0}, ("refresh_minutes",), "Input should be greater than or equal to 1"),
    ],
)
def test_entity_config_errors_name_the_field(data: dict[str, Any], loc: tuple[str, ...], msg: str) -> None:
    with pytest.raises(ValidationError) as exc:
        EntityConfig.model_validate(data)
    # Several kinds may break the same bound (a capacity below every default ceiling): each is named.
    assert (loc, msg) in [(tuple(e["loc"]), e["msg"]) for e in exc.value.errors()]
    assert f"{'.'.join(map(str, loc))}\n  {msg}" in str(exc.value)


@pytest.mark.parametrize(
    ("data", "loc", "msg"),
    [
        (
            {"min_size": 5, "size_saturation": 4},
            ("size_saturation",),
            "size_saturation (4) must not be below min_size (5)",
        ),
        (
            {"horizon_minutes": 10, "sweep_minutes": 11},
            ("sweep_minutes",),
            "sweep_minutes (11) must not exceed horizon_minutes (10)",
        ),
        ({"kind_weights": {"device": 1.5}}, ("kind_weights", "device"), "Input should be less than or equal to 1"),
        (
            {"thresholds": {"notice": 0.5, "attention": 0.4}},
            ("thresholds", "attention"),
            "attention (0.4) must be greater than notice (0.5)",
        ),
        ({"min_sise": 3}, ("min_sise",), "Extra inputs are not permitted"),
    ],
)
def test_ring_config_errors_name_the_field(data: dict[str, Any], loc: tuple[str, ...], msg: str) -> None:
    with pytest.raises(ValidationError) as exc:
        RingConfig.model_validate(data)
    assert error_of(exc) == (loc, msg)


def test_configs_are_frozen() -> None:
    with pytest.raises(ValidationError):
        RingConfig().min_size = 4  # type: ignore[misc]
    with pytest.raises(ValidationError):
        EntityConfig().capacity = 4  # type: ignore[misc]


def undescribed(model: type[BaseModel], prefix: str = "") -> list[str]:
    missing = []
    for name, info in model.model_fields.items():
        if not info.description:
            missing.append(prefix + name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation.__module__.startswith(
            "detectors.entities"
        ):
            missing += undescribed(annotation, f"{prefix}{name}.")
    return missing


@pytest.mark.parametrize("model", [EntityConfig, RingConfig])
def test_every_field_is_described(model: type[BaseModel]) -> None:
    assert undescribed(model) == []


@pytest.mark.parametrize("module", ["keys", "config", "events", "entity_state", "ring_scoring", "ring_graph", "rings"])
def test_module_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"detectors.entities.{module}"))
    assert result.failed == 0 and result.attempted > 0
