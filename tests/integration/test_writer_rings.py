"""Entity links and ring snapshots reach ClickHouse through the writer, on both engines, and answer analysts.

The queries are those of docs/analytics.md (NEIGHBOURHOOD, RING_SIZES, ...), run here on Debian's clickhouse-server
18.16 and on chdb: a link refresh replaces its link, a re-sent ring snapshot is not doubled, and one Kafka record
gives rows in two tables.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas import serde
from schemas.entities import EntityLink, EntityRef, RingSnapshot, entity_link_id
from streams.clickhouse.backend import ClickHouseBackend
from tests.integration.harness import Pipeline, unique_settings, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
X = "c_000001"
R1, R2 = "1ea56c545062f16e", "2b7e151628aed2a6"

# docs/analytics.md, with {db} for the database.
NEIGHBOURHOOD = """
SELECT
    neighbour_id,
    arraySort(groupArray(concat(entity_kind, ' ', entity_value))) AS via,
    count() AS links,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen
FROM {db}.customer_links FINAL
WHERE customer_id = 'c_000001'
GROUP BY neighbour_id
ORDER BY neighbour_id
"""
RING_HISTORY = """
SELECT ts, size, score, tier, links, dissolved
FROM {db}.rings FINAL
WHERE ring_id = '1ea56c545062f16e'
ORDER BY ts_ms
"""
RING_SIZES = """
SELECT
    toStartOfHour(ts) AS hour,
    ring_id,
    argMax(size, ts_ms) AS size,
    argMax(score, ts_ms) AS score,
    argMax(dissolved, ts_ms) AS dissolved
