"""Ends a worker that owns partitions with records waiting but has neither applied nor committed any for too long.

The agent watchdog (``streams.agent_watchdog``) catches an agent that crashed. A worker can also stand still
with every agent alive: Faust can hold a partition and never fetch from it again after a rebalance or a restart
(robinhood/faust#301, faust-streaming/faust#324), and a worker that stalls that way keeps its partitions from the
rest of the group. Lag alone cannot tell that from a busy worker, but a commit that does not move while the lag
stays above zero can: the worker commits every ``worker_commit_interval`` seconds whatever it has applied. One
batch can take long without a commit (records read directly to fill a gap are applied in one batch), so a
partition whose records the engine agent applied since the last sample counts as moving too.

:class:`StallWatch` is the pure half: fed the lag probe's samples, it names the partitions that have had records
waiting and neither a commit nor a record applied for ``stall_seconds``. The lag probe then logs them and ends the
process with :data:`EXIT_STALLED`, for the supervisor to start it again; nothing is lost, as the next worker
re-reads from the last commit. Unless the broker cannot be reached: nothing commits then, and a restarted worker
could not start, so the probe asks the broker first and, without an answer, waits on with every clock restarted.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["EXIT_STALLED", "AgentActivity", "Stalled", "StallWatch"]

#: EX_TEMPFAIL: a temporary failure, to be retried by starting the worker again.
EXIT_STALLED: Final = 75

Key = tuple[str, int]


@dataclass(frozen=True)
class Stalled:
    """A partition with ``lag`` records waiting and neither a commit nor a record applied for ``seconds``."""

    topic: str
    partition: int
    lag: int
    committed: int | None
    seconds: float


@dataclass
class AgentActivity:
    """What an agent reading ``topics`` did since the last sample, filled by the agent.

    The partitions it applied records of, and whether it is inside a batch now; :meth:`take_moving` reads and
    empties it.
    """

    topics: frozenset[str]
    applied: set[Key] = field(default_factory=set)
    in_batch: bool = False

    def take_moving(self, owned: Iterable[Key]) -> set[Key]:
        """The partitions to count as moving since the last call.

        Inside a batch that applied records, every owned partition of the agent's topics: a long batch (a gap read
        directly) holds all their commits back, not only those of the partition it reads. Between batches, or
        inside a batch that applied nothing, only the partitions it applied records of: a partition Faust no
        longer fetches is then found while the others flow.
        """
        applied, self.applied = self.applied, set()
        if self.in_batch and applied:
            return {key for key in owned if key[0] in self.topics} | applied
        return applied


@dataclass
class _Seen:
    committed: int | None
    since: float  # when the partition last moved (commit, record applied), had nothing waiting, or was restored


@dataclass
class StallWatch:
    """Per owned partition, how long records have waited without moving; ``stall_seconds`` 0 watches nothing."""

    stall_seconds: float
    _seen: dict[Key, _Seen] = field(default_factory=dict)

    def observe(
        self,
        now: float,
        samples: Iterable[tuple[str, int, int, int | None]],
        restoring: bool = False,
        applied: Collection[Key] = (),
    ) -> list[Stalled]:
        """Feed one sample of (topic, partition, lag, committed) per owned partition; return the stalled ones.

        A partition absent from a sample is no longer owned (or its highwater is unknown): it is forgotten, so a
        partition handed back later starts its clock afresh. ``restoring``: the worker is rebalancing or
        restoring its tables from their changelogs, which holds every commit back for as long as the tables are
        big; every clock starts afresh. ``applied``: partitions the worker applied records of since the last
        sample: moving too, even with no commit yet (a long gap read directly is one batch, committed at its end).
        """
        stalled: list[Stalled] = []
        current: dict[Key, _Seen] = {}
        for topic, partition, lag, committed in samples:
            key = (topic, partition)
            seen = self._seen.get(key)
            if seen is None or restoring or lag <= 0 or seen.committed != committed or key in applied:
                seen = _Seen(committed, now)
            current[key] = seen
            waited = now - seen.since
            if self.stall_seconds > 0 and lag > 0 and waited >= self.stall_seconds:
                stalled.append(Stalled(topic, partition, lag, committed, waited))
        self._seen = current
        return stalled

    def hold(self, now: float) -> None:
        """Start every clock afresh: what looked like a stall has another cause (the broker cannot be reached)."""
        for seen in self._seen.values():
            seen.since = now
