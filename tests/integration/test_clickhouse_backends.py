"""Both ClickHouse backends against real engines: Debian's clickhouse-server 18.16 and embedded chdb.

The server is started once per session; if it cannot start, every native test errors with its log (no skip).
chdb serves one data path per process, so the chdb backend is opened per test on one shared folder (or on
the path another fixture already holds) and closed afterwards; each test works in its own database.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.clickhouse.analytics import ANALYTICS
from schemas.clickhouse.ddl import TABLES, Features
from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.clickhouse.embedded import EmbeddedBackend, chdb_path_in_use
from streams.clickhouse.errors import ClickHouseQueryError, ClickHouseUnavailable, EmbeddedPathInUse
from streams.clickhouse.rows import ALERT_COLUMNS, DEAD_LETTER_COLUMNS, EVENT_COLUMNS
from streams.clickhouse.schema import apply_ddl
from streams.local.clickhouse_server import LocalClickHouseServer

pytestmark = pytest.mark.integration

# The writer's own column lists (streams.clickhouse.rows), so the DDL is checked against what it inserts.
TRICKY = [
    "", "plain", "it's", 'say "hi"', "back\\slash", "trailing\\", "\\", "\\N", "\\'", "NULL", "null",
    "new\nline", "cr\rlf\r\n", "tab\tsep", "nul\x00byte", "\x1f\x7f controls", "汉字 提示/关注/预警",
    "emoji 🚀 👩‍💻", "line\u2028para\u2029", "\ufeffbom", "e\u0301 combining",
    '{"json": [1, "two"], "k": null}', "'; DROP TABLE events; --", "`backtick`", "SGVsbG8sIHdvcmxkIQ==",
    base64.b64encode(bytes(range(256))).decode(), "trailing space ", "x" * 20_000,
]
T0 = datetime(2026, 1, 5, 9, 0, 0, 250_000, tzinfo=UTC)


def rows_of(backend: ClickHouseBackend, sql: str, **parts: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` with ``{db}`` standing for the test's quoted database and ``{name}`` for its name."""
    return backend.query(sql.format(db=f"`{backend.database}`", name=backend.database, **parts))


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@pytest.fixture(params=["native", "chdb"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(kind: str, request: pytest.FixtureRequest, chdb_dir: Path) -> Iterator[ClickHouseBackend]:
    database = f"lwtest_{uuid.uuid4().hex[:10]}"
    if kind == "native":
        server: LocalClickHouseServer = request.getfixturevalue("clickhouse_server")
        opened = open_backend(server.url, database, chdb_dir)
    else:
        opened = open_backend(None, database, chdb_path_in_use() or chdb_dir)
    try:
        yield opened
        opened.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        opened.close()


def event_row(i: int, text: str, ts: datetime, now: datetime) -> tuple[Any, ...]:
    return (f"e{i:05d}", "loan_application", f"c_{i % 7:06d}", ts, ms(ts), "loan.behavior.v1", i % 4,
            2**63 + i, text, now)


def alert_row(alert_id: str, last_seen: datetime, score: float, evidence: list[str]) -> tuple[Any, ...]:
    reasons = '[{"code": "burst", "message": "5 次申请 in 10\'"}]'
    return (alert_id, "c_000001", "multi_application_burst", 3, "warning", "预警", score, reasons, evidence,
            T0, last_seen, ms(T0), ms(last_seen), f'{{"alert_id": "{alert_id}"}}', T0)


def expected_time(t: datetime, features: Features) -> datetime:
    """What a time column gives back: milliseconds with DateTime64, whole seconds without."""
    if features.datetime64:
        return t.replace(microsecond=t.microsecond // 1000 * 1000)
    return t.replace(microsecond=0)


def test_version_detection_gives_expected_features(backend: ClickHouseBackend, kind: str) -> None:
    version = backend.version()
    features = apply_ddl(backend, backend.database)
    columns = "SELECT name, type FROM system.columns WHERE database = '{name}' AND table = 'events'"
    types = dict(rows_of(backend, columns))
    if kind == "native":
        assert version[:2] == (18, 16), "the local server is Debian's clickhouse-server 18.16"
        assert features == Features.none()
        assert types["ts"] == "DateTime('UTC')" and types["event_type"] == "String"
    else:
        assert version >= (20, 1)
        assert features == Features.all()
        assert types["ts"] == "DateTime64(3, 'UTC')" and types["event_type"] == "LowCardinality(String)"
        tables = "SELECT engine_full FROM system.tables WHERE database = '{name}' AND name = 'events'"
        ((engine,),) = rows_of(backend, tables)
        assert "TTL" in engine


def test_apply_ddl_twice_is_idempotent(backend: ClickHouseBackend) -> None:
    first = apply_ddl(backend, backend.database)
    backend.insert("events", EVENT_COLUMNS, [event_row(1, "kept", T0, T0)])
    second = apply_ddl(backend, backend.database)
    assert first == second
    tables = rows_of(backend, "SELECT name FROM system.tables WHERE database = '{name}' "
                              "AND NOT startsWith(name, '.inner') ORDER BY name")
    assert [name for (name,) in tables] == sorted([*TABLES, *(o.name for o in ANALYTICS)])
    assert rows_of(backend, "SELECT payload FROM {db}.events") == [("kept",)]


def test_tricky_strings_and_values_round_trip_exactly(backend: ClickHouseBackend) -> None:
    features = apply_ddl(backend, backend.database)
    now = datetime.now(UTC)
    events = [event_row(i, text, T0 + timedelta(milliseconds=i * 37), now) for i, text in enumerate(TRICKY)]
    backend.insert("events", EVENT_COLUMNS, events)
    columns = ", ".join(f"`{c}`" for c in EVENT_COLUMNS)
    got = rows_of(backend, "SELECT {columns} FROM {db}.events ORDER BY event_id", columns=columns)
    assert len(got) == len(events)
    for sent, back in zip(events, got, strict=True):
        assert back[8] == sent[8], f"payload of {sent[0]}"
        assert back[:3] == sent[:3] and back[5:8] == sent[5:8]
        assert back[4] == sent[4], "ts_ms is exact on every engine"
        assert back[3] == expected_time(sent[3], features) and back[3].tzinfo is not None
        assert back[9] == expected_time(now, features)

    evidence = [t for t in TRICKY if len(t) < 100]
    backend.insert("alerts", ALERT_COLUMNS, [alert_row("a1", T0, 0.1, evidence)])
    ((ids, score, label),) = rows_of(backend, "SELECT evidence_event_ids, score, tier_label FROM {db}.alerts")
    assert (ids, score, label) == (evidence, 0.1, "预警")

    raw = os.urandom(64) + b"\xff\xfe invalid utf-8 \xc3\x28"
    letters = [
        ("d1", "loan.behavior.v1", 2, 42, "invalid_utf8", "line 1\n\\N\x00'\"",
         base64.b64encode(raw).decode(), len(raw), now),
        ("d2", "t", 0, 1, "not_json", "", "", 0, now),
    ]
    backend.insert("dead_letters", DEAD_LETTER_COLUMNS, letters)
    back_letters = rows_of(
        backend, "SELECT dead_letter_id, reason, payload_b64 FROM {db}.dead_letters ORDER BY 1"
    )
    assert [(d[0], d[5], d[6]) for d in letters] == back_letters
    assert base64.b64decode(back_letters[0][2]) == raw


def test_replayed_rows_count_once_with_final(backend: ClickHouseBackend) -> None:
    apply_ddl(backend, backend.database)
    alert = alert_row("a_replayed", T0 + timedelta(minutes=5), 0.5, ["e1"])
    backend.insert("alerts", ALERT_COLUMNS, [alert])
    backend.insert("alerts", ALERT_COLUMNS, [alert])
    assert rows_of(backend, "SELECT count() FROM {db}.alerts FINAL WHERE alert_id = 'a_replayed'") == [(1,)]

    # A newer emission of the alert wins over an older one replayed after it.
    newer = alert_row("a_grown", T0 + timedelta(minutes=9), 0.9, ["e1", "e2"])
    older = alert_row("a_grown", T0 + timedelta(minutes=1), 0.2, ["e1"])
    backend.insert("alerts", ALERT_COLUMNS, [newer])
    backend.insert("alerts", ALERT_COLUMNS, [older])
    newest = "SELECT score, evidence_event_ids FROM {db}.alerts FINAL WHERE alert_id = 'a_grown'"
    assert rows_of(backend, newest) == [(0.9, ["e1", "e2"])]

    event = event_row(7, "{}", T0, T0)
    backend.insert("events", EVENT_COLUMNS, [event])
    backend.insert("events", EVENT_COLUMNS, [event[:9] + (T0 + timedelta(seconds=30),)])  # replayed later
    assert rows_of(backend, "SELECT count() FROM {db}.events FINAL WHERE event_id = 'e00007'") == [(1,)]

    letter = ("d_same", "t", 1, 9, "validation", "bad", "", 0, T0)
    backend.insert("dead_letters", DEAD_LETTER_COLUMNS, [letter])
    backend.insert("dead_letters", DEAD_LETTER_COLUMNS, [letter])
    assert rows_of(backend, "SELECT count() FROM {db}.dead_letters FINAL") == [(1,)]


def test_insert_of_10k_rows_is_fast(backend: ClickHouseBackend, kind: str) -> None:
    apply_ddl(backend, backend.database)
    now = datetime.now(UTC)
    rows = [event_row(i, f'{{"n": {i}}}', now - timedelta(milliseconds=i), now) for i in range(10_000)]
    started = time.perf_counter()
    backend.insert("events", EVENT_COLUMNS, rows)
    elapsed = time.perf_counter() - started
    print(f"\n{kind}: 10,000-row insert in {elapsed * 1000:.0f} ms = {10_000 / elapsed:,.0f} rows/s")
    assert rows_of(backend, "SELECT count() FROM {db}.events") == [(10_000,)]
    assert elapsed < 5.0, f"{kind}: 10,000 rows took {elapsed:.1f}s"


def test_rejected_statements_raise_query_error_with_code(backend: ClickHouseBackend) -> None:
    with pytest.raises(ClickHouseQueryError) as missing:
        backend.query("SELECT * FROM no_such_database_xyz.no_such_table")
    assert missing.value.code in (60, 81)
    with pytest.raises(ClickHouseQueryError) as syntax:
        backend.execute("SELEKT 1")
    assert syntax.value.code == 62


def test_naive_datetimes_are_refused(backend: ClickHouseBackend) -> None:
    apply_ddl(backend, backend.database)
    naive = event_row(1, "x", T0, T0)[:3] + (T0.replace(tzinfo=None),) + event_row(1, "x", T0, T0)[4:]
    with pytest.raises(ValueError, match="naive"):
        backend.insert("events", EVENT_COLUMNS, [naive])


def test_closed_port_raises_unavailable(chdb_dir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    closed = open_backend(f"clickhouse://default:@127.0.0.1:{port}/default?connect_timeout=2", "lw", chdb_dir)
    try:
        with pytest.raises(ClickHouseUnavailable):
            closed.version()
        with pytest.raises(ClickHouseUnavailable):
            closed.insert("events", ("event_id",), [("e1",)])
    finally:
        closed.close()


def test_chdb_shares_one_engine_per_path_and_refuses_a_second_path(chdb_dir: Path, tmp_path: Path) -> None:
    path = chdb_path_in_use() or chdb_dir
    first = EmbeddedBackend.open(path, "lw_share")
    second = EmbeddedBackend.open(path, "lw_share")
    try:
        first.execute("CREATE DATABASE IF NOT EXISTS lw_share")
        first.execute("CREATE TABLE IF NOT EXISTS lw_share.t (x UInt8) ENGINE = MergeTree ORDER BY x")
        first.insert("t", ("x",), [(1,)])
        assert second.query("SELECT x FROM lw_share.t") == [(1,)]
        with pytest.raises(EmbeddedPathInUse, match="one data path per process"):
            EmbeddedBackend.open(tmp_path / "other", "lw")
        second.close()
        assert first.query("SELECT count() FROM lw_share.t") == [(1,)], "closing one backend keeps the engine"
        first.execute("DROP DATABASE lw_share")
    finally:
        first.close()
        second.close()


def test_chdb_path_held_by_another_process_is_reported(tmp_path: Path) -> None:
    # Both sides run in child processes, so this holds whatever chdb path this test process has open.
    path = tmp_path / "chdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from streams.clickhouse.embedded import EmbeddedBackend
            backend = EmbeddedBackend.open({str(path)!r}, "lw")
            backend.query("SELECT 1")
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        second = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                from streams.clickhouse.embedded import EmbeddedBackend
                from streams.clickhouse.errors import EmbeddedPathInUse
                try:
                    EmbeddedBackend.open({str(path)!r}, "lw")
                except EmbeddedPathInUse as exc:
                    print("EmbeddedPathInUse:", exc)
            """)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert "EmbeddedPathInUse:" in second.stdout, second.stdout + second.stderr
        assert f"PID: {holder.pid}" in second.stdout
    finally:
        holder.communicate(input="", timeout=60)
