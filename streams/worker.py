"""`loanwatch worker`: run the Faust app until SIGTERM / Ctrl-C, logging what the agents did."""

from __future__ import annotations

import asyncio
import logging

import faust

from streams.agent_watchdog import install_agent_watchdog
from streams.app import WorkerCounters, create_app
from streams.kafka_check import KafkaAccessError, check_access
from streams.metrics import WorkerMetrics, start_exporter
from streams.rules_file import load_rules
from streams.settings import Settings

log = logging.getLogger("loanwatch.worker")

# How often the worker logs its counters: enough for an operator to see progress, rare enough not to flood.
_REPORT_EVERY_SECONDS = 10.0


def run_worker(settings: Settings) -> None:
    """Build the app from settings and block in the Faust worker until stopped.

    Exits with code 1, the reason logged, when Kafka cannot be reached or refuses the credentials: a wrong password
    is an error at start, not a worker that silently retries. Exits with code 70 when an agent crashes
    (see :mod:`streams.agent_watchdog`).
    """
    try:
        check_access(settings)
    except KafkaAccessError as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(1) from None
    rules = load_rules(settings.rules_file)
    counters = WorkerCounters()
    metrics = WorkerMetrics(settings.app_id)
    app = create_app(settings, rules, counters, metrics)
    install_agent_watchdog(app)  # an agent that crashes ends the process instead of leaving it idle
    if settings.worker_metrics_port:
        start_exporter(metrics.registry, settings.worker_metrics_port, settings.metrics_addr)

    @app.timer(interval=_REPORT_EVERY_SECONDS)  # type: ignore[untyped-decorator]
    async def report() -> None:
        log.info(
            "events=%d dead_letters=%d alerts=%d %s limit_actions=%d snapshots=%d allowlisted=%d",
            counters.events,
            counters.dead_letters,
            counters.alerts,
            counters.by_tier,
            counters.limit_actions,
            counters.snapshots,
            counters.allowlisted,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # override_logging=False keeps the handler `loanwatch` set up (text or JSON, secrets masked) in place of
    # mode's coloured one; without that handler Faust's start-up spinner would only write cursor codes to stdout.
    worker = faust.Worker(
        app, loglevel=settings.log_level, quiet=True, loop=loop, redirect_stdouts=False, override_logging=False
    )
    worker.spinner = None
    worker.execute_from_commandline()
