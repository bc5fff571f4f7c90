-- Profile snapshots, one row per (customer, event time) once merged. Features are kept twice: as parallel
-- arrays, which every engine can filter and aggregate (arrayElement(feature_values, indexOf(feature_names,
-- 'loan_applications_30m'))), and as the snapshot's JSON in payload.
CREATE TABLE IF NOT EXISTS $database.profile_snapshots
(
    customer_id String,
    ts $DateTimeMs,
    ts_ms Int64$codec_time,
    score Float64,
    tier $LowCardinalityString,
    grade $LowCardinalityString,
    feature_names Array(String),
    feature_values Array(Float64),
    payload String$codec_text,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (customer_id, ts_ms)
