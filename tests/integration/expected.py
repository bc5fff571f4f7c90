"""The alerts a stream must give, computed offline with the same detector, per customer in produced order.

A customer's events all go to one partition, so the worker sees them in the order they were produced; the burst
detector is unit-tested on its own, so replaying it here is the oracle for "nothing lost, nothing doubled".
"""

from __future__ import annotations

from collections.abc import Iterable

from detectors.burst import Application, BurstState, update
from detectors.engine import EngineConfig
from schemas.behavior import LoanApplication
from schemas.common import to_ms
from schemas.decode import decode_behavior
from schemas.outputs import Alert


def expected_alerts(values: Iterable[bytes], rules: EngineConfig | None = None) -> dict[str, Alert]:
    """Alert id → alert for the behaviour-topic values, in produced order; undecodable values are skipped."""
    rules = rules or EngineConfig()
    states: dict[str, BurstState] = {}
    out: dict[str, Alert] = {}
    for raw in values:
        try:
            event = decode_behavior(raw)
        except Exception:  # noqa: BLE001, S112 — malformed input raises nothing; the pipeline dead-letters it
            continue
        if not isinstance(event, LoanApplication):
            continue
        state = states.get(event.customer_id, BurstState())
        result = update(
            state,
            event.customer_id,
            Application(event.event_id, to_ms(event.ts), event.product, event.channel),
            rules.burst,
        )
        states[event.customer_id] = result.state
        for alert in result.alerts:
            out[alert.alert_id] = alert
    return out
