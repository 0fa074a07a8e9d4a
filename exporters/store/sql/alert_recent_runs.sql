-- The newest $per_pipeline runs of each pipeline that succeeded or are running, newest first. max_by
-- with a count keeps the newest few per pipeline as it reads, where a window function sorted every run.
SELECT * FROM (
    SELECT unnest(max_by(
        {'id': id, 'pipeline_id': pipeline_id, 'status': status, 'trace_id': trace_id,
         'started_at': started_at, 'finished_at': finished_at},
        (started_at, id), $per_pipeline), recursive := true)
    FROM runs
    WHERE status IN ('succeeded', 'running') AND started_at IS NOT NULL
      AND (len($pipeline_ids::VARCHAR[]) = 0 OR list_contains($pipeline_ids::VARCHAR[], pipeline_id))
    GROUP BY pipeline_id
)
ORDER BY pipeline_id, started_at DESC, id DESC
