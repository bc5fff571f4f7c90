"""Kafka topic names of the versioned contracts. A breaking change gets a new ``.v2`` topic, never an edit."""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERTS",
    "ALLOWLIST",
    "BEHAVIOR",
    "DEADLETTER",
    "INQUIRY",
    "LINKS",
    "LIMIT_ACTIONS",
    "PROFILES",
    "REPAYMENT",
    "RINGS",
    "RULES",
]

BEHAVIOR: Final = "loan.behavior.v1"
"""App behaviour events (:data:`schemas.behavior.BehaviorEvent`), keyed by customer_id."""
REPAYMENT: Final = "loan.repayment.v1"
"""Repayment events (:data:`schemas.repayment.RepaymentEvent`), keyed by customer_id."""
INQUIRY: Final = "loan.inquiry.v1"
"""External credit inquiries (:data:`schemas.inquiry.InquiryEvent`), keyed by customer_id."""
RULES: Final = "risk.rules.v1"
"""The rule set (:class:`detectors.engine.EngineConfig`), compacted, key ``rules``."""
ALLOWLIST: Final = "risk.allowlist.v1"
"""Allow-listed customers and entities (:class:`schemas.allowlist.AllowListEntry`), compacted."""
ALERTS: Final = "risk.alerts.v1"
"""Tiered alerts (:class:`schemas.outputs.Alert`), keyed by customer_id."""
LIMIT_ACTIONS: Final = "risk.limit-actions.v1"
"""Limit actions (:class:`schemas.outputs.LimitAction`), keyed by customer_id."""
PROFILES: Final = "risk.profiles.v1"
"""Profile snapshots (:class:`schemas.outputs.ProfileSnapshot`), keyed by customer_id."""
DEADLETTER: Final = "risk.deadletter.v1"
"""Messages that could not be processed (:class:`schemas.outputs.DeadLetter`), keyed by dead_letter_id."""
LINKS: Final = "risk.links.v1"
"""Links between customers through a shared entity (:class:`schemas.entities.EntityLink`), keyed by link_id."""
RINGS: Final = "risk.rings.v1"
"""Fraud-ring snapshots (:class:`schemas.entities.RingSnapshot`), keyed by ring_id."""
