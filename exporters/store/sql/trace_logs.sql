-- A trace's logs, oldest first, only inside its time window (zone maps narrow the scan to a row group
-- or two). The columns are queries.LOG_COLUMNS'.
SELECT id, epoch_ns(timestamp) AS ts, epoch_ns(observed_timestamp) AS observed, severity_text, severity_number,
       body, scope_name, scope_version, trace_id, span_id, event_name, service_name, pipeline_id, run_id, stage,
       attributes, resource_attributes, promoted_keys, time_absent, coalesce(flags, trace_flags) AS flags,
       body_value, typed_values, dropped_attributes_count, resource_schema_url,
       resource_dropped_attributes_count, scope_schema_url, scope_attributes, scope_dropped_attributes_count,
       promoted_places
FROM logs
WHERE trace_id = $trace_id AND timestamp BETWEEN make_timestamp_ns($first_ns) AND make_timestamp_ns($last_ns)
ORDER BY timestamp, id
LIMIT $limit
