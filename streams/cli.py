"""The `loanwatch` command line."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from streams.logs import configure_logging
from streams.rules_file import RulesFileError, load_rules
from streams.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Real-time in-loan risk monitoring.")
err = Console(stderr=True)


def _settings(*, needs_kafka: bool = False, **overrides: object) -> Settings:
    """Settings from the environment; a bad value stops here with the variable and the reason."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        load_rules(settings.rules_file)
    except ValidationError as exc:
        for error in exc.errors():
            field = "_".join(str(p) for p in error["loc"]).upper()
            err.print(f"[red]configuration error[/red]: LOANWATCH_{field}: {error['msg']}")
        raise typer.Exit(2) from None
    except RulesFileError as exc:
        err.print(f"[red]rules error[/red]: {exc}")
        raise typer.Exit(2) from None
    if needs_kafka and settings.kafka_bootstrap is None:
        err.print(
            "[red]configuration error[/red]: LOANWATCH_KAFKA_BOOTSTRAP is not set. Point it at your cluster, "
            "or start a local broker with `loanwatch broker` and export the address it prints "
            "(`loanwatch demo` does all of this by itself)."
        )
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
def init() -> None:
    """Create the Kafka topics and the ClickHouse tables (idempotent)."""
    from confluent_kafka import KafkaException

    from streams.admin import TopicMismatchError
    from streams.bootstrap import initialise
    from streams.clickhouse.errors import ClickHouseError

    settings = _settings(needs_kafka=True)
    try:
        initialise(settings, progress=err.print)
    except (TopicMismatchError, KafkaException, ClickHouseError) as exc:
        err.print(f"[red]init failed[/red]: {exc}")
        raise typer.Exit(1) from None


@app.command()
def worker() -> None:
    """Run a Faust worker: decode, dead-letter, detect bursts, publish alerts."""
    from streams.worker import run_worker

    run_worker(_settings(needs_kafka=True))


@app.command()
def writer() -> None:
    """Run the ClickHouse writer until Ctrl-C / SIGTERM (buffered rows are inserted before it exits)."""
    import logging

    from rich.markup import escape

    from streams.clickhouse.connect import open_for_settings
    from streams.clickhouse.writer import ClickHouseWriter
    from streams.kafka_check import KafkaAccessError, check_access
    from streams.metrics import WriterMetrics, start_exporter

    settings = _settings(needs_kafka=True)
    try:
        check_access(settings)  # a refused login is an error now, not a consumer that silently retries
    except KafkaAccessError as exc:
        err.print(f"[red]writer not started[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    stop = _stop_on_signals()
    metrics = WriterMetrics(settings.writer_group)
    port = settings.writer_metrics_port
    exporter = start_exporter(metrics.registry, port, settings.metrics_addr) if port else None
    backend = open_for_settings(settings)
    try:
        stats = ClickHouseWriter(settings, backend, progress=None, metrics=metrics).run(stop)
    finally:
        backend.close()
        if exporter is not None:
            exporter.close()
    logging.getLogger("loanwatch.writer").info("writer stopped: %s", stats)  # a log line: JSON when logs are


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(min=1, help="simulated customers")] = 2000,
    hours: Annotated[float, typer.Option(min=1.5, help="event-time span of the traffic")] = 6.0,
    rate: Annotated[float, typer.Option(min=0, help="events per second; 0 = as fast as possible")] = 2000.0,
    seed: Annotated[int, typer.Option(help="random seed: same seed, same traffic")] = 7,
    burst_share: Annotated[float, typer.Option(min=0, max=1, help="share of customers with a burst")] = 0.02,
    malformed_share: Annotated[float, typer.Option(min=0, max=1, help="extra malformed messages")] = 0.0,
    start: Annotated[str | None, typer.Option(help="event time of the first event, ISO-8601 UTC")] = None,
    labels: Annotated[Path | None, typer.Option(help="also write the labelled stream as JSONL here")] = None,
) -> None:
    """Produce realistic labelled traffic (sessions, applications, repayments) with injected bursts."""
    from streams.simulate.produce import produce
    from streams.simulate.traffic import SimConfig, Traffic

    settings = _settings(needs_kafka=True)
    begin = datetime.fromisoformat(start) if start else datetime.now(UTC).replace(microsecond=0)
    if begin.tzinfo is None:
        err.print("[red]--start must carry a timezone, e.g. 2026-01-05T00:00:00+00:00[/red]")
        raise typer.Exit(2)
    traffic = Traffic(
        SimConfig(
            customers=customers,
            seed=seed,
            start=begin,
            hours=hours,
            burst_share=burst_share,
            malformed_share=malformed_share,
            behavior_topic=settings.topics.behavior,
            repayment_topic=settings.topics.repayment,
            inquiry_topic=settings.topics.inquiry,
        )
    )
    stop = _stop_on_signals()
    stats = produce(
        settings.confluent_config(),
        traffic.records(),
        rate=rate or None,
        stop=stop,
        progress=lambda s: err.print(f"sent {s.sent:,} delivered {s.delivered:,} in {s.elapsed_s:.0f}s"),
        labels_path=labels,
        episodes=traffic.episodes,
    )
    err.print(f"done: {stats.delivered:,} delivered, {len(traffic.episodes)} labelled episodes injected")


