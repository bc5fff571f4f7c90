"""Process-wide logging set-up for the command line (libraries only ever get loggers)."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    """Timestamped lines on stderr; Kafka client chatter is kept at WARNING unless DEBUG is asked for."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if level != "DEBUG":
        for noisy in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
