-- Each ring's state at the end of every hour it changed in (end_*: its last snapshot that hour), and its
-- largest size within the hour. Replayed snapshots are identical copies, so argMax and max are not moved by them.
CREATE VIEW IF NOT EXISTS $database.ring_sizes_hourly$on_cluster AS
SELECT
    toStartOfHour(ts) AS hour,
    ring_id,
    argMax(size, ts_ms) AS end_size,
    max(size) AS max_size,
    argMax(score, ts_ms) AS end_score,
    argMax(tier, ts_ms) AS end_tier,
    argMax(dissolved, ts_ms) AS end_dissolved,
    uniqExact(ts_ms) AS snapshots
FROM $database.rings
GROUP BY hour, ring_id
