"""The decision layer: detector scores → fused score and tier → alert episodes, grade and limit actions.

Pure and deterministic (no I/O, no clock): event time comes in as epoch milliseconds. The flow per scored event::

    fused = fuse(scores, config.fusion, product)
    decision = decide(state, customer_id, fused, event_id, ts_ms, config, delinquency_p)
    # store decision.state; publish decision.alerts and decision.actions
"""

from detectors.decision.config import (
    ActionPolicy,
    ActionRule,
    DecisionConfig,
    EpisodeConfig,
    FusionConfig,
    GradeConfig,
    GradeCutoffs,
    HistoryCap,
    ProductOverride,
    TierThresholds,
)
from detectors.decision.episodes import RULE_ID, Decision, DecisionState, Restriction, action_id_for, decide
from detectors.decision.fusion import FusedScore, fuse
from detectors.decision.grades import grade_for

__all__ = [
    "RULE_ID",
    "ActionPolicy",
    "ActionRule",
    "Decision",
    "DecisionConfig",
    "DecisionState",
    "EpisodeConfig",
    "FusedScore",
    "FusionConfig",
    "GradeConfig",
    "GradeCutoffs",
    "HistoryCap",
    "ProductOverride",
    "Restriction",
    "TierThresholds",
    "action_id_for",
    "decide",
    "fuse",
    "grade_for",
]
