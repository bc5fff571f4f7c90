"""Rule detectors: hand-computed scores per rule, and one shared check suite over every rule (River-style)."""

from __future__ import annotations

import doctest
import importlib
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from detectors.base import Detector
from detectors.profile_layout import TailEvent
from detectors.rules import (
    ChainStep,
    LimitUsageDetector,
    MultiLendingDetector,
    RepaymentDetector,
    SequenceChain,
    SequenceConfig,
    SequenceDetector,
)
from detectors.rules._common import Band

H = 3_600_000
M = 60_000
PHONE = TailEvent("profile_change", 0, field="phone")
CARD = TailEvent("profile_change", 2 * H, field="bank_card")
BIG_DRAW = TailEvent("drawdown", 3 * H, amount=9000, available_limit_before=10000)

# Every rule with an input that makes it fire: the shared checks run over all of them.
CASES: list[tuple[Any, Mapping[str, float], Sequence[TailEvent]]] = [
    (MultiLendingDetector(), {"inquiries_non_bank_7d": 5, "inquiries_bank_30d": 4}, ()),
    (LimitUsageDetector(), {"drawdown_limit_share_max_24h": 0.9, "night_drawdowns_24h": 2}, ()),
    (RepaymentDetector(), {"dpd_bucket": 2, "dpd_max": 40, "missed_payments_30d": 2}, ()),
    (SequenceDetector(), {}, (PHONE, CARD, BIG_DRAW)),
]
IDS = [type(c[0]).__name__ for c in CASES]


# -- per rule --------------------------------------------------------------------------------------------------


def test_multi_lending_weights_non_bank_and_grades() -> None:
    d = MultiLendingDetector()
    # 7d weighted = 1*bank + 2*non_bank; band 6..12; score 0.4 + 0.6*(w-6)/6
    assert d.score_one({"inquiries_bank_7d": 5}).score == 0.0  # w=5
    assert d.score_one({"inquiries_non_bank_7d": 3}).score == pytest.approx(0.4)  # w=6
    assert d.score_one({"inquiries_bank_7d": 3, "inquiries_non_bank_7d": 3}).score == pytest.approx(0.7)  # w=9
    assert d.score_one({"inquiries_non_bank_7d": 6}).score == 1.0  # w=12
    # 30d: band 12..24; w = 4 + 2*7 = 18 -> 0.7; the 7d part (w=0) scores 0
    s = d.score_one({"inquiries_bank_30d": 4, "inquiries_non_bank_30d": 7})
    assert s.score == pytest.approx(0.7)
    (r,) = s.reasons
    assert (r.feature, r.value, r.threshold) == ("inquiries_weighted_30d", 18.0, 12.0)


def test_limit_usage_share_night_and_combination() -> None:
    d = LimitUsageDetector()
    assert d.score_one({"drawdown_limit_share_max_24h": 0.79}).score == 0.0
    assert d.score_one({"drawdown_limit_share_max_24h": 0.8}).score == pytest.approx(0.4)
    # share band 0.8..0.95: 0.875 is half way -> 0.7
    assert d.score_one({"drawdown_limit_share_max_24h": 0.875}).score == pytest.approx(0.7)
    # night: band 1..3 weighted 0.6: 1 -> 0.24, 2 -> 0.6*0.7 = 0.42, 3 -> 0.6
    assert [d.score_one({"night_drawdowns_24h": n}).score for n in (1, 2, 3)] == pytest.approx([0.24, 0.42, 0.6])
    both = d.score_one({"drawdown_limit_share_max_24h": 0.8, "night_drawdowns_24h": 1})
    assert both.score == pytest.approx(0.4 + 0.2)
    share_reason = both.reasons[0]
    assert (share_reason.feature, share_reason.value, share_reason.threshold) == (
        "drawdown_limit_share_max_24h", 0.8, 0.8,
    )


def test_repayment_rises_with_roll_and_cure_lowers_it() -> None:
    d = RepaymentDetector()
    m0 = d.score_one({"dpd_bucket": 0, "partial_payments_30d": 1}).score  # 0.1
    m1 = d.score_one({"dpd_bucket": 1, "dpd_rolls_30d": 1}).score  # 0.45 + 0.15
    m2 = d.score_one({"dpd_bucket": 2, "dpd_rolls_30d": 2}).score  # 0.75 + 0.3 -> capped 1.0
    assert (m0, m1, m2) == pytest.approx((0.1, 0.6, 1.0))
    cured = d.score_one({"dpd_bucket": 0, "dpd_rolls_30d": 2, "dpd_cures_30d": 1})  # 0.3 * 0.5
    assert cured.score == pytest.approx(0.15)
    assert [r.feature for r in cured.reasons] == ["dpd_rolls_30d", "dpd_cures_30d"]


