"""Score fusion: many detector scores → one customer score in [0, 1], its tier, and the reasons that drove it.

Each detector's score is weighted (``w·s``, both in [0, 1]) and the weighted scores are combined by the method
the :class:`~detectors.decision.config.FusionConfig` names: noisy-OR ``1 - Π(1 - w_i·s_i)`` (default) or
weighted max ``max(w_i·s_i)``. Thresholds (per product if overridden) turn the fused score into a tier. The
result does not depend on the order of the input scores.

Example:
    >>> from detectors.base import DetectorScore
    >>> from detectors.decision.config import FusionConfig
    >>> config = FusionConfig(weights={"multi_lending": 0.5})
    >>> fused = fuse([DetectorScore("multi_application_burst", 0.5), DetectorScore("multi_lending", 1.0)], config)
    >>> fused.score, fused.tier, fused.contributions
    (0.75, 'attention', (('multi_application_burst', 0.5), ('multi_lending', 0.5)))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from detectors.base import DetectorScore
from detectors.decision.config import FusionConfig, TierThresholds
from schemas.outputs import Reason, Tier

__all__ = ["FusedScore", "fuse"]


@dataclass(frozen=True, slots=True)
class FusedScore:
    """One customer's fused score, its tier (None below notice), and what it is made of.

    ``contributions`` are ``(detector_id, weight·score)`` sorted by contribution, largest first (ties by id);
    ``reasons`` are the detectors' reasons in the same order, at most ``max_reasons``; ``thresholds`` are the ones
    that applied (the product's, if it has an override).
    """

    score: float
    tier: Tier | None
    contributions: tuple[tuple[str, float], ...]
    reasons: tuple[Reason, ...]
    thresholds: TierThresholds


def fuse(scores: Sequence[DetectorScore], config: FusionConfig, product: str | None = None) -> FusedScore:
    """Fuse detector scores into one customer score and tier (see the module docstring for the methods).

    A detector that appears more than once counts once, with its highest score: noisy-OR would otherwise count
    the same evidence twice. Detectors contributing 0 (weight 0 or score 0) add no reasons. No scores fuse to 0.
    """
    best: dict[str, DetectorScore] = {}
    for s in scores:
        seen = best.get(s.detector_id)
        if seen is None or s.score > seen.score:
            best[s.detector_id] = s
    weighted = sorted(
        ((d.detector_id, config.weight_for(d.detector_id, product) * d.score) for d in best.values()),
        key=lambda item: (-item[1], item[0]),
    )
    if config.method == "noisy_or":
        # Multiply in a fixed (sorted) order so the float result is identical whatever order scores came in.
        fused = 1.0 - math.prod(1.0 - c for _, c in weighted)
    else:
        fused = max((c for _, c in weighted), default=0.0)
    fused = min(1.0, max(0.0, fused))
    thresholds = config.thresholds_for(product)
    reasons = tuple(r for detector_id, c in weighted if c > 0 for r in best[detector_id].reasons)
    return FusedScore(
        score=fused,
        tier=thresholds.tier_for(fused),
        contributions=tuple(weighted),
        reasons=reasons[: config.max_reasons],
        thresholds=thresholds,
    )
