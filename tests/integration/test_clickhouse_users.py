"""deploy/clickhouse/users.d on Debian's clickhouse-server 18.16: the writer writes, the analyst only reads.

A server of its own, started with the deploy folder's users (their locked hashes swapped for hashes of
passwords made up here), because users are server-wide. The writer's inserts go through the real writer
(Kafka → ClickHouseWriter → NativeBackend); everything each user must not do is tried and must be refused.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas import serde
from schemas.clickhouse.analytics import ANALYTICS
from schemas.outputs import Alert, Reason
from streams.clickhouse.backend import ClickHouseBackend, open_backend
from streams.clickhouse.errors import ClickHouseError, ClickHouseQueryError
from streams.clickhouse.rows import ALERT_COLUMNS
from streams.clickhouse.writer import ClickHouseWriter
from streams.local.clickhouse_server import LocalClickHouseServer
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
USERS_D = REPO / "deploy" / "clickhouse" / "users.d"
DATABASE = "loanwatch"  # the database the users are allowed
LOCKED = "0" * 64
READONLY, DDL_PROHIBITED = 164, 392  # server error codes of 18.16


class Users:
    """The test server and a password per user."""

    def __init__(self, server: LocalClickHouseServer, passwords: dict[str, str]) -> None:
        self.server = server
        self.passwords = passwords

    def url(self, user: str, password: str | None = None) -> str:
        secret = self.passwords[user] if password is None else password
        return f"clickhouse://{user}:{secret}@127.0.0.1:{self.server.port}/{DATABASE}?connect_timeout=5"

    def backend(self, user: str, chdb_dir: Path) -> ClickHouseBackend:
        return open_backend(self.url(user), DATABASE, chdb_dir)


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Users]:
    passwords = {"loanwatch_writer": secrets.token_urlsafe(16), "loanwatch_analyst": secrets.token_urlsafe(16)}
    folder = tmp_path_factory.mktemp("users.d")
    text = (USERS_D / "loanwatch.xml").read_text(encoding="utf-8")
    for user, password in passwords.items():
        digest = hashlib.sha256(password.encode()).hexdigest()
        # Each user's block holds one locked hash: replace it inside that block only.
        block = re.search(rf"<{user}>\s*<password_sha256_hex>{LOCKED}</password_sha256_hex>", text)
        assert block is not None, f"{user} has no locked sha256 password in the deploy file"
        text = text[: block.start()] + block.group(0).replace(LOCKED, digest) + text[block.end():]
    (folder / "loanwatch.xml").write_text(text, encoding="utf-8")
    server = LocalClickHouseServer(tmp_path_factory.mktemp("clickhouse-users"), users_d=folder)
    server.start(timeout=90)
    admin = open_backend(server.url, DATABASE, tmp_path_factory.mktemp("unused-chdb"))
    try:
        from streams.clickhouse.schema import apply_ddl

        apply_ddl(admin, DATABASE)
    finally:
        admin.close()
    yield Users(server, passwords)
    server.stop()


def alert(alert_id: str) -> Alert:
    t = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    reason = Reason(code="x", message="m", feature="f", value=1.0, threshold=1.0)
    return Alert(alert_id=alert_id, customer_id="c_000001", rule_id="multi_application_burst", rule_version=1,
                 tier="notice", score=0.5, reasons=[reason], evidence_event_ids=[], first_seen=t, last_seen=t)


def refused(backend: ClickHouseBackend, sql: str, code: int) -> None:
    with pytest.raises(ClickHouseQueryError) as error:
        backend.execute(sql)
    assert error.value.code == code, f"{sql}: {error.value}"


def test_the_writer_inserts_through_the_writer_but_cannot_change_the_schema(
    users: Users, kafka_bootstrap: str, tmp_path: Path
) -> None:
    admin = open_backend(users.server.url, DATABASE, tmp_path / "chdb")
    writer_backend = users.backend("loanwatch_writer", tmp_path / "chdb")
    settings = unique_settings(kafka_bootstrap, tmp_path, users.url("loanwatch_writer"), DATABASE)
    pipeline = Pipeline(settings, admin)  # topics, and the tables again (idempotent), as an administrator
    writer = ClickHouseWriter(settings, writer_backend)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    alert_id = secrets.token_hex(16)
    try:
        thread.start()
        pipeline.produce([(settings.topics.alerts, b"c_000001", serde.dumps(alert(alert_id)))])
        count = f"SELECT count() FROM {DATABASE}.alerts WHERE alert_id = '{alert_id}'"  # noqa: S608 - hex id
        wait_for(lambda: admin.query(count) == [(1,)], 60, "the writer's row")
        stop.set()
        thread.join(60)
        assert writer.stats.rows.get("alerts") == 1 and writer.stats.commits >= 1
        assert writer_backend.query(count) == [(1,)], "the writer reads its own tables"
        assert writer_backend.query(f"SELECT alerts FROM {DATABASE}.alerts_daily") != []  # noqa: S608

        refused(writer_backend, f"DROP TABLE {DATABASE}.alerts", DDL_PROHIBITED)
        refused(writer_backend, f"CREATE TABLE {DATABASE}.x (a UInt8) ENGINE = Memory", DDL_PROHIBITED)
        refused(writer_backend, f"ALTER TABLE {DATABASE}.alerts DELETE WHERE 1", DDL_PROHIBITED)
        refused(writer_backend, f"TRUNCATE TABLE {DATABASE}.alerts", DDL_PROHIBITED)
        refused(writer_backend, f"OPTIMIZE TABLE {DATABASE}.alerts FINAL", DDL_PROHIBITED)
        refused(writer_backend, "SET allow_ddl = 1", DDL_PROHIBITED)
        with pytest.raises(ClickHouseQueryError, match="Access denied"):
            writer_backend.query("SELECT count() FROM default.nothing_here")
        assert admin.query(count) == [(1,)]
    finally:
        stop.set()
        thread.join(60)
        pipeline.close()
        writer_backend.close()
        admin.close()


def test_the_analyst_reads_every_view_and_can_change_nothing(users: Users, tmp_path: Path) -> None:
    analyst = users.backend("loanwatch_analyst", tmp_path / "chdb")
    try:
        for o in ANALYTICS:
            # SELECT * of the state table would hand clickhouse-driver AggregateFunction columns it cannot read.
            what = "*" if o.kind == "view" else "count()"
            analyst.query(f"SELECT {what} FROM {DATABASE}.{o.name} LIMIT 1")  # noqa: S608 - names from the DDL
        assert analyst.query(f"SELECT count() FROM {DATABASE}.alerts") is not None  # noqa: S608
        with pytest.raises(ClickHouseQueryError) as insert:
            analyst.insert("alerts", ALERT_COLUMNS, [(
                "f" * 32, "c_1", "r", 1, "notice", "提示", 0.5, "[]", [], datetime(2026, 1, 5, tzinfo=UTC),
                datetime(2026, 1, 5, tzinfo=UTC), 0, 0, "{}", datetime(2026, 1, 5, tzinfo=UTC),
            )])
        assert insert.value.code == READONLY
        refused(analyst, f"DROP TABLE {DATABASE}.alerts", READONLY)
        refused(analyst, f"DROP TABLE {DATABASE}.alerts_daily", READONLY)  # 18.16 drops views with DROP TABLE
        refused(analyst, f"DROP DATABASE {DATABASE}", READONLY)
        refused(analyst, f"CREATE TABLE {DATABASE}.x (a UInt8) ENGINE = Memory", READONLY)
        refused(analyst, f"CREATE VIEW {DATABASE}.v AS SELECT 1", READONLY)
        refused(analyst, "SET readonly = 0", READONLY)
        with pytest.raises(ClickHouseQueryError, match="Access denied"):
            analyst.query("SELECT count() FROM default.nothing_here")
    finally:
        analyst.close()


def test_a_wrong_password_is_refused(users: Users, tmp_path: Path) -> None:
    intruder = open_backend(users.url("loanwatch_analyst", "not-the-password"), DATABASE, tmp_path / "chdb")
    try:
        with pytest.raises(ClickHouseError):
            intruder.query("SELECT 1")
    finally:
        intruder.close()
