"""Generate the AsyncAPI 3.0 document of every public topic (``docs/asyncapi.yaml``) from the contract models.

Usage::

    python -m schemas.asyncapi_gen           # (re)write docs/asyncapi.yaml
    python -m schemas.asyncapi_gen --check   # exit 1 when the committed file differs from the models

Channels are the public topics under their contract names, with the key, partitioning, compaction and retention
that ``loanwatch init`` creates (``streams.admin.topic_specs`` with the default settings, so the document says
what the code does). Operations are seen from loanwatch: ``receive`` for the input, rule and allow-list topics,
``send`` for the rest. Payloads are the models' JSON Schemas (inputs in validation mode, outputs in
serialization mode, as in ``schemas/json/``), rewritten into AsyncAPI's schema dialect (JSON Schema draft 7):
definitions live under ``components/schemas``, tuples use ``items`` arrays, and a discriminator is the name of
its property.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import TypeAdapter

from detectors.engine import EngineConfig
from schemas import topics
from schemas.allowlist import AllowListEntry
from schemas.decode import BEHAVIOR_ADAPTER, INQUIRY_ADAPTER, REPAYMENT_ADAPTER
from schemas.entities import EntityLink, RingSnapshot
from schemas.outputs import Alert, DeadLetter, LimitAction, ProfileSnapshot

__all__ = ["ASYNCAPI_PATH", "CHANNELS", "Channel", "check", "generate", "main", "render"]

ASYNCAPI_PATH: Final = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
_REF_PREFIX: Final = "#/components/schemas/"
_WEEK_MS: Final = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Channel:
    """One public topic: its settings field, contract, message name, key and what flows on it."""

    field: str
    address: str
    message: str
    contract: TypeAdapter[Any]
    mode: Literal["validation", "serialization"]
    key: str
    summary: str


def _adapter(contract: Any) -> TypeAdapter[Any]:
    return contract if isinstance(contract, TypeAdapter) else TypeAdapter(contract)


def _in(field: str, address: str, message: str, contract: Any, key: str, summary: str) -> Channel:
    return Channel(field, address, message, _adapter(contract), "validation", key, summary)


def _out(field: str, address: str, message: str, contract: Any, key: str, summary: str) -> Channel:
    return Channel(field, address, message, _adapter(contract), "serialization", key, summary)


_CUSTOMER_KEY: Final = "customer_id (UTF-8); the default murmur2 partitioner puts a customer in one partition"
#: Every public topic, by its field in ``streams.settings.TopicNames``.
CHANNELS: Final[tuple[Channel, ...]] = (
    _in("behavior", topics.BEHAVIOR, "BehaviorEvent", BEHAVIOR_ADAPTER, _CUSTOMER_KEY,
        "What borrowers do in the lending app, one event per message, selected by event_type."),
    _in("repayment", topics.REPAYMENT, "RepaymentEvent", REPAYMENT_ADAPTER, _CUSTOMER_KEY,
        "Installments falling due, payments, missed payments, days past due, payoffs."),
    _in("inquiry", topics.INQUIRY, "InquiryEvent", INQUIRY_ADAPTER, _CUSTOMER_KEY,
        "External credit inquiries by banks and non-bank lenders (multi-lending)."),
    _in("rules", topics.RULES, "RuleSet", EngineConfig,
        "the literal `rules`: the latest record is the rule set in force",
        "The whole engine configuration, pushed by `loanwatch rules push`; every worker reads all of it."),
    _in("allowlist", topics.ALLOWLIST, "AllowListEntry", AllowListEntry,
        "`kind:value`, e.g. `customer:c_000123`; a record without a value (tombstone) removes the entry",
        "Customers and entities that must never alert, pushed by `loanwatch allowlist`."),
    _out("alerts", topics.ALERTS, "Alert", Alert, _CUSTOMER_KEY,
         "One alert per (customer, rule, tier, episode); `alert_id` is deterministic: dedupe on it."),
    _out("limit_actions", topics.LIMIT_ACTIONS, "LimitAction", LimitAction, _CUSTOMER_KEY,
         "Recommended freeze / reduce_limit / review / restore with the grade behind it; a replay re-sends the same "
         "`action_id`: apply each id once."),
    _out("profiles", topics.PROFILES, "ProfileSnapshot", ProfileSnapshot, _CUSTOMER_KEY,
         "A customer's features, score, tier and grade every 30 minutes of event time and on every tier change."),
    _out("deadletter", topics.DEADLETTER, "DeadLetter", DeadLetter,
         "dead_letter_id: deterministic from the source topic, partition and offset",
         "Input that could not be processed, with its original bytes (base64), where it came from and why."),
    _out("links", topics.LINKS, "EntityLink", EntityLink,
         "link_id: deterministic from the two customers and the entity",
         "Two customers used the same device, IP, network, bank card, phone or address book within the entity's "
         "link horizon; re-sent with `refresh` while it lasts."),
    _out("rings", topics.RINGS, "RingSnapshot", RingSnapshot, "ring_id: stable while the ring lasts",
         "A fraud ring (connected group of linked customers) each time it changes; `dissolved` when it ends."),
)


def _topic_configs() -> dict[str, tuple[int, dict[str, str]]]:
    # Imported here: the contracts do not depend on streams; only this generator reads what `init` creates.
    from streams.admin import topic_specs
    from streams.settings import Settings

    return {spec.name: (spec.partitions, spec.config) for spec in topic_specs(Settings.model_construct())}


def _draft7(node: Any) -> Any:
    """Pydantic's JSON Schema (2020-12, refs into ``$defs``) rewritten for AsyncAPI's draft-7-based dialect."""
    if isinstance(node, list):
        return [_draft7(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft7(value) for key, value in node.items()}
    if "prefixItems" in out:
        additional = out.pop("items", None)
        out["items"] = out.pop("prefixItems")
        if additional is not None:
            out["additionalItems"] = additional
    discriminator = out.get("discriminator")
    if isinstance(discriminator, dict):
        out["discriminator"] = discriminator["propertyName"]
    return out


def _retention(config: dict[str, str]) -> str:
    if config.get("cleanup.policy") == "compact":
        return "compacted: the latest record per key is kept"
    weeks = int(config.get("retention.ms", "0")) // _WEEK_MS
    return f"kept {weeks} weeks"


def generate() -> dict[str, Any]:
    """The AsyncAPI document as plain data."""
    keyed, definitions = TypeAdapter.json_schemas(
        [(c.message, c.mode, c.contract) for c in CHANNELS], ref_template=_REF_PREFIX + "{model}"
    )
    schemas: dict[str, Any] = {name: _draft7(body) for name, body in sorted(definitions.get("$defs", {}).items())}
    configs = _topic_configs()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for c in CHANNELS:
        payload = _draft7(keyed[(c.message, c.mode)])
        if "$ref" not in payload:  # a union: give it a name of its own
            schemas[c.message] = payload
            payload = {"$ref": _REF_PREFIX + c.message}
        partitions, config = configs[c.address]
        parts = "one partition" if partitions == 1 else f"{partitions} partitions by default (LOANWATCH_PARTITIONS)"
        messages[c.message] = {
            "name": c.message,
            "title": c.message,
            "summary": c.summary,
            "contentType": "application/json",
            "payload": payload,
            "bindings": {"kafka": {"key": {"type": "string", "description": c.key}, "bindingVersion": "0.5.0"}},
        }
        channels[c.field] = {
            "address": c.address,
            "title": c.address,
            "description": f"{c.summary} Key: {c.key}. {parts[0].upper()}{parts[1:]}; {_retention(config)}.",
            "messages": {c.message: {"$ref": f"#/components/messages/{c.message}"}},
            "bindings": {
                "kafka": {
                    "topic": c.address,
                    "partitions": partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [config["cleanup.policy"]],
                        **({"retention.ms": int(config["retention.ms"])} if "retention.ms" in config else {}),
                        **({"max.message.bytes": int(config["max.message.bytes"])}
                           if "max.message.bytes" in config else {}),
                    },
                    "bindingVersion": "0.5.0",
                }
            },
        }
        action = "receive" if c.mode == "validation" else "send"
        operations[f"{action}_{c.field}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{c.field}"},
            "summary": f"loanwatch {'reads' if action == 'receive' else 'publishes'} {c.address}.",
            "messages": [{"$ref": f"#/channels/{c.field}/messages/{c.message}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "loanwatch",
            "version": "1.0.0",
            "description": (
                "Real-time in-loan behaviour monitoring: the Kafka topics loanwatch reads and publishes. Every "
                "message is one JSON object (UTF-8); times are UTC ISO-8601 with milliseconds (inputs may also use "
                "epoch milliseconds). Delivery is at least once: dedupe on the ids named in each message. A breaking "
                "change gets a new topic version (.v2). Generated by `python -m schemas.asyncapi_gen` from the "
                "models in schemas/."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The single-node broker of `loanwatch broker` / `loanwatch demo` (its port may vary).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }


def render(document: dict[str, Any]) -> str:
    """The committed text: YAML in document order, Unicode kept, long lines left whole."""
    header = "# Generated by `python -m schemas.asyncapi_gen` from the contract models; do not edit by hand.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)


def check(path: Path = ASYNCAPI_PATH) -> list[str]:
    """Problems of the committed document: missing, or different from what the models generate."""
    if not path.exists():
        return [f"{path}: missing"]
    if path.read_text(encoding="utf-8") != render(generate()):
        return [f"{path}: differs from the models"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m schemas.asyncapi_gen", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file drifted")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `python -m schemas.asyncapi_gen` and commit docs/asyncapi.yaml", file=sys.stderr)
            return 1
        print(f"{ASYNCAPI_PATH.name} up to date")
        return 0
    ASYNCAPI_PATH.write_text(render(generate()), encoding="utf-8")
    print(f"wrote {ASYNCAPI_PATH} ({len(CHANNELS)} channels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