FROM {db}.rings FINAL
GROUP BY hour, ring_id
ORDER BY hour, ring_id
"""
CUSTOMER_RINGS = """
SELECT ring_id, min(ts) AS first_in, max(ts) AS last_in, max(size) AS max_size, max(score) AS max_score
FROM {db}.ring_members FINAL
WHERE customer_id = 'c_000003'
GROUP BY ring_id
ORDER BY ring_id
"""
ENTITY_CUSTOMERS = """
SELECT entity_value, arraySort(groupUniqArray(customer)) AS customers
FROM {db}.links FINAL
ARRAY JOIN [customer_a, customer_b] AS customer
WHERE entity_kind = 'device'
GROUP BY entity_value
ORDER BY entity_value
"""


def test_docs_show_exactly_the_queries_tested_here() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", docs, re.DOTALL)
    for query in (NEIGHBOURHOOD, RING_HISTORY, RING_SIZES, CUSTOMER_RINGS, ENTITY_CUSTOMERS):
        assert query.lstrip("\n").replace("{db}", "loanwatch") in blocks
    # The other documented queries read the analyst views; test_clickhouse_views runs each of them.
    ring_tables = ("loanwatch.links", "loanwatch.customer_links", "loanwatch.rings ", "loanwatch.ring_members")
    assert len([b for b in blocks if any(t in b for t in ring_tables)]) == 5


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def link(a: str, b: str, kind: str, value: str, first: int, last: int, refresh: bool = False) -> EntityLink:
    return EntityLink(
        customer_a=a,
        customer_b=b,
        entity=EntityRef.model_validate({"kind": kind, "value": value}),
        first_seen=minutes(first),
        last_seen=minutes(last),
        refresh=refresh,
    )


def ring(ring_id: str, at: int, members: list[str], score: float, tier: str | None, links: int,
         entities: list[tuple[str, str]], dissolved: bool = False) -> RingSnapshot:
    return RingSnapshot.model_validate(
        {
            "ring_id": ring_id,
            "ts": minutes(at),
            "first_seen": T0,
            "size": len(members),
            "score": score,
            "tier": tier,
            "members": members,
            "entities": [{"kind": k, "value": v} for k, v in entities],
            "links": links,
            "dissolved": dissolved,
        }
    )


DEVICE, IP = ("device", "d_9"), ("ip", "10.0.0.7")
LINK_12 = link(X, "c_000002", *DEVICE, first=0, last=1)
LINK_12_REFRESHED = link(X, "c_000002", *DEVICE, first=0, last=40, refresh=True)
FIRST_LINKS = [
    LINK_12,
    link(X, "c_000002", *IP, first=2, last=3),
    link(X, "c_000003", *IP, first=2, last=3),
    link("c_000000", X, *DEVICE, first=4, last=4),  # c_000001 on the b side
    link("c_000002", "c_000003", "device", "d_5", first=5, last=6),  # not c_000001's
]
R1_SNAPSHOTS = [
    ring(R1, 1, [X, "c_000002"], 0.3, None, 1, [DEVICE]),
    ring(R1, 3, [X, "c_000002", "c_000003"], 0.55, "notice", 3, [DEVICE, IP]),
    ring(R1, 65, ["c_000000", X, "c_000002", "c_000003"], 0.72, "attention", 5, [DEVICE, IP]),
]
R2_SNAPSHOTS = [
    ring(R2, 10, ["c_000010", "c_000011"], 0.2, None, 1, [("phone", "p_77")]),
    ring(R2, 70, ["c_000010", "c_000011"], 0.0, None, 1, [("phone", "p_77")], dissolved=True),
]


def test_links_and_rings_land_deduplicated_and_answer_the_analyst_queries(
    kafka_bootstrap: str, clickhouse: tuple[ClickHouseBackend, str | None], tmp_path: Path
) -> None:
    backend, url = clickhouse
    pipeline = Pipeline(unique_settings(kafka_bootstrap, tmp_path, url, backend.database), backend)
    topics = pipeline.settings.topics

    def links(*items: EntityLink) -> list[tuple[str, bytes, bytes]]:
        return [(topics.links, item.link_id.encode(), serde.dumps(item)) for item in items]

    def rings(*items: RingSnapshot) -> list[tuple[str, bytes, bytes]]:
        return [(topics.rings, item.ring_id.encode(), serde.dumps(item)) for item in items]

    def inserted(table: str) -> int:
        return pipeline.writer.stats.rows.get(table, 0) if pipeline.writer is not None else 0

    try:
        pipeline.start_writer()
        pipeline.produce(links(*FIRST_LINKS) + rings(*R1_SNAPSHOTS[:2], R2_SNAPSHOTS[0]))
        wait_for(lambda: inserted("links") >= 5 and inserted("rings") >= 3, 60, "the first links and rings")
        # Second round, in other parts: the refresh, then the first sending replayed after it; a snapshot
        # re-sent (as after a crash) next to the ring's next change; the other ring dissolving.
        pipeline.produce(
            links(LINK_12_REFRESHED, LINK_12) + rings(R1_SNAPSHOTS[1], R1_SNAPSHOTS[2], R2_SNAPSHOTS[1])
        )
        wait_for(lambda: inserted("links") >= 7 and inserted("rings") >= 6, 60, "the second round")
        pipeline.stop_writer()
        assert pipeline.writer is not None
        assert pipeline.writer.stats.rows == {
            "links": 7, "customer_links": 14, "rings": 6, "ring_members": 2 + 3 + 2 + 3 + 4 + 2
        }
        assert pipeline.writer.stats.unreadable_outputs == 0

        # The refresh replaced the link (the version is last_seen_ms): one row, the refreshed one.
        link_id = entity_link_id(X, "c_000002", *DEVICE)
        assert pipeline.scalar("SELECT count() FROM {db}.links FINAL") == 5
        assert pipeline.rows(
            "SELECT link_id, first_seen_ms, last_seen_ms, refresh, last_seen, payload FROM {db}.links FINAL "
            "WHERE customer_a = 'c_000001' AND customer_b = 'c_000002' AND entity_kind = 'device'"
        ) == [(link_id, ms(T0), ms(minutes(40)), 1, minutes(40), serde.dumps(LINK_12_REFRESHED).decode())]
        assert pipeline.scalar("SELECT count() FROM {db}.customer_links FINAL") == 10
        assert pipeline.rows(
            "SELECT customer_id, neighbour_id, link_id, last_seen_ms FROM {db}.customer_links FINAL "
            "WHERE customer_id IN ('c_000001', 'c_000002') AND neighbour_id IN ('c_000001', 'c_000002') "
            "AND entity_kind = 'device' ORDER BY customer_id"
        ) == [(X, "c_000002", link_id, ms(minutes(40))), ("c_000002", X, link_id, ms(minutes(40)))]

        # The re-sent snapshot is not doubled; one member row per (snapshot, member).
        assert pipeline.scalar("SELECT count() FROM {db}.rings FINAL") == 5
        assert pipeline.scalar("SELECT count() FROM {db}.ring_members FINAL") == 2 + 3 + 4 + 2 + 2
        assert pipeline.rows(
            "SELECT members, entity_kinds, entity_values, first_seen, tier FROM {db}.rings FINAL "
            "WHERE ring_id = '1ea56c545062f16e' AND ts_ms = 1767603780000"  # R1 at T0 + 3 minutes
        ) == [([X, "c_000002", "c_000003"], ["device", "ip"], ["d_9", "10.0.0.7"], T0, "notice")]

        # (a) c_000001's neighbourhood, from either side of each link.
        assert pipeline.rows(NEIGHBOURHOOD) == [
            ("c_000000", ["device d_9"], 1, minutes(4), minutes(4)),
            ("c_000002", ["device d_9", "ip 10.0.0.7"], 2, T0, minutes(40)),
            ("c_000003", ["ip 10.0.0.7"], 1, minutes(2), minutes(3)),
        ]
        # (b) ring sizes over time: one ring's history, and every ring's last state per hour.
        assert pipeline.rows(RING_HISTORY) == [
            (minutes(1), 2, 0.3, "", 1, 0),
            (minutes(3), 3, 0.55, "notice", 3, 0),
            (minutes(65), 4, 0.72, "attention", 5, 0),
        ]
        assert pipeline.rows(RING_SIZES) == [
            (T0, R1, 3, 0.55, 0),
            (T0, R2, 2, 0.2, 0),
            (minutes(60), R1, 4, 0.72, 0),
            (minutes(60), R2, 2, 0.0, 1),
        ]
        # The customer side of rings, and the entity side of links.
        assert pipeline.rows(CUSTOMER_RINGS) == [(R1, minutes(3), minutes(65), 4, 0.72)]
        assert pipeline.rows(ENTITY_CUSTOMERS) == [
            ("d_5", ["c_000002", "c_000003"]),
            ("d_9", ["c_000000", X, "c_000002"]),
        ]
    finally:
        pipeline.close()
