"""Fail fast and clearly when Kafka cannot be reached or refuses our credentials, instead of retrying forever.

Kafka clients treat a refused login as one more connection failure and keep retrying, so a wrong password looks
like a hang. Processes call :func:`check_access` before they start: it lists the cluster's metadata with the configured
security and names the broker's reason when that fails. Messages never carry a secret.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streams.settings import Settings

_AUTH_CODES = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})  # noqa: SLF001


class KafkaAccessError(KafkaException):
    """Kafka could not be reached, or refused the configured credentials; the message says which and why."""

    def __str__(self) -> str:
        """The message alone (KafkaException would print the args tuple)."""
        return str(self.args[0])


def check_access(settings: Settings, timeout: float = 15.0) -> None:
    """Connect as configured and read the cluster metadata; raise :class:`KafkaAccessError` within ``timeout``."""
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**settings.confluent_config(), "error_cb": errors.append}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            return
        except KafkaException as exc:
            last = str(exc.args[0].str()) if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
        admin.poll(0)  # serves error_cb, where a refused login is reported
        refused = next((e for e in errors if e.code() in _AUTH_CODES), None)
        if refused is not None:
            raise KafkaAccessError(f"{_who(settings)} refused the credentials: {refused.str()}")
        if time.monotonic() >= deadline:
            reasons = "; ".join(dict.fromkeys(e.str() for e in errors)) or last
            raise KafkaAccessError(f"{_who(settings)} did not answer within {timeout:.0f}s: {reasons}")


def kafka_reachable(settings: Settings, timeout: float = 5.0) -> bool:
    """Whether the cluster answers a metadata request within ``timeout`` (blocking)."""
    try:
        check_access(settings, timeout)
    except KafkaException:
        return False
    return True


def _who(settings: Settings) -> str:
    """Where and as whom we connect, for error messages (no secret)."""
    who = f"Kafka at {settings.bootstrap()} ({settings.kafka_security_protocol}"
    if settings.kafka_sasl_username is not None:
        who += f", {settings.kafka_sasl_mechanism} user {settings.kafka_sasl_username!r}"
    return who + ")"
