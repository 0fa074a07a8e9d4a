SELECT trace_id, span_id, parent_span_id, name, kind, epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns,
       duration_ns, status_code, status_message, attributes, service_name, pipeline_id, run_id, stage, events,
       links, resource_attributes, scope_name, scope_version, trace_state, flags, dropped_attributes_count,
       dropped_events_count, dropped_links_count, resource_dropped_attributes_count,
       scope_dropped_attributes_count, resource_schema_url, scope_schema_url, scope_attributes, typed_values
FROM spans
WHERE trace_id = $trace_id
ORDER BY start_time, span_id
