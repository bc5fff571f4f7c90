-- Alerts per China day (of first_seen, the episode start), tier and rule; each alert_id counted once.
CREATE VIEW IF NOT EXISTS $database.alerts_daily$on_cluster AS
SELECT
    day,
    tier,
    rule_id,
    uniqExactMerge(alerts) AS alerts,
    uniqExactMerge(customers) AS customers
FROM $database.alerts_daily_state
GROUP BY day, tier, rule_id
