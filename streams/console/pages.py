"""The console's HTML and JSON shapes. Pure: data in, text out; every value from data is escaped here.

The feed page is a shell that ``static/console.js`` fills from ``/api/feed`` and refreshes by polling; the
customer page is drawn whole on the server. Times are shown in China time, as operators read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any, Final
from urllib.parse import quote, urlencode

from schemas.outputs import TIER_LABELS, TIERS
from streams.console.chart import score_svg
from streams.console.filters import FeedFilter
from streams.console.profile_client import ProfileLookup
from streams.console.queries import AlertRow, CustomerRecord, RuleCount
from streams.tail import china_time

__all__ = [
    "POLL_SECONDS",
    "alert_json",
    "customer_page",
    "error_page",
    "event_summary",
    "feed_page",
    "rule_json",
    "shown_time",
]

POLL_SECONDS: Final = 3
_EVENT_BASE_FIELDS: Final = frozenset({"schema_version", "event_id", "event_type", "customer_id", "ts"})
_SUMMARY_CHARS: Final = 160
_FEATURES_SHOWN: Final = 60


def shown_time(ms: int) -> str:
    """Epoch milliseconds as operators read them: China time to the second (``2026-01-05 17:19:40``)."""
    return china_time(datetime.fromtimestamp(ms / 1000, UTC))


def event_summary(payload: Mapping[str, Any]) -> str:
    """An event's own fields (those past the common envelope) as ``key=value``, shortened to one line."""
    parts = [f"{k}={v}" for k, v in payload.items() if k not in _EVENT_BASE_FIELDS and v is not None]
    text = " ".join(parts)
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def customer_href(customer_id: str) -> str:
    """The customer page's path (the id percent-encoded)."""
    return "/customers/" + quote(customer_id, safe="")


def alert_json(alert: AlertRow) -> dict[str, Any]:
    """An alert for the feed's script: raw values plus display strings (the script sets them as text)."""
    return {
        "alert_id": alert.alert_id,
        "customer_id": alert.customer_id,
        "customer_href": customer_href(alert.customer_id),
        "rule_id": alert.rule_id,
        "rule_version": alert.rule_version,
        "tier": alert.tier,
        "tier_label": alert.tier_label,
        "score": round(alert.score, 3),
        "product": alert.product,
        "top_reason": alert.top_reason,
        "first_seen_ms": alert.first_seen_ms,
        "last_seen_ms": alert.last_seen_ms,
        "last_seen": shown_time(alert.last_seen_ms),
    }


def rule_json(rule: RuleCount) -> dict[str, Any]:
    """A top-rules row for the feed's script."""
    return {"rule_id": rule.rule_id, "alerts": rule.alerts, "customers": rule.customers, "by_tier": rule.by_tier}


def _page(title: str, engine: str, body: str, script: bool = False) -> str:
    tail = '<script src="/static/console.js" defer></script>' if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · loanwatch</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="/static/console.css">{tail}</head><body>'
        '<header><a class="brand" href="/">loanwatch console</a>'
        f'<span class="engine">ClickHouse: {escape(engine)}</span></header>'
        f"<main>{body}</main></body></html>"
    )


def _options(values: Iterable[str], selected: str | None, any_label: str) -> str:
    items = [f'<option value="">{escape(any_label)}</option>']
    for value in values:
        mark = " selected" if value == selected else ""
        items.append(f'<option value="{escape(value)}"{mark}>{escape(value)}</option>')
    return "".join(items)


def feed_page(f: FeedFilter, rules: Sequence[str], products: Sequence[str], engine: str) -> str:
    """The live feed: filters, the per-tier chart, top rules and the newest alerts (filled by the script)."""
    tiers = _options(TIERS, f.tier, "any tier")
    # A filter value no alert has yet is still offered, so the form shows what the page filters by.
    rule_menu = _options(sorted({*rules, *([f.rule] if f.rule else [])}), f.rule, "any rule")
    product_menu = _options(sorted({*products, *([f.product] if f.product else [])}), f.product, "any product")
    api = "/api/feed?" + urlencode({**f.as_query(), "limit": str(f.limit)})
    body = (
        '<form class="filters" method="get" action="/">'
        f'<label>Tier <select name="tier">{tiers}</select></label>'
        f'<label>Rule <select name="rule">{rule_menu}</select></label>'
        f'<label>Product <select name="product">{product_menu}</select></label>'
        '<button type="submit">Filter</button> <a href="/">clear</a></form>'
        f'<p class="status" id="status" data-api="{escape(api)}" data-poll-seconds="{POLL_SECONDS}">loading…</p>'
        '<section><h2>Alerts per tier over time</h2><div id="chart" class="chart-box"></div></section>'
        '<section><h2>Top rules</h2><table id="top-rules"><thead><tr><th>rule</th><th>alerts</th>'
        "<th>customers</th>"
        + "".join(f"<th>{escape(TIER_LABELS[t])} {t}</th>" for t in TIERS)
        + "</tr></thead><tbody></tbody></table></section>"
        '<section><h2>Newest alerts</h2><table id="alerts"><thead><tr><th>event time</th><th>tier</th>'
        "<th>customer</th><th>rule</th><th>product</th><th>score</th><th>reason</th></tr></thead>"
        "<tbody></tbody></table></section>"
    )
    return _page("Alerts", engine, body, script=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], table_id: str, empty: str) -> str:
    cells = ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows]
    if not cells:
        return f'<p class="empty" id="{table_id}-empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(cells)}</tbody></table>'


