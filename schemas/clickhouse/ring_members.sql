-- Ring membership over time: one row per (ring snapshot, member), written with the rings row from the same
-- record, so the two tables agree. Sorted by customer: "which rings was c_1 in, how large and how risky" reads
-- one key range. Deduplicated like rings, by (ring_id, ts_ms) per customer; tier is '' below notice.
CREATE TABLE IF NOT EXISTS $database.ring_members
(
    ring_id String,
    customer_id String,
    ts $DateTimeMs$codec_time,
    ts_ms Int64$codec_time,
    size UInt32,
    score Float64,
    tier $LowCardinalityString,
    dissolved UInt8,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, ring_id, ts_ms)