@app.command()
def evaluate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="labels JSONL from simulate --labels")],
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the table")] = False,
    grace_minutes: Annotated[int, typer.Option(min=0, help="alerts this long after an episode still count")] = 30,
    partitions: Annotated[int, typer.Option(min=1, help="model sets (simulated partitions)")] = 1,
    batch: Annotated[int, typer.Option(min=0, help="micro-batch size as the worker takes them; 0 = per event")] = 0,
) -> None:
    """Replay a labelled stream through the engine offline: recall, precision, delay, normal alert share."""
    from schemas import serde
    from streams.evaluate import evaluate as run_evaluation
    from streams.evaluate import render

    report = run_evaluation(
        file,
        grace_minutes=grace_minutes,
        partitions=partitions,
        batch_size=batch,
        progress=lambda n, s: err.print(f"replayed {n:,} records in {s:.0f}s ({n / max(s, 1e-9):,.0f}/s)"),
    )
    sys.stdout.write((serde.dumps(report.to_json()).decode() if json_out else render(report)) + "\n")


@app.command()
def tail(
    tier: Annotated[
        str, typer.Option(help="minimum tier: notice, attention (attention + warning) or warning")
    ] = "notice",
    rule: Annotated[list[str] | None, typer.Option(help="only this rule_id (repeatable)")] = None,
    customer: Annotated[
        list[str] | None, typer.Option(help="only this customer, also as a ring member (repeatable)")
    ] = None,
    from_beginning: Annotated[bool, typer.Option(help="replay the topic from its start, not only new alerts")] = False,
    limit: Annotated[int, typer.Option(min=0, help="exit after this many matching alerts; 0 = until Ctrl-C")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="one JSON alert per line instead of the table")] = False,
) -> None:
    """Show alerts live as they are published (China time), filtered by tier, rule and customer."""
    import os

    from rich.text import Text

    from schemas.outputs import Alert
    from streams.tail import AlertFilter, InvalidRecord, TailError, alert_table, invalid_line, json_line, tail_alerts

    try:
        alert_filter = AlertFilter.of(tier, rule or (), customer or ())
    except ValueError as exc:
        err.print(f"[red]--tier[/red]: {exc}")
        raise typer.Exit(2) from None
    settings = _settings(needs_kafka=True)
    stop = _stop_on_signals()
    out = Console(highlight=False)

    def show(alert: Alert) -> None:
        if json_out:
            sys.stdout.write(json_line(alert) + "\n")
            sys.stdout.flush()
        else:
            out.print(alert_table([alert], header=False))

    def skip(record: InvalidRecord) -> None:
        err.print(invalid_line(record))

    def ready(message: str) -> None:
        err.print(Text(message, style="dim"))
        if not json_out:
            out.print(alert_table([], header=True))

    try:
        shown = tail_alerts(
            settings, alert_filter, show=show, skip=skip, stop=stop, from_beginning=from_beginning, limit=limit,
            ready=ready,
        )
    except TailError as exc:
        err.print(f"[red]cannot tail[/red]: {exc}")
        raise typer.Exit(1) from None
    except BrokenPipeError:  # the reader of a pipe went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    err.print(Text(f"{shown} alert{'' if shown == 1 else 's'} shown", style="dim"))