def test_sequence_scores_the_longest_prefix() -> None:
    d = SequenceDetector()
    assert d.score_one({}, (PHONE,)).score == 0.0
    assert d.score_one({}, (PHONE, CARD)).score == 0.5
    assert d.score_one({}, (PHONE, CARD, BIG_DRAW)).score == 1.0
    # Order matters: the card change before the phone change is not the chain's second step.
    assert d.score_one({}, (TailEvent("profile_change", 0, field="bank_card"), PHONE)).score == 0.0
    # A small drawdown does not complete it. A drawdown 24 h + 1 ms after the phone change is past the span, and
    # scored at that drawdown the phone change is stale, so the partial match does not count either.
    small = TailEvent("drawdown", 3 * H, amount=1000, available_limit_before=10000)
    late = TailEvent("drawdown", 24 * H + 1, amount=9000, available_limit_before=10000)
    assert d.score_one({}, (PHONE, CARD, small)).score == 0.5
    assert d.score_one({}, (PHONE, CARD, late)).score == 0.0
    assert d.score_one({}, (PHONE, CARD, late), at_ms=3 * H).score == 0.5  # scored earlier: drawdown not yet
    # Stale: scored 25 h after the phone change, the chain no longer counts.
    assert d.score_one({}, (PHONE, CARD), at_ms=25 * H).score == 0.0


def test_sequence_new_device_chain_and_custom_chain() -> None:
    new_login = TailEvent("login", 0, new_device=True)
    query = TailEvent("limit_query", 10 * M)
    draw = TailEvent("drawdown", 20 * M, amount=5000, available_limit_before=5000)
    s = SequenceDetector().score_one({}, (new_login, query, draw))
    assert s.score == 1.0
    assert [r.feature for r in s.reasons] == ["chain_new_device_limit_drawdown"]
    chain = SequenceChain(
        name="four_steps",
        steps=(ChainStep(event_type="login"), ChainStep(event_type="limit_query"), ChainStep(event_type="drawdown"),
               ChainStep(event_type="contact_upload")),
        max_span_minutes=60,
    )
    d = SequenceDetector(SequenceConfig(chains=(chain,), partial_score=0.6))
    # 3 of 4 steps: 0.6 * (3-1)/(4-2) = 0.6; 2 of 4: 0.3
    assert d.score_one({}, (new_login, query, draw)).score == pytest.approx(0.6)
    assert d.score_one({}, (new_login, query)).score == pytest.approx(0.3)


def test_configs_are_frozen_and_refuse_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        Band(notice=3, warning=2)
    with pytest.raises(ValidationError):
        SequenceConfig.model_validate({"chains": [], "partial": 0.3})
    with pytest.raises(ValidationError):
        SequenceChain(name="one", steps=(ChainStep(),), max_span_minutes=5)
    with pytest.raises(ValidationError):
        MultiLendingDetector().config.bank_weight = 3  # type: ignore[misc]


# -- shared checks over every rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(("detector", "x", "tail"), CASES, ids=IDS)
def test_fires_with_reasons_naming_feature_value_threshold(
    detector: Any, x: Mapping[str, float], tail: Sequence[TailEvent]
) -> None:
    s = detector.score_one(x, tail)
    assert 0 < s.score <= 1 and s.detector_id == detector.detector_id
    assert s.reasons
    for r in s.reasons:
        assert r.feature and r.threshold > 0 and r.message
        if r.feature in x:
            assert r.value == x[r.feature]


@pytest.mark.parametrize(("detector", "x", "tail"), CASES, ids=IDS)
def test_score_does_not_mutate_and_is_deterministic(
    detector: Any, x: Mapping[str, float], tail: Sequence[TailEvent]
) -> None:
    is_detector = isinstance(detector, Detector)  # the River-shaped protocol of detectors.base
    assert is_detector
    before = pickle.dumps(detector)
    first = detector.score_one(x, tail)
    assert pickle.dumps(detector) == before
    assert detector.score_one(dict(x), list(tail)) == first
    assert detector.learn_one(x) is None


@pytest.mark.parametrize(("detector", "x", "tail"), CASES, ids=IDS)
def test_pickling_round_trip(detector: Any, x: Mapping[str, float], tail: Sequence[TailEvent]) -> None:
    clone = pickle.loads(pickle.dumps(detector))  # noqa: S301  # our own bytes
    assert clone.score_one(x, tail) == detector.score_one(x, tail)
    assert clone.config == detector.config


@pytest.mark.parametrize(("detector", "x", "tail"), CASES, ids=IDS)
def test_missing_and_unknown_features(detector: Any, x: Mapping[str, float], tail: Sequence[TailEvent]) -> None:
    assert detector.score_one({}).score == 0.0
    assert detector.score_one({"brand_new_feature_7d": 1e9}).score == 0.0
    assert detector.score_one({**x, "brand_new_feature_7d": 1e9}, tail) == detector.score_one(x, tail)


@pytest.mark.parametrize("module", ["_common", "multi_lending", "limit_usage", "repayment", "sequence"])
def test_module_doctests(module: str) -> None:
    mod = importlib.import_module(f"detectors.rules.{module}")
    assert mod.__doc__ and "Example" in mod.__doc__ or module == "_common"
    result = doctest.testmod(mod)
    assert result.failed == 0 and result.attempted > 0
