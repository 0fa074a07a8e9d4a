INSERT INTO runs (id, pipeline_id, status, trace_id, overrides)
VALUES ($id, $pipeline_id, 'queued', $trace_id, $overrides)
