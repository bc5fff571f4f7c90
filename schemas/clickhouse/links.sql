-- Links between two customers through one shared entity, one row per link_id once merged (or with FINAL).
-- link_id is derived from the two customers and the entity only. The version column is last_seen_ms, the link's
-- progress in event time: a refresh (same link_id, later last_seen) replaces the row, a replayed older copy
-- never does, whatever order they arrive in; equal versions keep the last insert.
-- Not partitioned: a link that lapses and forms again later keeps its link_id but gets a new first_seen, so no
-- time column is fixed per link_id, and copies in two partitions would never be merged into one row.
-- Sorted by entity: "which customers share device d_9" reads one key range. A customer's neighbourhood (either
-- side of a link) is what customer_links is for.
CREATE TABLE IF NOT EXISTS $database.links
(
    link_id String,
    customer_a String,
    customer_b String,
    entity_kind $LowCardinalityString,
    entity_value String,
    first_seen $DateTimeMs,
    last_seen $DateTimeMs,
    first_seen_ms Int64,
    last_seen_ms Int64,
    refresh UInt8,
    payload String$codec_text,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree(last_seen_ms)
ORDER BY (entity_kind, entity_value, link_id)
