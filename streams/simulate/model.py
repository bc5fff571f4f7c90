"""What the simulator hands out: labelled Kafka records and the bursts it injected (ground truth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Label = Literal["normal", "multi_application_burst", "malformed"]
LABELS: tuple[Label, ...] = ("normal", "multi_application_burst", "malformed")


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One Kafka message to produce, with its ground-truth label.

    ``ts_ms`` is the event time (also used as the Kafka message timestamp). ``episode_id`` is set on the
    applications of an injected burst only. ``customer_id`` is the customer the message belongs to (for
    malformed messages: the customer whose key it carries, or None).
    """

    topic: str
    key: bytes | None
    value: bytes
    ts_ms: int
    label: Label
    episode_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class InjectedBurst:
    """A multi-application burst (集中申请多笔贷款) the simulator injected.

    ``start_ms`` / ``end_ms`` are the event times of the first and last application of the episode.
    """

    episode_id: str
    customer_id: str
    start_ms: int
    end_ms: int
    applications: int
    products: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (for the labels companion file)."""
        return {
            "episode_id": self.episode_id,
            "customer_id": self.customer_id,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "applications": self.applications,
            "products": list(self.products),
        }
