-- Spans not stored before, by trace and span id: a batch's own repeats are stored once, and only the
-- stored spans inside the batch's start-time window are read to find those seen before.
INSERT INTO spans BY NAME
SELECT * FROM (
    SELECT * FROM incoming QUALIFY row_number() OVER (PARTITION BY trace_id, span_id) = 1
) AS fresh
WHERE NOT EXISTS (
    SELECT 1 FROM (
        SELECT trace_id, span_id FROM spans
        WHERE start_time BETWEEN make_timestamp_ns($lo) AND make_timestamp_ns($hi)
    ) AS stored
    WHERE stored.trace_id = fresh.trace_id AND stored.span_id = fresh.span_id
)
