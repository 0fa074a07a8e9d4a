SELECT id, rule_id, pipeline_id, until, comment, created_at FROM alert_silences ORDER BY created_at, id
