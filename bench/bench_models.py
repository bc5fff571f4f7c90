"""Per-vector cost of the River models (score_one + learn_one) and the pickle size of a partition's ModelSet.

Run: python bench/bench_models.py [--vectors N] [--repeat R]

Each model is timed on the same seeded synthetic profile vectors, after a warm-up so that it really scores,
next to a trivial baseline (a running mean per feature) in the same run; the median of ``--repeat`` runs is
reported with the ratio against the baseline. Also: held-out ROC AUC of the delinquency learners (River's
ROCAUC) and the checkpoint size. Output: a table and one JSON line with the command, machine and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from river import compose, linear_model, metrics, preprocessing, tree

from detectors.models import synth
from detectors.models.anomaly import AnomalyModel
from detectors.models.checkpoint import ModelSet
from detectors.models.delinquency import DelinquencyConfig, DelinquencyModel
from detectors.models.drift import DriftMonitor

ROCAUC: Any = metrics.ROCAUC  # untyped in River
ALMA: Any = linear_model.ALMAClassifier


class RunningMean:
    """The trivial baseline: one running mean per feature, scored as the mean absolute deviation."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: dict[str, float] = {}

    def score_one(self, x: dict[str, float]) -> float:
        return sum(abs(v - self.mean.get(k, 0.0)) for k, v in x.items()) / max(len(x), 1)

    def learn_one(self, x: dict[str, float]) -> None:
        self.n += 1
        for k, v in x.items():
            m = self.mean.get(k, 0.0)
            self.mean[k] = m + (v - m) / self.n


def per_vector_us(step: Callable[[dict[str, float], bool], Any], rows: list[tuple[dict[str, float], bool]]) -> float:
    started = time.perf_counter()
    for x, y in rows:
        step(x, y)
    return (time.perf_counter() - started) / len(rows) * 1e6


Step = Callable[[dict[str, float], bool], Any]


def steps(warm: list[tuple[dict[str, float], bool]]) -> dict[str, Callable[[], Step]]:
    def score_then_learn(m: RunningMean | AnomalyModel) -> Callable[[dict[str, float], bool], Any]:
        for x, _ in warm:
            m.learn_one(x)

        def step(x: dict[str, float], y: bool) -> None:
            m.score_one(x)
            m.learn_one(x)

        return step

    def baseline() -> Callable[[dict[str, float], bool], Any]:
        return score_then_learn(RunningMean())

    def anomaly() -> Callable[[dict[str, float], bool], Any]:
        return score_then_learn(AnomalyModel())

    def anomaly_fused() -> Callable[[dict[str, float], bool], Any]:
        m = AnomalyModel()
        for x, _ in warm:
            m.learn_one(x)
        return lambda x, y: m.score_and_learn(x)

    def delinquency() -> Callable[[dict[str, float], bool], Any]:
        m = DelinquencyModel()
        for x, y in warm:
            m.learn_one(x, y)

        def step(x: dict[str, float], y: bool) -> None:
            m.score_one(x)
            m.learn_one(x, y)

        return step

    def drift() -> Callable[[dict[str, float], bool], Any]:
        m = DriftMonitor()
        return lambda x, y: m.update_many(x)

    return {
        "baseline_running_mean": baseline,
        "anomaly_score+learn": anomaly,
        "anomaly_score_and_learn": anomaly_fused,
        "delinquency_score+learn": delinquency,
        "drift_13_streams": drift,
    }


def learner_aucs(n_train: int) -> dict[str, float]:
    candidates: dict[str, Callable[[], Any]] = {
        "logreg": lambda: DelinquencyModel(DelinquencyConfig(learner="logreg"))._model,
        "scaled_logreg (default)": lambda: DelinquencyModel()._model,
        "scaled_alma": lambda: compose.Pipeline(preprocessing.StandardScaler(), ALMA()),
        "hoeffding_adaptive_tree": lambda: tree.HoeffdingAdaptiveTreeClassifier(seed=1),
    }
    out = {}
    for name, make in candidates.items():
        model = make()
        for x, y in synth.delinquency_stream(1, n_train):
            model.learn_one(x, y)
        auc = ROCAUC()
        for x, y in synth.delinquency_stream(2, 5000):
            auc.update(y, model.predict_proba_one(x).get(True, 0.0))
        out[name] = round(float(auc.get()), 4)
    return out


def checkpoint_size(warm: list[tuple[dict[str, float], bool]], pending: int) -> dict[str, int]:
    models = ModelSet(partition=0)
    for x, y in warm:
        models.process_one(x)
        models.delinquency.learn_one(x, y)
    empty = len(ModelSet(partition=0).to_bytes())
    trained = len(models.to_bytes())
    rng = random.Random(3)
    for i in range(pending):
        models.delinquency.observe_due((f"loan{i}", 1), synth.normal_profile(rng))
    return {"empty": empty, "trained": trained, f"trained_with_{pending}_pending": len(models.to_bytes())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vectors", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pending", type=int, default=10_000)
    args = parser.parse_args(argv)

    warm = list(synth.delinquency_stream(0, 2000))
    rows = list(synth.delinquency_stream(1, args.vectors))
    makers = steps(warm)
    runs: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(args.repeat):  # interleaved, so a noisy machine moves every model alike
        for name, make in makers.items():
            runs[name].append(per_vector_us(make(), rows))
    medians = {name: statistics.median(v) for name, v in runs.items()}
    base = medians["baseline_running_mean"]
    print(f"{'model':28} {'µs/vector':>10} {'vectors/s':>10} {'× baseline':>10}")
    for name, us in medians.items():
        print(f"{name:28} {us:10.1f} {1e6 / us:10.0f} {us / base:10.1f}")
    aucs = learner_aucs(5000)
    print("held-out ROC AUC of delinquency learners (5000 train / 5000 test):", aucs)
    sizes = checkpoint_size(warm, args.pending)
    print("ModelSet pickle bytes:", sizes)
    result = {
        "command": " ".join(["python", "bench/bench_models.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "river": version("river"),
        "median_us_per_vector": {k: round(v, 2) for k, v in medians.items()},
        "ratio_vs_baseline": {k: round(v / base, 1) for k, v in medians.items()},
        "delinquency_auc": aucs,
        "checkpoint_bytes": sizes,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
