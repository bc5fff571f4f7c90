-- Daily alert counts by tier and rule, kept as uniqExact states of alert ids and customer ids (filled by
-- alerts_daily_mv, read through the alerts_daily view). A set of ids, not a running count: a replayed alert
-- (same alert_id) and a re-emission with a later last_seen fall on the same (day, tier, rule_id), because
-- first_seen, tier and rule_id are fixed per alert_id, and add nothing to the set. So duplicates in alerts,
-- merged or not, never inflate a count here, and a backfill over rows the view already saw is harmless.
-- A SummingMergeTree of count() would count every copy the writer ever inserted.
CREATE TABLE IF NOT EXISTS $database.alerts_daily_state
(
    day Date,
    tier $LowCardinalityString,
    rule_id String,
    alerts AggregateFunction(uniqExact, String),
    customers AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, tier, rule_id)
