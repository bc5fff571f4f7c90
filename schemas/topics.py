"""Kafka topic names of the versioned contracts. A breaking change gets a new ``.v2`` topic, never an edit."""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALERTS",
    "ALLOWLIST",
    "BEHAVIOR",
    "DEADLETTER",
    "INQUIRY",
    "LIMIT_ACTIONS",
    "PROFILES",
    "REPAYMENT",
    "RULES",
]

BEHAVIOR: Final = "loan.behavior.v1"
"""App behaviour events (:data:`schemas.behavior.BehaviorEvent`), keyed by customer_id."""
REPAYMENT: Final = "loan.repayment.v1"
"""Repayment events (:data:`schemas.repayment.RepaymentEvent`), keyed by customer_id."""
INQUIRY: Final = "loan.inquiry.v1"
"""External credit inquiries (:data:`schemas.inquiry.InquiryEvent`), keyed by customer_id."""
RULES: Final = "risk.rules.v1"
"""Rule configuration (:class:`schemas.rules.RuleSet`), compacted."""
ALLOWLIST: Final = "risk.allowlist.v1"
"""Allow-listed customers and entities, compacted."""
ALERTS: Final = "risk.alerts.v1"
"""Tiered alerts (:class:`schemas.outputs.Alert`), keyed by customer_id."""
LIMIT_ACTIONS: Final = "risk.limit-actions.v1"
"""Limit actions (:class:`schemas.outputs.LimitAction`), keyed by customer_id."""
PROFILES: Final = "risk.profiles.v1"
"""Profile snapshots (:class:`schemas.outputs.ProfileSnapshot`), keyed by customer_id."""
DEADLETTER: Final = "risk.deadletter.v1"
"""Messages that could not be processed (:class:`schemas.outputs.DeadLetter`), keyed by dead_letter_id."""
