"""Unsupervised anomaly on the profile vector: River ``HalfSpaceTrees`` on features scaled to [0, 1].

Scaling uses a fixed, configured range per feature (values clipped into it, heavy-tailed counts on a log
scale), not an online ``MinMaxScaler``. HalfSpaceTrees cut the unit cube once, when the first vector arrives, and
then only count masses; an online min/max keeps moving the scaled position of the same raw value (one outlier
stretches a range forever and squeezes every normal value into a corner), so the counts of old windows stop
meaning what they meant. Fixed ranges make a raw value land in the same leaf for the life of the model, which is
also what makes a restored checkpoint score exactly as before. A feature missing from a vector is left out
(HalfSpaceTrees follow the heavier branch); features that are not configured are ignored.

The model does not score during a warm-up (``warm_up`` learned vectors: score 0, no reasons, so no alert) and
never learns a vector scoring at or above ``protect_threshold`` (River's ``protect_anomaly_detector``), so a
burst of anomalies cannot teach it that anomalies are normal.

Example:
    >>> import random
    >>> from detectors.models import synth
    >>> model = AnomalyModel(AnomalyConfig(warm_up=300, window_size=100, seed=1))
    >>> rng = random.Random(1)
    >>> model.score_one(synth.normal_profile(rng)).score   # warming up
    0.0
    >>> for _ in range(600):
    ...     model.learn_one(synth.normal_profile(rng))
    >>> verdict = model.score_one(synth.anomalous_profile(rng))
    >>> verdict.score > 0.8, verdict.reasons[0].code
    (True, 'profile_anomaly')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator
from river import anomaly, base

from detectors.base import DetectorScore, Features
from schemas.outputs import Reason

__all__ = ["DEFAULT_FEATURES", "AnomalyConfig", "AnomalyModel", "FeatureRange"]

_SnakeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class FeatureRange(BaseModel):
    """How one feature is put into [0, 1]: clip to [low, high], then linear or log1p scale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: _SnakeName = Field(description="Profile feature (see detectors.profile.features).")
    low: float = Field(default=0.0, description="Values below are clipped.")
    high: float = Field(description="Values above are clipped; pick a high quantile of the normal population.")
    log: bool = Field(default=False, description="log1p scale: counts and amounts are heavy-tailed.")

    @model_validator(mode="after")
    def _ordered(self) -> FeatureRange:
        if not self.high > self.low:
            raise ValueError(f"{self.name}: high ({self.high}) must be greater than low ({self.low})")
        return self

    def scale(self, value: float) -> float:
        """``value`` in [0, 1]."""
        v = min(max(value, self.low), self.high) - self.low
        span = self.high - self.low
        return math.log1p(v) / math.log1p(span) if self.log else v / span

    def unscale(self, s: float) -> float:
        """Inverse of :meth:`scale` for ``s`` in [0, 1] (used to state thresholds in raw units)."""
        s = min(max(s, 0.0), 1.0)
        span = self.high - self.low
        return self.low + (math.expm1(s * math.log1p(span)) if self.log else s * span)


def _r(name: str, high: float, log: bool = True) -> FeatureRange:
    return FeatureRange(name=name, high=high, log=log)


DEFAULT_FEATURES: Final[tuple[FeatureRange, ...]] = (
    _r("applications_30m", 20),
    _r("limit_queries_30m", 30),
    _r("logins_30m", 30),
    _r("drawdowns_24h", 20),
    _r("limit_used_share", 1, log=False),
    _r("distinct_devices_24h", 10),
    _r("distinct_ips_24h", 20),
    _r("night_share_24h", 1, log=False),
    _r("profile_changes_24h", 10),
    _r("inquiries_nonbank_30d", 40),
    _r("inquiries_bank_30d", 20),
    _r("current_dpd", 90),
    _r("missed_payments_30d", 10),
)
"""Profile features and ranges the model watches by default; override per deployment in configuration."""


class AnomalyConfig(BaseModel):
    """Configuration of :class:`AnomalyModel` (defaults measured on ``detectors.models.synth`` traffic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detector_id: _SnakeName = Field(
        default="profile_anomaly", description="Id of the model's scores; key of its fusion weight."
    )
    features: tuple[FeatureRange, ...] = Field(
        default=DEFAULT_FEATURES, min_length=1, description="Features watched and their ranges; others are ignored."
    )
    n_trees: int = Field(default=10, ge=1, le=100, description="HalfSpaceTrees trees.")
    height: int = Field(default=8, ge=1, le=16, description="Tree height; cost grows with it.")
    window_size: int = Field(default=250, ge=10, description="Vectors per reference window of masses.")
    seed: int = Field(default=42, description="Seeds the random cuts: same seed and data, same scores.")
    warm_up: int = Field(default=1000, ge=0, description="Learned vectors before the model scores (≥ window).")
    protect_threshold: float = Field(
        default=0.8, gt=0, le=1, description="Vectors scoring at or above this are never learned."
    )
    explain_threshold: float = Field(default=0.7, ge=0, le=1, description="Reasons are given from this score.")
    top_reasons: int = Field(default=3, ge=1, le=10, description="Features named in the reasons.")
    usual_z: float = Field(default=2.0, gt=0, description="'Usual' range is the running mean ± usual_z std.")
    min_std: float = Field(default=0.02, gt=0, description="Std floor (scaled units) for constant features.")

    @model_validator(mode="after")
    def _consistent(self) -> AnomalyConfig:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("features: duplicate feature names")
        if self.warm_up < self.window_size:
            raise ValueError("warm_up must be at least window_size (HalfSpaceTrees score 0 in their first window)")
        return self


@dataclass(slots=True)
class _Moments:
    """Running mean and variance (Welford) of one scaled feature over the learned vectors."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, v: float) -> None:
        self.n += 1
        delta = v - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (v - self.mean)

    def std(self) -> float:
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else 0.0


