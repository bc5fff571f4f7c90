-- Feeds alerts_daily_state from every insert into alerts. Why a materialized view here and nowhere else:
-- alerts by day is the question every dashboard asks, and the states answer it without reading alerts at all
-- (one row per day, tier and rule). The other views read raw rows on demand: they join or order histories,
-- which an insert-time trigger sees only one block of. A materialized view sees only rows inserted after it
-- exists; `loanwatch init` backfills the state table once, right after it creates this view.
CREATE MATERIALIZED VIEW IF NOT EXISTS $database.alerts_daily_mv$on_cluster
TO $database.alerts_daily_state$local
AS SELECT
    toDate(first_seen, $zone) AS day,
    tier,
    rule_id,
    uniqExactState(alert_id) AS alerts,
    uniqExactState(customer_id) AS customers
FROM $database.alerts$local
GROUP BY day, tier, rule_id
