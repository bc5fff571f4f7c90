"""Notes where each input partition's offsets do not follow one another, as the worker receives them.

Within one partition Kafka hands out consecutive offsets (the input topics are neither compacted nor written in
transactions), so a jump forward means records the worker never received, and a step back a re-read (after a
rebalance, Faust seeks to the committed offset). Both are worth a log line: a jump forward is records missed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OffsetTrail:
    """The last offset received per (topic, partition); :meth:`note` reports a discontinuity."""

    last: dict[tuple[str, int], int] = field(default_factory=dict)

    def note(self, topic: str, partition: int, offset: int) -> int | None:
        """Record ``offset``; return the previous offset if this one does not follow it, else None."""
        key = (topic, partition)
        previous = self.last.get(key)
        self.last[key] = offset
        if previous is None or offset == previous + 1:
            return None
        return previous

    def forget(self, topic: str, partition: int) -> None:
        """The partition was revoked: whatever comes next for it starts a new trail."""
        self.last.pop((topic, partition), None)
