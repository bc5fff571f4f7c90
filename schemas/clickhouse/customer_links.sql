-- Every link twice, once from each side: customer_id is the customer looked at, neighbour_id the other one.
-- Written with the links row from the same record. A customer's neighbourhood ("everyone linked to c_1, and via
-- which entities") is one key range here, whichever side of the link c_1 is on; links holds a link once, as
-- customer_a or customer_b, and could only be sorted by one of them. Versioned and unpartitioned like links,
-- for the same reasons. The link's JSON is in links.payload (join on link_id).
CREATE TABLE IF NOT EXISTS $database.customer_links
(
    customer_id String,
    neighbour_id String,
    link_id String,
    entity_kind $LowCardinalityString,
    entity_value String,
    first_seen $DateTimeMs,
    last_seen $DateTimeMs,
    first_seen_ms Int64,
    last_seen_ms Int64,
    ingested_at $DateTimeMs
)
ENGINE = ReplacingMergeTree(last_seen_ms)
ORDER BY (customer_id, link_id)
