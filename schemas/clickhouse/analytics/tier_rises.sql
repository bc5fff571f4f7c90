-- Every rise of a customer's tier: one row per profile snapshot whose tier ranks above the customer's
-- previous snapshot (none < notice < attention < warning). A customer's first snapshot with a tier counts as a
-- rise from none. Snapshots are written on every tier change, so no rise is missed between two of them.
-- groupUniqArray folds replayed copies of a snapshot (same customer and ts_ms) before the order is taken.
CREATE VIEW IF NOT EXISTS $database.tier_rises$on_cluster AS
SELECT
    customer_id,
    rise.1 AS ts_ms,
    toDateTime(intDiv(rise.1, 1000), 'UTC') AS ts,
    ['', 'notice', 'attention', 'warning'][rise.2 + 1] AS from_tier,
    ['', 'notice', 'attention', 'warning'][rise.3 + 1] AS to_tier,
    rise.3 - rise.2 AS steps
FROM
(
    SELECT
        customer_id,
        arraySort(groupUniqArray((ts_ms, indexOf(['notice', 'attention', 'warning'], tier)))) AS points
    FROM $database.profile_snapshots
    GROUP BY customer_id
)
ARRAY JOIN arrayFilter(
    r -> r.3 > r.2,
    arrayMap(i -> (points[i].1, if(i = 1, 0, points[i - 1].2), points[i].2), arrayEnumerate(points))
) AS rise
