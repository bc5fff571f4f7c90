"""One partition's models, checkpointed as bytes, so a restart or rebalance never resets learning.

A worker saves them periodically (``LOANWATCH_MODEL_CHECKPOINT_SECONDS``, 30 s) and restores them when the
partition is assigned; on revocation it drops them (the next owner starts from the last checkpoint).

Format: one version byte, then a pickle of the :class:`ModelSet`. Pickle runs code on load, so checkpoints
are only ever read from our own compacted checkpoint topic, written by our own workers; never load bytes from
anywhere else. An unknown version byte is refused, not guessed at.

Example:
    >>> models = ModelSet(partition=3)
    >>> restored = ModelSet.from_bytes(models.to_bytes())
    >>> restored.partition, restored.anomaly.config == models.anomaly.config
    (3, True)
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Final

from detectors.base import DetectorScore, Features
from detectors.models.anomaly import AnomalyModel
from detectors.models.delinquency import DelinquencyModel
from detectors.models.drift import DriftEvent, DriftMonitor

__all__ = ["FORMAT_VERSION", "CheckpointError", "ModelSet"]

FORMAT_VERSION: Final = 1
_PROTOCOL: Final = 5


class CheckpointError(ValueError):
    """Checkpoint bytes that this code cannot restore (empty, unknown version, not a ModelSet)."""


@dataclass(slots=True)
class ModelSet:
    """The River models of one source partition: anomaly, delinquency (with pending outcomes) and drift."""

    partition: int
    anomaly: AnomalyModel = field(default_factory=AnomalyModel)
    delinquency: DelinquencyModel = field(default_factory=DelinquencyModel)
    drift: DriftMonitor = field(default_factory=DriftMonitor)

    def score_one(self, x: Features) -> tuple[DetectorScore, DetectorScore]:
        """Anomaly and delinquency scores of ``x``; changes nothing."""
        return self.anomaly.score_one(x), self.delinquency.score_one(x)

    def process_one(self, x: Features) -> tuple[DetectorScore, DetectorScore, list[DriftEvent]]:
        """Score ``x``, learn it into the anomaly model (unless flagged) and feed both scores to drift."""
        anomaly = self.anomaly.score_and_learn(x)
        delinquency = self.delinquency.score_one(x)
        events = self.drift.update_many(
            {f"score.{anomaly.detector_id}": anomaly.score, f"score.{delinquency.detector_id}": delinquency.score}
        )
        return anomaly, delinquency, events

    def to_bytes(self) -> bytes:
        """Version byte + pickle of the whole set."""
        return bytes([FORMAT_VERSION]) + pickle.dumps(self, protocol=_PROTOCOL)

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelSet:
        """Restore a checkpoint written by :meth:`to_bytes` (trusted bytes only: see the module docstring)."""
        if not data:
            raise CheckpointError("empty checkpoint")
        if data[0] != FORMAT_VERSION:
            raise CheckpointError(f"unknown checkpoint format version {data[0]} (this code reads {FORMAT_VERSION})")
        # Trusted input: checkpoints come only from our own compacted topic, written by our workers.
        loaded = pickle.loads(data[1:])  # noqa: S301
        if not isinstance(loaded, cls):
            raise CheckpointError(f"checkpoint holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded
