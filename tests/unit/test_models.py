"""Shared checks over the River-shaped models, River's own checks on the River estimators inside, drift, checkpoints."""

from __future__ import annotations

import doctest
import importlib
import pickle
import random
from collections.abc import Callable
from typing import Any, Literal

import pytest
from river.checks import clf, common

from detectors.base import Detector, DetectorScore
from detectors.models import synth
from detectors.models.anomaly import AnomalyConfig, AnomalyModel
from detectors.models.checkpoint import FORMAT_VERSION, CheckpointError, ModelSet
from detectors.models.delinquency import DelinquencyConfig, DelinquencyModel
from detectors.models.drift import DriftConfig, DriftEvent, DriftMonitor

SMALL_ANOMALY = AnomalyConfig(window_size=50, warm_up=100, explain_threshold=0.0, seed=3)
SMALL_DELINQUENCY = DelinquencyConfig(warm_up=50, explain_threshold=0.0)


def trained_anomaly(seed: int = 0, n: int = 300, config: AnomalyConfig = SMALL_ANOMALY) -> AnomalyModel:
    model = AnomalyModel(config)
    rng = random.Random(seed)
    for _ in range(n):
        model.learn_one(synth.normal_profile(rng))
    return model


def trained_delinquency(seed: int = 0, n: int = 300) -> DelinquencyModel:
    model = DelinquencyModel(SMALL_DELINQUENCY)
    for x, y in synth.delinquency_stream(seed, n):
        model.learn_one(x, y)
    return model


# Each entry: builds a trained model; its score_one(x) -> DetectorScore.
TRAINED: dict[str, Callable[[], AnomalyModel | DelinquencyModel]] = {
    "anomaly": trained_anomaly,
    "delinquency": trained_delinquency,
}


def probe_vectors(seed: int = 99) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [synth.normal_profile(rng) for _ in range(20)] + [synth.anomalous_profile(rng) for _ in range(5)]


def scores(model: AnomalyModel | DelinquencyModel) -> list[DetectorScore]:
    return [model.score_one(x) for x in probe_vectors()]


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_score_one_does_not_change_the_model(name: str) -> None:
    model = TRAINED[name]()
    before = pickle.dumps(model)
    verdicts = scores(model)
    assert pickle.dumps(model) == before
    assert any(v.score > 0 for v in verdicts)


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_pickle_round_trip_scores_identically(name: str) -> None:
    model = TRAINED[name]()
    restored = pickle.loads(pickle.dumps(model))  # noqa: S301  # our own bytes, just written
    assert scores(restored) == scores(model)


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_deterministic_for_a_seed(name: str) -> None:
    assert scores(TRAINED[name]()) == scores(TRAINED[name]())


def test_anomaly_seed_changes_the_cuts() -> None:
    other = SMALL_ANOMALY.model_copy(update={"seed": 4})
    assert scores(trained_anomaly()) != scores(trained_anomaly(config=other))


@pytest.mark.parametrize("name", sorted(TRAINED))
def test_missing_and_new_features_are_tolerated(name: str) -> None:
    model = TRAINED[name]()
    x = synth.normal_profile(random.Random(5))
    odd = [{}, {"applications_30m": 3.0}, {**x, "brand_new_feature": 7.0}, {**x, "night_share_24h": float("nan")}]
    for v in odd:
        assert 0.0 <= model.score_one(v).score <= 1.0
        if isinstance(model, AnomalyModel):
            model.learn_one(v)
        else:
            model.learn_one(v, False)


def test_first_vector_with_missing_features_still_cuts_on_all_features() -> None:
    model = AnomalyModel(SMALL_ANOMALY)
    model.learn_one({"applications_30m": 1.0})
    assert {n.feature for t in model._hst.trees for n in t.iter_dfs() if hasattr(n, "feature")} == {
        f.name for f in SMALL_ANOMALY.features
    }


def test_anomaly_model_is_a_detector() -> None:
    assert isinstance(AnomalyModel(), Detector)


@pytest.mark.parametrize(
    "module", ["synth", "anomaly", "delinquency", "drift", "checkpoint"]
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"detectors.models.{module}"))
    assert result.attempted > 0
    assert result.failed == 0


# River's own conventions (river.checks) on our wrappers: clone(), repr, params, pickling.
GENERAL_CHECKS = [
    common.check_repr,
    common.check_str,
    common.check_clone_same_class,
    common.check_clone_is_idempotent,
    common.check_init_has_default_params_for_tests,
    common.check_init_default_params_are_not_mutable,
    common.check_doc,
    common.check_clone_changes_memory_addresses,
    common.check_mutate_can_be_idempotent,
    common.check_pickling_supports_roundtrip,
    common.check_repr_roundtrips_clone,
    common.check_clone_with_new_params_applies,
    common.check_get_params_matches_signature,
]


