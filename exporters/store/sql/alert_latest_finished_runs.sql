-- The newest finished run of each pipeline (of $pipeline_ids, or of all when it is empty): whether it
-- failed, or (of succeeded runs only, with $succeeded_only) what it loaded.
SELECT id, pipeline_id, status, trace_id, started_at, finished_at, rows_loaded, error
FROM runs
WHERE status IN ('succeeded', 'failed', 'cancelled')
  AND (NOT $succeeded_only OR status = 'succeeded')
  AND (len($pipeline_ids::VARCHAR[]) = 0 OR list_contains($pipeline_ids::VARCHAR[], pipeline_id))
QUALIFY row_number() OVER (PARTITION BY pipeline_id ORDER BY queued_at DESC, id DESC) = 1
