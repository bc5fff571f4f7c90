"""The two baseline Faust workers of ``bench/bench_pipeline.py``, run as subprocesses like ``loanwatch worker``.

Run: python -m bench.pipeline_apps passthrough|decode_only|windowed [--window-minutes M] [--step-seconds S]

Settings come from the ``LOANWATCH_*`` environment (``Settings.to_env()``), exactly as for the real worker, and
the ``faust.App`` is built with the same options as ``streams.app.create_app`` (commit interval, partitions,
producer limits, memory store, ...). Both read the three input topics with ``take_events(worker_batch_size,
within=worker_batch_seconds)`` and raise the producer buffer as the engine agent does; the variant's
``alerts`` topic is their output topic.

- ``passthrough``: decode each event with ``schemas.decode`` and forward its bytes to the output topic, nothing
  else. The floor of any Faust worker that reads, validates and writes every event.
- ``decode_only`` (optional in the bench): decode each event and write nothing; Faust's own consume cost.
- ``windowed``: the 30-minute multi-application burst rule written the obvious Faust way: a hopping windowed
  table (size ``--window-minutes``, step ``--step-seconds``, relative to the message timestamp = event time)
  counting ``loan_application`` per customer; when the count of the window that ends at the event reaches 3 or
  more, an alert is sent. Each event is made Faust's current event for its table update
  (``streams.faust_context.event_context``) so that windows and changelog partitions follow that event, not
  the batch's last one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import faust

from schemas import serde
from schemas.behavior import LoanApplication
from schemas.decode import decode_behavior, decode_inquiry, decode_repayment
from streams.faust_context import event_context
from streams.logs import configure_logging
from streams.settings import Settings

log = logging.getLogger("loanwatch.bench")

BURST_MIN_APPLICATIONS = 3
_REPORT_EVERY_SECONDS = 10.0


def make_app(settings: Settings) -> faust.App:
    """A ``faust.App`` with the options of ``streams.app.create_app`` (keep the two in step)."""
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.bootstrap().split(",")],
        store=settings.store,
        datadir=str(settings.home / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.worker_commit_interval,
        web_enabled=False,
        producer_max_request_size=16 * 1024 * 1024,
        producer_acks=-1,
        table_cleanup_interval=60.0,
    )


def _decoders(settings: Settings) -> dict[str, Callable[[bytes], Any]]:
    return {
        settings.topics.behavior: decode_behavior,
        settings.topics.repayment: decode_repayment,
        settings.topics.inquiry: decode_inquiry,
    }


def _raw_topic(app: faust.App, *names: str) -> Any:
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def install_passthrough(app: faust.App, settings: Settings, counts: dict[str, int]) -> None:
    """Decode every event and forward its bytes, unchanged, to the output topic."""
    decoders = _decoders(settings)
    source = _raw_topic(app, settings.topics.behavior, settings.topics.repayment, settings.topics.inquiry)
    out = _raw_topic(app, settings.topics.alerts)

    @app.agent(source, name="passthrough")
    async def passthrough(stream: Any) -> None:
        app.producer.buffer.max_messages = max(100, 2 * settings.worker_batch_size)
        async for batch in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_seconds):
            for event in batch:
                counts["events"] += 1
                message = event.message
                try:
                    decoders[message.topic](event.value)
                except Exception:  # noqa: BLE001, S112 — the bench traffic has no malformed messages
                    counts["undecodable"] += 1
                    continue
                await out.send(key=message.key, value=event.value)
                counts["sent"] += 1


def install_decode_only(app: faust.App, settings: Settings, counts: dict[str, int]) -> None:
    """Decode every event and write nothing: what Faust alone costs to consume, batch and ack."""
    decoders = _decoders(settings)
    source = _raw_topic(app, settings.topics.behavior, settings.topics.repayment, settings.topics.inquiry)

    @app.agent(source, name="decode_only")
    async def decode_only(stream: Any) -> None:
        async for batch in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_seconds):
            for event in batch:
                counts["events"] += 1
                try:
                    decoders[event.message.topic](event.value)
                except Exception:  # noqa: BLE001, S112 — the bench traffic has no malformed messages
                    counts["undecodable"] += 1


def install_windowed(
    app: faust.App, settings: Settings, counts: dict[str, int], window_minutes: float, step_seconds: float
) -> None:
    """Count loan applications per customer in a hopping windowed table; alert at 3 or more."""
    decoders = _decoders(settings)
    source = _raw_topic(app, settings.topics.behavior, settings.topics.repayment, settings.topics.inquiry)
    out = _raw_topic(app, settings.topics.alerts)
    size = window_minutes * 60.0
    table = (
        app.Table("applications", default=int, partitions=settings.partitions, key_type=str, value_type=int)
        .hopping(size, step_seconds, expires=timedelta(seconds=2 * size))
        .relative_to_stream()
    )
    # WindowSet.delta(d) reads the window current at (event time - d); with d = size - step that is the
    # earliest window holding the event: the one covering the most recent `size` seconds of applications.
    lookback = size - step_seconds

    @app.agent(source, name="windowed")
    async def windowed(stream: Any) -> None:
        app.producer.buffer.max_messages = max(100, 2 * settings.worker_batch_size)
        async for batch in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_seconds):
            for event in batch:
                counts["events"] += 1
                try:
                    decoded = decoders[event.message.topic](event.value)
                except Exception:  # noqa: BLE001, S112 — the bench traffic has no malformed messages
                    counts["undecodable"] += 1
                    continue
                if not isinstance(decoded, LoanApplication):
                    continue
                customer = decoded.customer_id
                with event_context(event):
                    window_set = table[customer]
                    window_set += 1
                    in_window = cast(int, table[customer].delta(lookback))
                if in_window >= BURST_MIN_APPLICATIONS:
                    counts["sent"] += 1
                    alert = {
                        "customer_id": customer,
                        "rule_id": "multi_application_burst",
                        "applications": in_window,
                        "window_minutes": window_minutes,
                        "trigger_event_id": decoded.event_id,
                    }
                    await out.send(key=customer.encode(), value=serde.dumps(alert))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", choices=["passthrough", "decode_only", "windowed"])
    parser.add_argument("--window-minutes", type=float, default=30.0)
    parser.add_argument("--step-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging(settings.log_level)
    app = make_app(settings)
    counts = {"events": 0, "undecodable": 0, "sent": 0}
    if args.variant == "passthrough":
        install_passthrough(app, settings, counts)
    elif args.variant == "decode_only":
        install_decode_only(app, settings, counts)
    else:
        install_windowed(app, settings, counts, args.window_minutes, args.step_seconds)

    @app.timer(interval=_REPORT_EVERY_SECONDS)  # type: ignore[untyped-decorator]
    async def report() -> None:
        log.info("events=%d undecodable=%d sent=%d", counts["events"], counts["undecodable"], counts["sent"])

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, loop=loop, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
