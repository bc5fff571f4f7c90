-- Customers whose tier rose this week (China time, weeks start on Monday; "this week" is the server clock's):
-- the tier before the week's first rise (tier_before), the highest tier reached (top_tier), and when.
CREATE VIEW IF NOT EXISTS $database.tier_rises_this_week$on_cluster AS
SELECT
    customer_id,
    argMin(from_tier, ts_ms) AS tier_before,
    ['', 'notice', 'attention', 'warning'][max(indexOf(['notice', 'attention', 'warning'], to_tier)) + 1] AS top_tier,
    count() AS rises,
    min(ts) AS first_rise,
    max(ts) AS last_rise
FROM $database.tier_rises
WHERE toDate(ts, $zone) >= toMonday(now(), $zone)
GROUP BY customer_id
