-- Fraud-ring (团伙) snapshots, one row per (ring_id, ts_ms) once merged (or with FINAL): a ring's state each time
-- it changed, so its history is one row per change and a re-sent snapshot replaces its copy. Two different
-- snapshots of one ring at the same event-time millisecond keep the one inserted last (Kafka order: the
-- topic is keyed by ring_id). ts is fixed per key, so every copy lands in one partition.
-- members and the parallel arrays entity_kinds / entity_values are queryable on every engine
-- (has(members, 'c_1'), arrayJoin); ring_members has one row per member, sorted by customer.
CREATE TABLE IF NOT EXISTS $database.rings
(
    ring_id String,
    ts $DateTimeMs$codec_time,
    ts_ms Int64$codec_time,
    first_seen $DateTimeMs,
    first_seen_ms Int64,
    size UInt32,
    score Float64,
    tier $LowCardinalityString,
    members Array(String),
    entity_kinds Array($LowCardinalityString),
    entity_values Array(String),
    links UInt32,
    dissolved UInt8,
    payload String$codec_text,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (ring_id, ts_ms)
