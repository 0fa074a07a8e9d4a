-- Error records per run of a pipeline: one grouped scan of the pipeline's logs.
SELECT run_id, count(*) AS errors FROM logs
WHERE pipeline_id = $pipeline_id AND severity_number >= 17
GROUP BY run_id
