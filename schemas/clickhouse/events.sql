-- Every raw input event, one row per event_id.
-- A replayed Kafka record has the same (customer_id, event_id) sorting key and the same ts, hence the same
-- partition: ReplacingMergeTree folds the copies together, and FINAL never shows them doubled.
-- ts_ms keeps exact milliseconds on every engine (old servers store ts to the second).
CREATE TABLE IF NOT EXISTS $database.events
(
    event_id String,
    event_type $LowCardinalityString,
    customer_id String,
    ts $DateTimeMs$codec_time,
    ts_ms Int64$codec_time,
    source_topic String,
    `partition` UInt32,
    `offset` UInt64,
    payload String$codec_text,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, event_id)
TTL toDateTime(ts) + INTERVAL 400 DAY  -- requires ttl
