-- Dead letters per China day (of received_at), source topic, kind and reason; each dead_letter_id once.
-- Reasons name the field and the rule, never payload values, so equal reasons group the same fault.
CREATE VIEW IF NOT EXISTS $database.dead_letters_by_reason$on_cluster AS
SELECT
    toDate(received_at, $zone) AS day,
    source_topic,
    error_kind,
    reason,
    uniqExact(dead_letter_id) AS letters,
    max(payload_size) AS largest_payload,
    min(received_at) AS first_received,
    max(received_at) AS last_received
FROM $database.dead_letters
GROUP BY day, source_topic, error_kind, reason