@pytest.mark.parametrize("check", GENERAL_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("cls", [AnomalyModel, DelinquencyModel, DriftMonitor], ids=lambda c: c.__name__)
def test_river_general_checks_on_wrappers(cls: type[Any], check: Callable[[Any], None]) -> None:
    check(cls())


def test_clone_keeps_config_and_forgets_data() -> None:
    model = trained_anomaly()
    clone = model.clone()
    assert clone.config == model.config and clone.n_learned == 0


# River's dataset checks on the River estimators inside (sklearn-free subset: river.checks needs sklearn to build
# its own datasets and for check_roc_auc, so we feed our synthetic data; AUC is tested in test_models_learning).
DATASET_CHECKS = [
    common.check_learn_one,
    common.check_pickling,
    common.check_shuffle_features_no_impact,
    common.check_emerging_features,
    common.check_disappearing_features,
    common.check_radically_disappearing_features,
    common.check_predict_one_pure,
    common.check_predict_one_before_any_learn,
    common.check_no_state_aliasing_with_input,
    common.check_clone_is_independent,
    common.check_seeding_is_idempotent,
]
CLASSIFIER_CHECKS = [
    clf.check_predict_proba_one,
    clf.check_predict_proba_one_binary,
    clf.check_classifier_tracks_seen_labels,
]


def _anomaly_dataset() -> list[tuple[dict[str, float], bool]]:
    model = AnomalyModel()
    rng = random.Random(11)
    rows = []
    for i in range(600):
        bad = i % 50 == 49
        x = synth.anomalous_profile(rng) if bad else synth.normal_profile(rng)
        rows.append((model._scaled(x), bad))
    return rows


@pytest.mark.parametrize("check", DATASET_CHECKS, ids=lambda c: c.__name__)
def test_river_dataset_checks_on_half_space_trees(check: Callable[..., None]) -> None:
    hst = AnomalyModel(AnomalyConfig(window_size=50, warm_up=50))._hst
    check(hst.clone(), dataset=_anomaly_dataset())


@pytest.mark.parametrize("check", DATASET_CHECKS + CLASSIFIER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("learner", ["scaled_logreg", "logreg"])
def test_river_dataset_checks_on_delinquency_learner(
    learner: Literal["scaled_logreg", "logreg"], check: Callable[..., None]
) -> None:
    estimator = DelinquencyModel(DelinquencyConfig(learner=learner))._model
    check(estimator.clone(), dataset=list(synth.delinquency_stream(21, 300)))


def _gauss_stream(seed: int, n: int, shift_at: int | None, before: float = 0.2, after: float = 0.5) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(after if shift_at is not None and i >= shift_at else before, 0.1) for i in range(n)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drift_detects_a_mean_shift(seed: int) -> None:
    monitor = DriftMonitor()
    hits = [(i, e) for i, v in enumerate(_gauss_stream(seed, 6000, 3000)) if (e := monitor.update("score", v))]
    assert hits, "no drift detected"
    i, event = hits[0]
    assert 3000 <= i < 3300  # found soon after the shift, not before it
    assert event.before_mean == pytest.approx(0.2, abs=0.05)
    assert event.after_mean > event.before_mean + 0.03  # the kept window still holds some older values
    assert event.stream == "score" and event.n > 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_drift_quiet_on_a_stationary_stream(seed: int) -> None:
    monitor = DriftMonitor()
    assert [e for v in _gauss_stream(seed, 20_000, None) if (e := monitor.update("score", v))] == []


def test_drift_is_deterministic_and_bounded() -> None:
    def run() -> list[DriftEvent]:
        monitor = DriftMonitor(DriftConfig(max_streams=2))
        out = []
        for i, v in enumerate(_gauss_stream(7, 4000, 2000)):
            out += monitor.update_many({"a": v, "b": 1 - v, "c": v})
            assert monitor.ignored == i + 1  # "c" is beyond max_streams
        return out

    first = run()
    assert {e.stream for e in first} == {"a", "b"}
    assert first == run()


def test_drift_watches_only_configured_streams() -> None:
    monitor = DriftMonitor(DriftConfig(streams=("score",)))
    monitor.update("other", 1.0)
    monitor.update("score", float("nan"))
    assert monitor.mean("other") is None and monitor.mean("score") is None
    monitor.update("score", 0.25)
    assert monitor.mean("score") == 0.25


def test_restored_model_set_scores_a_fixed_vector_exactly_as_before() -> None:
    models = ModelSet(
        partition=7,
        anomaly=AnomalyModel(SMALL_ANOMALY),
        delinquency=DelinquencyModel(SMALL_DELINQUENCY),
    )
    rng = random.Random(8)
    for i, (x, y) in enumerate(synth.delinquency_stream(8, 400)):
        models.process_one(synth.normal_profile(rng))
        models.delinquency.observe_due((f"loan{i}", 1), x)
        if i >= 10:
            models.delinquency.observe_outcome((f"loan{i - 10}", 1), y)
    fixed = synth.anomalous_profile(random.Random(1))
    blob = models.to_bytes()
    restored = ModelSet.from_bytes(blob)
    assert restored.score_one(fixed) == models.score_one(fixed)
    assert restored.score_one(fixed)[0].score > 0 and restored.score_one(fixed)[1].score > 0
    assert len(restored.delinquency.pending) == 10
    # Learning continues from where it stopped.
    assert restored.process_one(fixed) == models.process_one(fixed)


def test_checkpoint_refuses_unknown_versions_and_payloads() -> None:
    blob = ModelSet(partition=0).to_bytes()
    assert blob[0] == FORMAT_VERSION
    with pytest.raises(CheckpointError, match="empty"):
        ModelSet.from_bytes(b"")
    with pytest.raises(CheckpointError, match="version 9"):
        ModelSet.from_bytes(bytes([9]) + blob[1:])
    with pytest.raises(CheckpointError, match="dict"):
        ModelSet.from_bytes(bytes([FORMAT_VERSION]) + pickle.dumps({}))
