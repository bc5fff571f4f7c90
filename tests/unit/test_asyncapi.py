"""docs/asyncapi.yaml: generated from the models, complete, internally consistent, and its payloads validate data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from schemas.asyncapi_gen import ASYNCAPI_PATH, CHANNELS, check, generate, main, render
from schemas.entities import EntityLink, RingSnapshot
from schemas.outputs import EntityRef
from streams.admin import topic_specs
from streams.settings import Settings, TopicNames

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
#: Example file (or its prefix before the first dot) → the message whose payload it is.
EXAMPLE_MESSAGES = {
    "behavior": "BehaviorEvent", "repayment": "RepaymentEvent", "inquiry": "InquiryEvent", "rule_set": "RuleSet",
    "allowlist_entry": "AllowListEntry", "alert": "Alert", "limit_action": "LimitAction",
    "profile_snapshot": "ProfileSnapshot", "dead_letter": "DeadLetter",
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only local references are used"
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in refs(item)]
    return []


def payload_validator(doc: dict[str, Any], message: str) -> Draft7Validator:
    payload = doc["components"]["messages"][message]["payload"]
    # The whole document as the root, so the payload's references into components resolve.
    return Draft7Validator({**doc, "$ref": payload["$ref"]}, format_checker=Draft7Validator.FORMAT_CHECKER)


def test_committed_document_matches_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert check() == [], "run `python -m schemas.asyncapi_gen` and commit docs/asyncapi.yaml"
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_notices_a_drifted_file(tmp_path: Path) -> None:
    drifted = tmp_path / "asyncapi.yaml"
    drifted.write_text(render(generate()).replace("risk.alerts.v1", "risk.alerts.v0"), encoding="utf-8")
    assert check(drifted) == [f"{drifted}: differs from the models"]
    assert check(tmp_path / "missing.yaml") == [f"{tmp_path / 'missing.yaml'}: missing"]


def test_every_public_topic_is_a_channel(doc: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == set(TopicNames().model_dump().values())
    assert set(doc["channels"]) == set(TopicNames.model_fields)


def test_every_channel_has_a_message_with_a_schema(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    for name, channel in doc["channels"].items():
        assert channel["messages"], name
        for ref in channel["messages"].values():
            message = resolve(doc, ref["$ref"])
            schema = resolve(doc, message["payload"]["$ref"])
            assert schema.get("properties") or schema.get("oneOf"), f"{name}: empty payload schema"
            assert message["bindings"]["kafka"]["key"]["description"], f"{name}: key not described"


def test_every_reference_resolves_and_the_dialect_is_draft_7(doc: dict[str, Any]) -> None:
    all_refs = refs(doc)
    assert len(all_refs) >= 4 * len(doc["channels"])  # channel → message → payload; operation → channel, message
    for ref in all_refs:
        resolve(doc, ref)
    text = ASYNCAPI_PATH.read_text(encoding="utf-8")
    assert "$defs" not in text and "prefixItems" not in text
    schemas = doc["components"]["schemas"]
    assert all(isinstance(s.get("discriminator", ""), str) for s in schemas.values())
    Draft7Validator.check_schema({"definitions": schemas})


def test_operations_point_at_their_channels_messages(doc: dict[str, Any]) -> None:
    inputs = {"behavior", "repayment", "inquiry", "rules", "allowlist"}
    assert len(doc["operations"]) == len(doc["channels"])
    for name, operation in doc["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        channel = channel_ref.rsplit("/", 1)[1]
        assert operation["action"] == ("receive" if channel in inputs else "send"), name
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
            resolve(doc, message["$ref"])


def test_partitions_and_compaction_are_what_init_creates(doc: dict[str, Any]) -> None:
    specs = {spec.name: spec for spec in topic_specs(Settings.model_construct())}
    for channel in doc["channels"].values():
        kafka = channel["bindings"]["kafka"]
        spec = specs[channel["address"]]
        assert kafka["partitions"] == spec.partitions
        assert kafka["topicConfiguration"]["cleanup.policy"] == [spec.config["cleanup.policy"]]
    compacted = {c["address"] for c in doc["channels"].values() if "compacted" in c["description"]}
    assert compacted == {TopicNames().rules, TopicNames().allowlist}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_examples_validate_against_their_channel_payload(doc: dict[str, Any], path: Path) -> None:
    message = EXAMPLE_MESSAGES.get(path.name.split(".")[0])
    if message is None:
        assert path.name in {"customer_view.json", "api_error.json"}  # HTTP answers, not topic messages
        return
    payload_validator(doc, message).validate(json.loads(path.read_text(encoding="utf-8")))


def test_link_and_ring_messages_validate_and_bad_ones_do_not(doc: dict[str, Any]) -> None:
    t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    device = EntityRef(kind="device", value="d_farm_01")
    link = EntityLink(customer_a="c_1", customer_b="c_2", entity=device, first_seen=t, last_seen=t)
    ring = RingSnapshot(ring_id="ab" * 8, ts=t, first_seen=t, size=3, score=0.5, tier="notice",
                        members=["c_1", "c_2", "c_3"], entities=[device], links=2)
    payload_validator(doc, "EntityLink").validate(link.model_dump(mode="json"))
    payload_validator(doc, "RingSnapshot").validate(ring.model_dump(mode="json"))
    behavior = payload_validator(doc, "BehaviorEvent")
    good = json.loads((EXAMPLES / "behavior.login.json").read_text(encoding="utf-8"))
    assert not list(behavior.iter_errors(good))
    assert list(behavior.iter_errors({k: v for k, v in good.items() if k != "customer_id"}))
    assert list(behavior.iter_errors({**good, "event_type": "teleport"}))


def test_channel_table_names_each_topic_once() -> None:
    assert len({c.address for c in CHANNELS}) == len({c.field for c in CHANNELS}) == len(CHANNELS)
