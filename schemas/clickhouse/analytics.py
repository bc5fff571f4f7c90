"""Views for analysts over loanwatch's tables, rendered per engine like the tables (see :mod:`.ddl`).

The templates are in ``analytics/`` next to this module, one object each, created in the order of
:data:`ANALYTICS` (an object only reads those before it). Besides the table placeholders they take::

    $zone          'Asia/Shanghai': days, weeks and months are the lender's calendar, as in the detectors
    $on_cluster    nothing | `` ON CLUSTER 'name'`` (see :mod:`.cluster`)
    $local         nothing | ``_local``: a materialized view reads and writes the shard-local tables

Every view counts each id once (``uniqExact`` of the id, or ``argMax`` over identical replayed copies)
instead of relying on ``FINAL``, so it is exact before ReplacingMergeTree has merged, reads no more than it
aggregates, and works the same over Distributed tables. Only ``alerts_daily`` is backed by a materialized view;
``alerts_daily_mv.sql`` says why.

Pure: nothing here touches a database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from schemas.clickhouse.ddl import Features, render_template, template_values

__all__ = ["ANALYTICS", "DAY_ZONE", "AnalyticsObject", "backfill_sql", "render_analytics"]

#: The calendar of every day, week and month bucket.
DAY_ZONE: Final = "Asia/Shanghai"

Kind = Literal["table", "materialized_view", "view"]


@dataclass(frozen=True)
class AnalyticsObject:
    """One object created after the tables: a state table, a materialized view or a view."""

    name: str
    kind: Kind


ANALYTICS: Final[tuple[AnalyticsObject, ...]] = (
    AnalyticsObject("alerts_daily_state", "table"),
    AnalyticsObject("alerts_daily_mv", "materialized_view"),
    AnalyticsObject("alerts_daily", "view"),
    AnalyticsObject("alerts_daily_by_product", "view"),
    AnalyticsObject("tier_rises", "view"),
    AnalyticsObject("tier_rises_this_week", "view"),
    AnalyticsObject("repayment_roll_rates", "view"),
    AnalyticsObject("dead_letters_by_reason", "view"),
    AnalyticsObject("ring_sizes_hourly", "view"),
)

_MV_TARGET: Final = re.compile(r"\nTO (?P<target>\S+)\nAS (?P<select>SELECT\b.*)\Z", re.DOTALL)


def render_analytics(database: str, features: Features, cluster: str | None = None) -> list[tuple[str, str]]:
    """Return ``(name, statement)`` for every object of :data:`ANALYTICS`, in creation order.

    With ``cluster`` the statements carry ``ON CLUSTER`` and materialized views use the ``_local`` tables;
    :mod:`.cluster` turns the state tables into replicated and distributed ones.
    """
    values = {
        **template_values(database, features),
        "zone": f"'{DAY_ZONE}'",
        "on_cluster": f" ON CLUSTER {quote_string(cluster)}" if cluster is not None else "",
        "local": "_local" if cluster is not None else "",
    }
    return [(o.name, render_template(f"analytics/{o.name}.sql", values, features)) for o in ANALYTICS]


def backfill_sql(materialized_view: str) -> str:
    """The ``INSERT ... SELECT`` that fills a materialized view's target with the rows already in its source.

    Safe to run again, and together with the view itself, only because the targets hold uniqExact states
    (``alerts_daily_state.sql`` explains why).
    """
    match = _MV_TARGET.search(materialized_view)
    if match is None or not materialized_view.startswith("CREATE MATERIALIZED VIEW"):
        raise ValueError("not a CREATE MATERIALIZED VIEW ... TO target AS SELECT statement")
    return f"INSERT INTO {match.group('target')}\n{match.group('select')}"


def quote_string(text: str) -> str:
    """``text`` as a single-quoted ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
