"""Fusion of detector scores: noisy-OR and weighted max on small inputs, tier boundaries, product overrides."""

from __future__ import annotations

import doctest
import importlib
import itertools

import pytest

from detectors.base import DetectorScore
from detectors.decision.config import FusionConfig, ProductOverride, TierThresholds
from detectors.decision.fusion import fuse
from schemas.outputs import Reason

# Binary-exact thresholds so boundary scores compare exactly.
EXACT = TierThresholds(notice=0.25, attention=0.5, warning=0.75)


def reason(code: str) -> Reason:
    return Reason(code=code, message=code, feature=code, value=1.0, threshold=0.5)


def test_noisy_or_on_two_scores() -> None:
    # 1 - (1 - 1.0*0.5) * (1 - 0.5*0.4) = 1 - 0.5 * 0.8 = 0.6
    config = FusionConfig(weights={"a": 1.0, "b": 0.5})
    fused = fuse([DetectorScore("a", 0.5), DetectorScore("b", 0.4)], config)
    assert fused.score == pytest.approx(0.6)
    assert [d for d, _ in fused.contributions] == ["a", "b"]
    assert [c for _, c in fused.contributions] == [0.5, pytest.approx(0.2)]
    assert fused.tier == "attention"  # 0.6 is the default attention threshold, inclusive


def test_noisy_or_three_moderate_signals_add_up() -> None:
    # 1 - 0.5^3 = 0.875: three detectors at 0.5 reach the default warning (0.85), one alone only a notice.
    fused = fuse([DetectorScore(d, 0.5) for d in ("a", "b", "c")], FusionConfig())
    assert fused.score == 0.875
    assert fused.tier == "warning"
    assert fuse([DetectorScore("a", 0.5)], FusionConfig()).tier == "notice"


def test_weighted_max() -> None:
    # max(1.0*0.5, 0.5*0.4, 0.9*0.3) = max(0.5, 0.2, 0.27) = 0.5
    config = FusionConfig(method="weighted_max", weights={"a": 1.0, "b": 0.5, "c": 0.9})
    fused = fuse([DetectorScore("a", 0.5), DetectorScore("b", 0.4), DetectorScore("c", 0.3)], config)
    assert fused.score == 0.5
    assert [d for d, _ in fused.contributions] == ["a", "c", "b"]


def test_no_scores_fuse_to_zero() -> None:
    for method in ("noisy_or", "weighted_max"):
        fused = fuse([], FusionConfig(method=method))
        assert (fused.score, fused.tier, fused.contributions, fused.reasons) == (0.0, None, (), ())


def test_one_strong_signal_dominates_noisy_or() -> None:
    assert fuse([DetectorScore("a", 0.9), DetectorScore("b", 0.0)], FusionConfig()).score == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("score", "tier"),
    [(0.0, None), (0.2499, None), (0.25, "notice"), (0.4999, "notice"), (0.5, "attention"),
     (0.7499, "attention"), (0.75, "warning"), (1.0, "warning")],
)
def test_tier_boundaries_are_inclusive(score: float, tier: str | None) -> None:
    assert fuse([DetectorScore("a", score)], FusionConfig(thresholds=EXACT)).tier == tier


def test_noisy_or_exact_boundary() -> None:
    # 1 - 0.5 * 0.5 = 0.75 exactly: warning under EXACT.
    assert fuse([DetectorScore("a", 0.5), DetectorScore("b", 0.5)], FusionConfig(thresholds=EXACT)).tier == "warning"


def test_default_weight_for_unknown_detectors() -> None:
    config = FusionConfig(weights={"a": 0.5}, default_weight=0.2)
    fused = fuse([DetectorScore("a", 1.0), DetectorScore("zzz", 1.0)], config)
    assert dict(fused.contributions) == {"a": 0.5, "zzz": 0.2}
    assert fused.score == pytest.approx(1 - 0.5 * 0.8)


def test_product_override_applies_only_to_that_product() -> None:
    config = FusionConfig(
        weights={"a": 1.0},
        thresholds=EXACT,
        products={
            "cash": ProductOverride(
                weights={"a": 0.5},
                default_weight=0.0,
                thresholds=TierThresholds(notice=0.1, attention=0.2, warning=0.9),
            )
        },
    )
    scores = [DetectorScore("a", 0.8), DetectorScore("b", 0.5)]
    base = fuse(scores, config)
    # base: 1 - (1 - 0.8) * (1 - 0.5) = 0.9 (b takes the default weight 1.0)
    assert base.score == pytest.approx(0.9) and base.tier == "warning"
    assert fuse(scores, config, product="other") == base
    assert fuse(scores, config, product=None) == base
    cash = fuse(scores, config, product="cash")
    # cash: a weighted 0.5 -> 0.4; b unknown to the base weights takes the override default 0.0
    assert dict(cash.contributions) == {"a": pytest.approx(0.4), "b": 0.0}
    assert cash.score == pytest.approx(0.4)
    assert cash.tier == "attention"  # 0.4 >= 0.2, < 0.9 under the product's thresholds
    assert cash.thresholds.notice == 0.1


def test_override_default_weight_does_not_touch_listed_detectors() -> None:
    config = FusionConfig(weights={"a": 0.6}, products={"p": ProductOverride(default_weight=0.1)})
    assert config.weight_for("a", "p") == 0.6
    assert config.weight_for("new", "p") == 0.1
    assert config.weight_for("new", "q") == 1.0


def test_reasons_follow_contribution_and_are_capped() -> None:
    config = FusionConfig(weights={"weak": 0.1, "off": 0.0}, max_reasons=3)
    scores = [
        DetectorScore("weak", 1.0, (reason("weak_1"),)),
        DetectorScore("off", 1.0, (reason("off_1"),)),
        DetectorScore("strong", 0.9, (reason("strong_1"), reason("strong_2"))),
        DetectorScore("mid", 0.5, (reason("mid_1"), reason("mid_2"))),
    ]
    fused = fuse(scores, config)
    assert [r.code for r in fused.reasons] == ["strong_1", "strong_2", "mid_1"]
    assert "off_1" not in [r.code for r in fuse(scores, config.model_copy(update={"max_reasons": 19})).reasons]


def test_duplicate_detector_counts_once_with_its_highest_score() -> None:
    fused = fuse([DetectorScore("a", 0.3), DetectorScore("a", 0.5)], FusionConfig())
    assert fused.contributions == (("a", 0.5),)
    assert fused.score == 0.5


def test_order_of_scores_does_not_matter() -> None:
    scores = [DetectorScore(d, s) for d, s in [("a", 0.31), ("b", 0.17), ("c", 0.53), ("d", 0.07)]]
    config = FusionConfig(weights={"b": 0.7, "d": 0.3})
    first = fuse(scores, config)
    for perm in itertools.permutations(scores):
        assert fuse(list(perm), config) == first  # bitwise-equal score, same contributions and reasons


def test_fusion_doctest_runs() -> None:
    result = doctest.testmod(importlib.import_module("detectors.decision.fusion"))
    assert result.attempted > 0 and result.failed == 0
