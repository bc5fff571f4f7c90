"""River online models: profile anomaly, delinquency from repayment outcomes, drift, per-partition checkpoints."""

from detectors.models.anomaly import AnomalyConfig, AnomalyModel, FeatureRange
from detectors.models.checkpoint import CheckpointError, ModelSet
from detectors.models.delinquency import DelinquencyConfig, DelinquencyModel, PendingOutcomes, grade
from detectors.models.drift import DriftConfig, DriftEvent, DriftMonitor

__all__ = [
    "AnomalyConfig",
    "AnomalyModel",
    "CheckpointError",
    "DelinquencyConfig",
    "DelinquencyModel",
    "DriftConfig",
    "DriftEvent",
    "DriftMonitor",
    "FeatureRange",
    "ModelSet",
    "PendingOutcomes",
    "grade",
]
