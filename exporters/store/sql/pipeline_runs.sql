SELECT id, pipeline_id, status, trace_id, queued_at, started_at, finished_at, exit_code, rows_loaded, error,
       overrides, warnings
FROM runs WHERE pipeline_id = $pipeline_id ORDER BY queued_at DESC, id LIMIT $limit