class AnomalyModel(base.Base):
    """HalfSpaceTrees on fixed-range scaled profile features, with warm-up, protection and reasons.

    ``score_one`` never changes the model; ``learn_one`` skips vectors the model flags. ``score_and_learn``
    does both with one pass over the trees (what a worker calls per event).
    """

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config if config is not None else AnomalyConfig()
        self.detector_id = self.config.detector_id
        self._ranges = {f.name: f for f in self.config.features}
        # River's methods are untyped: the wrapper's own signatures are the typed surface.
        self._hst: Any = anomaly.HalfSpaceTrees(
            n_trees=self.config.n_trees,
            height=self.config.height,
            window_size=self.config.window_size,
            seed=self.config.seed,
        )
        self._moments = {name: _Moments() for name in self._ranges}
        self.n_learned = 0
        self.n_protected = 0

    def _scaled(self, x: Features) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, rng in self._ranges.items():
            value = x.get(name)
            if value is not None and math.isfinite(value):
                out[name] = rng.scale(float(value))
        return out

    @property
    def warmed_up(self) -> bool:
        """True once ``warm_up`` vectors have been learned."""
        return self.n_learned >= self.config.warm_up

    def _raw_score(self, scaled: dict[str, float]) -> float:
        return float(self._hst.score_one(scaled)) if self.warmed_up else 0.0

    def score_one(self, x: Features) -> DetectorScore:
        """Anomaly score in [0, 1] (0 during warm-up) with the most deviating features as reasons."""
        return self._verdict(x, self._scaled(x))

    def learn_one(self, x: Features) -> None:
        """Learn ``x`` unless the model flags it (score ≥ ``protect_threshold``)."""
        scaled = self._scaled(x)
        self._learn(scaled, self._raw_score(scaled))

    def score_and_learn(self, x: Features) -> DetectorScore:
        """Score ``x``, then learn it unless flagged; same result as ``score_one`` then ``learn_one``."""
        scaled = self._scaled(x)
        verdict = self._verdict(x, scaled)
        self._learn(scaled, verdict.score)
        return verdict

    def _learn(self, scaled: dict[str, float], score: float) -> None:
        if score >= self.config.protect_threshold:
            self.n_protected += 1
            return
        if self.n_learned == 0:
            # The trees are cut over the features of the first vector learned: give them all of them.
            scaled = {name: scaled.get(name, 0.0) for name in self._ranges}
        self._hst.learn_one(scaled)
        for name, v in scaled.items():
            self._moments[name].update(v)
        self.n_learned += 1

    def _verdict(self, x: Features, scaled: dict[str, float]) -> DetectorScore:
        score = min(max(self._raw_score(scaled), 0.0), 1.0)
        if score < self.config.explain_threshold or not scaled:
            return DetectorScore(self.detector_id, score)
        return DetectorScore(self.detector_id, score, self._reasons(x, scaled, score))

    def _reasons(self, x: Features, scaled: dict[str, float], score: float) -> tuple[Reason, ...]:
        cfg = self.config
        deviations = []
        for name, v in scaled.items():
            m = self._moments[name]
            std = max(m.std(), cfg.min_std)
            deviations.append(((v - m.mean) / std, name))
        deviations.sort(key=lambda d: (-abs(d[0]), d[1]))
        reasons = []
        for z, name in deviations[: cfg.top_reasons]:
            rng, m = self._ranges[name], self._moments[name]
            edge = m.mean + math.copysign(cfg.usual_z * max(m.std(), cfg.min_std), z)
            usual, bound = rng.unscale(m.mean), rng.unscale(edge)
            relation = "above" if z >= 0 else "below"
            reasons.append(
                Reason(
                    code="profile_anomaly",
                    message=(
                        f"{name}={float(x[name]):.4g} is {relation} its usual range (mean {usual:.4g}, "
                        f"bound {bound:.4g}); profile anomaly score {score:.2f}"
                    ),
                    feature=name,
                    value=float(x[name]),
                    threshold=bound,
                )
            )
        return tuple(reasons)
