-- Month-on-month DPD bucket roll rates by customer grade. A loan's bucket in a month is the one of its last
-- dpd_update that month (M0 current, M1 = DPD 1-30, M2 = 31-60, M3 = 61-90, M4 = over 90, as the repayment
-- detector buckets); months are China months. The grade is the customer's last graded profile snapshot in the
-- starting month ('' when there is none). Only loans with a DPD report in both months are counted: a month
-- without a report says nothing about the bucket. argMax over identical replayed copies gives the same value.
CREATE VIEW IF NOT EXISTS $database.repayment_roll_rates$on_cluster AS
SELECT
    month,
    month_grade AS grade,
    from_bucket,
    count() AS loans,
    countIf(to_bucket > from_bucket) AS rolled_forward,
    countIf(to_bucket = from_bucket) AS stayed,
    countIf(to_bucket < from_bucket) AS improved,
    countIf(to_bucket = 0 AND from_bucket > 0) AS cured,
    rolled_forward / loans AS roll_rate
FROM
(
    SELECT month, customer_id, from_bucket, to_bucket, month_grade
    FROM
    (
        SELECT month, customer_id, loan_id, from_bucket, to_bucket
        FROM
        (
            SELECT
                customer_id,
                visitParamExtractString(payload, 'loan_id') AS loan_id,
                toStartOfMonth(toDate(ts, $zone)) AS month,
                least(4, intDiv(argMax(visitParamExtractUInt(payload, 'dpd'), ts_ms) + 29, 30)) AS from_bucket
            FROM $database.events
            WHERE event_type = 'dpd_update'
            GROUP BY customer_id, loan_id, month
        ) AS this_month
        ALL INNER JOIN
        (
            SELECT
                customer_id,
                visitParamExtractString(payload, 'loan_id') AS loan_id,
                addMonths(toStartOfMonth(toDate(ts, $zone)), -1) AS month,
                least(4, intDiv(argMax(visitParamExtractUInt(payload, 'dpd'), ts_ms) + 29, 30)) AS to_bucket
            FROM $database.events
            WHERE event_type = 'dpd_update'
            GROUP BY customer_id, loan_id, month
        ) AS next_month USING (customer_id, loan_id, month)
    ) AS rolls
    ANY LEFT JOIN
    (
        SELECT customer_id, toStartOfMonth(toDate(ts, $zone)) AS month, argMax(grade, ts_ms) AS month_grade
        FROM $database.profile_snapshots
        WHERE grade != ''
        GROUP BY customer_id, month
    ) AS grades USING (customer_id, month)
)
GROUP BY month, grade, from_bucket
