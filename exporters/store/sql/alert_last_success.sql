-- Each pipeline's newest success; created_at stands in for a pipeline that never succeeded, so a
-- schedule that never fired is caught once the window has passed since the pipeline was defined.
SELECT p.id AS pipeline_id, p.created_at,
       max(r.finished_at) FILTER (WHERE r.status = 'succeeded') AS last_success
FROM pipelines p LEFT JOIN runs r ON r.pipeline_id = p.id
WHERE len($pipeline_ids::VARCHAR[]) = 0 OR list_contains($pipeline_ids::VARCHAR[], p.id)
GROUP BY p.id, p.created_at
