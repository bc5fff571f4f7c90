-- Alerts, one row per alert_id once merged (or with FINAL).
-- The version column is last_seen_ms, the alert's own progress in event time: a replay of an older emission
-- of an alert never replaces a newer one, whatever order they arrive in; equal versions keep the last insert.
-- first_seen is the episode start, fixed for an alert_id, so every copy of an alert lands in one partition.
CREATE TABLE IF NOT EXISTS $database.alerts
(
    alert_id String,
    customer_id String,
    rule_id String,
    rule_version UInt32,
    tier $LowCardinalityString,
    tier_label String,
    score Float64,
    reasons String$codec_text,
    evidence_event_ids Array(String),
    first_seen $DateTimeMs,
    last_seen $DateTimeMs,
    first_seen_ms Int64,
    last_seen_ms Int64,
    payload String$codec_text,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree(last_seen_ms)
PARTITION BY toYYYYMM(first_seen)
ORDER BY (customer_id, alert_id)
