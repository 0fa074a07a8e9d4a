-- A trace's time window (see schema migration 3): a small table read before the logs.
SELECT epoch_ns(min(first_ts)) AS first_ns, epoch_ns(max(last_ts)) AS last_ns FROM trace_windows
WHERE trace_key = hash($trace_id::VARCHAR)
