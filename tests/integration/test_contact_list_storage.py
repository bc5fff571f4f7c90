"""A link and a ring through an address book (entity kind ``contact_list``) are stored and read back on both engines.

Entity kinds are plain strings in ClickHouse (``String`` on 18.16, ``LowCardinality(String)`` elsewhere), so a
kind added to the contract needs no migration; this inserts one through the writer's own row builders.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import serde
from schemas.entities import EntityLink, EntityRef, RingSnapshot
from streams.clickhouse.backend import ClickHouseBackend, table_name
from streams.clickhouse.rows import (
    CUSTOMER_LINK_COLUMNS,
    LINK_COLUMNS,
    RING_COLUMNS,
    RING_MEMBER_COLUMNS,
    Record,
    link_rows,
    ring_rows,
)
from streams.clickhouse.schema import apply_ddl

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BOOK = "h_5a1f00c0ffee0001"
COLUMNS = {"links": LINK_COLUMNS, "customer_links": CUSTOMER_LINK_COLUMNS, "rings": RING_COLUMNS,
           "ring_members": RING_MEMBER_COLUMNS}  # fmt: skip


def record(value: bytes, offset: int) -> Record:
    return Record("risk.links.v1", 0, offset, None, value)


def select(backend: ClickHouseBackend, columns: str, table: str, tail: str = "") -> list[tuple[Any, ...]]:
    sql = f"SELECT {columns} FROM {table_name(backend.database, table)} FINAL{tail}"  # noqa: S608 — our own names
    return backend.query(sql)


def test_contact_list_links_and_rings_round_trip(clickhouse: tuple[ClickHouseBackend, str | None]) -> None:
    backend, _ = clickhouse
    db = backend.database
    apply_ddl(backend, db)
    link = EntityLink(customer_a="c_000001", customer_b="c_000002", entity=EntityRef(kind="contact_list", value=BOOK),
                      first_seen=T0, last_seen=T0 + timedelta(days=12))  # fmt: skip
    ring = RingSnapshot.model_validate({
        "ring_id": "5c0ffee0ddba11aa", "ts": T0 + timedelta(days=12), "first_seen": T0,
        "members": ["c_000001", "c_000002", "c_000003"],
        "entities": [{"kind": "contact_list", "value": BOOK}, {"kind": "device", "value": "d_farm_01"}],
        "size": 3, "score": 0.7, "tier": "attention", "links": 3,
    })  # fmt: skip
    now = datetime.now(UTC)
    for n, (value, build) in enumerate(((serde.dumps(link.model_dump(mode="json")), link_rows),
                                        (serde.dumps(ring.model_dump(mode="json")), ring_rows))):  # fmt: skip
        for table, rows in build(record(value, n), now).items():
            backend.insert(table, COLUMNS[table], rows)
    links = select(backend, "entity_kind, entity_value", "links")
    sides = select(backend, "customer_id, neighbour_id, entity_kind", "customer_links", " ORDER BY 1")
    rings = select(backend, "entity_kinds, entity_values", "rings")
    assert links == [("contact_list", BOOK)]
    assert sides == [("c_000001", "c_000002", "contact_list"), ("c_000002", "c_000001", "contact_list")]
    assert [(list(k), list(v)) for k, v in rings] == [(["contact_list", "device"], [BOOK, "d_farm_01"])]