@app.command()
def console(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8088,
) -> None:
    """Serve the risk-operations console: live alert feed, per-tier chart, top rules, customer pages."""
    from streams.clickhouse.errors import ClickHouseError
    from streams.console.run import run_console

    settings = _settings()
    try:
        run_console(settings, host, port, progress=err.print)
    except ClickHouseError as exc:
        err.print(f"[red]cannot read ClickHouse[/red]: {exc}")
        raise typer.Exit(1) from None


@app.command()
def demo(
    duration: Annotated[
        float, typer.Option(min=10, help="stop after this many seconds at the latest")
    ] = 180.0,
    customers: Annotated[int, typer.Option(min=10)] = 3000,
    hours: Annotated[float, typer.Option(min=1.5, help="event-time span of the simulated traffic")] = 10.0,
    rate: Annotated[float, typer.Option(min=1, help="events per second")] = 1000.0,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Start a local broker and embedded ClickHouse, run everything on simulated traffic, show alerts."""
    from streams.demo import DemoOptions, run_demo

    settings = _settings()
    options = DemoOptions(duration=duration, customers=customers, hours=hours, rate=rate, seed=seed)
    summary = run_demo(settings, options, stop=_stop_on_signals())
    # The last stdout line is the machine-readable summary.
    sys.stdout.write(summary + "\n")
    sys.stdout.flush()


if TYPE_CHECKING:
    from streams.config_feed import LiveConfig

T = TypeVar("T")

rules_app = typer.Typer(no_args_is_help=True, help="The rule set workers apply (risk.rules.v1), without restarts.")
allowlist_app = typer.Typer(no_args_is_help=True, help="Customers and entities that never alert (risk.allowlist.v1).")
app.add_typer(rules_app, name="rules")
app.add_typer(allowlist_app, name="allowlist")


def _load_or_exit(load: Callable[[], T]) -> T:
    try:
        return load()
    except RulesFileError as exc:
        err.print(f"[red]rejected[/red]: {exc}")
        raise typer.Exit(2) from None


def _live_config_or_exit() -> LiveConfig:
    """The rule set and allow-list as the workers see them, or exit 1 saying why they cannot be read."""
    from streams.rules_push import PushError, read_live_config

    try:
        return read_live_config(_settings(needs_kafka=True))
    except PushError as exc:
        err.print(f"[red]cannot read[/red]: {exc}")
        raise typer.Exit(1) from None


@rules_app.command("check")
def rules_check(file: Annotated[Path, typer.Argument(dir_okay=False, help="YAML rule set")]) -> None:
    """Validate a rule set file without publishing it."""
    config = _load_or_exit(lambda: load_rules(file))
    err.print(f"{file}: valid rule set, version {config.version}")


@rules_app.command("push")
def rules_push(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="YAML rule set")],
    force: Annotated[bool, typer.Option(help="allow a version not above the one in force (a rollback)")] = False,
) -> None:
    """Validate a rule set file and publish it; every worker applies it within a batch, without restart."""
    from streams.rules_push import PushError, push_rules

    settings = _settings(needs_kafka=True)
    config = _load_or_exit(lambda: load_rules(file))
    try:
        before = push_rules(settings, config, force=force)
    except PushError as exc:
        err.print(f"[red]not pushed[/red]: {exc}")
        raise typer.Exit(1) from None
    was = f"replacing version {before}" if before else "the first on the topic"
    err.print(f"rule set version {config.version} published to {settings.topics.rules} ({was})")


@rules_app.command("show")
def rules_show() -> None:
    """Print the rule set in force as JSON (the defaults if none was pushed)."""
    from schemas import serde

    live = _live_config_or_exit()
    if live.rules is None:
        err.print("no rule set pushed yet: workers use LOANWATCH_RULES_FILE or the built-in defaults")
    sys.stdout.write(serde.dumps(live.current.model_dump(mode="json")).decode() + "\n")


@allowlist_app.command("push")
def allowlist_push(file: Annotated[Path, typer.Argument(dir_okay=False, help="YAML list of entries")]) -> None:
    """Add or replace the entries in a YAML file (kind, value, reason, added_by, optional expires_at)."""
    from streams.rules_file import load_allowlist
    from streams.rules_push import PushError, push_allowlist

    settings = _settings(needs_kafka=True)
    entries = _load_or_exit(lambda: load_allowlist(file))
    try:
        sent = push_allowlist(settings, entries)
    except PushError as exc:
        err.print(f"[red]not pushed[/red]: {exc}")
        raise typer.Exit(1) from None
    err.print(f"{sent} allow-list entries published to {settings.topics.allowlist}")


@allowlist_app.command("remove")
def allowlist_remove(
    kind: Annotated[str, typer.Argument(help="customer, device, ip, bank_card, phone or contact_list")],
    values: Annotated[list[str], typer.Argument(help="the ids to remove")],
) -> None:
    """Remove entries (a tombstone per entry)."""
    from schemas.allowlist import ALLOWLIST_KINDS
    from streams.rules_push import PushError, remove_allowlist

    if kind not in ALLOWLIST_KINDS:
        err.print(f"[red]unknown kind[/red] {kind!r}: expected one of {', '.join(ALLOWLIST_KINDS)}")
        raise typer.Exit(2)
    settings = _settings(needs_kafka=True)
    try:
        sent = remove_allowlist(settings, [(kind, v) for v in values])
    except PushError as exc:
        err.print(f"[red]not removed[/red]: {exc}")
        raise typer.Exit(1) from None
    err.print(f"{sent} allow-list entries removed from {settings.topics.allowlist}")


@allowlist_app.command("show")
def allowlist_show() -> None:
    """Print the allow-list in force, one JSON entry per line."""
    from schemas import serde

    live = _live_config_or_exit()
    for _, entry in sorted(live.allowlist.items()):
        sys.stdout.write(serde.dumps(entry).decode() + "\n")


clickhouse_app = typer.Typer(no_args_is_help=True, help="ClickHouse DDL for a server or a cluster, without connecting.")
app.add_typer(clickhouse_app, name="clickhouse")


@clickhouse_app.command("ddl")
def clickhouse_ddl(
    cluster: Annotated[
        str | None, typer.Option(help="cluster name, or '{cluster}' for each server's macro; unset: one server")
    ] = None,
    database: Annotated[str, typer.Option(help="database of the tables")] = "loanwatch",
    engine_version: Annotated[str, typer.Option(help="the servers' ClickHouse version, e.g. 18.16")] = "24.8",
) -> None:
    """Print the tables and analyst views as SQL; with --cluster: replicated local tables, Distributed tables."""
    from streams.clickhouse.ddl_script import ddl_script

    try:
        sys.stdout.write(ddl_script(database, engine_version, cluster))
    except ValueError as exc:
        err.print(f"[red]cannot render[/red]: {exc}")
        raise typer.Exit(2) from None


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="listener port on 127.0.0.1")] = 9092,
) -> None:
    """Run the local single-node Kafka broker in the foreground (for running the parts by hand)."""
    from streams.local.kafka_broker import LocalKafka

    settings = _settings()
    stop = _stop_on_signals()
    with LocalKafka(settings.home / "kafka", port=port, progress=err.print) as kafka:
        err.print(f"Kafka broker ready: export LOANWATCH_KAFKA_BOOTSTRAP={kafka.bootstrap}")
        stop.wait()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
