"""What the simulator hands out: labelled Kafka records and the episodes it injected (ground truth)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

CustomerScenarioName = Literal[
    "multi_application_burst",
    "multi_lending",
    "sequence_takeover",
    "sequence_new_device_cashout",
    "night_limit_exhaustion",
    "repayment_deterioration",
    "population_drift",
]
"""The scenarios of one customer at a time (and the population-level drift)."""
GroupScenarioName = Literal["fraud_ring", "decoy_public_wifi", "decoy_family"]
"""The scenarios of several customers linked by shared entities: a fraud ring (团伙) and two look-alikes."""
ScenarioName = Literal[CustomerScenarioName, GroupScenarioName]
"""Every injected scenario; the name is also the label of the scenario's records."""
SCENARIO_NAMES: Final[tuple[CustomerScenarioName, ...]] = get_args(CustomerScenarioName)
"""The customer scenarios (what this tuple has always held); group scenarios are :data:`GROUP_SCENARIO_NAMES`."""
GROUP_SCENARIO_NAMES: Final[tuple[GroupScenarioName, ...]] = get_args(GroupScenarioName)
DECOY_SCENARIO_NAMES: Final[frozenset[ScenarioName]] = frozenset({"decoy_public_wifi", "decoy_family"})
"""Group scenarios that are *not* risk: innocent customers who share an entity. An alert on them is a false one."""
ALL_SCENARIO_NAMES: Final[tuple[ScenarioName, ...]] = (*SCENARIO_NAMES, *GROUP_SCENARIO_NAMES)

# Literal flattens nested literals: Label is "normal", every scenario name, and "malformed".
Label = Literal["normal", ScenarioName, "malformed"]
LABELS: Final[tuple[Label, ...]] = get_args(Label)


def scenario_of(label: Label) -> ScenarioName | None:
    """The scenario a record's label names, or None for ``normal`` and ``malformed`` records."""
    return label if label in ALL_SCENARIO_NAMES else None


@dataclass(frozen=True, slots=True)
class SimRecord:
    """One Kafka message to produce, with its ground-truth label.

    ``ts_ms`` is the event time (also used as the Kafka message timestamp). ``label`` is ``"normal"``,
    ``"malformed"`` or the name of the scenario the record belongs to; ``episode_id`` is set exactly on the
    records of an injected episode. ``customer_id`` is the customer the message belongs to (for malformed
    messages: the customer whose key it carries, or None).
    """

    topic: str
    key: bytes | None
    value: bytes
    ts_ms: int
    label: Label
    episode_id: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class InjectedEpisode:
    """One injected scenario episode (the ground truth a detector is scored against).

    For a customer episode, ``start_ms`` / ``end_ms`` are the event times of its first and last labelled record.
    ``population_drift`` is one population-level episode: ``customer_id`` is None and the window runs from the
    shift to the end of the span. ``details`` holds the scenario's own facts (counts, shares, planned times).
    """

    scenario: ScenarioName
    episode_id: str
    customer_id: str | None
    start_ms: int
    end_ms: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (for the labels companion file)."""
        return {
            "scenario": self.scenario,
            "episode_id": self.episode_id,
            "customer_id": self.customer_id,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "details": dict(self.details),
        }


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

    def to_episode(self) -> InjectedEpisode:
        """The same burst as a generic :class:`InjectedEpisode`."""
        return InjectedEpisode(
            "multi_application_burst",
            self.episode_id,
            self.customer_id,
            self.start_ms,
            self.end_ms,
            {"applications": self.applications, "products": list(self.products)},
        )
