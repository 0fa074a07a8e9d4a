-- Each batch's traces and their time windows (see schema migration 3).
INSERT INTO trace_windows
SELECT hash(trace_id), min(timestamp), max(timestamp) FROM incoming WHERE trace_id IS NOT NULL GROUP BY ALL
