-- Runs by how they ended, for the stats: a run that succeeded but warned (it loaded nothing) apart,
-- cancels apart from failures. Filtered like the logs: by pipeline and by when the run was queued.
SELECT CASE WHEN status = 'succeeded' AND warnings IS NOT NULL THEN 'succeeded_with_warnings'
            ELSE status END AS outcome,
       count(*) AS runs
FROM runs
WHERE ($pipeline_id IS NULL OR pipeline_id = $pipeline_id)
  AND ($since_ns IS NULL OR epoch_ns(queued_at) >= $since_ns)
  AND ($until_ns IS NULL OR epoch_ns(queued_at) < $until_ns)
GROUP BY ALL
