"""An extra SASL/SCRAM listener for the local broker, so clients can be tested with real authentication.

The listener is ``SASL_PLAINTEXT`` with SCRAM-SHA-512 and SCRAM-SHA-256; the controller and inter-broker
listeners stay PLAINTEXT, so the broker itself needs no credentials. SCRAM users are written into the KRaft
metadata log when the storage is formatted (``kafka-storage format --add-scram``, KIP-900), i.e. on the first start
of a home or on ``start(fresh=True)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["LISTENER_NAME", "SCRAM_MECHANISMS", "ScramUser", "format_arguments", "listener_properties", "redacted"]

#: The listener's name and security protocol in server.properties.
LISTENER_NAME = "SASL_PLAINTEXT"

#: Mechanisms the listener enables; each user gets a credential for every one of them.
SCRAM_MECHANISMS: tuple[str, ...] = ("SCRAM-SHA-512", "SCRAM-SHA-256")

# The storage tool parses `[name=...,password=...]` without escapes: keep both to characters that cannot break it.
_SAFE = re.compile(r"^[A-Za-z0-9_.~@+-]{1,128}$")

_SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class ScramUser:
    """A SCRAM user of the local broker; the password stays out of ``repr``."""

    name: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        """Refuse names and passwords the storage tool would misread."""
        if not _SAFE.match(self.name):
            raise ValueError(f"SCRAM user name {self.name!r} must match {_SAFE.pattern}")
        if not _SAFE.match(self.password):
            raise ValueError(f"the password of SCRAM user {self.name!r} must match {_SAFE.pattern}")


def listener_properties() -> dict[str, str]:
    """server.properties entries that enable SCRAM on the SASL listener (listeners themselves are set by the caller)."""
    prefix = f"listener.name.{LISTENER_NAME.lower()}"
    props = {"sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS)}
    for mechanism in SCRAM_MECHANISMS:
        # The server side of SCRAM needs a login module but no credentials of its own.
        props[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = _SCRAM_LOGIN
    return props


def format_arguments(users: Sequence[ScramUser]) -> list[str]:
    """``--add-scram`` arguments for ``kafka-storage format``: every user, every mechanism."""
    args: list[str] = []
    for user in users:
        for mechanism in SCRAM_MECHANISMS:
            args += ["--add-scram", f"{mechanism}=[name={user.name},password={user.password}]"]
    return args


def redacted(text: str, users: Sequence[ScramUser]) -> str:
    """``text`` with every user's password replaced, for logs and error messages."""
    for user in users:
        text = text.replace(user.password, "******")
    return text
