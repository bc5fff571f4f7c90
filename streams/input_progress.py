"""Per input partition, the next offset to apply: records are applied in offset order, with none left out.

Faust can hand the agent a partition's records with one missing: in a rebalance it empties the agents' queues
and a record being handed over may be dropped while the next one is delivered, and the dropped one can still be
counted as acknowledged, so the commit moves past it (the fault suite's join/leave test lost a page view that
way). The profile agent therefore keeps, in a table co-partitioned with its input, the next offset it expects
from each input partition, and judges every record against it:

- ``apply``: the expected one (or the first ever seen);
- ``replay``: below it, applied already (a redelivery after a restart or a rebalance); skipped;
- ``gap``: beyond it: records in between never arrived. The agent reads them directly
  (``streams.partition_fetch``) and applies them, in order, before this one.

Kept in the table, the expectation travels with the partition, so a new owner that Faust starts past a dropped
record finds the gap too (the fault suite's kill test saw Faust start a restarted worker 34 records past the
last one applied). A partition that now ends before the expected offset was deleted and created again: its
records start afresh. Records that no longer exist (deleted by retention while the worker was down) are given
up with an ERROR naming them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["apply", "replay", "gap"]
Key = tuple[str, int]


@dataclass
class InputProgress:
    """The next offset per (topic, partition) as far as known; :meth:`judge` decides each record's fate."""

    expected: dict[Key, int] = field(default_factory=dict)

    def judge(
        self, topic: str, partition: int, offset: int, end_offset: Callable[[], int | None] | None = None
    ) -> Verdict:
        """The record's verdict; ``apply`` moves the expectation past it.

        ``end_offset`` gives the partition's end offset (None: unknown); asked only for a record below the
        expectation, to tell a redelivery from a partition created again.
        """
        key = (topic, partition)
        expected = self.expected.get(key)
        if expected is None or offset == expected:
            self.expected[key] = offset + 1
            return "apply"
        if offset < expected:
            end = end_offset() if end_offset is not None else None
            if end is not None and end < expected:
                self.expected[key] = offset + 1  # the partition is shorter than what was applied: recreated
                return "apply"
            return "replay"
        return "gap"

    def skip_to(self, topic: str, partition: int, offset: int) -> None:
        """Expect ``offset`` next (loaded from the table, or the records before it given up)."""
        self.expected[(topic, partition)] = offset