def _profile_section(lookup: ProfileLookup) -> str:
    if lookup.view is None:
        return f'<p class="profile-api {escape(lookup.status)}" id="profile-api">{escape(lookup.message)}</p>'
    scalars = [(k, v) for k, v in lookup.view.items() if not isinstance(v, dict | list)]
    parts = [
        f'<p class="profile-api ok" id="profile-api">{escape(lookup.message)}</p>',
        _table(("field", "value"), ((k, "" if v is None else str(v)) for k, v in scalars), "profile-now", ""),
    ]
    features = lookup.view.get("features")
    if isinstance(features, dict):
        rows = [
            (str(horizon), str(name), str(value))
            for horizon, values in features.items() if isinstance(values, dict)
            for name, value in values.items()
        ]
        parts.append(_table(("horizon", "feature", "value"), rows, "profile-features", "no features"))
    for key in ("open_episodes", "restriction", "ring"):
        value = lookup.view.get(key)
        if value:
            parts.append(f"<h4>{escape(key.replace('_', ' '))}</h4><pre>{escape(str(value))}</pre>")
    return "".join(parts)


def customer_page(record: CustomerRecord, lookup: ProfileLookup, engine: str) -> str:
    """One customer: profile API view, features and score history, alerts, limit actions, rings, events."""
    latest = record.snapshots[0] if record.snapshots else None
    headline = (
        f"latest snapshot {shown_time(latest.ts_ms)}: score {latest.score:.3f}, tier {latest.tier or '—'}, "
        f"grade {latest.grade or '—'}"
        if latest else "no profile snapshot in ClickHouse"
    )
    features = sorted(latest.features.items())[:_FEATURES_SHOWN] if latest else []
    history = [(s.ts_ms, s.score) for s in reversed(record.snapshots)]
    body = "".join([
        f'<h1 id="customer">Customer {escape(record.customer_id)}</h1>',
        "" if record.known else '<p class="empty" id="unknown">ClickHouse has no rows about this customer.</p>',
        f'<section><h2>Now (profile API)</h2>{_profile_section(lookup)}</section>',
        f'<section><h2>Profile (ClickHouse)</h2><p id="headline">{escape(headline)}</p>',
        _table(("feature", "value"), ((n, f"{v:g}") for n, v in features), "features", "no features"),
        f'<h3>Score history</h3><div id="score-chart" class="chart-box">{score_svg(history)}</div></section>',
        "<section><h2>Alerts</h2>",
        _table(
            ("event time", "tier", "rule", "version", "product", "score", "reason", "alert id"),
            ((shown_time(a.last_seen_ms), f"{a.tier_label} {a.tier}", a.rule_id, str(a.rule_version), a.product,
              f"{a.score:.3f}", a.top_reason, a.alert_id) for a in record.alerts),
            "customer-alerts", "no alerts",
        ),
        "</section><section><h2>Limit actions</h2>",
        _table(
            ("event time", "action", "factor", "grade", "expires", "alerts"),
            ((shown_time(a.ts_ms), a.action, "" if a.factor is None else f"{a.factor:g}", a.grade,
              shown_time(a.expires_at_ms) if a.expires_at_ms else "until restore", str(len(a.alert_ids)))
             for a in record.limit_actions),
            "limit-actions", "no limit actions",
        ),
        "</section><section><h2>Rings</h2>",
        _table(
            ("ring", "size", "score", "tier", "status", "since", "last update"),
            ((r.ring_id, str(r.size), f"{r.score:.3f}", r.tier or "below notice",
              "dissolved" if r.dissolved else "live", shown_time(r.first_ms), shown_time(r.last_ms))
             for r in record.rings),
            "rings", "not a member of any ring",
        ),
        "</section><section><h2>Timeline</h2>",
        _table(
            ("event time", "event", "details", "event id"),
            ((shown_time(e.ts_ms), e.event_type, event_summary(e.payload), e.event_id) for e in record.events),
            "timeline", "no events",
        ),
        "</section>",
    ])
    return _page(f"Customer {record.customer_id}", engine, body)


def error_page(status: int, message: str, engine: str) -> str:
    """A page that says what was wrong with the request, or that ClickHouse could not answer."""
    return _page(f"Error {status}", engine, f'<h1>Error {status}</h1><p id="error">{escape(message)}</p>')
