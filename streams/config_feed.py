"""The live rule set and allow-list of a worker, read from ``risk.rules.v1`` and ``risk.allowlist.v1``.

Every worker reads both compacted topics in full — all partitions, from the beginning, outside any consumer
group — so every worker holds the same copy, as a Faust GlobalTable would. A plain reader is used instead of a
GlobalTable because the topics are written by ``loanwatch rules push`` / ``loanwatch allowlist``, not by the
workers: Faust's GlobalTable does not apply records other processes write to the partitions it holds as active
(faust-streaming#283, robinhood/faust#541), and its assignor assumes the changelog topic is ``<app>-<table>-
changelog``. Here the latest record per key wins and a tombstone deletes, exactly as compaction keeps them.

The agent waits for :attr:`ConfigFeed.ready` (both topics read up to their end as of start) before its first
batch, so a restarted worker never scores with defaults it should not use; afterwards each batch picks up the
newest rule set. A record that does not validate is logged with the reason and ignored: the previous rule set
stays in force, and ``loanwatch rules push`` validates before it publishes, so this is the last line of defence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from detectors.engine import Engine, EngineConfig
from schemas import serde
from schemas.allowlist import AllowListEntry, allowlist_key
from streams.rules_file import RulesFileError, rules_from_record
from streams.settings import Settings

__all__ = ["RULES_KEY", "ConfigFeed", "LiveConfig"]

log = logging.getLogger(__name__)

RULES_KEY = b"rules"
"""Key of the rule-set record on ``risk.rules.v1``; the topic keeps the latest record per key."""


@dataclass
class LiveConfig:
    """The newest valid rule set and the allow-list, updated record by record (no I/O: unit-testable)."""

    fallback: EngineConfig
    rules: EngineConfig | None = None
    allowlist: dict[str, AllowListEntry] = field(default_factory=dict)
    rejected: int = 0

    @property
    def current(self) -> EngineConfig:
        """The rule set in force: the latest valid record, or the fallback (rules file / defaults) before one."""
        return self.rules if self.rules is not None else self.fallback

    def apply_rules(self, key: bytes | None, value: bytes | None, where: str) -> None:
        """Apply one ``risk.rules.v1`` record."""
        if key != RULES_KEY:
            log.warning("ignored %s: key %r is not %r", where, key, RULES_KEY)
            return
        if value is None:
            log.warning("rule set deleted by a tombstone at %s; back to the fallback rule set", where)
            self.rules = None
            return
        try:
            config = rules_from_record(value, where)
        except RulesFileError as exc:
            self.rejected += 1
            log.error("rejected rule set (%s); version %d stays in force", exc, self.current.version)
            return
        before = self.current.version
        self.rules = config
        log.info("rule set version %d in force (was %d), from %s", config.version, before, where)

    def apply_allowlist(self, key: bytes | None, value: bytes | None, where: str) -> None:
        """Apply one ``risk.allowlist.v1`` record: an entry, or a tombstone that removes one."""
        name = key.decode("utf-8", "replace") if key is not None else None
        if name is None:
            log.warning("ignored %s: allow-list record without a key", where)
            return
        if value is None:
            if self.allowlist.pop(name, None) is not None:
                log.info("allow-list entry %s removed", name)
            return
        try:
            entry = AllowListEntry.model_validate(serde.loads(value))
        except (ValidationError, serde.JSONDecodeError) as exc:
            self.rejected += 1
            log.error("rejected allow-list record %s at %s: %s", name, where, exc)
            return
        if allowlist_key(entry.kind, entry.value) != name:
            self.rejected += 1
            log.error("rejected allow-list record at %s: key %s does not match its entry", where, name)
            return
        if self.allowlist.get(name) != entry:
            log.info("allow-list entry %s in force (%s, by %s)", name, entry.reason, entry.added_by)
        self.allowlist[name] = entry

    def entity_allowlist(self, at_ms: int) -> frozenset[tuple[str, str]]:
        """The allow-listed entities ``(kind, value)`` in force at ``at_ms``: they never link customers."""
        return frozenset(
            (e.kind, e.value) for e in self.allowlist.values() if e.kind != "customer" and e.active_at(at_ms)
        )

    def customer_allowlisted(self, customer_id: str, at_ms: int) -> bool:
        """Whether ``customer_id`` is allow-listed for an event at ``at_ms`` (event time)."""
        entry = self.allowlist.get(f"customer:{customer_id}")
        return entry is not None and entry.active_at(at_ms)


class ConfigFeed:
    """A daemon thread that keeps a :class:`LiveConfig` in step with the two compacted topics."""

    def __init__(self, settings: Settings, fallback: EngineConfig) -> None:
        self.live = LiveConfig(fallback)
        self.ready = threading.Event()
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="config-feed", daemon=True)
        self._engine: tuple[EngineConfig, Engine] | None = None

    def start(self) -> None:
        """Start reading (once); :attr:`ready` is set once both topics are read up to where they ended at start."""
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the reader thread is running."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop the reader thread."""
        self._stop.set()
        self._thread.join(timeout=10)

    def engine(self) -> Engine:
        """An engine for the rule set in force, rebuilt only when the rule set changes."""
        config = self.live.current
        if self._engine is None or self._engine[0] is not config:
            self._engine = (config, Engine(config))
        return self._engine[1]

    def _run(self) -> None:
        topics = self._settings.topics
        handlers: dict[str, Callable[[bytes | None, bytes | None, str], None]] = {
            topics.rules: self.live.apply_rules,
            topics.allowlist: self.live.apply_allowlist,
        }
        consumer = Consumer(self._settings.reader_config("config-feed"))
        try:
            pending = self._assign_all(consumer, list(handlers))
            while not self._stop.is_set():
                for message in consumer.consume(num_messages=500, timeout=0.5):
                    self._handle(message, handlers, pending)
                if not pending and not self.ready.is_set():
                    log.info("rule set version %d and %d allow-list entries loaded",
                             self.live.current.version, len(self.live.allowlist))
                    self.ready.set()
        except Exception:
            log.exception("config feed stopped; the rule set and allow-list no longer update")
            raise
        finally:
            consumer.close()

    def _assign_all(self, consumer: Consumer, names: list[str]) -> set[tuple[str, int]]:
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(timeout=10)
            except KafkaException as exc:
                log.warning("waiting for Kafka to read the rule set: %s", exc)
                continue
            missing = [n for n in names if n not in metadata.topics or metadata.topics[n].error is not None]
            if missing:
                log.warning("waiting for topics %s (run `loanwatch init`)", ", ".join(missing))
                self._stop.wait(2.0)
                continue
            parts = [TopicPartition(n, p, OFFSET_BEGINNING) for n in names for p in metadata.topics[n].partitions]
            consumer.assign(parts)
            return {(tp.topic, tp.partition) for tp in parts}
        return set()

    @staticmethod
    def _handle(
        message: Message,
        handlers: dict[str, Callable[[bytes | None, bytes | None, str], None]],
        pending: set[tuple[str, int]],
    ) -> None:
        topic, partition = message.topic(), message.partition()
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard((str(topic), int(partition or 0)))
            else:
                log.warning("config feed: %s", error)
            return
        where = f"{topic}[{partition}]@{message.offset()}"
        handlers[str(topic)](message.key(), message.value(), where)
