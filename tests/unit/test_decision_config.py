"""Decision configuration: defaults, validation errors that name the field, and grades from p and tier history."""

from __future__ import annotations

import doctest
import importlib

import pytest
from pydantic import ValidationError

from detectors.decision.config import (
    GRADES,
    ActionPolicy,
    ActionRule,
    DecisionConfig,
    FusionConfig,
    GradeConfig,
    HistoryCap,
)
from detectors.decision.grades import grade_for
from schemas.outputs import Tier

DAY = 86_400_000


def error_of(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[str | int, ...], str]:
    [error] = exc.value.errors()
    return tuple(error["loc"]), error["msg"]


def test_defaults() -> None:
    config = DecisionConfig()
    assert config.version == 1
    assert (config.fusion.method, config.fusion.default_weight) == ("noisy_or", 1.0)
    t = config.fusion.thresholds
    assert (t.notice, t.attention, t.warning) == (0.4, 0.6, 0.85)
    assert (config.episodes.cooldown_minutes, config.episodes.realert_after_minutes) == (60, None)
    assert config.actions.restore_after_minutes == 1440
    c = config.grades.cutoffs
    assert (c.b, c.c, c.d, c.e) == (0.02, 0.05, 0.10, 0.20)


def test_thresholds_out_of_order_name_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        DecisionConfig.model_validate({"fusion": {"thresholds": {"notice": 0.4, "attention": 0.3}}})
    loc, msg = error_of(exc)
    assert loc == ("fusion", "thresholds", "attention")
    assert msg == "attention (0.3) must be greater than notice (0.4)"
    assert "fusion.thresholds.attention" in str(exc.value)


def test_a_threshold_above_its_default_neighbour_is_checked() -> None:
    # Only notice given: the default attention (0.6) must still be checked against it.
    with pytest.raises(ValidationError) as exc:
        FusionConfig.model_validate({"thresholds": {"notice": 0.7}})
    assert error_of(exc)[0] == ("thresholds", "attention")


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_threshold_outside_unit_interval(value: float) -> None:
    with pytest.raises(ValidationError) as exc:
        FusionConfig.model_validate({"thresholds": {"notice": value, "attention": 1.6, "warning": 1.7}})
    assert exc.value.errors()[0]["loc"] == ("thresholds", "notice")


def test_negative_weight_names_the_detector() -> None:
    with pytest.raises(ValidationError) as exc:
        FusionConfig.model_validate({"weights": {"multi_lending": -0.1}})
    loc, msg = error_of(exc)
    assert loc == ("weights", "multi_lending")
    assert "greater than or equal to 0" in msg


def test_product_weight_above_one_names_the_product() -> None:
    with pytest.raises(ValidationError) as exc:
        FusionConfig.model_validate({"products": {"cash": {"weights": {"a": 1.5}}}})
    assert error_of(exc)[0] == ("products", "cash", "weights", "a")


def test_unknown_method_and_unknown_field_are_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        FusionConfig.model_validate({"method": "average"})
    assert error_of(exc)[0] == ("method",)
    with pytest.raises(ValidationError) as exc:
        DecisionConfig.model_validate({"episodes": {"cooldown": 5}})
    assert error_of(exc)[0] == ("episodes", "cooldown")


def test_reduce_limit_needs_a_factor_and_others_refuse_one() -> None:
    with pytest.raises(ValidationError) as exc:
        ActionPolicy.model_validate({"rules": [{"tier": "warning", "action": "reduce_limit"}]})
    assert error_of(exc) == (("rules", 0, "factor"), "factor is required when action is 'reduce_limit'")
    with pytest.raises(ValidationError) as exc:
        ActionRule.model_validate({"tier": "warning", "action": "freeze", "factor": 0.5})
    assert error_of(exc)[0] == ("factor",)
    with pytest.raises(ValidationError) as exc:
        ActionRule.model_validate({"tier": "warning", "action": "reduce_limit", "factor": 1.0})
    assert error_of(exc)[0] == ("factor",)


def test_restore_sooner_than_episode_cooldown_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        DecisionConfig.model_validate({"episodes": {"cooldown_minutes": 120}, "actions": {"restore_after_minutes": 60}})
    loc, msg = error_of(exc)
    assert loc == ("actions",)
    assert "restore_after_minutes (60) must be at least episodes.cooldown_minutes (120)" in msg
    # Also checked when the action policy is left at its default (1440 minutes).
    with pytest.raises(ValidationError):
        DecisionConfig.model_validate({"episodes": {"cooldown_minutes": 2000}})


def test_grade_cutoffs_out_of_order() -> None:
    with pytest.raises(ValidationError) as exc:
        GradeConfig.model_validate({"cutoffs": {"c": 0.3}})
    assert error_of(exc) == (("cutoffs", "d"), "d (0.1) must be greater than c (0.3)")


def test_config_is_frozen() -> None:
    config = DecisionConfig()
    with pytest.raises(ValidationError):
        config.version = 2  # type: ignore[misc]


def test_policy_table_lookup() -> None:
    policy = ActionPolicy()
    assert policy.rule_for("notice", "E") is None
    assert [policy.rule_for("warning", g).action for g in GRADES] == ["freeze"] * 5  # type: ignore[union-attr]
    attention = [policy.rule_for("attention", g) for g in GRADES]
    assert [r.action for r in attention if r] == ["review", "review", "review", "reduce_limit", "reduce_limit"]
    assert attention[3] is not None and attention[3].factor == 0.5


# Grades ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("p", "grade"),
    [(0.0, "A"), (0.0199, "A"), (0.02, "B"), (0.0499, "B"), (0.05, "C"), (0.1, "D"), (0.1999, "D"), (0.2, "E"),
     (1.0, "E")],
)
def test_grade_cutoffs_are_inclusive(p: float, grade: str) -> None:
    assert grade_for(p, {}, 0, GradeConfig()) == grade


def test_grade_is_monotone_in_p() -> None:
    config = GradeConfig()
    histories: list[dict[Tier, int]] = [{}, {"attention": 5 * DAY}]
    for history in histories:
        grades = [GRADES.index(grade_for(i / 1000, history, 10 * DAY, config)) for i in range(1001)]
        assert grades == sorted(grades)
        assert grades[0] <= grades[-1] == 4


def test_without_probability_uses_the_configured_grade() -> None:
    assert grade_for(None, {}, 0, GradeConfig()) == "C"
    assert grade_for(None, {}, 0, GradeConfig(without_probability="B")) == "B"


def test_tier_history_caps() -> None:
    config = GradeConfig()
    now = 100 * DAY
    assert grade_for(0.0, {"warning": now - 30 * DAY}, now, config) == "D"  # 30 days is still within
    assert grade_for(0.0, {"warning": now - 30 * DAY - 1}, now, config) == "A"
    assert grade_for(0.0, {"attention": now - DAY}, now, config) == "C"
    assert grade_for(0.0, {"notice": now}, now, config) == "A"  # no cap for notice by default
    # A warning also counts for the attention cap ("at or above"), and a worse base grade is never improved.
    assert grade_for(0.0, {"warning": now - 40 * DAY}, now, GradeConfig(
        history_caps=(HistoryCap(tier="attention", within_days=60, best_grade="B"),))) == "B"
    assert grade_for(0.5, {"warning": now}, now, config) == "E"


def test_probability_outside_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        grade_for(1.2, {}, 0, GradeConfig())


@pytest.mark.parametrize("module", ["config", "grades"])
def test_doctests_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"detectors.decision.{module}"))
    assert result.attempted > 0 and result.failed == 0
