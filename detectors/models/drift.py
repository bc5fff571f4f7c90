"""Population drift on detector scores and key inputs: one River ``ADWIN`` per named stream.

A detected change is an operational signal (the population or an upstream feed shifted; thresholds tuned on
the old population may no longer hold), published for operators, never a customer alert. ADWIN is
deterministic: it checks for a cut every ``clock`` values, so the same values in the same order give the same
events.

Example:
    >>> import random
    >>> monitor = DriftMonitor(DriftConfig())
    >>> rng = random.Random(0)
    >>> values = [rng.gauss(0.2 if i < 2000 else 0.6, 0.05) for i in range(4000)]
    >>> events = [e for v in values for e in monitor.update_many({"score": v})]
    >>> len(events) >= 1 and events[0].stream == "score" and events[0].after_mean > events[0].before_mean
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field
from river import base, drift

__all__ = ["DriftConfig", "DriftEvent", "DriftMonitor"]

_ADWIN: Final[Any] = drift.ADWIN  # untyped in River; the monitor's own methods are the typed surface


@dataclass(frozen=True, slots=True)
class DriftEvent:
    """A change in the mean of ``stream``.

    ``before_mean`` is the mean of the older values ADWIN dropped at the cut, ``after_mean`` the mean of the ``n``
    values it kept. Right at detection the kept window can still hold some pre-change values, so ``after_mean``
    lies between the old and the new level; ``DriftMonitor.mean`` follows the new level as values arrive.
    """

    stream: str
    before_mean: float
    after_mean: float
    n: int


class DriftConfig(BaseModel):
    """Configuration of :class:`DriftMonitor` (ADWIN parameters are River's defaults except ``grace_period``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    streams: tuple[str, ...] = Field(default=(), description="Streams to watch; empty means any name given.")
    max_streams: int = Field(default=64, ge=1, description="Cap on monitors when ``streams`` is empty.")
    delta: float = Field(default=0.002, gt=0, lt=1, description="ADWIN confidence; smaller, fewer false alarms.")
    clock: int = Field(default=32, ge=1, description="ADWIN checks for a change every ``clock`` values.")
    grace_period: int = Field(default=100, ge=1, description="Values before the first check.")
    min_window_length: int = Field(default=5, ge=1)


class DriftMonitor(base.Base):
    """ADWIN per stream name; ``update`` returns a :class:`DriftEvent` when that stream's mean changed."""

    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config if config is not None else DriftConfig()
        self._adwins: dict[str, Any] = {}
        self.ignored = 0  # values of streams beyond ``max_streams`` or not configured

    def _adwin(self, stream: str) -> Any:
        found = self._adwins.get(stream)
        if found is not None:
            return found
        cfg = self.config
        allowed = stream in cfg.streams if cfg.streams else len(self._adwins) < cfg.max_streams
        if not allowed:
            return None
        made = _ADWIN(
            delta=cfg.delta,
            clock=cfg.clock,
            grace_period=cfg.grace_period,
            min_window_length=cfg.min_window_length,
        )
        self._adwins[stream] = made
        return made

    def update(self, stream: str, value: float) -> DriftEvent | None:
        """Add one value of ``stream``; non-finite values are ignored."""
        if not math.isfinite(value):
            return None
        adwin = self._adwin(stream)
        if adwin is None:
            self.ignored += 1
            return None
        total, width = float(adwin.total), int(adwin.width)
        adwin.update(float(value))
        if not adwin.drift_detected:
            return None
        after_total, after_n = float(adwin.total), int(adwin.width)
        dropped_n = width + 1 - after_n
        before = (total + value - after_total) / dropped_n if dropped_n > 0 else float("nan")
        after = after_total / after_n if after_n > 0 else float("nan")
        return DriftEvent(stream, before, after, after_n)

    def update_many(self, values: Mapping[str, float]) -> list[DriftEvent]:
        """Add one value per stream (e.g. a detector's scores and inputs); the drift events, by stream name."""
        events = []
        for stream in sorted(values):
            event = self.update(stream, values[stream])
            if event is not None:
                events.append(event)
        return events

    def mean(self, stream: str) -> float | None:
        """Current window mean of ``stream``; None when it is not monitored yet."""
        adwin = self._adwins.get(stream)
        return None if adwin is None else float(adwin.estimation)
