-- Messages that could not be processed, one row per source record: dead_letter_id is derived from
-- (source topic, partition, offset), so a replay of the same record replaces its row.
-- payload_b64 keeps the original bytes losslessly, invalid UTF-8 included.
CREATE TABLE IF NOT EXISTS $database.dead_letters
(
    dead_letter_id String,
    source_topic String,
    `partition` UInt32,
    `offset` UInt64,
    error_kind String,
    reason String$codec_text,
    payload_b64 String$codec_text,
    payload_size UInt32,
    received_at $DateTimeMs
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (dead_letter_id)
