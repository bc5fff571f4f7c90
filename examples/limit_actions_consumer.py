"""Apply loanwatch's limit actions once each: a confluent-kafka consumer of ``risk.limit-actions.v1``.

loanwatch delivers at least once: after a crash a worker re-sends what it had sent, with the same
``action_id``. So a limit-management service decodes each record as a ``LimitAction``, applies it only if
its ``action_id`` is new, and commits the offset after applying. In a real service the set of applied ids
lives in the same database transaction as the limit change; here it is a dict.

Run against a broker (``loanwatch broker`` prints its address)::

    python -m examples.limit_actions_consumer --bootstrap 127.0.0.1:9092 --group limit-service
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException

from schemas import topics
from schemas.outputs import LimitAction


@dataclass
class LimitBook:
    """Stands in for the service's database: applied actions by id; records handled and limit changes made."""

    applied: dict[str, LimitAction] = field(default_factory=dict)
    handled: int = 0
    changes: int = 0

    def apply(self, action: LimitAction) -> bool:
        """Apply ``action`` unless its id was applied before; True if it was new."""
        self.handled += 1
        if action.action_id in self.applied:
            return False  # a re-delivery: already applied
        factor = f" x{action.factor}" if action.factor is not None else ""
        print(f"{action.customer_id}: {action.action}{factor} (grade {action.grade}, alerts {action.alert_ids})")
        self.applied[action.action_id] = action
        self.changes += 1
        return True


def consume(consumer: Consumer, book: LimitBook, stop: Callable[[], bool]) -> None:
    """Poll, apply, commit, until ``stop()`` is true."""
    while not stop():
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            raise KafkaException(message.error())
        value = message.value()
        if value is not None:  # loanwatch sends no tombstones here
            book.apply(LimitAction.model_validate_json(value))
        # Commit only after applying: a crash before this line re-delivers the record, and apply() skips it.
        consumer.commit(message=message, asynchronous=False)


def main() -> None:
    """Consume until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Apply loanwatch limit actions, each once.")
    parser.add_argument("--bootstrap", required=True, help="host:port of a Kafka broker")
    parser.add_argument("--group", default="limit-service", help="consumer group of this service")
    parser.add_argument("--topic", default=topics.LIMIT_ACTIONS)
    args = parser.parse_args()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    stopping: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: stopping.append(signum))
    consumer.subscribe([args.topic])
    try:
        consume(consumer, LimitBook(), stop=lambda: bool(stopping))
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
