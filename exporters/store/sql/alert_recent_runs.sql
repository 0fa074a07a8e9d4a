-- The newest $per_pipeline runs of each pipeline that succeeded or are running, newest first.
SELECT id, pipeline_id, status, trace_id, started_at, finished_at
FROM runs
WHERE status IN ('succeeded', 'running') AND started_at IS NOT NULL
  AND (len($pipeline_ids::VARCHAR[]) = 0 OR list_contains($pipeline_ids::VARCHAR[], pipeline_id))
QUALIFY row_number() OVER (PARTITION BY pipeline_id ORDER BY started_at DESC, id DESC) <= $per_pipeline
ORDER BY pipeline_id, started_at DESC, id DESC
