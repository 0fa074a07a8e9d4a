-- What delete_spans_before.sql would delete (a dry run).
SELECT count(*) AS n FROM spans
WHERE start_time < make_timestamp_ns($before_ns) AND ($pipeline_id IS NULL OR pipeline_id = $pipeline_id)
