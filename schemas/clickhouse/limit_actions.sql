-- Recommended limit actions, one row per action_id once merged (or with FINAL). action_id is derived from the
-- customer, the action and its episode, so a replay replaces its row; ts is fixed per action_id, so every copy
-- lands in one partition. expires_at_ms is 0 when the action stands until a later restore.
CREATE TABLE IF NOT EXISTS $database.limit_actions
(
    action_id String,
    customer_id String,
    action $LowCardinalityString,
    factor Nullable(Float64),
    grade $LowCardinalityString,
    alert_ids Array(String),
    ts $DateTimeMs,
    ts_ms Int64$codec_time,
    expires_at_ms Int64,
    payload String$codec_text,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, action_id)
