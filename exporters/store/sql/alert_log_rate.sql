-- Records in [$since_ns, $until_ns) of one service and holding a text when those are given, and how
-- many of them are at or above $min_level; per pipeline with $per_pipeline, else in one count (key '').
SELECT CASE WHEN $per_pipeline THEN coalesce(pipeline_id, '') ELSE '' END AS key, count(*) AS matches,
       count(*) FILTER (WHERE coalesce(severity_number, 0) >= $min_level) AS at_level
FROM logs
WHERE timestamp >= make_timestamp_ns($since_ns) AND timestamp < make_timestamp_ns($until_ns)
  AND ($service_name IS NULL OR service_name = $service_name)
  AND ($text IS NULL OR contains(lower(body), lower($text)))
  AND (len($pipeline_ids::VARCHAR[]) = 0 OR list_contains($pipeline_ids::VARCHAR[], pipeline_id))
GROUP BY ALL
