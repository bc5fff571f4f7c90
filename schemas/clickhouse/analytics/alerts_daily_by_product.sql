-- Alerts per China day, tier, rule and loan product. Alerts carry no product: the product comes from the
-- alert's evidence events (behaviour events name the product of their screen, loan applications and
-- drawdowns always). An alert whose evidence names two products counts once under each; an alert whose
-- evidence names none (repayment, inquiry and ring alerts) is not here (see alerts_daily for every alert).
CREATE VIEW IF NOT EXISTS $database.alerts_daily_by_product$on_cluster AS
SELECT
    day,
    tier,
    rule_id,
    product,
    uniqExact(alert_id) AS alerts,
    uniqExact(customer_id) AS customers
FROM
(
    SELECT
        alert_id,
        customer_id,
        tier,
        rule_id,
        toDate(first_seen, $zone) AS day,
        event_id
    FROM $database.alerts
    ARRAY JOIN evidence_event_ids AS event_id
) AS evidence
ANY INNER JOIN
(
    SELECT
        event_id,
        customer_id,
        visitParamExtractString(payload, 'product') AS product
    FROM $database.events
    WHERE visitParamExtractString(payload, 'product') != ''
) AS products USING (event_id, customer_id)
GROUP BY day, tier, rule_id, product
